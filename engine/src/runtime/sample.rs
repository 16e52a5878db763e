//! The rows a debug bundle keeps of the batch a stream failed on.

use arrow_array::RecordBatch;

use crate::report::{FailedSample, SAMPLE_ROWS};
use crate::rows::row_json;

/// The first [`SAMPLE_ROWS`] rows of `batch` as JSON, `protected` columns set to null.
pub(super) fn sample(
    stage: &'static str,
    batch: &RecordBatch,
    protected: &[String],
) -> FailedSample {
    let masked: Vec<String> = protected
        .iter()
        .filter(|c| batch.schema().field_with_name(c).is_ok())
        .cloned()
        .collect();
    let rows = (0..batch.num_rows().min(SAMPLE_ROWS))
        .map(|r| {
            let mut row = row_json(batch, r);
            if let Some(m) = row.as_object_mut() {
                for c in &masked {
                    m.insert(c.clone(), serde_json::Value::Null);
                }
            }
            row
        })
        .collect();
    FailedSample {
        stage,
        schema: batch.schema(),
        rows,
        masked,
    }
}

//! A batch as it enters the pump: checked against the stream's schema, and its size.

use arrow_array::RecordBatch;

use ferry_core::{Error, ErrorKind, Result};

/// Checks a batch has the stream's columns and types, and gives it the stream's schema
/// (with its key metadata). Errors name the column.
pub fn conform(schema: &arrow_schema::SchemaRef, batch: RecordBatch) -> Result<RecordBatch> {
    let got = batch.schema();
    if got.fields().len() != schema.fields().len() {
        return Err(Error::new(
            ErrorKind::SchemaMismatch,
            format!(
                "source sent {} columns, the stream's schema has {}",
                got.fields().len(),
                schema.fields().len()
            ),
        ));
    }
    for (g, w) in got.fields().iter().zip(schema.fields()) {
        if g.name() != w.name() || g.data_type() != w.data_type() {
            return Err(Error::new(
                ErrorKind::SchemaMismatch,
                format!(
                    "source sent column `{}` {}, the stream's schema has `{}` {}",
                    g.name(),
                    g.data_type(),
                    w.name(),
                    w.data_type()
                ),
            ));
        }
    }
    RecordBatch::try_new(schema.clone(), batch.columns().to_vec()).map_err(|e| {
        Error::new(
            ErrorKind::SchemaMismatch,
            format!("batch does not fit the stream's schema: {e}"),
        )
    })
}

/// Bytes held by a batch's values (not counting spare capacity).
pub fn batch_bytes(batch: &RecordBatch) -> u64 {
    batch
        .columns()
        .iter()
        .map(|c| c.to_data().get_slice_memory_size().unwrap_or(0) as u64)
        .sum()
}

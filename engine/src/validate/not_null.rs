//! `not_null`: the columns hold no NULL.

use arrow_array::{Array, RecordBatch};

use super::Fails;

/// Pushes `(row, message)` for each row of `batch` where one of `cols` is NULL.
pub(super) fn scan(batch: &RecordBatch, cols: &[usize], out: &mut Fails) {
    if cols.iter().all(|c| batch.column(*c).null_count() == 0) {
        return;
    }
    for r in 0..batch.num_rows() {
        if let Some(c) = cols.iter().find(|c| batch.column(**c).is_null(r)) {
            out.push((
                r,
                format!("`{}` is NULL", batch.schema_ref().field(*c).name()),
            ));
        }
    }
}

//! Reading a column the way every check does: by name (with a suggestion), as text.

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};
use arrow_schema::Schema;

use ferry_core::types::FerryType;
use ferry_core::values::write_text;
use ferry_core::{Error, Result};

/// The index of column `name`, or a config error of `check` naming the nearest column.
pub(super) fn col(schema: &Schema, name: &str, check: &str) -> Result<usize> {
    schema.index_of(name).map_err(|_| {
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let mut msg = format!("{check}: no column `{name}`");
        if !check.starts_with("check ") {
            msg = format!("check {msg}");
        }
        if let Some(best) = ferry_core::suggest::nearest(name, names.iter().copied()) {
            msg.push_str(&format!("; did you mean `{best}`?"));
        }
        Error::config(msg)
    })
}

/// Whether column `c` of `batch` is text (string or json), stored as a `StringArray`.
pub(super) fn is_text(batch: &RecordBatch, c: usize) -> bool {
    matches!(
        type_of(batch.schema_ref(), c),
        FerryType::String | FerryType::Json
    )
}

/// The Ferry type of column `c` (text when it has none).
pub(super) fn type_of(schema: &Schema, c: usize) -> FerryType {
    FerryType::of(schema.field(c)).unwrap_or(FerryType::String)
}

/// Calls `f(row, text)` for every non-NULL value of column `c` (strings as they are, other
/// types in their text form).
pub(super) fn each_text(
    batch: &RecordBatch,
    c: usize,
    buf: &mut String,
    mut f: impl FnMut(usize, &str),
) {
    let col = batch.column(c);
    let ty = type_of(batch.schema_ref(), c);
    if matches!(ty, FerryType::String | FerryType::Json) {
        let a = col.as_string::<i32>();
        if a.null_count() == 0 {
            for r in 0..a.len() {
                f(r, a.value(r));
            }
        } else {
            for r in 0..a.len() {
                if a.is_valid(r) {
                    f(r, a.value(r));
                }
            }
        }
        return;
    }
    for r in 0..col.len() {
        buf.clear();
        if write_text(col.as_ref(), ty, r, buf) {
            f(r, buf);
        }
    }
}

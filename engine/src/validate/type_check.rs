//! `type`: a string column's text parses as a Ferry type (the parser every text source
//! uses).

use arrow_array::RecordBatch;

use super::columns::each_text;
use super::Fails;
use ferry_core::types::FerryType;
use ferry_core::values::{preview, ColumnBuilder};

/// Pushes `(row, message)` for each text of column `c` that `builder`'s type does not parse.
pub(super) fn scan(
    batch: &RecordBatch,
    c: usize,
    builder: &mut ColumnBuilder,
    buf: &mut String,
    out: &mut Fails,
) {
    // every text parses as a string
    if builder.ferry_type() == FerryType::String {
        return;
    }
    let ty = builder.ferry_type();
    each_text(batch, c, buf, |r, t| {
        if builder.append_text(t).is_err() {
            out.push((r, format!("`{}` is not a valid {ty}", preview(t))));
        }
    });
    builder.finish();
}

//! `max_length`: text is at most `max` characters.

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};

use super::columns::{each_text, is_text};
use super::Fails;

/// Pushes `(row, message)` for each value of column `c` longer than `max` characters.
pub(super) fn scan(batch: &RecordBatch, c: usize, max: usize, buf: &mut String, out: &mut Fails) {
    if is_text(batch, c) {
        // a text is never longer in characters than in bytes: only values with
        // more bytes than `max` (read from the offsets) are counted
        let a = batch.column(c).as_string::<i32>();
        for (r, w) in a.value_offsets().windows(2).enumerate() {
            if (w[1] - w[0]) as usize > max && a.is_valid(r) {
                let chars = a.value(r).chars().count();
                if chars > max {
                    out.push((r, format!("{chars} characters, more than {max}")));
                }
            }
        }
        return;
    }
    each_text(batch, c, buf, |r, t| {
        if t.len() > max && t.chars().count() > max {
            out.push((
                r,
                format!("{} characters, more than {max}", t.chars().count()),
            ));
        }
    })
}

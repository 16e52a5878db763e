//! A row's fingerprint over some of its columns: SHA-256 of each non-NULL value with its
//! column's name, so neither the columns' order nor a column that is NULL changes it.
//! History versions rows by it; a run's keys are told apart by it.

use ferry_core::arrow_array::RecordBatch;
use ferry_core::values::write_text;
use ferry_core::FerryType;

/// The first 16 bytes of the SHA-256 of row `row` over `columns` of `batch` (`types`
/// holds every column's type), as a number. `text` is scratch room, reused across rows.
pub fn row_hash(
    batch: &RecordBatch,
    columns: &[usize],
    types: &[FerryType],
    row: usize,
    text: &mut String,
) -> u128 {
    let mut h = ring::digest::Context::new(&ring::digest::SHA256);
    for &i in columns {
        text.clear();
        if write_text(batch.column(i).as_ref(), types[i], row, text) {
            let name = batch.schema_ref().field(i).name();
            // each part with its length first, so no two rows run together the same way
            for part in [name.as_bytes(), text.as_bytes()] {
                h.update(&(part.len() as u64).to_le_bytes());
                h.update(part);
            }
        }
    }
    let first: [u8; 16] = h.finish().as_ref()[..16]
        .try_into()
        .expect("SHA-256 gives 32 bytes");
    u128::from_be_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::arrow_array::{ArrayRef, StringArray};
    use std::sync::Arc;

    #[test]
    fn null_empty_and_the_column_a_value_is_in_hash_apart() {
        let col = |v: Vec<Option<&str>>| Arc::new(StringArray::from(v)) as ArrayRef;
        let a = col(vec![None, Some(""), Some("x"), None, Some("x")]);
        let b = col(vec![None, None, None, Some("x"), None]);
        let batch = RecordBatch::try_from_iter([("a", a), ("b", b)]).unwrap();
        let types = [FerryType::String, FerryType::String];
        let mut text = String::new();
        let h: Vec<u128> = (0..5)
            .map(|r| row_hash(&batch, &[0, 1], &types, r, &mut text))
            .collect();
        assert_ne!(h[0], h[1], "NULL and the empty string");
        assert_ne!(h[2], h[3], "the same value in another column");
        assert_eq!(h[2], h[4], "the same row");
    }
}

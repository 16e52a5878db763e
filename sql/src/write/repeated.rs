//! A key written twice in one run, where that is refused: a history keeps one version
//! per key and run, and the keys table of `deletes` holds each key once. Found here,
//! before the database's own duplicate-key error (which names tables the user never
//! made), and told in Ferry's words with the key's value and what to do.

use std::collections::HashSet;

use ferry_core::arrow_array::RecordBatch;
use ferry_core::values::write_text;
use ferry_core::{Error, FerryType, Result};

use super::row_hash::row_hash;

/// The keys written so far in a run, as 128-bit fingerprints (16 bytes a key: about
/// 35 MB for a million keys, held only by history and `deletes` streams).
pub struct Seen {
    keys: HashSet<u128>,
    /// Why a key may come once: the setting that needs it.
    setting: String,
    /// The key's columns in the stream's batches.
    columns: Vec<usize>,
}

impl Seen {
    /// For a stream written with `setting` (`mode = "history"`, `deletes = "soft"`),
    /// keyed by its `columns`.
    pub fn new(setting: impl Into<String>, columns: Vec<usize>) -> Seen {
        Seen {
            keys: HashSet::new(),
            setting: setting.into(),
            columns,
        }
    }

    /// Takes the keys of a batch; an error naming the first key already taken in this
    /// run, and its row (`before` rows came earlier).
    pub fn take(&mut self, batch: &RecordBatch, before: u64, table: &str) -> Result<()> {
        let keys = &super::missing::keys_of(batch, &self.columns)?;
        let types = FerryType::of_each(&keys.schema(), FerryType::Json);
        let all: Vec<usize> = (0..keys.num_columns()).collect();
        let mut text = String::new();
        for row in 0..keys.num_rows() {
            if !self
                .keys
                .insert(row_hash(keys, &all, &types, row, &mut text))
            {
                return Err(self.repeated(keys, row, before + row as u64 + 1, table));
            }
        }
        Ok(())
    }

    fn repeated(&self, keys: &RecordBatch, row: usize, at: u64, table: &str) -> Error {
        let schema = keys.schema();
        let mut parts = Vec::new();
        for (i, f) in schema.fields().iter().enumerate() {
            let mut text = String::new();
            let ty = FerryType::of(f).unwrap_or(FerryType::Json);
            if !write_text(keys.column(i).as_ref(), ty, row, &mut text) {
                text = "NULL".into();
            }
            parts.push(format!("{} = {text}", f.name()));
        }
        let columns: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let value = parts.join(", ");
        Error::data(format!(
            "the source gave key {value} twice in one run (again at row {at}), and {} needs \
             each key once per run: make the source give one row per key, or add a column \
             that tells the rows apart to the stream's `primary_key` (now [{}])",
            self.setting,
            columns
                .iter()
                .map(|c| format!("\"{c}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .with("table", table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::arrow_array::{ArrayRef, Int64Array, StringArray};
    use ferry_core::arrow_schema::Schema;
    use std::sync::Arc;

    fn keys(ids: Vec<i64>, names: Vec<&str>) -> RecordBatch {
        let schema = Schema::new(vec![
            FerryType::Int64.field("id", false),
            FerryType::String.field("part", false),
        ]);
        let columns = vec![
            Arc::new(Int64Array::from(ids)) as ArrayRef,
            Arc::new(StringArray::from(names)) as ArrayRef,
        ];
        RecordBatch::try_new(Arc::new(schema), columns).unwrap()
    }

    #[test]
    fn a_key_again_in_a_later_batch_is_named_with_its_row() {
        let mut seen = Seen::new("mode = \"history\"", vec![0, 1]);
        seen.take(&keys(vec![1, 1, 2], vec!["a", "b", "a"]), 0, "t")
            .unwrap();
        let e = seen
            .take(&keys(vec![3, 1], vec!["a", "b"]), 3, "t")
            .unwrap_err();
        let m = e.message();
        assert!(m.contains("key id = 1, part = b twice"), "{m}");
        assert!(m.contains("again at row 5"), "{m}");
        assert!(m.contains("mode = \"history\" needs"), "{m}");
        assert!(m.contains("[\"id\", \"part\"]"), "{m}");
    }
}

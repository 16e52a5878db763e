//! Batches built row by row from a driver's rows, never holding part of a row.
//!
//! A [`Batcher`] appends a row by asking the driver's [`Appender`] for each of its values.
//! When one does not fit its column, the batcher takes out the good rows before it as a
//! batch and forgets the bad row's values, so the caller can send the good rows, then the
//! bad row as rejected, in the order they were read.

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;

use crate::error::{Error, Result};

/// A driver's column builders, one per column of the schema: the part of an
/// [`Appender`] that knows no row type.
pub trait Columns {
    /// Appends NULL to `column`.
    fn append_null(&mut self, column: usize);

    /// Takes the values of `column` as an array; the column starts over empty.
    fn finish(&mut self, column: usize) -> ArrayRef;
}

/// A driver's part of a [`Batcher`]: how a value of one of its rows (of type `R`) goes
/// into its [`Columns`].
pub trait Appender<R: ?Sized>: Columns {
    /// Appends value `column` of `row`: `Ok(true)` when appended, `Ok(false)` when it is
    /// NULL (nothing appended: the batcher appends NULL, or refuses it in a column that
    /// does not allow NULL), `Err` saying what is wrong with it (nothing appended).
    fn append(&mut self, row: &R, column: usize) -> std::result::Result<bool, String>;

    /// Value `column` of `row` as JSON, for the raw text of a rejected row.
    fn json(&self, row: &R, column: usize) -> serde_json::Value;

    /// Checks `row` as a whole before its values are appended (default: it fits).
    fn check(&self, _row: &R) -> std::result::Result<(), String> {
        Ok(())
    }
}

/// A value that could not be read into its column.
#[derive(Debug)]
pub struct BadValue {
    /// Zero-based column index.
    pub column: usize,
    /// What was wrong, naming the column.
    pub message: String,
}

/// A refused row: what was wrong, and the good rows appended before it (taken out).
pub type Refused = (BadValue, Option<RecordBatch>);

/// Builds batches of one schema from a driver's rows, keeping rows whole.
pub struct Batcher<A> {
    schema: SchemaRef,
    nullable: Vec<bool>,
    appender: A,
    capacity: usize,
    rows: usize,
}

impl<A> Batcher<A> {
    /// A batcher for `schema` whose batches hold `capacity` rows, appending through
    /// `appender` (whose columns are those of `schema`).
    pub fn new(schema: SchemaRef, capacity: usize, appender: A) -> Self {
        let nullable = schema.fields().iter().map(|f| f.is_nullable()).collect();
        Batcher {
            schema,
            nullable,
            appender,
            capacity: capacity.max(1),
            rows: 0,
        }
    }

    /// Rows appended since the last batch was taken.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row waits to be taken.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Whether the batch being built has its size: take it before the next row.
    pub fn is_full(&self) -> bool {
        self.rows >= self.capacity
    }

    /// The schema of the batches.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Appends one row. On a bad value nothing of the row stays, and the good rows
    /// before it are taken out as a batch (returned with the error).
    pub fn push<R: ?Sized>(&mut self, row: &R) -> std::result::Result<(), Refused>
    where
        A: Appender<R>,
    {
        if let Err(m) = self.appender.check(row) {
            return Err(self.cut(0, m));
        }
        for i in 0..self.nullable.len() {
            let result = match self.appender.append(row, i) {
                Ok(true) => Ok(()),
                Ok(false) if self.nullable[i] => {
                    self.appender.append_null(i);
                    Ok(())
                }
                Ok(false) => Err("NULL in a column that does not allow NULL".to_string()),
                Err(m) => Err(m),
            };
            if let Err(m) = result {
                return Err(self.cut(i, m));
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// After column `failed` of the current row failed (appending nothing): completes
    /// the row with NULLs, takes the columns, and keeps only the rows before it.
    fn cut(&mut self, failed: usize, message: String) -> Refused
    where
        A: Columns,
    {
        for c in failed..self.nullable.len() {
            self.appender.append_null(c);
        }
        let good = self.rows;
        let arrays: Vec<ArrayRef> = (0..self.nullable.len())
            .map(|c| self.appender.finish(c).slice(0, good))
            .collect();
        self.rows = 0;
        let name = self.schema.field(failed).name();
        let bad = BadValue {
            column: failed,
            message: format!("column `{name}`: {message}"),
        };
        let batch = (good > 0)
            .then(|| RecordBatch::try_new(self.schema.clone(), arrays).ok())
            .flatten();
        (bad, batch)
    }

    /// Takes the rows appended so far as a batch.
    pub fn finish(&mut self) -> Result<RecordBatch>
    where
        A: Columns,
    {
        let arrays: Vec<ArrayRef> = (0..self.nullable.len())
            .map(|c| self.appender.finish(c))
            .collect();
        self.rows = 0;
        RecordBatch::try_new(self.schema.clone(), arrays)
            .map_err(|e| Error::internal(format!("columns of a read batch disagree: {e}")))
    }

    /// `row` as the text of a JSON object by column name: the raw form of a rejected row.
    pub fn raw<R: ?Sized>(&self, row: &R) -> String
    where
        A: Appender<R>,
    {
        let map: serde_json::Map<String, serde_json::Value> = self
            .schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name().clone(), self.appender.json(row, i)))
            .collect();
        serde_json::Value::Object(map).to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::builder::Int64Builder;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    use arrow_schema::{DataType, Field, Schema};

    use super::*;

    /// Rows of text values; `""` is NULL and a non-number is refused.
    struct Ints(Vec<Int64Builder>);

    impl Columns for Ints {
        fn append_null(&mut self, c: usize) {
            self.0[c].append_null();
        }
        fn finish(&mut self, c: usize) -> ArrayRef {
            Arc::new(self.0[c].finish())
        }
    }

    impl Appender<[&str]> for Ints {
        fn append(&mut self, row: &[&str], c: usize) -> std::result::Result<bool, String> {
            match row[c] {
                "" => Ok(false),
                v => {
                    let n = v.parse().map_err(|_| format!("`{v}` is not a number"))?;
                    self.0[c].append_value(n);
                    Ok(true)
                }
            }
        }
        fn json(&self, row: &[&str], c: usize) -> serde_json::Value {
            row[c].into()
        }
        fn check(&self, row: &[&str]) -> std::result::Result<(), String> {
            (row.len() == 2)
                .then_some(())
                .ok_or_else(|| format!("{} values, 2 columns", row.len()))
        }
    }

    fn batcher(capacity: usize) -> Batcher<Ints> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Int64, false),
        ]));
        Batcher::new(
            schema,
            capacity,
            Ints(vec![Int64Builder::new(), Int64Builder::new()]),
        )
    }

    fn column(batch: &RecordBatch, c: usize) -> Vec<Option<i64>> {
        batch.column(c).as_primitive::<Int64Type>().iter().collect()
    }

    #[test]
    fn a_bad_value_cuts_the_batch_before_its_row() {
        let mut b = batcher(10);
        b.push(&["1", "2"][..]).unwrap();
        b.push(&["", "4"][..]).unwrap();
        // the first value fits, the second does not: nothing of the row may stay
        let (bad, good) = b.push(&["5", "x"][..]).unwrap_err();
        assert_eq!(bad.column, 1);
        assert_eq!(bad.message, "column `b`: `x` is not a number");
        let good = good.unwrap();
        assert_eq!(column(&good, 0), vec![Some(1), None]);
        assert_eq!(column(&good, 1), vec![Some(2), Some(4)]);
        assert!(b.is_empty());
        assert_eq!(b.raw(&["5", "x"][..]), r#"{"a":"5","b":"x"}"#);
        // the next rows start a clean batch
        b.push(&["6", "7"][..]).unwrap();
        let next = b.finish().unwrap();
        assert_eq!(column(&next, 0), vec![Some(6)]);
        assert_eq!(column(&next, 1), vec![Some(7)]);
    }

    #[test]
    fn nulls_are_refused_where_the_column_forbids_them() {
        let mut b = batcher(10);
        let (bad, good) = b.push(&["1", ""][..]).unwrap_err();
        assert_eq!(
            bad.message,
            "column `b`: NULL in a column that does not allow NULL"
        );
        assert!(good.is_none(), "no good rows came before it");
        let (bad, _) = b.push(&["1"][..]).unwrap_err();
        assert_eq!(
            (bad.column, bad.message.as_str()),
            (0, "column `a`: 1 values, 2 columns")
        );
        assert_eq!(b.finish().unwrap().num_rows(), 0);
    }

    #[test]
    fn full_means_the_batch_size() {
        let mut b = batcher(2);
        b.push(&["1", "1"][..]).unwrap();
        assert!(!b.is_full());
        b.push(&["2", "2"][..]).unwrap();
        assert!(b.is_full());
        assert_eq!(b.len(), 2);
        assert_eq!(b.finish().unwrap().num_rows(), 2);
        assert!(!b.is_full());
    }
}

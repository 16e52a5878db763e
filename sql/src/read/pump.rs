//! The rows of a query as the messages of a read: batches of the batch size, a
//! checkpoint after a batch where the cursor changes, and each row that does not fit its
//! schema as a rejected record in its place.

use ferry_core::batcher::{Appender, Batcher, Columns};
use ferry_core::cursor::{Checkpointer, Cursor, CursorOf};
use ferry_core::{Message, Position, Rejected, Result};

/// The rows a read of `n` rows at most `limit` of which are read expects to yield:
/// [`Message::Total`] when `n` is `exact` (counted in the read's own snapshot) and no
/// limit cuts it, else [`Message::Estimate`].
pub fn expected_rows(n: u64, exact: bool, limit: Option<u64>) -> Message {
    match limit {
        None if exact => Message::Total(n),
        _ => Message::Estimate(limit.map_or(n, |l| l.min(n))),
    }
}

/// Turns rows, one at a time, into the messages to send; the driver sends them.
pub struct RowPump<A, C> {
    batcher: Batcher<A>,
    checkpoints: Checkpointer<C>,
    /// Rejected rows are named `<label> row <n>`.
    label: String,
    /// The file rejected rows are positioned in (file databases).
    file: Option<String>,
    out: Vec<Message>,
}

impl<A: Columns, C: Cursor> RowPump<A, C> {
    /// A pump building batches with `batcher`, checkpointing as `checkpoints` says, naming
    /// rejected rows `<label> row <n>`.
    pub fn new(
        batcher: Batcher<A>,
        checkpoints: Checkpointer<C>,
        label: impl Into<String>,
    ) -> Self {
        RowPump {
            batcher,
            checkpoints,
            label: label.into(),
            file: None,
            out: Vec::with_capacity(4),
        }
    }

    /// Positions rejected rows in `file`.
    pub fn in_file(mut self, file: impl Into<String>) -> Self {
        self.file = Some(file.into());
        self
    }

    /// Takes the next row. Returns the messages to send before the row after it: the
    /// full batch and its checkpoint, or the good rows and the rejected row.
    pub fn row<R: ?Sized>(&mut self, row: &R) -> Result<std::vec::Drain<'_, Message>>
    where
        A: Appender<R>,
        C: CursorOf<R>,
    {
        if self.batcher.is_full() {
            // a checkpoint only where the cursor changes: every row tying with the
            // checkpointed value is in the batches before it
            let checkpoint = self.checkpoints.before(row)?;
            self.out.push(Message::Batch(self.batcher.finish()?));
            self.out.extend(checkpoint.map(Message::Checkpoint));
        }
        let pushed = self.batcher.push(row);
        self.checkpoints.read(row)?;
        if let Err((bad, good)) = pushed {
            self.out.extend(good.map(Message::Batch));
            self.out.push(Message::Rejected(Rejected {
                position: Position {
                    file: self.file.clone(),
                    line: None,
                    column: Some(bad.column as u64 + 1),
                    key: Some(format!(
                        "{} row {}",
                        self.label,
                        self.checkpoints.rows_read()
                    )),
                },
                raw: self.batcher.raw(row),
                message: bad.message,
            }));
        }
        Ok(self.out.drain(..))
    }

    /// After the last row: the last batch and the checkpoint saying where the read got.
    pub fn end(&mut self) -> Result<std::vec::Drain<'_, Message>> {
        if !self.batcher.is_empty() {
            self.out.push(Message::Batch(self.batcher.finish()?));
        }
        self.out
            .extend(self.checkpoints.last()?.map(Message::Checkpoint));
        Ok(self.out.drain(..))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ferry_core::arrow_array::builder::Int64Builder;
    use ferry_core::arrow_array::ArrayRef;
    use ferry_core::arrow_schema::Schema;
    use ferry_core::FerryType;
    use serde_json::{json, Value};

    use super::*;

    /// Rows are `(cursor, value)`; a negative value does not fit.
    type Row = (i64, i64);

    struct Cols(Vec<Int64Builder>);

    impl Columns for Cols {
        fn append_null(&mut self, c: usize) {
            self.0[c].append_null();
        }
        fn finish(&mut self, c: usize) -> ArrayRef {
            Arc::new(self.0[c].finish())
        }
    }

    impl Appender<Row> for Cols {
        fn append(&mut self, row: &Row, c: usize) -> std::result::Result<bool, String> {
            let v = if c == 0 { row.0 } else { row.1 };
            if v < 0 {
                return Err("negative".into());
            }
            self.0[c].append_value(v);
            Ok(true)
        }
        fn json(&self, row: &Row, c: usize) -> Value {
            (if c == 0 { row.0 } else { row.1 }).into()
        }
    }

    struct Last(i64);

    impl Cursor for Last {
        fn saved(&self) -> Result<Option<Value>> {
            Ok(Some(self.0.to_string().into()))
        }
    }

    impl CursorOf<Row> for Last {
        fn keep(&mut self, row: &Row, _: usize) -> Result<()> {
            self.0 = row.0;
            Ok(())
        }
        fn same(&self, row: &Row, _: usize) -> Result<bool> {
            Ok(self.0 == row.0)
        }
    }

    /// The messages of reading `rows` in batches of 2, in short form.
    fn read(rows: &[Row], checkpoints: Checkpointer<Last>) -> Vec<String> {
        let schema = Arc::new(Schema::new(vec![
            FerryType::Int64.field("at", false),
            FerryType::Int64.field("v", false),
        ]));
        let cols = Cols(vec![Int64Builder::new(), Int64Builder::new()]);
        let mut pump =
            RowPump::new(Batcher::new(schema, 2, cols), checkpoints, "t").in_file("f.db");
        let mut out = Vec::new();
        let mut show = |m: Message| match m {
            Message::Batch(b) => out.push(format!("batch {}", b.num_rows())),
            Message::Checkpoint(c) => out.push(format!("checkpoint {c}")),
            Message::Rejected(r) => {
                assert_eq!(r.position.file.as_deref(), Some("f.db"));
                out.push(format!(
                    "rejected {} col {:?} {}",
                    r.position.key.unwrap(),
                    r.position.column,
                    r.raw
                ))
            }
            _ => unreachable!(),
        };
        for row in rows {
            pump.row(row).unwrap().for_each(&mut show);
        }
        pump.end().unwrap().for_each(&mut show);
        out
    }

    #[test]
    fn checkpoints_wait_for_the_cursor_to_change() {
        let rows = [(1, 0), (2, 0), (2, 0), (2, 0), (3, 0)];
        // [1,2] | [2,2] | [3]: no checkpoint between the 2s
        let out = read(&rows, Checkpointer::cursor(0, "at", Last(0)));
        let at = |v: &str| format!("checkpoint {}", json!({ "cursor": v, "column": "at" }));
        assert_eq!(
            out,
            [
                "batch 2".to_string(),
                "batch 2".into(),
                at("2"),
                "batch 1".into(),
                at("3")
            ]
        );
    }

    #[test]
    fn only_an_exact_uncut_count_is_a_total() {
        assert!(matches!(expected_rows(9, true, None), Message::Total(9)));
        assert!(matches!(
            expected_rows(9, true, Some(4)),
            Message::Estimate(4)
        ));
        assert!(matches!(
            expected_rows(9, false, Some(20)),
            Message::Estimate(9)
        ));
        assert!(matches!(
            expected_rows(9, false, None),
            Message::Estimate(9)
        ));
    }

    #[test]
    fn a_rejected_row_comes_in_its_place() {
        let rows = [(1, 1), (2, -1), (3, 3), (4, 4), (5, 5)];
        let out = read(&rows, Checkpointer::rows());
        assert_eq!(
            out,
            [
                "batch 1",
                "rejected t row 2 col Some(2) {\"at\":2,\"v\":-1}",
                "batch 2",
                "checkpoint {\"rows\":4}",
                "batch 1",
                "checkpoint {\"rows\":5}",
            ]
        );
    }
}

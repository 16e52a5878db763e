//! Tie-safe checkpoints for reads ordered by a cursor column.
//!
//! An incremental read runs `... WHERE cursor > <saved> ORDER BY cursor` and saves the
//! cursor of the last row it emitted. A checkpoint in the middle of rows that share one
//! cursor value would make the resume skip the rest of them, so a [`Checkpointer`] offers
//! one only where the next row's cursor differs from the last row's: every row tying with
//! the saved value has been emitted, and a resume neither misses nor repeats rows.
//!
//! The state saved is `{"cursor": <value>, "column": "<cursor column>"}` (the value as
//! the driver prints it, usually text); full reads save `{"rows": <rows read>}`.
//! [`saved_cursor`] reads the value back.

use serde_json::{json, Value};

use crate::error::{Error, Result};

/// How a driver keeps the cursor value of the last row read: the part of a cursor that
/// knows no row type.
pub trait Cursor {
    /// The kept value as it goes into the saved state; `None` for NULL (no checkpoint).
    fn saved(&self) -> Result<Option<Value>>;
}

/// How a driver reads the cursor value out of its rows of type `R`.
pub trait CursorOf<R: ?Sized>: Cursor {
    /// Keeps the cursor value of `row` (column `column`), reusing its own buffers.
    fn keep(&mut self, row: &R, column: usize) -> Result<()>;

    /// Whether the cursor value of `row` equals the kept one as the source's `>` compares.
    /// Saying "different" for equal values would break ties: when unsure, say equal.
    fn same(&self, row: &R, column: usize) -> Result<bool>;
}

/// Whether column names match exactly or ignoring ASCII case (as the database does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// `Id` and `id` are different columns (PostgreSQL's quoted names).
    Exact,
    /// `Id` and `id` are one column (SQLite, MySQL).
    Ignore,
}

impl Case {
    /// Whether `a` and `b` name the same column.
    pub fn same(self, a: &str, b: &str) -> bool {
        match self {
            Case::Exact => a == b,
            Case::Ignore => a.eq_ignore_ascii_case(b),
        }
    }
}

/// What a read's checkpoints say.
enum Mode<C> {
    /// None at all (a part of a read whose checkpoints another part sends).
    Silent,
    /// `{"rows": n}`: a flush point of a full read, not a place to resume from.
    Rows,
    /// `{"cursor": …, "column": …}` of the last row read, where the cursor changes.
    Cursor {
        index: usize,
        column: String,
        last: C,
        kept: bool,
    },
}

/// Says which checkpoint a read may emit between two rows, and at its end.
pub struct Checkpointer<C> {
    mode: Mode<C>,
    rows: u64,
}

impl<C: Cursor> Checkpointer<C> {
    /// A full read: checkpoints carry the rows read so far.
    pub fn rows() -> Self {
        Checkpointer {
            mode: Mode::Rows,
            rows: 0,
        }
    }

    /// A read that emits no checkpoints.
    pub fn silent() -> Self {
        Checkpointer {
            mode: Mode::Silent,
            rows: 0,
        }
    }

    /// An incremental read by cursor `column`, at `index` in the rows, kept by `cursor`.
    pub fn cursor(index: usize, column: impl Into<String>, cursor: C) -> Self {
        Checkpointer {
            mode: Mode::Cursor {
                index,
                column: column.into(),
                last: cursor,
                kept: false,
            },
            rows: 0,
        }
    }

    /// Rows read so far (rejected ones too).
    pub fn rows_read(&self) -> u64 {
        self.rows
    }

    /// Counts `row` as read and keeps its cursor value.
    pub fn read<R: ?Sized>(&mut self, row: &R) -> Result<()>
    where
        C: CursorOf<R>,
    {
        self.rows += 1;
        if let Mode::Cursor {
            index, last, kept, ..
        } = &mut self.mode
        {
            last.keep(row, *index)?;
            *kept = true;
        }
        Ok(())
    }

    /// The checkpoint allowed between the rows read so far and `next`: none where
    /// `next` ties with the last row on the cursor.
    pub fn before<R: ?Sized>(&self, next: &R) -> Result<Option<Value>>
    where
        C: CursorOf<R>,
    {
        if let Mode::Cursor {
            index, last, kept, ..
        } = &self.mode
        {
            if *kept && last.same(next, *index)? {
                return Ok(None);
            }
        }
        self.last()
    }

    /// The checkpoint after the last row: where the read got to.
    pub fn last(&self) -> Result<Option<Value>> {
        Ok(match &self.mode {
            Mode::Silent => None,
            Mode::Rows => Some(json!({ "rows": self.rows })),
            Mode::Cursor { kept: false, .. } => None,
            Mode::Cursor { column, last, .. } => last
                .saved()?
                .map(|v| json!({ "cursor": v, "column": column })),
        })
    }
}

/// A [`Cursor`] for rows whose cursor value is cheap to take whole: `of` gives a row's
/// value as compared for ties (`K`) and as saved (`None`: NULL, nothing to save).
pub struct ByValue<F, K> {
    of: F,
    last: Option<(K, Value)>,
}

impl<F, K> ByValue<F, K> {
    /// A cursor reading rows with `of`.
    pub fn new(of: F) -> Self {
        ByValue { of, last: None }
    }
}

impl<F, K> Cursor for ByValue<F, K> {
    fn saved(&self) -> Result<Option<Value>> {
        Ok(self.last.as_ref().map(|(_, v)| v.clone()))
    }
}

impl<R: ?Sized, F: Fn(&R) -> Option<(K, Value)>, K: PartialEq> CursorOf<R> for ByValue<F, K> {
    fn keep(&mut self, row: &R, _: usize) -> Result<()> {
        self.last = (self.of)(row);
        Ok(())
    }

    fn same(&self, row: &R, _: usize) -> Result<bool> {
        let next = (self.of)(row);
        Ok(next.as_ref().map(|(k, _)| k) == self.last.as_ref().map(|(k, _)| k))
    }
}

/// The cursor value of a saved `state` as text (a number saved as one reads as its
/// digits), checking the state was taken with cursor `column`. `None`: no state, or a
/// state without a value (nothing read yet).
pub fn saved_cursor(state: Option<&Value>, column: &str, case: Case) -> Result<Option<String>> {
    let Some(state) = state else { return Ok(None) };
    if let Some(saved) = state.get("column").and_then(|c| c.as_str()) {
        if !case.same(saved, column) {
            return Err(Error::config(format!(
                "the saved state was taken with cursor `{saved}`, this run reads by `{column}`; \
                 sync with --full-refresh (or `ferry state reset`) to start over"
            )));
        }
    }
    Ok(match state.get("cursor") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows are `(cursor, payload)`; a cursor is an integer or NULL.
    type Row = (Option<i64>, u32);

    #[derive(Default)]
    struct Int(Option<i64>);

    impl Cursor for Int {
        fn saved(&self) -> Result<Option<Value>> {
            Ok(self.0.map(|v| Value::String(v.to_string())))
        }
    }

    impl CursorOf<Row> for Int {
        fn keep(&mut self, row: &Row, _: usize) -> Result<()> {
            self.0 = row.0;
            Ok(())
        }
        fn same(&self, row: &Row, _: usize) -> Result<bool> {
            Ok(self.0 == row.0)
        }
    }

    /// Reads `rows` in batches of `size` the way a source does: the checkpoint after a
    /// full batch is decided by the next row. Returns each batch's cursors and the
    /// checkpoint after it.
    fn read(
        mut c: Checkpointer<Int>,
        rows: &[Row],
        size: usize,
    ) -> Vec<(Vec<Option<i64>>, Option<Value>)> {
        let mut out = Vec::new();
        let mut batch = Vec::new();
        for row in rows {
            if batch.len() == size {
                let cp = c.before(row).unwrap();
                out.push((std::mem::take(&mut batch), cp));
            }
            c.read(row).unwrap();
            batch.push(row.0);
        }
        out.push((batch, c.last().unwrap()));
        out
    }

    fn at(v: i64) -> Option<Value> {
        Some(json!({ "cursor": v.to_string(), "column": "id" }))
    }

    #[test]
    fn ties_across_a_batch_boundary_hold_the_checkpoint_back() {
        let rows: Vec<Row> = [1, 2, 2, 2, 3, 4, 4, 5]
            .iter()
            .map(|&v| (Some(v), 0))
            .collect();
        let out = read(Checkpointer::cursor(0, "id", Int::default()), &rows, 2);
        let cps: Vec<Option<Value>> = out.iter().map(|(_, c)| c.clone()).collect();
        // [1,2] | [2,2] | [3,4] | [4,5]: the 2s and the 4s straddle boundaries
        assert_eq!(cps, vec![None, at(2), None, at(5)]);
        // a resume from any checkpoint (`> saved`) reads exactly the rows after it
        let mut seen = 0;
        for (batch, cp) in &out {
            seen += batch.len();
            if let Some(cp) = cp {
                let saved: i64 = cp["cursor"].as_str().unwrap().parse().unwrap();
                assert_eq!(rows.iter().filter(|r| r.0 > Some(saved)).count(), 8 - seen);
            }
        }
    }

    #[test]
    fn a_tie_longer_than_batches_checkpoints_only_after_it() {
        let rows: Vec<Row> = [7, 7, 7, 7, 7, 8].iter().map(|&v| (Some(v), 0)).collect();
        let out = read(Checkpointer::cursor(0, "id", Int::default()), &rows, 2);
        let cps: Vec<Option<Value>> = out.iter().map(|(_, c)| c.clone()).collect();
        // [7,7] | [7,7] | [7,8]: no checkpoint while the 7s go on
        assert_eq!(cps, vec![None, None, at(8)]);
    }

    #[test]
    fn a_null_cursor_saves_nothing() {
        let rows: Vec<Row> = vec![(None, 0), (None, 1), (Some(1), 2)];
        let out = read(Checkpointer::cursor(0, "id", Int::default()), &rows, 1);
        let cps: Vec<Option<Value>> = out.iter().map(|(_, c)| c.clone()).collect();
        // NULL then NULL tie; NULL then 1 differ, but NULL cannot be saved
        assert_eq!(cps, vec![None, None, at(1)]);
        let empty = Checkpointer::cursor(0, "id", Int::default());
        assert_eq!(empty.last().unwrap(), None);
    }

    #[test]
    fn full_reads_count_rows_and_silent_reads_say_nothing() {
        let rows: Vec<Row> = [5, 5, 5].iter().map(|&v| (Some(v), 0)).collect();
        let out = read(Checkpointer::rows(), &rows, 2);
        let cps: Vec<Option<Value>> = out.iter().map(|(_, c)| c.clone()).collect();
        assert_eq!(
            cps,
            vec![Some(json!({ "rows": 2 })), Some(json!({ "rows": 3 }))]
        );
        let out = read(Checkpointer::silent(), &rows, 2);
        assert!(out.iter().all(|(_, c)| c.is_none()));
    }

    #[test]
    fn a_cursor_by_value_saves_what_the_rows_hold() {
        // rows whose cursor is written as a number or as text, ordered by its value
        let of = |r: &Value| {
            let v = r.get("at")?;
            let k = v.as_i64().or_else(|| v.as_str()?.parse().ok())?;
            Some((k, v.clone()))
        };
        let rows = [
            json!({ "at": 1 }),
            json!({ "at": "1" }),
            json!({ "at": 2 }),
            json!({}),
        ];
        let mut c = Checkpointer::cursor(0, "at", ByValue::new(of));
        c.read(&rows[0]).unwrap();
        assert_eq!(c.before(&rows[1]).unwrap(), None, "1 and \"1\" tie");
        c.read(&rows[1]).unwrap();
        let cp = c.before(&rows[2]).unwrap().unwrap();
        assert_eq!(cp, json!({ "cursor": "1", "column": "at" }));
        c.read(&rows[2]).unwrap();
        assert_eq!(c.last().unwrap().unwrap()["cursor"], 2);
        c.read(&rows[3]).unwrap();
        assert_eq!(
            c.last().unwrap(),
            None,
            "a row without a cursor saves nothing"
        );
    }

    #[test]
    fn the_state_keeps_its_shape() {
        let mut c = Checkpointer::cursor(0, "Updated", Int::default());
        c.read(&(Some(42), 0)).unwrap();
        let state = c.last().unwrap().unwrap();
        assert_eq!(
            serde_json::to_string(&state).unwrap(),
            r#"{"column":"Updated","cursor":"42"}"#
        );
        assert_eq!(
            saved_cursor(Some(&state), "updated", Case::Ignore).unwrap(),
            Some("42".to_string())
        );
        assert_eq!(c.rows_read(), 1);
    }

    #[test]
    fn saved_cursors_read_back_and_check_the_column() {
        let s = json!({ "cursor": "2024-05-01", "column": "day" });
        assert_eq!(
            saved_cursor(Some(&s), "day", Case::Exact)
                .unwrap()
                .as_deref(),
            Some("2024-05-01")
        );
        let n = json!({ "cursor": 17 });
        assert_eq!(
            saved_cursor(Some(&n), "id", Case::Exact)
                .unwrap()
                .as_deref(),
            Some("17")
        );
        assert_eq!(saved_cursor(None, "id", Case::Exact).unwrap(), None);
        assert_eq!(
            saved_cursor(Some(&json!({ "rows": 3 })), "id", Case::Exact).unwrap(),
            None
        );
        let e = saved_cursor(Some(&s), "Day", Case::Exact).unwrap_err();
        assert!(e.message().contains("taken with cursor `day`"), "{e}");
        assert!(saved_cursor(Some(&s), "Day", Case::Ignore).is_ok());
    }
}

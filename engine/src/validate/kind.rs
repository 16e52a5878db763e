//! A built check: what it holds while a stream runs, and the one place that hands a batch,
//! or the stream's end, to the check's own file.

use arrow_array::RecordBatch;

use super::allowed::AllowedSet;
use super::pattern::Pattern;
use super::references::Referential;
use super::unique::Seen;
use super::{
    freshness, max_length, not_null, range, row_count, type_check, unique, CountOf, Fails,
};
use ferry_core::values::ColumnBuilder;
use ferry_core::Result;

/// A check, built against the stream's schema (columns by index), with its running state.
pub(super) enum Kind {
    NotNull(Vec<usize>),
    Unique(Vec<usize>, Seen),
    Regex(usize, Box<Pattern>),
    Range(usize, Option<f64>, Option<f64>),
    Allowed(usize, AllowedSet),
    MaxLength(usize, usize),
    Type(usize, ColumnBuilder),
    Referential(Referential),
    Freshness {
        col: usize,
        max_age: chrono::TimeDelta,
        written: String,
        newest: Option<i64>,
    },
    RowCount {
        min: Option<u64>,
        max: Option<u64>,
        max_change: Option<f64>,
        previous: Option<u64>,
        of: CountOf,
    },
}

impl Kind {
    /// Pushes `(row, message)` for each row of `batch` that fails, in row order.
    pub(super) fn scan(
        &mut self,
        batch: &RecordBatch,
        name: &str,
        buf: &mut String,
        out: &mut Fails,
    ) -> Result<()> {
        match self {
            Kind::NotNull(cols) => not_null::scan(batch, cols, out),
            Kind::Unique(cols, seen) => unique::scan(batch, cols, seen, buf, out),
            Kind::Regex(c, re) => re.scan_column(batch, *c, buf, out),
            Kind::Range(c, min, max) => range::scan(batch, *c, *min, *max, buf, out),
            Kind::Allowed(c, set) => set.scan(batch, *c, buf, out),
            Kind::MaxLength(c, max) => max_length::scan(batch, *c, *max, buf, out),
            Kind::Type(c, builder) => type_check::scan(batch, *c, builder, buf, out),
            Kind::Referential(check) => check.scan(batch, name, buf, out)?,
            Kind::Freshness {
                col, newest: best, ..
            } => freshness::observe(batch, *col, best),
            Kind::RowCount { .. } => {}
        }
        Ok(())
    }

    /// The end-of-stream verdict of a stream-level check: the problem, if any.
    pub(super) fn at_end(&self, rows: u64, schema_col: &str) -> Option<String> {
        match self {
            Kind::RowCount {
                min,
                max,
                max_change,
                previous,
                of,
            } => row_count::verdict(rows, *min, *max, *max_change, *previous, *of),
            Kind::Freshness {
                max_age,
                written,
                newest,
                ..
            } => freshness::verdict(*newest, *max_age, written, schema_col),
            _ => None,
        }
    }
}

//! `unique`: no two rows of a run share the columns' values.

use std::collections::HashSet;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, RecordBatch};

use super::columns::type_of;
use super::fold_hash::IntSet;
use super::Fails;
use ferry_core::types::FerryType;
use ferry_core::values::write_text;

/// The int64 values a `unique` check has seen. Values arriving in increasing order (ids
/// read in key order, the common case) are kept as runs of consecutive values (a start and
/// a length): ids 1..=5,000,000 are one run of 12 bytes, and each value costs one
/// comparison. Values at or below the last run's end go to a hash set, unless a run holds
/// them already.
#[derive(Default)]
pub(super) struct SeenInts {
    /// First value of each run, increasing.
    starts: Vec<i64>,
    /// Each run's length minus one (a run longer than `u32::MAX + 1` values goes on as a
    /// new run).
    extra: Vec<u32>,
    others: IntSet<i64>,
    pub(super) null: bool,
}

impl SeenInts {
    /// The last value of run `i`.
    fn end(&self, i: usize) -> i64 {
        self.starts[i] + i64::from(self.extra[i])
    }

    /// Records `v`; false when it was seen before.
    #[inline]
    pub(super) fn insert(&mut self, v: i64) -> bool {
        let Some(last) = self.starts.len().checked_sub(1) else {
            self.starts.push(v);
            self.extra.push(0);
            return true;
        };
        let end = self.end(last);
        if v > end {
            // every value in `others` arrived at or below a run's end at the time
            if v == end + 1 && self.extra[last] < u32::MAX {
                self.extra[last] += 1;
            } else {
                self.starts.push(v);
                self.extra.push(0);
            }
            return true;
        }
        // the run that starts at or before v, if any, holds it when it ends at or after v
        let i = self.starts.partition_point(|s| *s <= v);
        if i > 0 && v <= self.end(i - 1) {
            return false;
        }
        self.others.insert(v)
    }
}

/// Keys a `unique` check has seen.
pub(super) enum Seen {
    /// One int64 column (the common `unique(id)`).
    Int(SeenInts),
    /// Anything else: each row's values, encoded without loss.
    Bytes(HashSet<Vec<u8>>),
}

/// Appends row `r` of column `c` to a `unique` key, without loss and unambiguously.
fn encode(batch: &RecordBatch, c: usize, r: usize, key: &mut Vec<u8>, buf: &mut String) {
    let col = batch.column(c);
    if col.is_null(r) {
        key.push(0);
        return;
    }
    key.push(1);
    let mut bytes = |b: &[u8]| {
        key.extend_from_slice(&(b.len() as u64).to_le_bytes());
        key.extend_from_slice(b);
    };
    match type_of(batch.schema_ref(), c) {
        FerryType::Int64 => bytes(&col.as_primitive::<Int64Type>().value(r).to_le_bytes()),
        FerryType::Float64 => bytes(
            &col.as_primitive::<Float64Type>()
                .value(r)
                .to_bits()
                .to_le_bytes(),
        ),
        FerryType::String | FerryType::Json => bytes(col.as_string::<i32>().value(r).as_bytes()),
        ty => {
            buf.clear();
            write_text(col.as_ref(), ty, r, buf);
            bytes(buf.as_bytes());
        }
    }
}

/// Pushes `(row, message)` for each row of `batch` whose values of `cols` were seen before.
pub(super) fn scan(
    batch: &RecordBatch,
    cols: &[usize],
    seen: &mut Seen,
    buf: &mut String,
    out: &mut Fails,
) {
    let n = batch.num_rows();
    match seen {
        Seen::Int(seen) => {
            let a = batch.column(cols[0]).as_primitive::<Int64Type>();
            for r in 0..n {
                let dup = if a.is_null(r) {
                    std::mem::replace(&mut seen.null, true)
                } else {
                    !seen.insert(a.value(r))
                };
                if dup {
                    out.push((r, "duplicate value in this run".to_string()));
                }
            }
        }
        Seen::Bytes(seen) => {
            let mut key = Vec::new();
            for r in 0..n {
                key.clear();
                for c in cols.iter() {
                    encode(batch, *c, r, &mut key, buf);
                }
                if seen.contains(key.as_slice()) {
                    out.push((r, "duplicate value in this run".to_string()));
                } else {
                    seen.insert(key.clone());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_ints_in_and_out_of_order() {
        let mut seen = SeenInts::default();
        let values = [5, 7, 9, 3, 8, 12, 7, 3, 10, 12, 4, 5, 13];
        let fresh: Vec<bool> = values.iter().map(|v| seen.insert(*v)).collect();
        assert_eq!(
            fresh,
            [true, true, true, true, true, true, false, false, true, false, true, false, true]
        );
        // consecutive ids are one run
        let mut seen = SeenInts::default();
        assert!((1..=100_000).all(|v| seen.insert(v)));
        assert_eq!(seen.starts.len(), 1);
        assert!(!seen.insert(1) && !seen.insert(50_000) && !seen.insert(100_000));
        assert!(seen.others.is_empty());
    }

    #[test]
    fn unique_ints_agree_with_a_hash_set() {
        // runs, gaps, repeats, descents and the ends of the i64 range, against a plain set
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..20 {
            let mut seen = SeenInts::default();
            let mut plain = std::collections::HashSet::new();
            let mut v: i64 = if round == 0 { i64::MAX - 50 } else { 0 };
            for _ in 0..5_000 {
                v = match next() % 8 {
                    0..=3 => v.saturating_add(1),
                    4 => v.saturating_add((next() % 5) as i64),
                    5 => v.saturating_sub((next() % 40) as i64),
                    6 => (next() % 3_000) as i64,
                    _ => v,
                };
                if round == 1 && next() % 100 == 0 {
                    v = i64::MIN + (next() % 3) as i64;
                }
                assert_eq!(seen.insert(v), plain.insert(v), "round {round}, value {v}");
            }
        }
    }
}

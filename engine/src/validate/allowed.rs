//! `allowed`: the value's text is one of a list.

use std::collections::HashSet;

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};

use super::columns::{each_text, is_text};
use super::fold_hash::{FoldHash, IntSet};
use super::Fails;
use ferry_core::values::preview;

/// The values an `allowed` check accepts. When every one is at most 7 bytes long (country
/// and status codes), a value is looked up as one integer (its bytes and its length), which
/// costs a fraction of hashing and comparing text.
pub(super) enum AllowedSet {
    Short(IntSet<u64>),
    Text(HashSet<String, FoldHash>),
}

impl AllowedSet {
    pub(super) fn new(values: &[String]) -> AllowedSet {
        if values.iter().all(|v| v.len() <= 7) {
            AllowedSet::Short(values.iter().filter_map(|v| short_key(v)).collect())
        } else {
            AllowedSet::Text(values.iter().cloned().collect())
        }
    }

    fn contains(&self, t: &str) -> bool {
        match self {
            AllowedSet::Short(set) => short_key(t).is_some_and(|k| set.contains(&k)),
            AllowedSet::Text(set) => set.contains(t),
        }
    }

    /// Pushes `(row, message)` for each non-NULL value of column `c` not in the set.
    pub(super) fn scan(&self, batch: &RecordBatch, c: usize, buf: &mut String, out: &mut Fails) {
        match self {
            AllowedSet::Short(set) if is_text(batch, c) => {
                // straight from the offsets and bytes: no `&str` per value
                let a = batch.column(c).as_string::<i32>();
                let data = a.value_data();
                for (r, w) in a.value_offsets().windows(2).enumerate() {
                    let bytes = &data[w[0] as usize..w[1] as usize];
                    if !short_key_bytes(bytes).is_some_and(|k| set.contains(&k)) && a.is_valid(r) {
                        let t = a.value(r);
                        out.push((r, format!("`{}` is not an allowed value", preview(t))));
                    }
                }
            }
            _ => each_text(batch, c, buf, |r, t| {
                if !self.contains(t) {
                    out.push((r, format!("`{}` is not an allowed value", preview(t))));
                }
            }),
        }
    }
}

/// A text of at most 7 bytes as one integer: the bytes, then the length in the top byte (so
/// `"A"` and `"A\0"` differ); `None` for longer text.
fn short_key(t: &str) -> Option<u64> {
    short_key_bytes(t.as_bytes())
}

/// [`short_key`] of UTF-8 bytes.
#[inline]
fn short_key_bytes(b: &[u8]) -> Option<u64> {
    if b.len() > 7 {
        return None;
    }
    // byte by byte: a copy of a variable length calls `memcpy`, which costs more
    let mut k = (b.len() as u64) << 56;
    for (i, x) in b.iter().enumerate() {
        k |= u64::from(*x) << (8 * i);
    }
    Some(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_short_values_are_looked_up_exactly() {
        let short = AllowedSet::new(&[
            "DE".into(),
            "".into(),
            "A".into(),
            "ü".into(),
            "seven77".into(),
        ]);
        assert!(matches!(short, AllowedSet::Short(_)));
        for yes in ["DE", "", "A", "ü", "seven77"] {
            assert!(short.contains(yes), "{yes}");
        }
        for no in [
            "de", "D", "DE ", "A\0", "\0", "seven778", "seven7", "u", "eight888",
        ] {
            assert!(!short.contains(no), "{no:?}");
        }
        let long = AllowedSet::new(&["DE".into(), "eight888".into()]);
        assert!(matches!(long, AllowedSet::Text(_)));
        assert!(long.contains("DE") && long.contains("eight888"));
        assert!(!long.contains("eight88") && !long.contains("de"));
    }
}

//! Bounded summaries of a column: distinct values (exact up to a cap, then HyperLogLog)
//! and the most frequent values (Misra–Gries). Memory does not grow with the rows read.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

/// A stable 64-bit hash of a value's text (SipHash-2-4 with fixed keys: the same text
/// gives the same hash in every run of one binary).
pub fn hash64(text: &str) -> u64 {
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new_with_keys(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210);
    text.hash(&mut h);
    h.finish()
}

/// HyperLogLog with 2^14 one-byte registers (16 KiB): standard error 1.04/√16384 ≈ 0.81 %.
/// 64-bit hashes, so no large-range correction is needed; small counts use linear counting.
#[derive(Clone)]
pub struct HyperLogLog {
    registers: Vec<u8>,
}

const P: u32 = 14;
const M: usize = 1 << P;

impl Default for HyperLogLog {
    fn default() -> Self {
        HyperLogLog {
            registers: vec![0; M],
        }
    }
}

impl HyperLogLog {
    /// Adds one value by its hash.
    pub fn add(&mut self, hash: u64) {
        let index = (hash >> (64 - P)) as usize;
        // the rank of the first 1 bit in the remaining 50 bits (a guard bit caps it at 51)
        let rest = (hash << P) | (1 << (P - 1));
        let rank = rest.leading_zeros() as u8 + 1;
        if rank > self.registers[index] {
            self.registers[index] = rank;
        }
    }

    /// The estimated number of distinct values added.
    pub fn estimate(&self) -> u64 {
        let m = M as f64;
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let (mut sum, mut zeros) = (0.0, 0usize);
        for &r in &self.registers {
            sum += 2f64.powi(-(r as i32));
            zeros += usize::from(r == 0);
        }
        let raw = alpha * m * m / sum;
        if raw <= 2.5 * m && zeros > 0 {
            (m * (m / zeros as f64).ln()).round() as u64
        } else {
            raw.round() as u64
        }
    }
}

/// Distinct values: exact (a set of 64-bit hashes) up to [`Distinct::EXACT_CAP`] values,
/// then the HyperLogLog estimate. Both are fed all along, so switching loses nothing.
#[derive(Default)]
pub struct Distinct {
    exact: Option<HashSet<u64>>,
    overflowed: bool,
    hll: HyperLogLog,
}

impl Distinct {
    /// Distinct hashes kept exactly (about 0.6 MiB per column at most).
    pub const EXACT_CAP: usize = 65_536;

    /// Adds one value.
    pub fn add(&mut self, text: &str) {
        let h = hash64(text);
        self.hll.add(h);
        if self.overflowed {
            return;
        }
        let set = self.exact.get_or_insert_with(HashSet::new);
        set.insert(h);
        if set.len() > Self::EXACT_CAP {
            self.exact = None;
            self.overflowed = true;
        }
    }

    /// The count, and whether it is exact (up to 64-bit hash collisions).
    pub fn count(&self) -> (u64, bool) {
        if self.overflowed {
            (self.hll.estimate(), false)
        } else {
            (self.exact.as_ref().map_or(0, |s| s.len() as u64), true)
        }
    }
}

/// The most frequent values (Misra–Gries with `capacity` counters). While no counter was
/// ever evicted the counts are exact and the map holds every distinct value; after that a
/// count is at most (values seen) / (capacity + 1) too low.
pub struct TopValues {
    capacity: usize,
    counts: HashMap<String, u64>,
    evicted: bool,
}

/// Values are kept up to this many characters (longer ones are cut and marked `…`).
const KEEP_CHARS: usize = 64;

impl TopValues {
    /// A summary keeping `capacity` counters.
    pub fn new(capacity: usize) -> Self {
        TopValues {
            capacity,
            counts: HashMap::new(),
            evicted: false,
        }
    }

    /// Counts one value.
    pub fn add(&mut self, text: &str) {
        if let Some(c) = self.counts.get_mut(text) {
            *c += 1;
            return;
        }
        if self.counts.len() < self.capacity {
            let key = if text.chars().count() > KEEP_CHARS {
                format!("{}…", text.chars().take(KEEP_CHARS).collect::<String>())
            } else {
                text.to_string()
            };
            *self.counts.entry(key).or_insert(0) += 1;
            return;
        }
        self.evicted = true;
        self.counts.retain(|_, c| {
            *c -= 1;
            *c > 0
        });
    }

    /// Whether the counts are exact and complete (no counter was ever evicted).
    pub fn exact(&self) -> bool {
        !self.evicted
    }

    /// The `n` most frequent values, most frequent first (ties by value, for stable output).
    pub fn top(&self, n: usize) -> Vec<(String, u64)> {
        let mut all: Vec<(String, u64)> =
            self.counts.iter().map(|(k, v)| (k.clone(), *v)).collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        all.truncate(n);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyperloglog_stays_within_three_standard_errors() {
        // 3 × 0.81 % = 2.4 %; checked at sizes on both sides of the linear-counting switch
        for n in [1_000u64, 30_000, 200_000, 1_000_000] {
            let mut h = HyperLogLog::default();
            for i in 0..n {
                h.add(hash64(&format!("value-{i}")));
            }
            let e = h.estimate() as f64;
            let err = (e - n as f64).abs() / n as f64;
            assert!(
                err < 0.024,
                "n {n}: estimate {e}, error {:.3} %",
                err * 100.0
            );
        }
    }

    #[test]
    fn duplicates_do_not_count_twice() {
        let mut h = HyperLogLog::default();
        for i in 0..100_000u64 {
            h.add(hash64(&(i % 500).to_string()));
        }
        let e = h.estimate();
        assert!((490..=510).contains(&e), "{e}");
    }

    #[test]
    fn distinct_is_exact_below_the_cap_and_estimated_above() {
        let mut d = Distinct::default();
        for i in 0..10_000 {
            d.add(&(i % 7_000).to_string());
        }
        assert_eq!(d.count(), (7_000, true));
        for i in 0..(Distinct::EXACT_CAP as u64 + 10_000) {
            d.add(&format!("x{i}"));
        }
        let (n, exact) = d.count();
        let truth = 7_000.0 + Distinct::EXACT_CAP as f64 + 10_000.0;
        assert!(!exact);
        assert!((n as f64 - truth).abs() / truth < 0.024, "{n} vs {truth}");
    }

    #[test]
    fn top_values_are_exact_until_a_counter_is_evicted() {
        let mut t = TopValues::new(3);
        for v in ["a", "b", "a", "c", "a", "b"] {
            t.add(v);
        }
        assert!(t.exact());
        assert_eq!(t.top(2), vec![("a".into(), 3), ("b".into(), 2)]);
        // a heavy hitter survives a stream of distinct values
        for i in 0..50 {
            t.add("hot");
            t.add(&format!("cold{i}"));
        }
        assert!(!t.exact());
        assert_eq!(t.top(1)[0].0, "hot");
    }
}

//! The hash sets of the checks that remember values (`unique`, `allowed`, `referential`).

use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};

/// A hasher for integers, values that are already hashes and short strings: a folded
/// 64×64-bit multiply by a random odd key per set, several times faster than SipHash, and
/// with the key unknown in advance, values cannot be chosen to collide.
#[derive(Debug, Clone, Copy)]
pub(super) struct FoldHash(u64);

impl Default for FoldHash {
    fn default() -> Self {
        FoldHash(std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64) | 1)
    }
}

impl BuildHasher for FoldHash {
    type Hasher = FoldHasher;
    fn build_hasher(&self) -> FoldHasher {
        FoldHasher {
            key: self.0,
            state: 0,
        }
    }
}

#[derive(Debug)]
pub(super) struct FoldHasher {
    key: u64,
    state: u64,
}

impl Hasher for FoldHasher {
    fn finish(&self) -> u64 {
        self.state
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }

    fn write_u64(&mut self, v: u64) {
        let m = u128::from(self.state ^ v) * u128::from(self.key);
        self.state = (m as u64) ^ ((m >> 64) as u64);
    }

    fn write_i64(&mut self, v: i64) {
        self.write_u64(v as u64)
    }
}

/// A set of integers or hashes.
pub(super) type IntSet<T> = HashSet<T, FoldHash>;

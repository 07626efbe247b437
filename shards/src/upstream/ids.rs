//! The JSON-RPC ids the gateway gives its own requests to a backend.
//!
//! Ids used to be 1, 2, 3, ... per backend: anyone who could make a backend answer with an
//! id of their choosing (a duplicate `id` member read by the backend, a parser that disagrees
//! with the gateway's) could aim at another client's call by guessing the next number. Each
//! channel now numbers its requests through a keyed permutation of the counter: still one
//! distinct id per request (a bijection, so the in-flight table never meets a collision),
//! but the sequence cannot be predicted without the per-channel key. Ids stay below 2^52 so
//! that backends which read JSON numbers as doubles (JavaScript) give them back exactly.

use std::cell::Cell;

const BITS: u32 = 52;
const MASK: u64 = (1 << BITS) - 1;

/// Mints request ids for one backend channel (shard-local).
#[derive(Debug)]
pub struct LocalIdMint {
    next: Cell<u64>,
    keys: [u64; 2],
}

impl Default for LocalIdMint {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalIdMint {
    /// A mint with fresh random keys (from the process's random source, via ahash).
    pub fn new() -> Self {
        let s = ahash::RandomState::new();
        Self::with_keys([s.hash_one(1u64), s.hash_one(2u64)])
    }

    /// A mint with the given keys (tests and benches).
    pub fn with_keys(keys: [u64; 2]) -> Self {
        LocalIdMint {
            next: Cell::new(1),
            keys,
        }
    }

    /// The next id: distinct from every earlier one of this mint (for 2^52 requests).
    pub fn mint(&self) -> u64 {
        let n = self.next.get();
        self.next.set(n.wrapping_add(1));
        permute(n & MASK, self.keys)
    }
}

/// A keyed bijection on `0..2^52`: xor, odd multiplications and xor-shifts, each invertible
/// modulo 2^52.
fn permute(mut x: u64, k: [u64; 2]) -> u64 {
    x ^= k[0] & MASK;
    x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15 | 1) & MASK;
    x ^= x >> 26;
    x = x.wrapping_mul((k[1] | 1) & MASK) & MASK;
    x ^= x >> 23;
    x = x.wrapping_mul(0xD6E8_FEB8_6659_FD93 & MASK | 1) & MASK;
    x ^= x >> 29;
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_bounded_and_not_sequential() {
        let m = LocalIdMint::with_keys([0x1234_5678_9abc_def0, 0x0fed_cba9_8765_4321]);
        let ids: Vec<u64> = (0..100_000).map(|_| m.mint()).collect();
        let set: std::collections::HashSet<u64> = ids.iter().copied().collect();
        assert_eq!(set.len(), ids.len(), "a permutation never repeats");
        assert!(ids.iter().all(|&i| i < 1 << 52), "exact as a double");
        let steps_of_one = ids.windows(2).filter(|w| w[1] == w[0] + 1).count();
        assert!(steps_of_one < 10, "{steps_of_one} consecutive ids");
    }

    #[test]
    fn two_mints_disagree() {
        let (a, b) = (LocalIdMint::new(), LocalIdMint::new());
        let same = (0..64).filter(|_| a.mint() == b.mint()).count();
        assert!(
            same < 2,
            "{same} equal ids from two independently keyed mints"
        );
    }
}

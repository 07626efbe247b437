//! The consistent-hash ring that maps keys (MCP session ids, `server_id/instance`) to shards.
//!
//! Every shard builds the same ring from the shard count alone, so any shard can compute a
//! key's owner without asking anyone. Shards mint session ids that land on themselves, so most
//! requests never move; a request that lands elsewhere is handed to the owner. Virtual nodes
//! keep the spread even, and consistent hashing keeps movement minimal if the count changes.

use std::hash::{BuildHasher, Hasher};

/// Points per shard on the ring.
const VNODES: usize = 64;

/// Fixed seeds: the ring must be identical on every shard and across restarts.
fn hasher() -> ahash::AHasher {
    ahash::RandomState::with_seeds(0x6f6e_6c79, 0x316d_6370, 0x7572_696e, 0x6721_2121)
        .build_hasher()
}

/// Hashes a key onto the ring.
pub fn hash_key(key: &[u8]) -> u64 {
    let mut h = hasher();
    h.write(key);
    h.finish()
}

/// Immutable ring over `n` shards; cheap to share (`Arc`) or clone per shard.
#[derive(Debug, Clone)]
pub struct Ring {
    points: Vec<(u64, u16)>,
    shards: usize,
}

impl Ring {
    /// Builds the ring for `shards` shards (at least one).
    pub fn new(shards: usize) -> Self {
        let shards = shards.max(1);
        let mut points = Vec::with_capacity(shards * VNODES);
        for s in 0..shards {
            for v in 0..VNODES {
                let mut h = hasher();
                h.write_usize(s);
                h.write_usize(v);
                points.push((h.finish(), s as u16));
            }
        }
        points.sort_unstable();
        Self { points, shards }
    }

    /// Number of shards on the ring.
    pub fn shards(&self) -> usize {
        self.shards
    }

    /// The shard owning `key`.
    pub fn owner(&self, key: &[u8]) -> usize {
        if self.shards == 1 {
            return 0;
        }
        let h = hash_key(key);
        let idx = self.points.partition_point(|p| p.0 < h);
        let p = self.points.get(idx).unwrap_or(&self.points[0]);
        p.1 as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_shard_owns_everything() {
        let r = Ring::new(1);
        assert_eq!(r.owner(b"abc"), 0);
    }

    #[test]
    fn spread_is_even_within_tolerance() {
        let r = Ring::new(4);
        let mut counts = [0usize; 4];
        for i in 0..40_000u32 {
            counts[r.owner(format!("session-{i}").as_bytes())] += 1;
        }
        for c in counts {
            assert!((7_000..13_000).contains(&c), "uneven spread: {counts:?}");
        }
    }

    #[test]
    fn growing_moves_few_keys() {
        let a = Ring::new(4);
        let b = Ring::new(5);
        let moved = (0..10_000u32)
            .filter(|i| {
                let k = format!("k{i}");
                a.owner(k.as_bytes()) != b.owner(k.as_bytes())
            })
            .count();
        // Ideal is 1/5 of the keys; allow generous slack for vnode noise.
        assert!(moved < 3_000, "moved {moved} of 10000");
    }

    #[test]
    fn same_ring_on_every_build() {
        let a = Ring::new(3);
        let b = Ring::new(3);
        for i in 0..100u32 {
            let k = i.to_le_bytes();
            assert_eq!(a.owner(&k), b.owner(&k));
        }
    }
}

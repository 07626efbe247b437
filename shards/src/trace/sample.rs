//! Sampling, ids and timestamps of spans, all without a lock or a system call per request.
//!
//! - Sampling is OpenTelemetry's default `ParentBased(TraceIdRatioBased(ratio))`: a request
//!   whose valid parent context says "sampled" is recorded, one whose parent says "not
//!   sampled" is not, and a request without a parent (a new trace) is recorded when its
//!   trace id's randomness passes the ratio. The randomness is the trace id's 56 least
//!   significant bits and the rule is the one of OTel's consistent probability sampling
//!   (`R >= T`, `T = (1 - ratio) * 2^56`), so every service that samples by ratio on the
//!   same trace id agrees.
//! - Ids come from a per-shard splitmix64 generator (a `Cell`, no lock), seeded once per
//!   shard from the clock, the shard index and a stack address.
//! - Timestamps: a span's start is the `Instant` the request already read when it arrived;
//!   [`unix_nanos`] turns it into Unix time from one anchor (wall clock and monotonic clock
//!   read together once per process), so no span reads the wall clock.

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// 2^56: the randomness of a trace id is its 56 least significant bits.
const RANDOMNESS: u64 = 1 << 56;

/// The rejection threshold of a sampling ratio (0.0 to 1.0): a new trace is sampled when
/// its randomness is at least this. 0 samples every trace, 2^56 none.
pub fn threshold(ratio: f64) -> u64 {
    if ratio.is_nan() || ratio <= 0.0 {
        return RANDOMNESS;
    }
    if ratio >= 1.0 {
        return 0;
    }
    let t = ((1.0 - ratio) * RANDOMNESS as f64).round() as u64;
    t.min(RANDOMNESS)
}

/// The randomness of a trace id: its 56 least significant bits.
pub fn randomness(trace_id: &[u8; 16]) -> u64 {
    let mut b = [0u8; 8];
    b[1..].copy_from_slice(&trace_id[9..16]);
    u64::from_be_bytes(b)
}

/// Whether a new trace with this id is sampled under `threshold`.
pub fn root_sampled(trace_id: &[u8; 16], threshold: u64) -> bool {
    randomness(trace_id) >= threshold
}

/// A shard's id generator (splitmix64): fast, good enough spread, never shared.
#[derive(Debug)]
pub struct LocalIds {
    state: Cell<u64>,
}

impl LocalIds {
    /// A generator for shard `shard`, seeded from the clock and an address.
    pub fn new(shard: usize) -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let here = &now as *const u64 as u64;
        LocalIds::seeded(now ^ here.rotate_left(32) ^ (shard as u64).wrapping_mul(0x9e37_79b9))
    }

    /// A generator with a fixed seed (tests).
    pub fn seeded(seed: u64) -> Self {
        LocalIds {
            state: Cell::new(seed),
        }
    }

    /// The next 64 random bits.
    pub fn next(&self) -> u64 {
        let s = self.state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        self.state.set(s);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A span id (never all zero).
    pub fn span_id(&self) -> [u8; 8] {
        loop {
            let n = self.next();
            if n != 0 {
                return n.to_be_bytes();
            }
        }
    }

    /// A trace id (never all zero; all 128 bits random).
    pub fn trace_id(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.next().to_be_bytes());
        out[8..].copy_from_slice(&self.span_id());
        out
    }
}

fn anchor() -> &'static (Instant, u64) {
    static ANCHOR: OnceLock<(Instant, u64)> = OnceLock::new();
    ANCHOR.get_or_init(|| {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        (Instant::now(), unix)
    })
}

/// Sets the process's time anchor now (the shards call it when tracing is on, so no
/// request pays for it).
pub fn init_clock() {
    anchor();
}

/// `at` as Unix nanoseconds, from the process's anchor.
pub fn unix_nanos(at: Instant) -> u64 {
    let (base, unix) = *anchor();
    match at.checked_duration_since(base) {
        Some(d) => unix.saturating_add(d.as_nanos() as u64),
        None => unix.saturating_sub(base.duration_since(at).as_nanos() as u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id_with_randomness(r: u64) -> [u8; 16] {
        let mut id = [0xabu8; 16];
        id[9..].copy_from_slice(&r.to_be_bytes()[1..]);
        id
    }

    #[test]
    fn ratio_one_samples_all_and_zero_none() {
        assert_eq!(threshold(1.0), 0);
        assert_eq!(threshold(0.0), RANDOMNESS);
        assert_eq!(threshold(f64::NAN), RANDOMNESS);
        for r in [0, 1, RANDOMNESS / 2, RANDOMNESS - 1] {
            assert!(root_sampled(&id_with_randomness(r), threshold(1.0)));
            assert!(!root_sampled(&id_with_randomness(r), threshold(0.0)));
        }
    }

    #[test]
    fn the_threshold_is_the_boundary() {
        let t = threshold(0.5);
        assert_eq!(t, RANDOMNESS / 2);
        assert!(root_sampled(&id_with_randomness(t), t));
        assert!(!root_sampled(&id_with_randomness(t - 1), t));
        assert_eq!(threshold(0.25), RANDOMNESS / 4 * 3);
        // Only the low 56 bits count: the rest of the id does not change the decision.
        let mut id = id_with_randomness(t);
        id[8] = 0;
        id[0] = 0xff;
        assert!(root_sampled(&id, t));
    }

    #[test]
    fn one_percent_samples_about_one_percent() {
        let ids = LocalIds::seeded(42);
        let t = threshold(0.01);
        let n = 200_000;
        let hits = (0..n).filter(|_| root_sampled(&ids.trace_id(), t)).count();
        // Binomial(200000, 0.01): mean 2000, sd about 44.5; 5 sd either side.
        assert!((1777..=2223).contains(&hits), "{hits}");
    }

    #[test]
    fn ids_are_not_zero_and_differ() {
        let ids = LocalIds::seeded(0);
        let a = ids.trace_id();
        let b = ids.trace_id();
        assert_ne!(a, b);
        assert_ne!(a, [0; 16]);
        assert_ne!(ids.span_id(), ids.span_id());
    }

    #[test]
    fn unix_time_follows_the_monotonic_clock() {
        init_clock();
        let a = Instant::now();
        let b = a + std::time::Duration::from_millis(5);
        assert_eq!(unix_nanos(b) - unix_nanos(a), 5_000_000);
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        assert!(unix_nanos(Instant::now()).abs_diff(wall) < 1_000_000_000);
    }
}

//! A fixed-bucket latency histogram: plain integers, no allocation, cheap to merge.
//!
//! The buckets are the Prometheus `le` bounds of every latency family the gateway exports,
//! so a shard's histogram is exported as is once the control thread has summed them; p50 and
//! p99 for the TUI are interpolated inside the bucket that holds the rank.

use std::time::Duration;

/// Upper bounds in microseconds (the last bucket is `+Inf`).
pub const BOUNDS_US: [u64; 14] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000,
];

/// Counts per bucket (`BOUNDS_US.len() + 1`, the last one `+Inf`), their sum and count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hist {
    /// Non-cumulative counts per bucket.
    pub buckets: [u64; BOUNDS_US.len() + 1],
    /// Sum of the observations, in microseconds.
    pub sum_us: u64,
    /// Number of observations.
    pub count: u64,
}

impl Hist {
    /// Records one latency.
    pub fn observe(&mut self, d: Duration) {
        let us = d.as_micros().min(u64::MAX as u128) as u64;
        let i = BOUNDS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(BOUNDS_US.len());
        self.buckets[i] += 1;
        self.sum_us = self.sum_us.saturating_add(us);
        self.count += 1;
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Hist) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
        self.count += other.count;
    }

    /// What was observed since `earlier` (same series, counts only grow).
    pub fn since(&self, earlier: &Hist) -> Hist {
        let mut out = self.clone();
        for (a, b) in out.buckets.iter_mut().zip(&earlier.buckets) {
            *a = a.saturating_sub(*b);
        }
        out.sum_us = out.sum_us.saturating_sub(earlier.sum_us);
        out.count = out.count.saturating_sub(earlier.count);
        out
    }

    /// The `q` quantile (0..=1) in milliseconds, interpolated within its bucket; 0 when empty.
    /// Ranks in the `+Inf` bucket report the last finite bound.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let rank = (q.clamp(0.0, 1.0) * self.count as f64).max(1.0);
        let mut seen = 0u64;
        for (i, &n) in self.buckets.iter().enumerate() {
            if n == 0 {
                continue;
            }
            if (seen + n) as f64 >= rank {
                let lo = if i == 0 { 0 } else { BOUNDS_US[i - 1] } as f64;
                let Some(&hi) = BOUNDS_US.get(i) else {
                    return lo / 1000.0;
                };
                let frac = (rank - seen as f64) / n as f64;
                return (lo + (hi as f64 - lo) * frac) / 1000.0;
            }
            seen += n;
        }
        BOUNDS_US[BOUNDS_US.len() - 1] as f64 / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_their_bucket_and_merge() {
        let mut h = Hist::default();
        h.observe(Duration::from_micros(400));
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(60));
        assert_eq!(h.buckets[0], 2);
        assert_eq!(h.buckets[3], 1);
        assert_eq!(h.buckets[BOUNDS_US.len()], 1);
        assert_eq!(h.count, 4);
        let mut m = h.clone();
        m.merge(&h);
        assert_eq!(m.count, 8);
        assert_eq!(m.since(&h), h);
    }

    #[test]
    fn quantiles_interpolate_inside_the_bucket() {
        let mut h = Hist::default();
        for _ in 0..99 {
            h.observe(Duration::from_micros(700)); // (0.5, 1] ms
        }
        h.observe(Duration::from_millis(40)); // (25, 50] ms
        let p50 = h.quantile_ms(0.5);
        assert!((0.5..=1.0).contains(&p50), "{p50}");
        let p99 = h.quantile_ms(0.99);
        assert!((0.5..=1.0).contains(&p99), "{p99}");
        let max = h.quantile_ms(1.0);
        assert!((25.0..=50.0).contains(&max), "{max}");
        assert_eq!(Hist::default().quantile_ms(0.99), 0.0);
    }
}

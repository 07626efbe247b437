//! Per-principal and per-tool rate limits: token buckets, one shard's worth.
//!
//! Each shard owns one [`LocalRateLimiter`] and nothing in it is shared: the buckets (one
//! `Instant` each) sit behind a `RefCell`, so a check costs one or two hash lookups and no
//! atomic.
//!
//! # Why each shard enforces `per_s / shards`
//!
//! A shard cannot see what the others admitted, and asking them would cost a cross-core
//! round trip per request. So the configured rate is split: every shard refills its buckets at
//! `per_s / shards`. Connections are spread over the shards by the kernel (`SO_REUSEPORT`)
//! and 2025-era sessions by the consistent-hash ring, so a principal whose traffic is spread
//! evenly gets the configured rate overall, and never more than it, whatever the spread. A
//! principal whose traffic lands on fewer shards (a single keep-alive connection, one
//! session) gets less: at worst `per_s / shards`. That errs on the side of the backends.
//!
//! # Burst is kept whole on every shard
//!
//! Splitting the burst too would make small bursts useless (a burst of 4 over 16 shards is
//! zero on each), so every shard's bucket holds the whole `burst`. The consequence: a
//! principal that spreads a burst over several shards can send up to `burst × shards`
//! requests at once before any shard refuses; the sustained rate stays bounded as above.
//!
//! # What one request takes
//!
//! One token from the principal's bucket (when `per_principal` is set) and, when the call is to
//! a tool that has its own limit, one from the bucket of that principal and tool. Either both
//! are taken or neither: a request refused by the tool bucket does not spend the principal's
//! token. A refusal says how long until both buckets hold a token again (`Retry-After`).
//!
//! # Memory bound
//!
//! Principals are whatever tokens and keys name, so the number of buckets is bounded: at most
//! [`MAX_BUCKETS`] on a shard. When a new bucket would exceed it, the buckets that have
//! refilled completely are dropped first (dropping them changes nothing: a new bucket starts
//! full). If the map is still full, it is cleared: every principal on this shard starts again
//! with a full burst. The limiter never refuses a request because it ran out of room: under a
//! flood of distinct principals, limits are briefly looser on that shard, but memory stays
//! bounded and legitimate principals are never locked out.

use std::cell::RefCell;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use ahash::RandomState;
use hashbrown::{Equivalent, HashMap};

/// Most buckets (principal buckets plus principal-and-tool buckets) one shard keeps.
pub const MAX_BUCKETS: usize = 100_000;

/// A bucket's configured rate and size, gateway-wide.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketSpec {
    /// Sustained requests per second over the whole gateway (each shard refills at
    /// `per_s / shards`). Zero, negative or not finite: no limit.
    pub per_s: f64,
    /// Requests that may come at once; every shard's bucket holds this many (at least 1).
    pub burst: u32,
}

/// The rate limits of the `[rate_limit]` config section.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RateLimitSpec {
    /// Per principal, over all its requests.
    pub per_principal: Option<BucketSpec>,
    /// Per principal and namespaced tool (`<server>__<tool>`), for `tools/call`. A later entry
    /// for the same tool wins.
    pub per_tool: Vec<(String, BucketSpec)>,
}

/// `tool` field of a principal's own bucket.
const PRINCIPAL: u32 = u32::MAX;

/// Longest interval between two tokens: rates below one a year are treated as one a year
/// (keeps every `Instant` sum far from overflow).
const MAX_INTERVAL: Duration = Duration::from_secs(365 * 24 * 3600);

/// A bucket's rate on this shard, as the two durations the check needs.
#[derive(Debug, Clone, Copy)]
struct LocalRate {
    /// Time to refill one token on this shard (`shards / per_s`).
    interval: Duration,
    /// Time to refill the whole burst (`interval × burst`).
    limit: Duration,
}

impl LocalRate {
    /// The shard's share of `spec`; `None` when the spec limits nothing.
    fn of(spec: &BucketSpec, shards: usize) -> Option<LocalRate> {
        if !(spec.per_s.is_finite() && spec.per_s > 0.0) {
            return None;
        }
        let per_shard = spec.per_s / shards.max(1) as f64;
        let interval = Duration::try_from_secs_f64(1.0 / per_shard)
            .unwrap_or(MAX_INTERVAL)
            .min(MAX_INTERVAL);
        Some(LocalRate {
            interval,
            limit: interval.saturating_mul(spec.burst.max(1)),
        })
    }
}

/// A token bucket, kept as the instant it will be full again (GCRA's "theoretical arrival
/// time"): `burst - (full_at - now) / interval` tokens are in it at `now`. One instant per
/// bucket, exact integer arithmetic (no drift from adding up fractions of tokens), and a
/// refusal changes nothing.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    full_at: Instant,
}

impl Bucket {
    /// When the bucket would be full again after taking one token at `now`.
    fn after_take(&self, rate: &LocalRate, now: Instant) -> Instant {
        self.full_at.max(now) + rate.interval
    }

    /// How long until a token can be taken at `now` (zero: now), given `after_take`.
    fn wait(after_take: Instant, rate: &LocalRate, now: Instant) -> Duration {
        after_take.saturating_duration_since(now + rate.limit)
    }

    /// True when the bucket is full: dropping it changes nothing.
    fn idle(&self, now: Instant) -> bool {
        self.full_at <= now
    }
}

/// A bucket's owner: a principal, alone or with one limited tool (an index into the tools).
#[derive(Debug, Clone, PartialEq, Eq)]
struct BucketKey {
    principal: Box<str>,
    tool: u32,
}

impl Hash for BucketKey {
    fn hash<H: Hasher>(&self, h: &mut H) {
        BucketKeyRef {
            principal: &self.principal,
            tool: self.tool,
        }
        .hash(h)
    }
}

/// A borrowed [`BucketKey`], so checking an existing bucket allocates nothing.
#[derive(Hash)]
struct BucketKeyRef<'a> {
    principal: &'a str,
    tool: u32,
}

impl Equivalent<BucketKey> for BucketKeyRef<'_> {
    fn equivalent(&self, k: &BucketKey) -> bool {
        k.tool == self.tool && *k.principal == *self.principal
    }
}

/// One shard's rate limiter (see the module docs).
#[derive(Debug)]
pub struct LocalRateLimiter {
    /// As configured (gateway-wide rates).
    spec: RateLimitSpec,
    /// The principal bucket's rate on this shard.
    principal: Option<LocalRate>,
    /// Limited tools by namespaced name: index into `tool_rates`.
    tools: HashMap<Box<str>, u32, RandomState>,
    /// The rate on this shard of each limited tool.
    tool_rates: Vec<LocalRate>,
    /// The buckets.
    buckets: RefCell<HashMap<BucketKey, Bucket, RandomState>>,
    /// Most buckets kept ([`MAX_BUCKETS`]; smaller in tests).
    max_buckets: usize,
}

impl LocalRateLimiter {
    /// The limiter of one of `shards` shards.
    pub fn new(spec: RateLimitSpec, shards: usize) -> Self {
        Self::with_max_buckets(spec, shards, MAX_BUCKETS)
    }

    fn with_max_buckets(spec: RateLimitSpec, shards: usize, max_buckets: usize) -> Self {
        let principal = spec
            .per_principal
            .as_ref()
            .and_then(|b| LocalRate::of(b, shards));
        let mut tools: HashMap<Box<str>, u32, RandomState> = HashMap::default();
        let mut tool_rates = Vec::new();
        for (name, b) in &spec.per_tool {
            let Some(rate) = LocalRate::of(b, shards) else {
                tools.remove(name.as_str());
                continue;
            };
            match tools.get(name.as_str()) {
                Some(&i) => tool_rates[i as usize] = rate,
                None => {
                    tools.insert(name.as_str().into(), tool_rates.len() as u32);
                    tool_rates.push(rate);
                }
            }
        }
        LocalRateLimiter {
            spec,
            principal,
            tools,
            tool_rates,
            buckets: RefCell::new(HashMap::default()),
            max_buckets: max_buckets.max(2),
        }
    }

    /// The configuration this limiter enforces.
    pub fn spec(&self) -> &RateLimitSpec {
        &self.spec
    }

    /// True when no request can ever be refused (nothing configured).
    pub fn is_off(&self) -> bool {
        self.principal.is_none() && self.tool_rates.is_empty()
    }

    /// Buckets held now (for tests and metrics).
    pub fn buckets(&self) -> usize {
        self.buckets.borrow().len()
    }

    /// Admits one request of `principal` (to `tool`, the namespaced name, for `tools/call`) at
    /// `now`, taking its tokens; or says how long until it would be admitted.
    pub fn check(&self, principal: &str, tool: Option<&str>, now: Instant) -> Result<(), Duration> {
        let tool = tool
            .and_then(|t| self.tools.get(t))
            .map(|&i| (i, self.tool_rates[i as usize]));
        match (self.principal, tool) {
            (None, None) => Ok(()),
            (Some(rate), None) => {
                let key = BucketKeyRef {
                    principal,
                    tool: PRINCIPAL,
                };
                self.take(&[(key, rate)], now)
            }
            (None, Some((i, rate))) => {
                let key = BucketKeyRef { principal, tool: i };
                self.take(&[(key, rate)], now)
            }
            (Some(p), Some((i, t))) => {
                let pk = BucketKeyRef {
                    principal,
                    tool: PRINCIPAL,
                };
                let tk = BucketKeyRef { principal, tool: i };
                self.take(&[(pk, p), (tk, t)], now)
            }
        }
    }

    /// Takes one token from every bucket of `keys`, or from none.
    fn take<const N: usize>(
        &self,
        keys: &[(BucketKeyRef<'_>, LocalRate); N],
        now: Instant,
    ) -> Result<(), Duration> {
        let mut map = self.buckets.borrow_mut();
        let refs: [&BucketKeyRef<'_>; N] = std::array::from_fn(|i| &keys[i].0);
        let found = map.get_many_mut(refs);
        if found.iter().all(Option::is_some) {
            return Self::take_from(found.map(|b| b.expect("checked")), keys, now);
        }
        self.insert_missing(&mut map, keys, now);
        let found = map.get_many_mut(refs);
        Self::take_from(found.map(|b| b.expect("inserted above")), keys, now)
    }

    /// Takes one token from each of `buckets` (in the order of `keys`), or from none.
    fn take_from<const N: usize>(
        buckets: [&mut Bucket; N],
        keys: &[(BucketKeyRef<'_>, LocalRate); N],
        now: Instant,
    ) -> Result<(), Duration> {
        let mut after: [Option<Instant>; N] = [None; N];
        let mut wait = Duration::ZERO;
        for (i, b) in buckets.iter().enumerate() {
            let rate = &keys[i].1;
            let t = b.after_take(rate, now);
            wait = wait.max(Bucket::wait(t, rate, now));
            after[i] = Some(t);
        }
        if wait > Duration::ZERO {
            return Err(wait);
        }
        for (b, t) in buckets.into_iter().zip(after) {
            b.full_at = t.expect("set above");
        }
        Ok(())
    }

    /// Inserts the buckets of `keys` that are missing, full, after making room for them.
    fn insert_missing(
        &self,
        map: &mut HashMap<BucketKey, Bucket, RandomState>,
        keys: &[(BucketKeyRef<'_>, LocalRate)],
        now: Instant,
    ) {
        let missing = keys.iter().filter(|(k, _)| !map.contains_key(k)).count();
        self.make_room(map, missing, now);
        for (k, _) in keys {
            if !map.contains_key(k) {
                map.insert(
                    BucketKey {
                        principal: k.principal.into(),
                        tool: k.tool,
                    },
                    Bucket { full_at: now },
                );
            }
        }
    }

    /// Makes room for `missing` new buckets (see "Memory bound" in the module docs).
    fn make_room(
        &self,
        map: &mut HashMap<BucketKey, Bucket, RandomState>,
        missing: usize,
        now: Instant,
    ) {
        if map.len() + missing <= self.max_buckets {
            return;
        }
        let before = map.len();
        map.retain(|_, b| !b.idle(now));
        if map.len() + missing > self.max_buckets {
            tracing::warn!(
                buckets = before,
                "rate limiter: every bucket in use at the limit; clearing this shard's buckets"
            );
            map.clear();
        }
    }
}

/// `Retry-After` seconds for a wait: rounded up, at least 1.
pub fn retry_after_secs(d: Duration) -> u64 {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    s.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(per_s: f64, burst: u32) -> BucketSpec {
        BucketSpec { per_s, burst }
    }

    fn principal_only(per_s: f64, burst: u32) -> RateLimitSpec {
        RateLimitSpec {
            per_principal: Some(spec(per_s, burst)),
            per_tool: Vec::new(),
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Equal to `want` up to the nanosecond rounding of `1 / rate`.
    fn about(got: Duration, want: Duration) -> bool {
        got.abs_diff(want) < Duration::from_micros(10)
    }

    #[test]
    fn burst_then_refusal_with_retry_after() {
        let l = LocalRateLimiter::new(principal_only(0.5, 3), 1);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.check("alice", None, t0), Ok(()));
        }
        let wait = l.check("alice", None, t0).unwrap_err();
        assert!(about(wait, Duration::from_secs(2)), "{wait:?}");
        assert_eq!(retry_after_secs(wait), 2);
        // Half a token later: one more second to go.
        let wait = l
            .check("alice", None, t0 + Duration::from_secs(1))
            .unwrap_err();
        assert!(about(wait, Duration::from_secs(1)), "{wait:?}");
        // A refusal takes nothing: still one second.
        let wait = l
            .check("alice", None, t0 + Duration::from_secs(1))
            .unwrap_err();
        assert!(about(wait, Duration::from_secs(1)), "{wait:?}");
        // Others have their own bucket.
        assert_eq!(l.check("bob", None, t0), Ok(()));
    }

    #[test]
    fn retry_after_rounds_up_to_at_least_one() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_nanos(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(1)), 1);
        assert_eq!(retry_after_secs(ms(1001)), 2);
        assert_eq!(retry_after_secs(ms(2999)), 3);
        assert_eq!(retry_after_secs(Duration::from_secs(7)), 7);
    }

    #[test]
    fn refills_over_time_up_to_the_burst() {
        let l = LocalRateLimiter::new(principal_only(10.0, 2), 1);
        let t0 = Instant::now();
        assert!(l.check("a", None, t0).is_ok());
        assert!(l.check("a", None, t0).is_ok());
        let wait = l.check("a", None, t0).unwrap_err();
        assert!(about(wait, ms(100)), "{wait:?}");
        // 50 ms: half a token.
        let wait = l.check("a", None, t0 + ms(50)).unwrap_err();
        assert!(about(wait, ms(50)), "{wait:?}");
        // 100 ms: one token, then empty again.
        assert!(l.check("a", None, t0 + ms(100)).is_ok());
        assert!(l.check("a", None, t0 + ms(100)).is_err());
        // A long pause refills to the burst, not beyond.
        let t1 = t0 + Duration::from_secs(60);
        assert!(l.check("a", None, t1).is_ok());
        assert!(l.check("a", None, t1).is_ok());
        assert!(l.check("a", None, t1).is_err());
        // An older instant refills nothing and does not wind the clock back.
        assert!(l.check("a", None, t0).is_err());
        assert!(l.check("a", None, t1 + ms(100)).is_ok());
    }

    #[test]
    fn per_tool_bucket_is_per_principal_and_tool() {
        let l = LocalRateLimiter::new(
            RateLimitSpec {
                per_principal: Some(spec(100.0, 10)),
                per_tool: vec![("demo__sleep".into(), spec(1.0, 2))],
            },
            1,
        );
        let t0 = Instant::now();
        assert!(l.check("alice", Some("demo__sleep"), t0).is_ok());
        assert!(l.check("alice", Some("demo__sleep"), t0).is_ok());
        let wait = l.check("alice", Some("demo__sleep"), t0).unwrap_err();
        assert!(about(wait, Duration::from_secs(1)), "{wait:?}");
        // Another principal has its own (principal, tool) bucket.
        assert!(l.check("bob", Some("demo__sleep"), t0).is_ok());
        // Other tools and plain requests only take from the principal bucket.
        assert!(l.check("alice", Some("demo__echo"), t0).is_ok());
        assert!(l.check("alice", None, t0).is_ok());
        // alice used 2 sleeps + 1 echo + 1 plain = 4 of 10; the refused sleep took nothing.
        for _ in 0..6 {
            assert!(l.check("alice", None, t0).is_ok());
        }
        let wait = l.check("alice", None, t0).unwrap_err();
        assert!(about(wait, ms(10)), "{wait:?}");
        // Principal bucket empty: a sleep is refused even when its tool bucket has refilled,
        // and takes nothing from the tool bucket.
        let t1 = t0 + ms(1000);
        for _ in 0..10 {
            assert!(l.check("alice", None, t1).is_ok());
        }
        let wait = l.check("alice", Some("demo__sleep"), t1).unwrap_err();
        assert!(about(wait, ms(10)), "{wait:?}");
        let t2 = t1 + ms(20);
        assert!(l.check("alice", Some("demo__sleep"), t2).is_ok());
        // The tool bucket had refilled one token at t1 and kept it through the refusal.
        assert!(l.check("alice", Some("demo__sleep"), t2).is_err());
    }

    #[test]
    fn per_tool_without_principal_limit() {
        let l = LocalRateLimiter::new(
            RateLimitSpec {
                per_principal: None,
                per_tool: vec![("s__t".into(), spec(2.0, 1))],
            },
            1,
        );
        let t0 = Instant::now();
        for _ in 0..1000 {
            assert!(l.check("p", None, t0).is_ok());
            assert!(l.check("p", Some("s__other"), t0).is_ok());
        }
        assert_eq!(l.buckets(), 0, "unlimited requests keep no bucket");
        assert!(l.check("p", Some("s__t"), t0).is_ok());
        let wait = l.check("p", Some("s__t"), t0).unwrap_err();
        assert!(about(wait, ms(500)), "{wait:?}");
        assert_eq!(l.buckets(), 1);
    }

    #[test]
    fn off_when_nothing_limits() {
        let l = LocalRateLimiter::new(
            RateLimitSpec {
                per_principal: Some(spec(0.0, 20)),
                per_tool: vec![("x__y".into(), spec(f64::NAN, 1))],
            },
            4,
        );
        assert!(l.is_off());
        let t0 = Instant::now();
        for _ in 0..100 {
            assert!(l.check("p", Some("x__y"), t0).is_ok());
        }
        assert_eq!(l.buckets(), 0);
        assert_eq!(l.spec().per_principal, Some(spec(0.0, 20)));
        assert!(!LocalRateLimiter::new(principal_only(1.0, 1), 1).is_off());
    }

    #[test]
    fn later_tool_entry_wins() {
        let l = LocalRateLimiter::new(
            RateLimitSpec {
                per_principal: None,
                per_tool: vec![("a__b".into(), spec(1.0, 1)), ("a__b".into(), spec(1.0, 3))],
            },
            1,
        );
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.check("p", Some("a__b"), t0).is_ok());
        }
        assert!(l.check("p", Some("a__b"), t0).is_err());
    }

    #[test]
    fn each_shard_refills_its_share_and_keeps_the_whole_burst() {
        let l = LocalRateLimiter::new(principal_only(8.0, 4), 4);
        let t0 = Instant::now();
        // Whole burst on this shard.
        for _ in 0..4 {
            assert!(l.check("a", None, t0).is_ok());
        }
        // 8/s over 4 shards = 2/s here: a token every 500 ms.
        let wait = l.check("a", None, t0).unwrap_err();
        assert!(about(wait, ms(500)), "{wait:?}");
        assert!(l.check("a", None, t0 + ms(499)).is_err());
        assert!(l.check("a", None, t0 + ms(500)).is_ok());
        // Sustained over 10 s: 2/s on this shard, so 20 more.
        let mut admitted = 0;
        for step in 1..=1000u64 {
            let now = t0 + ms(500) + ms(10 * step);
            while l.check("a", None, now).is_ok() {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 20);
        // Zero shards is treated as one.
        let one = LocalRateLimiter::new(principal_only(8.0, 1), 0);
        assert!(one.check("a", None, t0).is_ok());
        let wait = one.check("a", None, t0).unwrap_err();
        assert!(about(wait, ms(125)), "{wait:?}");
    }

    #[test]
    fn burst_zero_means_one() {
        let l = LocalRateLimiter::new(principal_only(1.0, 0), 1);
        let t0 = Instant::now();
        assert!(l.check("a", None, t0).is_ok());
        assert!(l.check("a", None, t0).is_err());
    }

    #[test]
    fn memory_bound_drops_idle_buckets_first() {
        let l = LocalRateLimiter::with_max_buckets(principal_only(1.0, 2), 1, 10);
        let t0 = Instant::now();
        // Five idle buckets (full again after 2 s), five busy ones.
        for i in 0..5 {
            assert!(l.check(&format!("idle{i}"), None, t0).is_ok());
        }
        let t1 = t0 + Duration::from_secs(5);
        for i in 0..5 {
            assert!(l.check(&format!("busy{i}"), None, t1).is_ok());
            assert!(l.check(&format!("busy{i}"), None, t1).is_ok());
        }
        assert_eq!(l.buckets(), 10);
        // One more principal: the idle ones go, the busy ones stay (and stay empty).
        assert!(l.check("new", None, t1).is_ok());
        assert_eq!(l.buckets(), 6);
        for i in 0..5 {
            assert!(l.check(&format!("busy{i}"), None, t1).is_err());
        }
    }

    #[test]
    fn memory_bound_clears_when_every_bucket_is_busy() {
        let l = LocalRateLimiter::with_max_buckets(principal_only(1.0, 1), 1, 10);
        let t0 = Instant::now();
        for i in 0..10 {
            assert!(l.check(&format!("p{i}"), None, t0).is_ok());
        }
        assert_eq!(l.buckets(), 10);
        assert!(l.check("p0", None, t0).is_err());
        // The eleventh is admitted, not refused: the map is cleared.
        assert!(l.check("p10", None, t0).is_ok());
        assert_eq!(l.buckets(), 1);
        // p0 starts again with a full bucket.
        assert!(l.check("p0", None, t0).is_ok());
    }

    #[test]
    fn memory_bound_counts_both_new_buckets_of_a_request() {
        let l = LocalRateLimiter::with_max_buckets(
            RateLimitSpec {
                per_principal: Some(spec(1.0, 1)),
                per_tool: vec![("s__t".into(), spec(1.0, 1))],
            },
            1,
            3,
        );
        let t0 = Instant::now();
        assert!(l.check("a", Some("s__t"), t0).is_ok());
        assert!(l.check("b", None, t0).is_ok());
        assert_eq!(l.buckets(), 3);
        // Two new buckets do not fit next to three busy ones: cleared, then both inserted
        // (the principal bucket is not evicted by its own tool bucket).
        assert!(l.check("c", Some("s__t"), t0).is_ok());
        assert_eq!(l.buckets(), 2);
        assert!(l.check("c", None, t0).is_err());
        assert!(l.check("c", Some("s__t"), t0).is_err());
    }

    #[test]
    fn default_bound_is_enforced() {
        let l = LocalRateLimiter::new(principal_only(1.0, 1), 1);
        let t0 = Instant::now();
        for i in 0..=MAX_BUCKETS {
            assert!(l.check(&i.to_string(), None, t0).is_ok());
        }
        assert!(l.buckets() <= MAX_BUCKETS);
        assert_eq!(l.buckets(), 1);
    }
}

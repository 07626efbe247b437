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
#[path = "limit_tests.rs"]
mod tests;

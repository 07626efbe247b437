//! Cluster-wide rate limits, the shard's side: a decision asked of a shared store (Redis,
//! `[rate_limit] store = "redis"`) and awaited without blocking the shard.
//!
//! A shard never talks to Redis. It hashes the principal (and the tool), puts one
//! [`StoreAsk`] on a bounded lock-free channel ([`SharedRateStore::ask`], `try_send`: never
//! blocks) and awaits the answer on a `oneshot` whose waker the binary's store thread
//! (`src/rate_store/`) wakes across threads. The answer comes within
//! `rate_limit.redis_timeout_ms` or the request follows `rate_limit.on_store_error`, and so does
//! a request that finds the channel full or the store unreachable. Each such request is
//! counted by cause ([`StoreFailure`]) and reported with the shard's figures.
//!
//! # What the store is told
//!
//! Bucket names are hashes, never the principal: `o1m:rl:{<128-bit hash of the principal>}`
//! and `o1m:rl:{<same>}:<64-bit hash of the tool>` (SHA-256, hex). A principal is an API key's
//! name or a token's principal claim, never a credential, but it may be an e-mail address,
//! which has no business in a shared cache. The braces are a Redis hash tag: both buckets of a
//! request fall in one slot, so one script may touch both even behind a slot-aware proxy.
//! Rates go as integers of microseconds ([`StoreRate`]): the configured `requests_per_s` and
//! `burst` are the cluster-wide totals, not divided by shards or nodes.
//!
//! # Key Components
//! - [`SharedRateStore`]: the sending end every shard holds, `Send + Clone`.
//! - [`StoreInbox`]: the store thread's end: the channel and the up/down flag it sets.
//! - [`StoreRates`]: a config's limits in the store's units, looked up per request.
//! - [`await_answer`]: the bounded wait for one decision.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ahash::RandomState;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use futures_channel::oneshot;
use hashbrown::HashMap;
use sha2::{Digest, Sha256};

use super::limit::{BucketSpec, RateLimitSpec};

/// Decisions queued toward the store thread, from every shard together; beyond, a request
/// follows `on_store_error` at once (counted as `queue_full`).
pub const STORE_QUEUE: usize = 4096;

/// Shortest interval between two tokens the store keeps: rates above a million a second per
/// principal are treated as a million (the store counts in microseconds).
const MIN_INTERVAL_US: u64 = 1;
/// Longest interval: one token a year (keeps every sum far from overflow, as in `limit.rs`).
const MAX_INTERVAL_US: u64 = 365 * 24 * 3600 * 1_000_000;
/// Longest time a whole burst may take to refill: 2^53 µs (285 years), so that the store's
/// script, which counts in doubles, adds it to a unix time in microseconds exactly.
const MAX_LIMIT_US: u64 = 1 << 53;

/// One bucket's cluster-wide rate in the store's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreRate {
    /// Microseconds to refill one token (`1 / per_s`).
    pub interval_us: u64,
    /// Microseconds to refill the whole burst (`interval × burst`): how far ahead of now a
    /// bucket's "full again" time may run before a request is refused.
    pub limit_us: u64,
}

impl StoreRate {
    /// The rate of `spec`; `None` when it limits nothing (as for the local limiter).
    pub fn of(spec: &BucketSpec) -> Option<StoreRate> {
        if !(spec.per_s.is_finite() && spec.per_s > 0.0) {
            return None;
        }
        let interval = (1e6 / spec.per_s).round();
        let interval_us = if interval >= MAX_INTERVAL_US as f64 {
            MAX_INTERVAL_US
        } else {
            (interval as u64).max(MIN_INTERVAL_US)
        };
        Some(StoreRate {
            interval_us,
            limit_us: interval_us
                .saturating_mul(u64::from(spec.burst.max(1)))
                .min(MAX_LIMIT_US),
        })
    }
}

/// A principal's bucket name in the store: 128 bits of SHA-256.
pub type PrincipalHash = [u8; 16];
/// A tool's part of its bucket name: 64 bits of SHA-256.
pub type ToolHash = [u8; 8];

/// The hash naming `principal`'s buckets.
pub fn principal_hash(principal: &str) -> PrincipalHash {
    let d = Sha256::digest(principal.as_bytes());
    std::array::from_fn(|i| d[i])
}

/// The hash naming a tool's bucket (with its principal's).
pub fn tool_hash(tool: &str) -> ToolHash {
    let d = Sha256::digest(tool.as_bytes());
    std::array::from_fn(|i| d[i])
}

/// Length of a principal bucket's key: `o1m:rl:{` + 32 hex + `}`.
pub const PRINCIPAL_KEY_LEN: usize = 8 + 32 + 1;
/// Length of a tool bucket's key: the principal's + `:` + 16 hex.
pub const TOOL_KEY_LEN: usize = PRINCIPAL_KEY_LEN + 1 + 16;

fn hex_into(out: &mut [u8], bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = HEX[usize::from(b >> 4)];
        out[2 * i + 1] = HEX[usize::from(b & 15)];
    }
}

/// `o1m:rl:{<hex>}`: the store key of a principal's own bucket.
pub fn principal_key(p: &PrincipalHash) -> [u8; PRINCIPAL_KEY_LEN] {
    let mut k = [0u8; PRINCIPAL_KEY_LEN];
    k[..8].copy_from_slice(b"o1m:rl:{");
    hex_into(&mut k[8..40], p);
    k[40] = b'}';
    k
}

/// `o1m:rl:{<hex>}:<hex>`: the store key of a principal's bucket for one tool.
pub fn tool_key(p: &PrincipalHash, t: &ToolHash) -> [u8; TOOL_KEY_LEN] {
    let mut k = [0u8; TOOL_KEY_LEN];
    k[..PRINCIPAL_KEY_LEN].copy_from_slice(&principal_key(p));
    k[PRINCIPAL_KEY_LEN] = b':';
    hex_into(&mut k[PRINCIPAL_KEY_LEN + 1..], t);
    k
}

/// Why a request could not be decided by the store (the `cause` label of
/// `only1mcp_rate_limit_store_errors_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreFailure {
    /// The channel toward the store thread was full.
    QueueFull,
    /// No answer within `redis_timeout_ms`.
    Timeout,
    /// The store is down (not connected, connection lost, thread gone).
    Unreachable,
    /// The store answered with an error (a script error, a refused command).
    Error,
}

/// Every failure, in export order (indexes of [`StoreFailure::index`]).
pub const STORE_FAILURES: [StoreFailure; 4] = [
    StoreFailure::QueueFull,
    StoreFailure::Timeout,
    StoreFailure::Unreachable,
    StoreFailure::Error,
];

impl StoreFailure {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreFailure::QueueFull => "queue_full",
            StoreFailure::Timeout => "timeout",
            StoreFailure::Unreachable => "unreachable",
            StoreFailure::Error => "error",
        }
    }

    /// Position in [`STORE_FAILURES`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The store's decision on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreAnswer {
    /// Admitted: a token was taken from every bucket.
    Admit,
    /// Over a limit: nothing taken; a token is there again after this long.
    Wait(Duration),
    /// No decision.
    Failed(StoreFailure),
}

/// One decision asked of the store thread.
#[derive(Debug)]
pub struct StoreAsk {
    /// The principal's hash (every bucket of the request is named after it).
    pub principal: PrincipalHash,
    /// The principal's own bucket, when `requests_per_s` is set.
    pub principal_rate: Option<StoreRate>,
    /// The tool's bucket, for a `tools/call` of a tool with its own limit.
    pub tool: Option<(ToolHash, StoreRate)>,
    /// The shard stops waiting at this instant; the thread skips a decision past it.
    pub deadline: Instant,
    /// Where the answer goes.
    pub reply: oneshot::Sender<StoreAnswer>,
}

/// The sending end of the store channel; held by every shard. Without a store
/// ([`SharedRateStore::local`]) the shards keep their own buckets.
#[derive(Debug, Clone)]
pub struct SharedRateStore {
    tx: Option<Sender<StoreAsk>>,
    up: Arc<AtomicBool>,
}

/// The store thread's end of the channel.
#[derive(Debug)]
pub struct StoreInbox {
    /// The decisions, in arrival order.
    pub rx: Receiver<StoreAsk>,
    up: Arc<AtomicBool>,
}

impl StoreInbox {
    /// Says whether the store is reachable now (shown on `/metrics`).
    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::Relaxed);
    }
}

impl SharedRateStore {
    /// No shared store: `store = "local"`.
    pub fn local() -> Self {
        SharedRateStore {
            tx: None,
            up: Arc::new(AtomicBool::new(true)),
        }
    }

    /// A store channel holding up to `capacity` decisions ([`STORE_QUEUE`] in the gateway);
    /// the store counts as down until the thread says otherwise.
    pub fn channel(capacity: usize) -> (Self, StoreInbox) {
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        let up = Arc::new(AtomicBool::new(false));
        let store = SharedRateStore {
            tx: Some(tx),
            up: up.clone(),
        };
        (store, StoreInbox { rx, up })
    }

    /// True with a shared store (`store = "redis"`).
    pub fn is_shared(&self) -> bool {
        self.tx.is_some()
    }

    /// True while the store answers (always for the local store).
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Hands a decision to the store thread; never blocks. A full channel is `QueueFull`, a
    /// stopped thread (or no store) `Unreachable`.
    pub fn ask(&self, ask: StoreAsk) -> Result<(), StoreFailure> {
        let Some(tx) = &self.tx else {
            return Err(StoreFailure::Unreachable);
        };
        tx.try_send(ask).map_err(|e| match e {
            TrySendError::Full(_) => StoreFailure::QueueFull,
            TrySendError::Disconnected(_) => StoreFailure::Unreachable,
        })
    }
}

/// Waits at most `timeout` for the answer to a decision handed to the store.
pub async fn await_answer(rx: oneshot::Receiver<StoreAnswer>, timeout: Duration) -> StoreAnswer {
    match monoio::time::timeout(timeout, rx).await {
        Ok(Ok(answer)) => answer,
        // The thread dropped the decision without answering: it is gone.
        Ok(Err(oneshot::Canceled)) => StoreAnswer::Failed(StoreFailure::Unreachable),
        Err(_) => StoreAnswer::Failed(StoreFailure::Timeout),
    }
}

/// The limits of a config in the store's units: what a request asks for.
#[derive(Debug)]
pub struct StoreRates {
    spec: RateLimitSpec,
    principal: Option<StoreRate>,
    tools: HashMap<Box<str>, StoreRate, RandomState>,
}

/// The buckets one request takes from: (principal, its bucket's rate, the tool's bucket).
pub type StoreBuckets = (
    PrincipalHash,
    Option<StoreRate>,
    Option<(ToolHash, StoreRate)>,
);

impl StoreRates {
    /// The store-side rates of `spec` (a later tool entry wins, as for the local limiter).
    pub fn new(spec: RateLimitSpec) -> Self {
        let principal = spec.per_principal.as_ref().and_then(StoreRate::of);
        let mut tools: HashMap<Box<str>, StoreRate, RandomState> = HashMap::default();
        for (name, b) in &spec.per_tool {
            match StoreRate::of(b) {
                Some(rate) => tools.insert(name.as_str().into(), rate),
                None => tools.remove(name.as_str()),
            };
        }
        StoreRates {
            spec,
            principal,
            tools,
        }
    }

    /// The configuration these rates come from.
    pub fn spec(&self) -> &RateLimitSpec {
        &self.spec
    }

    /// The buckets a request of `principal` (to `tool`) takes from; `None` when nothing
    /// limits it (no store round trip then).
    pub fn buckets(&self, principal: &str, tool: Option<&str>) -> Option<StoreBuckets> {
        let tool = tool.and_then(|t| self.tools.get(t).map(|r| (t, *r)));
        if self.principal.is_none() && tool.is_none() {
            return None;
        }
        let tool = tool.map(|(t, r)| (tool_hash(t), r));
        Some((principal_hash(principal), self.principal, tool))
    }
}

#[cfg(test)]
#[path = "limit_store_tests.rs"]
mod tests;

//! The copy of a shard's figures sent to the control thread every 500 ms.
//!
//! Built on the shard (`shards/src/shard/report.rs`, the composition root's part) from its own counters and backend state (no locks: it is the shard's
//! own thread reading its own `Cell`s), then moved through the control channel. Everything
//! in it is cumulative since the shard started, except the point-in-time gauges (sessions,
//! connections, listens, in-flight, health and breaker state).

use super::{CallKey, Counts, Hist};

/// One replica of a server as one shard sees it: an HTTP URL in this shard's pool, or a
/// stdio process this shard owns.
#[derive(Debug, Clone, Default)]
pub struct ReplicaStats {
    /// Server id.
    pub server: String,
    /// `http` or `stdio`.
    pub transport: &'static str,
    /// The replica's URL, or `instance <k>` for a stdio process.
    pub replica: String,
    /// In rotation: health checks pass (HTTP) / the process is up and answered (stdio).
    pub healthy: bool,
    /// `closed`, `open`, `half_open`; `none` for stdio (no breaker: the supervisor restarts).
    pub breaker: &'static str,
    /// Times this shard's breaker for it opened.
    pub breaker_opened: u64,
    /// Calls in flight on it from this shard.
    pub inflight: u64,
    /// Calls made to it from this shard, and how many failed (timeout, protocol, down).
    pub calls: u64,
    /// Failed calls (see `calls`).
    pub failures: u64,
    /// Their latency.
    pub latency: Hist,
    /// stdio: restarts of this process slot since start.
    pub restarts: u64,
    /// stdio: parked by the crash-loop detector.
    pub parked: bool,
    /// stdio: the running process id.
    pub pid: Option<i32>,
    /// http: keep-alive connections open to it from this shard (idle or in use).
    pub pool_open: u64,
    /// http: calls that queued for one of them (the pool was at `pool_size`).
    pub pool_waits: u64,
}

/// One shard's figures.
#[derive(Debug, Clone, Default)]
pub struct ShardStats {
    /// Shard index.
    pub shard: usize,
    /// 2025-era sessions owned here.
    pub sessions: u64,
    /// Never-used sessions evicted for room under `max_sessions` (cumulative).
    pub sessions_evicted: u64,
    /// `initialize` requests refused at a session cap (cumulative).
    pub sessions_refused: u64,
    /// Open client connections.
    pub connections: u64,
    /// Open `subscriptions/listen` streams.
    pub listeners: u64,
    /// Waiting on a client's input, by kind: a 2025 backend's server-to-client requests
    /// relayed to a 2025 client, a 2026 backend's input requests relayed to a 2025 client
    /// (`route/relay_input.rs`), and 2025 backend calls parked on a 2026 client's retry.
    pub client_input: [u64; 3],
    /// Client requests being served.
    pub inflight: u64,
    /// Panics contained to one connection since start.
    pub panics: u64,
    /// Requests cancelled because their client closed the connection first.
    pub clients_gone: u64,
    /// gzip list pages: copies compressed, answers sent gzip (`route/lists_gz.rs`).
    pub lists_gzip: [u64; 2],
    /// Requests refused with 404 for a session id this node does not hold, by
    /// `cluster::session_id::Verdict` (cumulative).
    pub session_ids_refused: [u64; 4],
    /// `initialize` requests that arrived while the node was draining or stopping.
    pub initialize_while_draining: u64,
    /// Client requests by method.
    pub requests: Vec<(&'static str, Counts)>,
    /// Backend calls by server, method, tool.
    pub calls: Vec<(CallKey, Counts)>,
    /// Replicas this shard uses or owns.
    pub replicas: Vec<ReplicaStats>,
    /// The response cache, when `[cache] enabled`.
    pub cache: Option<CacheReport>,
    /// The rate-limit store as this shard sees it.
    pub rate_store: RateStoreReport,
}

/// One shard's view of the rate-limit store (`[rate_limit] store`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateStoreReport {
    /// A shared store (`store = "redis"`); else the shard's own buckets, which never fail.
    pub shared: bool,
    /// The store answered when the report was built (the store thread's last state).
    pub up: bool,
    /// Requests that followed `on_store_error`, by cause, in the order of
    /// `auth::limit_store::STORE_FAILURES` (cumulative).
    pub failures: [u64; 4],
}

/// One shard's response cache and single-flight figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheReport {
    /// Cumulative hits, misses, coalesced requests and evictions.
    pub counters: crate::cache::CacheCounters,
    /// Entries held now.
    pub entries: u64,
    /// Bytes held now.
    pub bytes: u64,
}

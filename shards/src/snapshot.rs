//! The immutable snapshot every shard reads: config, backends and the merged catalog.
//!
//! The control thread builds one [`SharedSnapshot`] per change (startup, a backend's tools
//! discovered or lost, later a reload) and publishes it with one `ArcSwap::store`, so a shard
//! never sees half of a change. Shards `load()` it per request: lock-free, no copy.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::catalog::Catalog;
use crate::config::{Config, Transport};
use crate::http::url::BackendUrl;

/// What a shard needs to reach one backend, resolved on the control thread.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendSpec {
    /// Config id (namespace).
    pub id: String,
    /// Transport.
    pub transport: Transport,
    /// Per-request timeout.
    pub timeout: Duration,
    /// http: replica URLs, resolved.
    pub urls: Vec<BackendUrl>,
    /// http: static headers (the backend's own credentials).
    pub headers: Vec<(String, String)>,
    /// stdio: program (with `$self` replaced by the gateway's own path).
    pub command: String,
    /// stdio: arguments.
    pub args: Vec<String>,
    /// stdio: extra environment.
    pub env: Vec<(String, String)>,
    /// stdio: working directory.
    pub cwd: Option<String>,
    /// Namespace tools as `<id><sep><name>`.
    pub prefix: bool,
    /// One upstream session per client session.
    pub per_client: bool,
    /// Calls in flight per shard before new ones fail at once.
    pub max_inflight: usize,
    /// A bridged retry parked elsewhere may be replayed on this backend (`bridge_replay`).
    pub bridge_replay: bool,
    /// http: connections open to one replica per shard (busy or idle); calls beyond wait.
    pub pool_size: usize,
    /// stdio: processes to run (1 = one process owned by one shard).
    pub instances: usize,
    /// Per-tool timeouts (backend's tool names).
    pub tool_timeouts: Vec<(String, Duration)>,
    /// Hard cap of a progress-extended call.
    pub max_timeout: Duration,
    /// Replica balancing.
    pub balance: crate::balance::Strategy,
    /// Replica weights (one per URL).
    pub weights: Vec<u32>,
    /// What `consistent_hash` keys on.
    pub balance_key: crate::balance::BalanceKey,
    /// Which tools are exposed, renamed, re-described, compacted.
    pub curation: crate::catalog::curate::Curation,
    /// Per-replica circuit breaker settings.
    pub breaker: crate::balance::breaker::BreakerSpec,
    /// Active health checks of HTTP replicas.
    pub health: HealthSpec,
}

/// How the control thread probes a backend's HTTP replicas.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealthSpec {
    /// Probe period (zero: no active checks).
    pub interval: Duration,
    /// One probe's time limit.
    pub timeout: Duration,
    /// Consecutive successes that bring a replica back.
    pub healthy_threshold: u32,
    /// Consecutive failures that take a replica out.
    pub unhealthy_threshold: u32,
    /// GET this path instead of an MCP probe.
    pub path: Option<String>,
    /// A tool call each check also makes: `(backend's tool name, arguments as JSON)`.
    pub canary: Option<(String, String)>,
}

/// One immutable view of the gateway's world.
#[derive(Debug)]
pub struct SharedSnapshot {
    /// Increases with every publication.
    pub version: u64,
    /// The config it came from.
    pub config: Arc<Config>,
    /// Enabled backends, by index.
    pub backends: Vec<BackendSpec>,
    /// Merged catalog as 2025-era clients see it (dual-era backends: their 2025 lists).
    pub catalog: Catalog,
    /// Merged catalog as 2026 clients see it (dual-era backends: their 2026 lists).
    pub catalog_modern: Catalog,
    /// The header and claim balance keys some backend uses (read from each request).
    pub balance_keys: Vec<crate::balance::BalanceKey>,
    /// `[auth]` compiled: how callers authenticate and what their roles allow.
    pub auth: Arc<crate::auth::verify::SharedAuth>,
    /// This node's id and keys (the cluster's key file, re-read on reload; or the process's
    /// own key outside a cluster).
    pub cluster: Arc<crate::cluster::SharedCluster>,
}

/// The published slot.
pub type SharedSnapshotSlot = Arc<ArcSwap<SharedSnapshot>>;

impl SharedSnapshot {
    /// A snapshot of `backends` with their merged catalogs.
    pub fn new(
        version: u64,
        config: Arc<Config>,
        backends: Vec<BackendSpec>,
        catalog: Catalog,
        catalog_modern: Catalog,
    ) -> Self {
        let mut balance_keys: Vec<crate::balance::BalanceKey> = Vec::new();
        for b in &backends {
            if b.balance_key != crate::balance::BalanceKey::Session
                && !balance_keys.contains(&b.balance_key)
            {
                balance_keys.push(b.balance_key.clone());
            }
        }
        let auth = Arc::new(crate::auth::verify::SharedAuth::new(&config.auth));
        SharedSnapshot {
            version,
            config,
            backends,
            catalog,
            catalog_modern,
            balance_keys,
            auth,
            cluster: crate::cluster::SharedCluster::solo(),
        }
    }

    /// The same snapshot for a node of a cluster.
    pub fn with_cluster(mut self, cluster: Arc<crate::cluster::SharedCluster>) -> Self {
        self.cluster = cluster;
        self
    }

    /// The catalog of the client's era.
    pub fn catalog_for(&self, modern: bool) -> &Catalog {
        if modern {
            &self.catalog_modern
        } else {
            &self.catalog
        }
    }

    /// Backend index by id.
    pub fn backend_index(&self, id: &str) -> Option<usize> {
        self.backends.iter().position(|b| b.id == id)
    }
}

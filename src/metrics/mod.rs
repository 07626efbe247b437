//! The control thread's view of every shard's figures: it keeps each shard's latest report,
//! sums them every 500 ms, renders the Prometheus text the shards serve at `/metrics`, and
//! builds the snapshot the metrics socket streams.
//!
//! Shards never share a counter: each sends a cumulative copy of its own (see
//! `only1mcp_shards::stats`), so the sums here are the only place figures meet. Rates and
//! the p50/p99 shown live are taken over a sliding 10 s window of those sums.

mod cluster;
mod drain;
mod inputs;
mod prom;
mod traces;
mod view;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use bytes::Bytes;
use only1mcp_shards::readiness::SharedReadiness;
use only1mcp_shards::stats::report::ShardStats;

use crate::observe::MetricsSnapshot;
pub use view::View;

/// Sums kept for the live window (20 ticks of 500 ms).
const WINDOW: usize = 20;

/// Reload counters (set by the reload path).
#[derive(Debug, Clone, Default)]
pub struct Reloads {
    /// Applied reloads.
    pub ok: u64,
    /// Rejected reloads (the old config stayed).
    pub errors: u64,
    /// Why the last one was rejected.
    pub last_error: Option<String>,
}

/// Everything the control thread knows about the figures.
pub struct Aggregator {
    started: Instant,
    cores: u32,
    driver: String,
    latest: Vec<Option<Box<ShardStats>>>,
    history: VecDeque<(Instant, Arc<View>)>,
    /// Reload counters, exported with the rest.
    pub reloads: Reloads,
    /// Token accounting, when `[metrics] tokens` is on.
    pub tokens: Option<crate::tokens::TokenAccounting>,
    /// Spans exported and dropped, when `[telemetry]` is on.
    pub traces: Option<Arc<only1mcp_shards::trace::TraceCounters>>,
    /// `[cluster] node_id` ("" outside a cluster), a label of `only1mcp_build_info`.
    pub node: String,
    text: Arc<ArcSwap<Bytes>>,
    snapshot: Arc<ArcSwap<MetricsSnapshot>>,
    readiness: SharedReadiness,
}

impl Aggregator {
    /// An aggregator for `shards` shards publishing into `text` (for `/metrics`) and
    /// `snapshot` (for the metrics socket), with the node's `readiness` in both.
    pub fn new(
        shards: usize,
        text: Arc<ArcSwap<Bytes>>,
        snapshot: Arc<ArcSwap<MetricsSnapshot>>,
        readiness: SharedReadiness,
    ) -> Self {
        Self {
            started: Instant::now(),
            cores: shards as u32,
            driver: String::new(),
            latest: (0..shards).map(|_| None).collect(),
            history: VecDeque::with_capacity(WINDOW + 1),
            reloads: Reloads::default(),
            tokens: None,
            traces: None,
            node: String::new(),
            text,
            snapshot,
            readiness,
        }
    }

    /// The driver the shards run on (shown on the socket).
    pub fn set_driver(&mut self, driver: &str) {
        self.driver = driver.to_string();
    }

    /// Keeps shard `s`'s latest report.
    pub fn on_stats(&mut self, s: Box<ShardStats>) {
        if let Some(slot) = self.latest.get_mut(s.shard) {
            *slot = Some(s);
        }
    }

    /// Counts a reload: `None` applied, `Some(why)` rejected.
    pub fn reloaded(&mut self, error: Option<String>) {
        match error {
            None => self.reloads.ok += 1,
            Some(why) => {
                self.reloads.errors += 1;
                self.reloads.last_error = Some(why);
            }
        }
    }

    /// Sums the latest reports and publishes the Prometheus text and the socket snapshot.
    pub fn publish(&mut self) {
        let now = Instant::now();
        let shards: Vec<&ShardStats> = self.latest.iter().flatten().map(|b| &**b).collect();
        let view = Arc::new(View::sum(&shards));
        self.history.push_back((now, view.clone()));
        while self.history.len() > WINDOW {
            self.history.pop_front();
        }
        let uptime = now.duration_since(self.started).as_secs_f64();
        let drain = drain::DrainFigures {
            state: self.readiness.state(),
            initialize_while_draining: shards.iter().map(|s| s.initialize_while_draining).sum(),
        };
        let text = prom::render(
            &view,
            &shards,
            &self.reloads,
            prom::SideThreads {
                tokens: self.tokens.as_ref(),
                traces: self.traces.as_deref(),
            },
            drain,
            uptime,
            &self.node,
        );
        self.text.store(Arc::new(Bytes::from(text)));
        let (then, earlier) = self.history.front().cloned().unwrap_or((now, view.clone()));
        let mut snap = view.snapshot(
            &earlier,
            now.duration_since(then).as_secs_f64(),
            uptime,
            self.cores,
            &self.driver,
            &self.reloads,
        );
        snap.readiness = drain.state.into();
        snap.totals.initialize_while_draining = drain.initialize_while_draining;
        snap.node = self.node.clone();
        use only1mcp_shards::cluster::session_id::Verdict;
        let refused = |v: Verdict| {
            shards
                .iter()
                .map(|s| s.session_ids_refused[v.index()])
                .sum::<u64>()
        };
        snap.totals.session_ids_foreign = refused(Verdict::Foreign);
        snap.totals.session_ids_forged = refused(Verdict::Forged) + refused(Verdict::Malformed);
        let store = prom::rate_store(&shards);
        snap.totals.rate_store = if store.shared { "redis" } else { "local" }.to_string();
        snap.totals.rate_store_up = store.up;
        snap.totals.rate_store_errors = store.failures.iter().sum();
        self.snapshot.store(Arc::new(snap));
    }
}

//! [`Router`]: the MCP layer's state on one shard, and the only way requests reach it.
//!
//! The router owns what serving MCP needs: the sessions this shard owns, the calls in flight
//! (`tables::calls`, which alone mints the progress tokens and server-to-client ids they use), the SSE streams and
//! their resume logs, parked multi-round-trip calls, `subscriptions/listen` streams, the search
//! index, the response cache, the auth view, statistics and token accounting, and the
//! shard's [`Upstreams`]. It names the upstream layer and below, never the fronts or the
//! shard: a request that belongs to another shard's session goes out through [`Peers`],
//! which the composition root implements over the shards' mailboxes. So a router can be built
//! from a snapshot without a running shard ([`Router::new`]), and its logic unit-tested.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use ahash::RandomState;
use futures_channel::oneshot;
use hashbrown::HashMap;

use crate::error::McpError;
use crate::http::response::Reply;
use crate::ring::Ring;
use crate::route::request::{rpc_error, McpHttpRequest};
use crate::route::session::LocalSessionTable;
use crate::route::tables::calls::LocalCalls;
use crate::snapshot::SharedSnapshotSlot;
use crate::upstream::registry::Upstreams;

/// The shard that should serve a request has stopped taking work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerStopped;

/// How a router hands a request to the router of another shard (the one that owns its
/// session or its parked call). A dynamic call, made only for requests that cross shards.
pub trait Peers {
    /// Posts `req` to shard `owner`, whose answer comes back on `reply`.
    fn hand_off(
        &self,
        owner: usize,
        req: McpHttpRequest,
        reply: oneshot::Sender<Reply>,
    ) -> Result<(), PeerStopped>;
}

/// Everything a router is built from that it does not make itself.
pub struct RouterParts {
    /// Shard index.
    pub id: usize,
    /// Number of shards (caps are divided over them).
    pub shards: usize,
    /// The ring (same on every shard).
    pub ring: Ring,
    /// The published snapshot.
    pub snapshot: SharedSnapshotSlot,
    /// The other shards' routers.
    pub peers: Rc<dyn Peers>,
    /// Set once shutdown started (shared with the front and long-lived tasks).
    pub draining: Rc<Cell<bool>>,
    /// The node's readiness (`/ready`), shared with every shard and the control thread.
    pub readiness: crate::readiness::SharedReadiness,
    /// Token verification keys (published by the control thread).
    pub keys: crate::auth::keys::SharedKeysSlot,
    /// The audit log.
    pub audit: crate::audit::SharedAuditSink,
    /// The shared rate-limit store (`SharedRateStore::local()` without one).
    pub rate_store: crate::auth::limit_store::SharedRateStore,
    /// Token accounting.
    pub tokens: crate::route::tokens::SharedTokenSink,
    /// Where finished spans go (disabled without `[telemetry] otlp_endpoint`).
    pub trace: crate::trace::SharedTraceSink,
    /// This shard's backends.
    pub upstreams: Upstreams,
}

/// One shard's MCP layer.
pub struct Router {
    /// Shard index.
    pub id: usize,
    /// Number of shards.
    pub shards: usize,
    /// The ring (same on every shard).
    pub ring: Ring,
    /// Published snapshot.
    pub snapshot: SharedSnapshotSlot,
    /// The other shards' routers.
    pub peers: Rc<dyn Peers>,
    /// Set once shutdown started.
    pub draining: Rc<Cell<bool>>,
    /// The node's readiness (`/ready`): starting, ready, draining or stopping.
    pub readiness: crate::readiness::SharedReadiness,
    /// This shard's backends.
    pub upstreams: Upstreams,
    /// Sessions owned here.
    pub sessions: RefCell<LocalSessionTable>,
    /// Requests whose client closed its connection before the answer (they were cancelled).
    pub clients_gone: Cell<u64>,
    /// gzip copies of large list pages (`route/lists_gz.rs`).
    pub gz_pages: crate::route::lists_gz::GzPages,
    /// Session ids refused with 404, by `cluster::session_id::Verdict`.
    pub session_ids_refused: [Cell<u64>; 4],
    /// What this shard served (sent to the control thread every 500 ms).
    pub stats: crate::stats::LocalStats,
    /// The response cache and single-flight batcher (`[cache]`).
    pub cache: Rc<crate::cache::LocalCache>,
    /// Answers handed to the tokenizer thread (`[metrics] tokens`).
    pub tokens: crate::route::tokens::SharedTokenSink,
    /// OpenTelemetry spans (`[telemetry]`): the shard's ids and the exporter's queue.
    pub trace: crate::trace::LocalTracer,
    /// Who is calling and what it may do.
    pub auth: crate::auth::local::LocalAuth,
    /// The search index of the `search` discovery mode (built on first use).
    pub search: crate::route::tables::search::LocalSearch,
    /// The calls in flight, the server-to-client requests relayed, and the one counter
    /// behind every token and number the router hands out.
    pub calls: LocalCalls,
    /// Per-client upstreams, by session and backend.
    pub per_client:
        RefCell<HashMap<String, crate::route::tables::per_client::LocalPerClient, RandomState>>,
    /// Resumable SSE stream logs of 2025-era sessions, by `<session>/<stream>`.
    pub stream_logs:
        RefCell<HashMap<String, crate::route::tables::stream_log::LocalStreamLog, RandomState>>,
    /// Bytes held by all of `stream_logs` (bounded by `resume::SHARD_LOG_BYTES`).
    pub stream_log_bytes: Cell<usize>,
    /// 2025 backend calls parked on a 2026 client's input, by park number.
    pub parked: RefCell<HashMap<u64, crate::route::tables::parked::LocalParked, RandomState>>,
    /// Bridged tasks' pending input (`route/tasks/to_legacy_input.rs`): a 2025 backend's
    /// request for a 2026 caller's task, held as a parked call.
    pub task_inputs: RefCell<crate::route::tables::task_inputs::Inputs>,
    /// Open 2026 `subscriptions/listen` streams.
    pub listeners: RefCell<crate::route::tables::listeners::Listeners>,
    /// Listens toward 2026-only backends carrying this shard's 2025 resource subscriptions.
    pub resource_listens: RefCell<crate::route::tables::resource_listens::ResourceListens>,
}

impl Router {
    /// A router with no sessions, calls or streams yet.
    pub fn new(parts: RouterParts) -> Router {
        Router {
            auth: crate::auth::local::LocalAuth::new(
                parts.keys,
                parts.audit,
                parts.rate_store,
                parts.shards,
            ),
            id: parts.id,
            shards: parts.shards,
            ring: parts.ring,
            snapshot: parts.snapshot,
            peers: parts.peers,
            draining: parts.draining,
            readiness: parts.readiness,
            upstreams: parts.upstreams,
            sessions: RefCell::default(),
            clients_gone: Cell::new(0),
            gz_pages: Default::default(),
            session_ids_refused: Default::default(),
            stats: Default::default(),
            cache: Default::default(),
            tokens: parts.tokens,
            trace: crate::trace::LocalTracer::new(parts.trace, parts.id),
            search: Default::default(),
            calls: LocalCalls::default(),
            per_client: RefCell::default(),
            stream_logs: RefCell::default(),
            stream_log_bytes: Cell::new(0),
            parked: RefCell::default(),
            task_inputs: RefCell::default(),
            listeners: RefCell::default(),
            resource_listens: RefCell::default(),
        }
    }

    /// Serves `req` on shard `owner`, whose session it is, and waits for its answer.
    pub async fn hand_off(&self, owner: usize, req: McpHttpRequest) -> Reply {
        let (tx, rx) = oneshot::channel();
        if self.peers.hand_off(owner, req, tx).is_err() {
            return rpc_error(
                503,
                &McpError::Gateway("owner shard is not running".into()),
                b"",
            );
        }
        rx.await.unwrap_or_else(|_| {
            rpc_error(
                503,
                &McpError::Gateway("owner shard dropped the request".into()),
                b"",
            )
        })
    }
}

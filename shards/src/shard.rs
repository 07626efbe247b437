//! One shard: a pinned monoio runtime serving its own listener, sessions and backends.
//!
//! [`run_shard`] is the whole life of a shard thread: build the runtime on the chosen driver,
//! set up the shard-local backends from the snapshot (spawning the stdio children this shard
//! owns and discovering the HTTP backends it is responsible for), then accept connections and
//! serve its mailbox until the control thread says stop. Shutdown drains: the listener closes,
//! in-flight requests get up to the grace period, then owned children are stopped and reaped.
//!
//! # Key Components
//! - [`LocalShard`]: the `Rc` context every task of the shard shares.
//! - [`ShardMsg`]: what other threads may send a shard.
//! - [`ControlEvent`]: what a shard tells the control thread.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use ahash::RandomState;
use futures_channel::oneshot;
use hashbrown::HashMap;

use crate::catalog::Discovery;
use crate::config::DriverChoice;
use crate::http::request::Limits;
use crate::http::response::Reply;
use crate::mcp::dispatch::McpHttpRequest;
use crate::mcp::guard::OriginPolicy;
use crate::mcp::session::LocalSessionTable;
use crate::ring::Ring;
use crate::rt::mailbox::{LocalMailbox, SharedMailboxSender};
use crate::rt::DriverKind;
use crate::snapshot::SharedSnapshotSlot;
use crate::upstream::messages::{OwnerStopped, StdioCall};
use crate::upstream::stdio::LocalStdioSlot;
use crate::upstream::LocalBackend;

/// Messages other threads send to a shard.
pub enum ShardMsg {
    /// A client request for a session this shard owns.
    Handoff {
        /// The request.
        req: McpHttpRequest,
        /// Where the response goes.
        reply: oneshot::Sender<Reply>,
    },
    /// A call for a stdio backend this shard owns.
    StdioCall(StdioCall),
    /// A client's answer to a server-to-client request of a stdio backend this shard owns.
    StdioRespond {
        /// Backend id.
        server: String,
        /// The JSON-RPC response, with the backend's own id.
        msg: Vec<u8>,
    },
    /// The catalog changed: tell sessions with a GET stream.
    ListChanged {
        /// The tool list changed.
        tools: bool,
        /// The prompt list changed.
        prompts: bool,
        /// The resource or template list changed.
        resources: bool,
    },
    /// A backend said a resource changed (`uri` as the backend knows it).
    ResourceUpdated {
        /// Backend id.
        server: String,
        /// The backend's own URI.
        uri: String,
    },
    /// The control thread's health checks moved a replica in or out of rotation.
    Health {
        /// Backend id.
        server: String,
        /// Replica index (`url` then `urls`).
        replica: usize,
        /// In rotation or not.
        healthy: bool,
    },
    /// A config reload changed these servers (the new snapshot is already published):
    /// retire `removed` (drain, then stop), then start `added`. A changed server is in both.
    Reload {
        /// Ids of servers to retire.
        removed: Vec<String>,
        /// Servers to start.
        added: Vec<crate::snapshot::BackendSpec>,
    },
    /// stdio mode: one line from the client's stdin.
    StdioLine(Vec<u8>),
    /// Stop accepting, drain, stop children, exit.
    Shutdown,
}

/// The upstream layer reaches a stdio child on another shard through that shard's mailbox.
impl crate::upstream::messages::StdioOwner for SharedMailboxSender<ShardMsg> {
    fn post_call(&self, call: StdioCall) -> Result<(), OwnerStopped> {
        self.send(ShardMsg::StdioCall(call))
            .map_err(|_| OwnerStopped)
    }

    fn post_respond(&self, server: String, msg: Vec<u8>) {
        let _ = self.send(ShardMsg::StdioRespond { server, msg });
    }
}

/// What shards report to the control thread.
#[derive(Debug)]
pub enum ControlEvent {
    /// The shard is up: listener serving, driver chosen.
    Started {
        /// Shard index.
        shard: usize,
        /// Driver in use.
        driver: DriverKind,
    },
    /// A backend's tools were (re)discovered, or it went down.
    Discovered {
        /// Backend id.
        server: String,
        /// What it offers, or why it is down.
        result: Result<Discovery, String>,
    },
    /// The shard's cumulative figures (every 500 ms).
    Stats(Box<crate::stats::report::ShardStats>),
    /// A token named a key id the key set lacks: refetch the JWKS (rate-limited there).
    UnknownKid(String),
    /// The shard has stopped (after draining).
    Stopped {
        /// Shard index.
        shard: usize,
    },
}

/// A stdio child this shard owns, and the signal that its supervisor has finished.
pub type OwnedStdio = (Rc<LocalStdioSlot>, Option<oneshot::Receiver<()>>);

/// The Prometheus exposition text, rendered by the control thread every 500 ms from every
/// shard's figures and read by whichever shard serves a `/metrics` request.
pub type SharedMetricsText = std::sync::Arc<arc_swap::ArcSwap<bytes::Bytes>>;

/// Everything a shard thread needs to start.
pub struct ShardInit {
    /// Shard index.
    pub id: usize,
    /// CPU to pin to, if any.
    pub cpu: Option<usize>,
    /// The SO_REUSEPORT listener bound for this shard (`None` in stdio mode).
    pub listener: Option<std::net::TcpListener>,
    /// stdio mode: where lines for the client's stdout go (shard 0 only).
    pub stdout: Option<crossbeam_channel::Sender<Vec<u8>>>,
    /// Shard count ring.
    pub ring: Ring,
    /// The published snapshot.
    pub snapshot: SharedSnapshotSlot,
    /// Every shard's mailbox sender, by index.
    pub peers: Vec<SharedMailboxSender<ShardMsg>>,
    /// This shard's mailbox.
    pub mailbox: LocalMailbox<ShardMsg>,
    /// Reports to the control thread.
    pub control: crossbeam_channel::Sender<ControlEvent>,
    /// Driver choice.
    pub driver: DriverChoice,
    /// io_uring entries.
    pub uring_entries: u32,
    /// The Prometheus text the control thread renders.
    pub metrics_text: SharedMetricsText,
    /// Token verification keys (published by the control thread).
    pub keys: crate::auth::keys::SharedKeysSlot,
    /// The audit log (disabled unless `[audit] enabled`).
    pub audit: crate::audit::SharedAuditSink,
    /// Token accounting (disabled unless `[metrics] tokens` names an encoding).
    pub tokens: crate::mcp::tokens::SharedTokenSink,
    /// TLS termination (`[server.tls]`), the same config for every shard.
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    /// The gateway-wide cap on stdio starts (`proxy.max_concurrent_spawns`).
    pub spawn_gate: std::sync::Arc<crate::upstream::stdio::gate::SharedSpawnGate>,
}

/// The shard-local context shared by all of the shard's tasks.
pub struct LocalShard {
    /// Shard index.
    pub id: usize,
    /// The ring (same on every shard).
    pub ring: Ring,
    /// Published snapshot.
    pub snapshot: SharedSnapshotSlot,
    /// Mailboxes of all shards.
    pub peers: Vec<SharedMailboxSender<ShardMsg>>,
    /// Reports to control.
    pub control: crossbeam_channel::Sender<ControlEvent>,
    /// Sessions owned here.
    pub sessions: RefCell<LocalSessionTable>,
    /// Backends by id.
    pub upstreams: RefCell<HashMap<String, Rc<LocalBackend>, RandomState>>,
    /// stdio children owned here.
    pub owned_stdio: RefCell<Vec<OwnedStdio>>,
    /// HTTP limits.
    pub limits: Limits,
    /// Host/Origin policy.
    pub policy: OriginPolicy,
    /// Set once shutdown started (shared with long-lived listener tasks).
    pub draining: Rc<Cell<bool>>,
    /// Requests being served right now.
    pub inflight: Cell<usize>,
    /// Open client connections.
    pub connections: Cell<usize>,
    /// Panics contained to one connection (`rt::contain`), since start.
    pub panics: Cell<u64>,
    /// Requests whose client closed its connection before the answer (they were cancelled).
    pub clients_gone: Cell<u64>,
    /// Backend calls in flight, by backend id (for `max_inflight`).
    pub backend_inflight: RefCell<HashMap<Rc<str>, usize, RandomState>>,
    /// `server.max_connections_per_shard`.
    pub max_connections: usize,
    /// What this shard served (sent to the control thread every 500 ms).
    pub stats: crate::stats::LocalStats,
    /// The response cache and single-flight batcher (`[cache]`).
    pub cache: Rc<crate::cache::LocalCache>,
    /// Answers handed to the tokenizer thread (`[metrics] tokens`).
    pub tokens: crate::mcp::tokens::SharedTokenSink,
    /// Who is calling and what it may do.
    pub auth: crate::auth::local::LocalAuth,
    /// The search index of the `search` discovery mode (built on first use).
    pub search: crate::mcp::meta::LocalSearch,
    /// TLS handshakes for this shard's listener, when `[server.tls]` is set.
    pub tls: Option<monoio_rustls::TlsAcceptor>,
    /// The latest Prometheus text the control thread rendered (served at `/metrics`).
    pub metrics_text: SharedMetricsText,
    /// The gateway-wide cap on stdio starts (shared by every shard).
    pub spawn_gate: std::sync::Arc<crate::upstream::stdio::gate::SharedSpawnGate>,
    /// Forwarded calls that a client may cancel: (session, client id) → cancel signal.
    pub inflight_calls: RefCell<HashMap<Vec<u8>, oneshot::Sender<()>, RandomState>>,
    /// Counter for gateway-side progress tokens and server-to-client request ids.
    pub next_token: Cell<u64>,
    /// Per-client upstreams, by session and backend.
    pub per_client: RefCell<HashMap<String, crate::mcp::per_client::LocalPerClient, RandomState>>,
    /// Resumable SSE stream logs of 2025-era sessions, by `<session>/<stream>`.
    pub stream_logs: RefCell<HashMap<String, crate::mcp::resume::LocalStreamLog, RandomState>>,
    /// Bytes held by all of `stream_logs` (bounded by `resume::SHARD_LOG_BYTES`).
    pub stream_log_bytes: Cell<usize>,
    /// 2025 backend calls parked on a 2026 client's input, by park number.
    pub parked: RefCell<HashMap<u64, crate::mcp::bridge::LocalParked, RandomState>>,
    /// Open 2026 `subscriptions/listen` streams.
    pub listeners: RefCell<crate::mcp::listen::Listeners>,
    /// stdio mode: the client's stdout, and its one session once initialized.
    pub stdio: Option<crate::mcp::stdio_front::LocalStdioFront>,
    /// Server-to-client requests relayed to a client and not answered yet.
    pub s2c_pending: RefCell<HashMap<Vec<u8>, crate::mcp::forward::S2cRoute, RandomState>>,
}

/// Runs a shard on the current thread until shutdown. Returns the driver error if the runtime
/// could not be built at all.
pub fn run_shard(init: ShardInit) -> std::io::Result<()> {
    if let Some(cpu) = init.cpu {
        if let Err(e) = crate::rt::pin_to_cpu(cpu) {
            tracing::warn!(shard = init.id, cpu, "could not pin shard: {e}");
        }
    }
    let id = init.id;
    let control = init.control.clone();
    let driver = init.driver;
    let entries = init.uring_entries;
    crate::rt::run_on_driver(
        driver,
        entries,
        |kind, fallback| {
            if let Some(reason) = fallback {
                tracing::warn!(
                    shard = id,
                    "io_uring unavailable, falling back to epoll: {reason}"
                );
            }
            tracing::info!(shard = id, driver = kind.as_str(), memlock = %crate::rt::memlock_text(), "shard runtime built");
            let _ = control.send(ControlEvent::Started {
                shard: id,
                driver: kind,
            });
        },
        move || shard_main(init),
    )
}

async fn shard_main(init: ShardInit) {
    let snap = init.snapshot.load_full();
    let cfg = &snap.config;
    let listener_addr = init.listener.as_ref().and_then(|l| l.local_addr().ok());
    let loopback = listener_addr.map(|a| a.ip().is_loopback()).unwrap_or(false);
    let shard = Rc::new(LocalShard {
        id: init.id,
        ring: init.ring.clone(),
        snapshot: init.snapshot.clone(),
        peers: init.peers.clone(),
        control: init.control.clone(),
        sessions: RefCell::new(LocalSessionTable::default()),
        upstreams: RefCell::new(HashMap::default()),
        owned_stdio: RefCell::new(Vec::new()),
        limits: Limits {
            max_head: cfg.server.max_header_bytes,
            max_body: cfg.server.max_body_bytes,
            idle_timeout: Duration::from_millis(cfg.server.idle_timeout_ms),
            read_timeout: Duration::from_millis(cfg.server.read_timeout_ms),
        },
        policy: OriginPolicy {
            loopback,
            allowed_hosts: cfg.server.allowed_hosts.clone(),
            allowed_origins: cfg.server.allowed_origins.clone(),
        },
        draining: Rc::new(Cell::new(false)),
        inflight: Cell::new(0),
        connections: Cell::new(0),
        panics: Cell::new(0),
        clients_gone: Cell::new(0),
        backend_inflight: RefCell::new(HashMap::default()),
        max_connections: cfg.server.max_connections_per_shard,
        stats: Default::default(),
        cache: Default::default(),
        tokens: init.tokens.clone(),
        tls: init.tls.clone().map(monoio_rustls::TlsAcceptor::from),
        search: Default::default(),
        auth: crate::auth::local::LocalAuth::new(
            init.keys.clone(),
            init.audit.clone(),
            init.peers.len(),
        ),
        metrics_text: init.metrics_text.clone(),
        spawn_gate: init.spawn_gate.clone(),
        inflight_calls: RefCell::new(HashMap::default()),
        next_token: Cell::new(1),
        s2c_pending: RefCell::new(HashMap::default()),
        listeners: RefCell::new(crate::mcp::listen::Listeners::default()),
        parked: RefCell::new(HashMap::default()),
        stream_logs: RefCell::new(HashMap::default()),
        stream_log_bytes: Cell::new(0),
        per_client: RefCell::new(HashMap::default()),
        stdio: init
            .stdout
            .clone()
            .map(crate::mcp::stdio_front::LocalStdioFront::new),
    });
    let grace = Duration::from_millis(cfg.server.shutdown_grace_ms);
    let connect_timeout = Duration::from_millis(cfg.proxy.connect_timeout_ms);
    crate::setup::setup_backends(&shard, connect_timeout);

    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let listener = match init.listener.map(monoio::net::TcpListener::from_std) {
        Some(Ok(l)) => Some(l),
        Some(Err(e)) => {
            tracing::error!(shard = shard.id, "cannot adopt listener: {e}");
            let _ = shard
                .control
                .send(ControlEvent::Stopped { shard: shard.id });
            return;
        }
        None => None,
    };
    monoio::spawn(mailbox_loop(shard.clone(), init.mailbox, stop_tx));
    monoio::spawn(crate::mcp::per_client::expiry_task(
        shard.clone(),
        Duration::from_millis(cfg.server.session_idle_timeout_ms),
    ));
    monoio::spawn(stats_task(shard.clone()));
    match listener {
        Some(listener) => {
            tracing::info!(shard = shard.id, addr = ?listener_addr, "shard listening");
            let accept = accept_loop(shard.clone(), listener);
            monoio::select! {
                _ = accept => {},
                _ = stop_rx => {},
            }
        }
        None => {
            let _ = stop_rx.await;
        }
    }
    drain(&shard, grace).await;
    let _ = shard
        .control
        .send(ControlEvent::Stopped { shard: shard.id });
}

/// Sends the shard's cumulative figures to the control thread every 500 ms (and a last
/// time when the shard drains, so a stopping gateway's final counts are not lost).
async fn stats_task(shard: Rc<LocalShard>) {
    loop {
        monoio::time::sleep(Duration::from_millis(500)).await;
        let report = crate::report::build(&shard);
        if shard
            .control
            .send(ControlEvent::Stats(Box::new(report)))
            .is_err()
            || shard.draining.get()
        {
            return;
        }
    }
}

/// The panic report of a task serving another shard's message (`rt::contain`).
fn handoff_panic(shard: &Rc<LocalShard>, what: &'static str) -> impl FnOnce(&str) + Unpin {
    let shard = shard.clone();
    move |msg: &str| {
        shard.panics.set(shard.panics.get() + 1);
        tracing::error!(
            shard = shard.id,
            "gateway fault: panic while serving {what} ({msg}); that request failed, the shard serves on"
        );
    }
}

async fn accept_loop(shard: Rc<LocalShard>, listener: monoio::net::TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                let _ = stream.set_nodelay(true);
                if shard.connections.get() >= shard.max_connections {
                    // Over the limit: answer 503 at once and close, never queue.
                    monoio::spawn(crate::http::server::refuse_conn(stream));
                    continue;
                }
                // A panic while serving ends this connection only (logged, counted).
                let tag = crate::http::server::LocalConnTag::default();
                let on_panic = {
                    let (shard, tag) = (shard.clone(), tag.clone());
                    move |msg: &str| crate::http::server::report_panic(&shard, &tag.get(), msg)
                };
                match &shard.tls {
                    Some(acceptor) => {
                        monoio::spawn(crate::rt::contain::contain(
                            crate::http::server::serve_tls(
                                shard.clone(),
                                acceptor.clone(),
                                stream,
                                tag,
                            ),
                            on_panic,
                        ));
                    }
                    None => {
                        monoio::spawn(crate::rt::contain::contain(
                            crate::http::server::serve_conn(shard.clone(), stream, tag),
                            on_panic,
                        ));
                    }
                }
            }
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::warn!(shard = shard.id, "accept failed: {e}");
                monoio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn mailbox_loop(
    shard: Rc<LocalShard>,
    mailbox: LocalMailbox<ShardMsg>,
    stop: oneshot::Sender<()>,
) {
    let mut stop = Some(stop);
    while let Some(msg) = mailbox.recv().await {
        match msg {
            ShardMsg::Handoff { req, mut reply } => {
                let on_panic = handoff_panic(&shard, "a handed-off request");
                let shard = shard.clone();
                monoio::spawn(crate::rt::contain::contain(
                    async move {
                        shard.inflight.set(shard.inflight.get() + 1);
                        // The client's shard drops its end when the client went away: stop
                        // (the call is cancelled toward its backend on drop).
                        let r = monoio::select! {
                            r = crate::mcp::dispatch::handle(&shard, req, false) => Some(r),
                            _ = reply.cancellation() => None,
                        };
                        shard.inflight.set(shard.inflight.get() - 1);
                        if let Some(r) = r {
                            let _ = reply.send(r);
                        }
                    },
                    on_panic,
                ));
            }
            ShardMsg::StdioCall(mut call) => {
                let backend = shard.upstreams.borrow().get(&call.server).cloned();
                let on_panic = handoff_panic(&shard, "a stdio call from another shard");
                monoio::spawn(crate::rt::contain::contain(
                    async move {
                        let r = match backend.as_deref() {
                            Some(b @ LocalBackend::Stdio(_)) => monoio::select! {
                                r = b.call(call.body, call.id, call.opts) => r,
                                _ = call.reply.cancellation() => return,
                            },
                            _ => Err(crate::error::McpError::Gateway(format!(
                                "shard does not own stdio backend `{}`",
                                call.server
                            ))),
                        };
                        let _ = call.reply.send(r);
                    },
                    on_panic,
                ));
            }
            ShardMsg::StdioRespond { server, msg } => {
                if let Some(b) = shard.upstreams.borrow().get(&server) {
                    if matches!(**b, LocalBackend::Stdio(_)) {
                        b.respond(0, msg);
                    }
                }
            }
            ShardMsg::ListChanged {
                tools,
                prompts,
                resources,
            } => crate::mcp::streams::list_changed(&shard, tools, prompts, resources),
            ShardMsg::ResourceUpdated { server, uri } => {
                crate::mcp::streams::resource_updated(&shard, &server, &uri)
            }
            ShardMsg::Health {
                server,
                replica,
                healthy,
            } => {
                if let Some(b) = shard.upstreams.borrow().get(&server) {
                    if let LocalBackend::Http(h) = &**b {
                        h.set_healthy(replica, healthy);
                    }
                }
            }
            ShardMsg::Reload { removed, added } => crate::apply::apply(&shard, removed, added),
            ShardMsg::StdioLine(line) => crate::mcp::stdio_front::line(&shard, line).await,
            ShardMsg::Shutdown => {
                shard.draining.set(true);
                if let Some(s) = stop.take() {
                    let _ = s.send(());
                }
            }
        }
    }
}

async fn drain(shard: &Rc<LocalShard>, grace: Duration) {
    shard.draining.set(true);
    let deadline = Instant::now() + grace;
    while shard.inflight.get() > 0 && Instant::now() < deadline {
        monoio::time::sleep(Duration::from_millis(10)).await;
    }
    if shard.inflight.get() > 0 {
        tracing::warn!(
            shard = shard.id,
            inflight = shard.inflight.get(),
            "grace period over; dropping in-flight requests"
        );
    }
    let mut owned: Vec<_> = shard.owned_stdio.borrow_mut().drain(..).collect();
    owned.extend(crate::mcp::per_client::release_all(shard));
    for (slot, _) in &owned {
        slot.stop();
    }
    for (slot, rx) in owned {
        if let Some(rx) = rx {
            if monoio::time::timeout(Duration::from_secs(10), rx)
                .await
                .is_err()
            {
                tracing::error!(server = slot.id(), "stdio backend did not stop in time");
            }
        }
    }
    tracing::info!(shard = shard.id, "shard stopped");
}

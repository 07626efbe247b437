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
//! - [`setup`] (backends from the snapshot), [`apply`] (reloads), [`report`] (the stats
//!   report): the composition root's other work.

pub mod apply;
pub mod report;
pub mod setup;

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_channel::oneshot;

use crate::catalog::Discovery;
use crate::config::DriverChoice;
use crate::front::guard::OriginPolicy;
use crate::front::stdio::LocalStdioFront;
use crate::front::LocalFront;
use crate::http::request::Limits;
use crate::http::response::Reply;
use crate::ring::Ring;
use crate::route::request::McpHttpRequest;
use crate::route::router::{PeerStopped, Peers, Router, RouterParts};
use crate::rt::mailbox::{LocalMailbox, SharedMailboxSender};
use crate::rt::DriverKind;
use crate::snapshot::SharedSnapshotSlot;
use crate::upstream::messages::{OwnerStopped, StdioCall};
use crate::upstream::registry::Upstreams;
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
    /// A stdio backend's `notifications/tasks/status`, as it sent it: to the session whose
    /// task it is, on whichever shard.
    TaskStatus {
        /// Backend id.
        server: String,
        /// The process of the server's pool that sent it.
        instance: u32,
        /// The notification.
        msg: Vec<u8>,
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
        /// The lists it announced changed (a re-list it caused): clients hear of these
        /// kinds even if the merged lists come out the same (`catalog/changed.rs`).
        announced: crate::catalog::ListsChanged,
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

pub use crate::front::SharedMetricsText;
pub use crate::upstream::registry::OwnedStdio;

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
    /// io_uring setup flags asked for.
    pub uring_setup: Vec<crate::rt::uring_setup::UringFlag>,
    /// The Prometheus text the control thread renders.
    pub metrics_text: SharedMetricsText,
    /// Token verification keys (published by the control thread).
    pub keys: crate::auth::keys::SharedKeysSlot,
    /// The audit log (disabled unless `[audit] enabled`).
    pub audit: crate::audit::SharedAuditSink,
    /// The shared rate-limit store (`SharedRateStore::local()` unless `store = "redis"`).
    pub rate_store: crate::auth::limit_store::SharedRateStore,
    /// Token accounting (disabled unless `[metrics] tokens` names an encoding).
    pub tokens: crate::route::tokens::SharedTokenSink,
    /// OpenTelemetry spans (disabled unless `[telemetry] otlp_endpoint`).
    pub trace: crate::trace::SharedTraceSink,
    /// TLS termination (`[server.tls]`), the same config for every shard.
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    /// The gateway-wide cap on stdio starts (`proxy.max_concurrent_spawns`).
    pub spawn_gate: std::sync::Arc<crate::upstream::stdio::gate::SharedSpawnGate>,
    /// The node's readiness (`/ready`), shared with the control thread.
    pub readiness: crate::readiness::SharedReadiness,
}

/// The shard-local context shared by all of the shard's tasks: the composition root, the only
/// place that holds every layer (front, router, upstreams) and the plumbing between shards.
pub struct LocalShard {
    /// Shard index.
    pub id: usize,
    /// The MCP layer (it holds the upstreams).
    pub router: Rc<Router>,
    /// The front around the router.
    pub front: Rc<LocalFront>,
    /// Mailboxes of all shards.
    pub peers: Vec<SharedMailboxSender<ShardMsg>>,
    /// Reports to control.
    pub control: crossbeam_channel::Sender<ControlEvent>,
}

/// The router reaches other shards' routers through their mailboxes.
struct MailboxPeers(Vec<SharedMailboxSender<ShardMsg>>);

impl Peers for MailboxPeers {
    fn hand_off(
        &self,
        owner: usize,
        req: McpHttpRequest,
        reply: oneshot::Sender<Reply>,
    ) -> Result<(), PeerStopped> {
        let mailbox = self.0.get(owner).ok_or(PeerStopped)?;
        mailbox
            .send(ShardMsg::Handoff { req, reply })
            .map_err(|_| PeerStopped)
    }
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
    let flags = init.uring_setup.clone();
    crate::rt::run_on_driver(
        driver,
        entries,
        &flags,
        |chosen| {
            if let Some(reason) = &chosen.fallback {
                tracing::warn!(
                    shard = id,
                    "io_uring unavailable, falling back to epoll: {reason}"
                );
            }
            for (flag, why) in &chosen.uring.dropped {
                tracing::warn!(
                    shard = id,
                    flag = flag.as_str(),
                    "the kernel refused an io_uring setup flag; running without it: {why}"
                );
            }
            let kind = chosen.kind;
            if kind == crate::rt::DriverKind::Uring {
                tracing::info!(shard = id, driver = kind.as_str(), uring_setup = %chosen.uring.kept_text(), memlock = %crate::rt::memlock_text(), "shard runtime built");
            } else {
                tracing::info!(shard = id, driver = kind.as_str(), memlock = %crate::rt::memlock_text(), "shard runtime built");
            }
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
    let draining = Rc::new(Cell::new(false));
    let router = Rc::new(Router::new(RouterParts {
        id: init.id,
        shards: init.peers.len(),
        ring: init.ring.clone(),
        snapshot: init.snapshot.clone(),
        peers: Rc::new(MailboxPeers(init.peers.clone())),
        draining: draining.clone(),
        readiness: init.readiness.clone(),
        keys: init.keys.clone(),
        audit: init.audit.clone(),
        rate_store: init.rate_store.clone(),
        tokens: init.tokens.clone(),
        trace: init.trace.clone(),
        upstreams: Upstreams::new(init.spawn_gate.clone()),
    }));
    let control = init.control.clone();
    let front = Rc::new(LocalFront {
        router: router.clone(),
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
        connections: Cell::new(0),
        max_connections: cfg.server.max_connections_per_shard,
        inflight: Cell::new(0),
        stopped: Cell::new(false),
        panics: Cell::new(0),
        tls: init.tls.clone().map(monoio_rustls::TlsAcceptor::from),
        metrics_text: init.metrics_text.clone(),
        stdio: init.stdout.clone().map(LocalStdioFront::new),
        unknown_kid: Rc::new(move |kid: &str| {
            let _ = control.send(ControlEvent::UnknownKid(kid.into()));
        }),
    });
    let shard = Rc::new(LocalShard {
        id: init.id,
        router,
        front,
        peers: init.peers.clone(),
        control: init.control.clone(),
    });
    let grace = Duration::from_millis(cfg.server.shutdown_grace_ms);
    let connect_timeout = Duration::from_millis(cfg.proxy.connect_timeout_ms);
    crate::shard::setup::setup_backends(&shard, connect_timeout);

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
    monoio::spawn(crate::route::per_client::expiry_task(
        shard.router.clone(),
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
        let report = crate::shard::report::build(&shard);
        if shard
            .control
            .send(ControlEvent::Stats(Box::new(report)))
            .is_err()
            || shard.router.draining.get()
        {
            return;
        }
    }
}

/// The panic report of a task serving another shard's message (`rt::contain`).
fn handoff_panic(shard: &Rc<LocalShard>, what: &'static str) -> impl FnOnce(&str) + Unpin {
    let shard = shard.clone();
    move |msg: &str| {
        shard.front.panics.set(shard.front.panics.get() + 1);
        tracing::error!(
            shard = shard.id,
            "gateway fault: panic while serving {what} ({msg}); that request failed, the shard serves on"
        );
    }
}

async fn accept_loop(shard: Rc<LocalShard>, listener: monoio::net::TcpListener) {
    // A burst of connections gives way to the shard's other tasks now and then (`rt::fair`).
    let mut turn = crate::rt::fair::Budget::new(crate::rt::fair::REQUESTS_PER_TURN);
    loop {
        turn.spend().await;
        match listener.accept().await {
            Ok((stream, _peer)) => {
                let _ = stream.set_nodelay(true);
                if shard.front.connections.get() >= shard.front.max_connections {
                    // Over the limit: answer 503 at once and close, never queue.
                    monoio::spawn(crate::front::http::refuse_conn(stream));
                    continue;
                }
                // A panic while serving ends this connection only (logged, counted).
                let tag = crate::front::http::LocalConnTag::default();
                let on_panic = {
                    let (shard, tag) = (shard.clone(), tag.clone());
                    move |msg: &str| crate::front::http::report_panic(&shard.front, &tag.get(), msg)
                };
                match &shard.front.tls {
                    Some(acceptor) => {
                        monoio::spawn(crate::rt::contain::contain(
                            crate::front::http::serve_tls(
                                shard.front.clone(),
                                acceptor.clone(),
                                stream,
                                tag,
                            ),
                            on_panic,
                        ));
                    }
                    None => {
                        monoio::spawn(crate::rt::contain::contain(
                            crate::front::http::serve_conn(shard.front.clone(), stream, tag),
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
        // A message from another thread is an event of its own: the requests it carries
        // take their times from this reading (`rt/clock.rs`).
        crate::rt::clock::now();
        match msg {
            ShardMsg::Handoff { req, mut reply } => {
                let on_panic = handoff_panic(&shard, "a handed-off request");
                let shard = shard.clone();
                monoio::spawn(crate::rt::contain::contain(
                    async move {
                        shard.front.inflight.set(shard.front.inflight.get() + 1);
                        // The client's shard drops its end when the client went away: stop
                        // (the call is cancelled toward its backend on drop).
                        let r = monoio::select! {
                            r = crate::route::dispatch::handle(&shard.router, req, false) => Some(r),
                            _ = reply.cancellation() => None,
                        };
                        shard.front.inflight.set(shard.front.inflight.get() - 1);
                        if let Some(r) = r {
                            let _ = reply.send(r);
                        }
                    },
                    on_panic,
                ));
            }
            ShardMsg::StdioCall(mut call) => {
                let backend = shard
                    .router
                    .upstreams
                    .backends
                    .borrow()
                    .get(&call.server)
                    .cloned();
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
                if let Some(b) = shard.router.upstreams.backends.borrow().get(&server) {
                    if matches!(**b, LocalBackend::Stdio(_)) {
                        b.respond(0, msg);
                    }
                }
            }
            ShardMsg::ListChanged {
                tools,
                prompts,
                resources,
            } => crate::route::streams::list_changed(&shard.router, tools, prompts, resources),
            ShardMsg::ResourceUpdated { server, uri } => {
                crate::route::streams::resource_updated(&shard.router, &server, &uri)
            }
            ShardMsg::TaskStatus {
                server,
                instance,
                msg,
            } => {
                let from = crate::route::streams::PushFrom {
                    replica: instance,
                    session: None,
                };
                crate::route::pushes::status(&shard.router, &server, &from, &msg)
            }
            ShardMsg::Health {
                server,
                replica,
                healthy,
            } => {
                if let Some(b) = shard.router.upstreams.backends.borrow().get(&server) {
                    if let LocalBackend::Http(h) = &**b {
                        h.set_healthy(replica, healthy);
                    }
                }
            }
            ShardMsg::Reload { removed, added } => {
                crate::shard::apply::apply(&shard, removed, added)
            }
            ShardMsg::StdioLine(line) => crate::front::stdio::line(&shard.front, line).await,
            ShardMsg::Shutdown => {
                shard.router.draining.set(true);
                if let Some(s) = stop.take() {
                    let _ = s.send(());
                }
            }
        }
    }
}

async fn drain(shard: &Rc<LocalShard>, grace: Duration) {
    shard.router.draining.set(true);
    let deadline = Instant::now() + grace;
    while shard.front.inflight.get() > 0 && Instant::now() < deadline {
        monoio::time::sleep(Duration::from_millis(10)).await;
    }
    // The backends are stopped next: no MCP request reaches them from here on. (Not before
    // the wait: what finishes a call in flight, an answer to a relayed elicitation or a
    // retry of a parked call, must still get through.)
    shard.front.stopped.set(true);
    if shard.front.inflight.get() > 0 {
        tracing::warn!(
            shard = shard.id,
            inflight = shard.front.inflight.get(),
            "grace period over; dropping in-flight requests"
        );
    }
    let mut owned: Vec<_> = shard
        .router
        .upstreams
        .owned
        .borrow_mut()
        .drain(..)
        .collect();
    owned.extend(crate::route::per_client::release_all(&shard.router));
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

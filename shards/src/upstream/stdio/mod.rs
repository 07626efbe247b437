//! A supervised stdio backend: one child process, owned by one shard.
//!
//! The owner shard spawns the child in its own process group with `PR_SET_PDEATHSIG`, talks
//! newline-delimited JSON-RPC over socket pairs (pollable by both io_uring and epoll, unlike
//! pipes handed to monoio), logs its stderr, and multiplexes every client's calls over it by
//! remapping ids (the gateway's own counter; the pending map returns each reply to its
//! caller). When the child dies every pending call fails at once with a clear error, the
//! child is reaped, and the supervisor restarts it with exponential backoff; "ready" is only
//! reported after `initialize` succeeded and the tools were listed again.
//!
//! # Key Components
//! - [`LocalStdioSlot`]: the stable handle callers use; survives restarts.
//! - [`supervise`]: the owner shard's restart loop.
//! - `ping`: the liveness check of a running child (it must answer `ping`).

use std::cell::{Cell, RefCell};
use std::ops::Range;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_channel::{mpsc, oneshot};

mod child;
pub mod gate;
mod handshake;
mod ping;
mod stats;
mod subscribe;

use child::{kill_group, reader_task, spawn_child, stderr_task, writer_task};
pub use child::{reap, LineSplitter};

use crate::catalog::ListsChanged;
use crate::error::McpError;
use crate::snapshot::BackendSpec;
pub use crate::upstream::routes::Updates;
use crate::upstream::routes::{register, LocalRoutes, Registered};
use crate::upstream::{BackendReply, CallOpts};
use crate::wire::jsonrpc::splice;

/// Longest stdout line accepted from a child (larger lines are dropped with a warning).
const MAX_LINE: usize = 64 * 1024 * 1024;

/// The live half of a running child.
struct LocalProcess {
    writer: mpsc::UnboundedSender<Vec<u8>>,
    routes: Rc<LocalRoutes>,
    pid: i32,
}

/// The stable handle on a stdio backend; calls fail fast while the child is down.
pub struct LocalStdioSlot {
    spec: BackendSpec,
    current: RefCell<Option<LocalProcess>>,
    next_id: crate::upstream::ids::LocalIdMint,
    down_reason: RefCell<String>,
    stopping: crate::rt::flag::LocalFlag,
    /// The running child speaks 2026-07-28 (probed at each start).
    modern: Cell<bool>,
    /// The running child accepted `initialize` (a 2025 session exists).
    legacy: Cell<bool>,
    /// Per-client instance: the client's own capabilities for `initialize`.
    client_caps: Option<Vec<u8>>,
    /// The child answered its handshake at least once.
    started_once: Cell<bool>,
    /// Which of the server's `instances` this is.
    instance: usize,
    /// Calls, failures, latency and restarts of this slot.
    counters: stats::LocalSlotCounters,
}

impl LocalStdioSlot {
    /// A slot with no process yet.
    pub fn new(spec: BackendSpec) -> Self {
        Self {
            spec,
            current: RefCell::new(None),
            next_id: crate::upstream::ids::LocalIdMint::new(),
            down_reason: RefCell::new("starting".into()),
            stopping: crate::rt::flag::LocalFlag::new(),
            modern: Cell::new(false),
            legacy: Cell::new(false),
            client_caps: None,
            started_once: Cell::new(false),
            instance: 0,
            counters: Default::default(),
        }
    }

    /// The same slot, as instance `k` of its server.
    pub fn with_instance(mut self, k: usize) -> Self {
        self.instance = k;
        self
    }

    /// A slot whose process serves one client session (declares that client's capabilities).
    pub fn for_client(spec: BackendSpec, client_caps: Vec<u8>) -> Self {
        let mut s = Self::new(spec);
        s.client_caps = Some(client_caps);
        s
    }

    /// Backend id.
    pub fn id(&self) -> &str {
        &self.spec.id
    }

    /// (2025 session, 2026 stateless) of the running child.
    pub fn eras(&self) -> (bool, bool) {
        (self.legacy.get(), self.modern.get())
    }

    /// Sends a request and awaits its response. Related messages go to `opts.events`; on
    /// timeout or client cancellation the child gets `notifications/cancelled` for our id.
    pub async fn call(
        &self,
        body: &[u8],
        id: Range<usize>,
        opts: CallOpts,
    ) -> Result<BackendReply, McpError> {
        let started = self.counters.start();
        let r = self.call_inner(body, id, opts).await;
        self.counters.end(started, &r);
        r
    }

    async fn call_inner(
        &self,
        body: &[u8],
        id: Range<usize>,
        opts: CallOpts,
    ) -> Result<BackendReply, McpError> {
        if opts.wait_first_start && !self.started_once.get() {
            // First start still under way (a per-client process was just spawned): wait.
            let deadline = std::time::Instant::now() + opts.timeout;
            while !self.started_once.get()
                && !self.stopping.get()
                && *self.down_reason.borrow() == "starting"
                && std::time::Instant::now() < deadline
            {
                monoio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        let our_id = self.next_id.mint();
        let modern_body;
        // A dual-era child gets 2026 requests only for 2026 clients and discovery.
        let use_modern = self.modern.get() && (!self.legacy.get() || opts.modern);
        let (body, id) = if use_modern {
            modern_body =
                crate::upstream::modern::to_modern(body, id, opts.client_caps.as_deref())?;
            (&modern_body.0[..], modern_body.1)
        } else {
            (body, id)
        };
        let pinned = opts.pin.is_some_and(|p| p.epoch != 0);
        let (rx, writer, routes, pid) = {
            let cur = self.current.borrow();
            // A task lives in the process that created it: once that one is gone, so is it.
            let epoch = cur.as_ref().map_or(0, |p| p.pid as u64);
            if pinned && opts.pin.is_some_and(|p| p.epoch != epoch) {
                return Err(crate::upstream::task_lost(
                    &self.spec.id,
                    "the process that ran it exited (it was restarted)",
                ));
            }
            let Some(p) = cur.as_ref() else {
                return Err(McpError::BackendUnavailable {
                    server: self.spec.id.clone(),
                    reason: self.down_reason.borrow().clone(),
                });
            };
            let id_text = our_id.to_string();
            let mut wire = Vec::with_capacity(body.len() + 24);
            splice(body, &[(id, id_text.as_bytes())], &mut wire);
            wire.push(b'\n');
            let (reg, rx) = register(
                &p.routes,
                our_id,
                opts.events.as_ref(),
                opts.progress.as_deref(),
                opts.related_task.as_deref(),
                opts.listen,
            );
            if p.writer.unbounded_send(wire).is_err() {
                // `reg` goes here, and the routes with it.
                return Err(McpError::BackendUnavailable {
                    server: self.spec.id.clone(),
                    reason: "process is exiting".into(),
                });
            }
            (rx, p.writer.clone(), reg, p.pid as u64)
        };
        // Cleans up however the call ends, dropped included (the client went away): the
        // pending entry, progress route and sink go, and the child hears a cancellation.
        let mut cleanup = Cleanup {
            reg: routes,
            writer: &writer,
            id: our_id,
            cancel: Some("the client went away"),
        };
        let cancel = crate::upstream::cancelled(opts.cancel);
        let outcome = monoio::select! {
            r = crate::upstream::within(opts.timeout, opts.deadline.as_ref(), rx) => match r {
                Ok(Ok(r)) => r.map(|mut r| {
                    r.origin = crate::upstream::Origin { replica: self.instance, epoch: pid };
                    r
                }),
                Ok(Err(_)) if pinned => Err(crate::upstream::task_lost(
                    &self.spec.id,
                    "the process that ran it exited",
                )),
                Ok(Err(_)) => Err(McpError::BackendUnavailable {
                    server: self.spec.id.clone(),
                    reason: "process exited before answering".into(),
                }),
                Err(_) => Err(McpError::BackendTimeout {
                    server: self.spec.id.clone(),
                    ms: opts.timeout.as_millis() as u64,
                }),
            },
            _ = cancel => Err(McpError::Cancelled),
        };
        cleanup.cancel = match outcome {
            Err(McpError::Cancelled) => Some("cancelled by client"),
            Err(McpError::BackendTimeout { .. }) => Some("gateway timeout"),
            _ => None,
        };
        drop(cleanup);
        outcome
    }

    /// Writes one message (a line is appended) to the running child, if any.
    pub fn send_raw(&self, mut msg: Vec<u8>) {
        if let Some(p) = self.current.borrow().as_ref() {
            p.routes.answered(&msg);
            msg.push(b'\n');
            let _ = p.writer.unbounded_send(msg);
        }
    }

    /// Asks the supervisor to stop the child for good (shutdown).
    pub fn stop(&self) {
        self.stopping.set();
        // Closing the child's stdin is the polite first step; an empty message tells the
        // writer task to shut the socket (the reader task also holds a sender).
        if let Some(p) = self.current.borrow_mut().take() {
            let _ = p.writer.unbounded_send(Vec::new());
        }
    }

    /// Pid of the running child, if any.
    pub fn pid(&self) -> Option<i32> {
        self.current.borrow().as_ref().map(|p| p.pid)
    }
}

/// The end of one call on a child's channel, however it ends (see `call_inner`).
struct Cleanup<'a> {
    reg: Registered<'a>,
    writer: &'a futures_channel::mpsc::UnboundedSender<Vec<u8>>,
    id: u64,
    /// Tell the child to stop working on it, and why.
    cancel: Option<&'static str>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let unanswered = self.reg.release();
        if let Some(reason) = self.cancel.filter(|_| unanswered) {
            let cancel = format!(
                "{{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{{\"requestId\":{},\"reason\":\"{reason}\"}}}}\n",
                self.id
            );
            let _ = self.writer.unbounded_send(cancel.into_bytes());
        }
    }
}

/// Exits within [`CRASH_WINDOW`] that make a crash loop.
const CRASH_LOOP_EXITS: usize = 5;
/// The crash-loop window.
const CRASH_WINDOW: Duration = Duration::from_secs(60);
/// How long a crash-looping server is parked before it is tried again.
const CRASH_PARK: Duration = Duration::from_secs(300);

/// What the supervisor reports after each (re)start and re-list: the lists, or why it is
/// down; with the list kinds the backend announced changed (re-lists it caused).
pub type Report = Rc<dyn Fn(Result<crate::catalog::Discovery, String>, ListsChanged)>;

/// Runs the child of `slot` until the slot is stopped: spawn, handshake, list tools, report,
/// wait for exit, reap, back off, repeat. `stopped` fires once the child is gone for good.
/// Without `report` the instance does not feed the catalog (a client's own process, a pool
/// member after the first): it is neither re-listed nor listened to.
pub async fn supervise(
    slot: Rc<LocalStdioSlot>,
    timeout: Duration,
    report: Option<Report>,
    updates: Updates,
    stopped: oneshot::Sender<()>,
    gate: std::sync::Arc<gate::SharedSpawnGate>,
) {
    let say = |r: Result<crate::catalog::Discovery, String>| {
        if let Some(f) = &report {
            f(r, ListsChanged::NONE);
        }
    };
    let mut backoff = Duration::from_millis(250);
    let mut exits: std::collections::VecDeque<Instant> = std::collections::VecDeque::new();
    while !slot.stopping.get() {
        let permit = match gate.try_acquire() {
            Some(p) => p,
            None => {
                let reason = "waiting for a start slot (proxy.max_concurrent_spawns)";
                tracing::info!(server = %slot.spec.id, starting = gate.in_use(), "{reason}");
                *slot.down_reason.borrow_mut() = reason.into();
                match gate.acquire(|| slot.stopping.get()).await {
                    Some(p) => p,
                    None => break,
                }
            }
        };
        let started = Instant::now();
        match spawn_child(&slot.spec) {
            Err(e) => {
                drop(permit);
                let reason = format!("cannot start `{}`: {e}", slot.spec.command);
                tracing::error!(server = %slot.spec.id, "{reason}");
                *slot.down_reason.borrow_mut() = reason.clone();
                say(Err(reason));
            }
            Ok((mut child, stdin, stdout, stderr)) => {
                let pid = child.id() as i32;
                tracing::info!(server = %slot.spec.id, pid, "stdio backend started");
                let (wtx, wrx) = mpsc::unbounded();
                let routes = Rc::new(LocalRoutes::default());
                let (relist_tx, relist_rx) = crate::upstream::relist::channel();
                *routes.relist.borrow_mut() = Some(relist_tx.clone());
                *routes.unrelated.borrow_mut() = Some(updates.clone());
                monoio::spawn(writer_task(stdin, wrx));
                monoio::spawn(stderr_task(slot.spec.id.clone(), stderr));
                let reader = monoio::spawn(reader_task(
                    slot.spec.id.clone(),
                    stdout,
                    routes.clone(),
                    wtx.clone(),
                ));
                *slot.current.borrow_mut() = Some(LocalProcess {
                    writer: wtx,
                    routes,
                    pid,
                });
                // A stop during the handshake must not wait for it (it may never answer).
                let handshake = monoio::select! {
                    r = handshake::handshake_and_list(&slot, timeout) => Some(r),
                    _ = wait_stopping(&slot) => None,
                };
                // The costly part of a start is over, whatever its outcome.
                drop(permit);
                match handshake.unwrap_or_else(|| Err(McpError::Gateway("stopping".into()))) {
                    Ok(found) => {
                        tracing::info!(
                            server = %slot.spec.id,
                            tools = found.tools.len(),
                            prompts = found.prompts.len(),
                            resources = found.resources.len(),
                            "stdio backend ready"
                        );
                        let caps = found.caps.clone();
                        slot.started_once.set(true);
                        *slot.down_reason.borrow_mut() = "ready".into();
                        say(Ok(found));
                        monoio::spawn(ping::ping_task(slot.clone(), pid));
                        if let Some(report) = &report {
                            // A 2026 child announces list changes only on a listen stream.
                            if slot.modern.get() && caps.list_changed {
                                monoio::spawn(subscribe::listen(slot.clone(), pid, relist_tx));
                            }
                            monoio::spawn(relist_task(
                                slot.clone(),
                                caps,
                                timeout,
                                report.clone(),
                                relist_rx,
                            ));
                        }
                    }
                    Err(e) => {
                        if !slot.stopping.get() {
                            tracing::error!(server = %slot.spec.id, "stdio backend failed its handshake: {e}");
                            *slot.down_reason.borrow_mut() = e.reason_for_backend();
                            say(Err(e.reason_for_backend()));
                        }
                        slot.current.borrow_mut().take();
                        kill_group(pid, libc::SIGTERM);
                    }
                }
                // Wait for the child's stdout to close (exit, crash, or our stop/kill).
                let stop_watch = wait_stopping(&slot);
                monoio::select! {
                    _ = reader => {},
                    _ = stop_watch => {},
                }
                slot.current.borrow_mut().take();
                if !slot.stopping.get() {
                    // Fail fast with a true reason while the child is reaped and restarted,
                    // and tell the catalog at once so /health never says "ready" for it.
                    *slot.down_reason.borrow_mut() = "process exited; restarting".into();
                    say(Err("process exited; restarting".into()));
                }
                let grace = if slot.stopping.get() {
                    Duration::from_millis(500)
                } else {
                    Duration::from_millis(100)
                };
                let status = reap(&mut child, grace).await;
                if slot.stopping.get() {
                    tracing::info!(server = %slot.spec.id, pid, %status, "stdio backend stopped");
                    break;
                }
                let reason = format!("process exited ({status}); restarting");
                slot.counters.restarted();
                tracing::warn!(server = %slot.spec.id, pid, "stdio backend {reason} in {backoff:?}");
                *slot.down_reason.borrow_mut() = reason.clone();
                say(Err(reason));
            }
        }
        if started.elapsed() > Duration::from_secs(60) {
            backoff = Duration::from_millis(250);
        }
        // Crash-loop detection: too many exits in the window parks the server (and says so)
        // instead of spawning it over and over.
        let now = Instant::now();
        exits.push_back(now);
        while exits
            .front()
            .is_some_and(|t| now.duration_since(*t) > CRASH_WINDOW)
        {
            exits.pop_front();
        }
        let mut wait = backoff;
        if exits.len() >= CRASH_LOOP_EXITS {
            let reason = format!(
                "crash loop: {} exits within {}s; parked for {}s",
                exits.len(),
                CRASH_WINDOW.as_secs(),
                CRASH_PARK.as_secs()
            );
            tracing::error!(server = %slot.spec.id, "{reason}");
            *slot.down_reason.borrow_mut() = reason.clone();
            say(Err(reason));
            exits.clear();
            wait = CRASH_PARK;
        }
        monoio::select! {
            _ = monoio::time::sleep(wait) => {},
            _ = slot.stopping.wait() => {},
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
    let _ = stopped.send(());
}

/// Resolves once the slot is asked to stop.
async fn wait_stopping(slot: &LocalStdioSlot) {
    slot.stopping.wait().await
}

/// Re-lists a backend each time it says a list changed (coalesced and paced by the signal,
/// `upstream/relist.rs`); ends when the process does (its pokers go with it).
async fn relist_task(
    slot: Rc<LocalStdioSlot>,
    caps: crate::catalog::BackendCaps,
    timeout: Duration,
    report: Report,
    mut rx: crate::upstream::relist::RelistRx,
) {
    while let Some(announced) = rx.next().await {
        let backend = crate::upstream::LocalBackend::Stdio(slot.clone());
        match crate::upstream::discover(&slot.spec.id, &backend, caps.clone(), timeout).await {
            Ok(found) => {
                tracing::info!(server = %slot.spec.id, tools = found.tools.len(), "backend lists changed; catalog refreshed");
                let announced = announced.declared_by(&found.caps);
                report(Ok(found), announced);
            }
            Err(e) => {
                tracing::warn!(server = %slot.spec.id, "re-listing after list_changed failed: {e}")
            }
        }
    }
}

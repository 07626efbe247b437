//! Backends as one shard sees them, and the MCP client side of the gateway.
//!
//! Every shard has a registry ([`registry::Upstreams`]) with one entry per backend: its own HTTP
//! keep-alive pool and upstream sessions ([`http`]), the stdio child it owns ([`stdio`]), or a
//! pointer to the shard that owns the child (calls are then handed to that shard's mailbox).
//! Requests travel as bytes with the id's range marked, so each transport splices its own id
//! in; replies come back as the backend's message with its id range marked, so the caller
//! splices the client's id back. Bodies are never re-serialized.
//!
//! # Key Components
//! - [`BackendReply`]: one response message from a backend; [`BackendEvent`]: one message
//!   related to a call (progress, log, server-to-client request).
//! - [`LocalBackend`]: the per-shard handle, whatever the transport: Streamable HTTP
//!   ([`http`], with the gateway's GET stream [`listen`]), stdio ([`stdio`]) or the deprecated HTTP+SSE ([`sse_legacy`]); the
//!   2026-07-28 era toward backends that speak it ([`modern`]), and the gateway's own
//!   `subscriptions/listen` toward them ([`subscribe`]).
//! - [`relist`]: the bounded, paced "lists may have changed" signal that re-discovery waits on.
//! - [`registry::Upstreams`]: all of one shard's backends, children and in-flight counts.
//! - [`routes`]: where a channel's messages go (replies by id, progress by token); [`ids`]:
//!   unguessable request ids; [`rewake`]: a call's timeout kept across tasks; [`link`]: what
//!   a caller and its running call share in one allocation (deadline, cancellation, related
//!   messages); `deadline.rs`: waiting on the deadline and on cancellation;
//!   [`messages`]: work carried between shards.
//! - [`discover`]: the handshake-independent part of catalog discovery (every page followed),
//!   with the requests the gateway makes as a client (`client.rs`).

pub mod http;
pub mod ids;
pub mod listen;
pub mod messages;
pub mod modern;
pub mod registry;
pub mod relist;
pub mod rewake;
pub mod routes;
pub mod sse_legacy;
pub mod stdio;
pub mod subscribe;

mod client;
mod deadline;
pub mod link;

pub use client::*;
pub use deadline::{cancelled, deadline_in, extend_deadline, within};
pub use link::{epoch, CancelRx, CancelTx, Deadline, EventRx, EventTx};

use std::ops::Range;
use std::rc::Rc;
use std::time::Duration;

use crate::error::McpError;
use crate::wire::jsonrpc::{Envelope, Kind};

/// A message a backend sent in relation to a call: a notification (progress, log) or a
/// server-to-client request (sampling, elicitation, roots), verbatim.
#[derive(Debug)]
pub struct BackendEvent {
    /// The JSON-RPC message.
    pub msg: Vec<u8>,
    /// The replica it came from (answers to requests must go back to it).
    pub replica: usize,
}

/// Options of one backend call.
#[derive(Default)]
pub struct CallOpts {
    /// Give up after this long (`notifications/cancelled` is sent where the transport can).
    pub timeout: Duration,
    /// Related messages of this call go here when set.
    pub events: Option<EventTx>,
    /// The progress token the request carries (raw JSON), for stdio routing.
    pub progress: Option<Vec<u8>>,
    /// Fires when the client cancelled the request.
    pub cancel: Option<CancelRx>,
    /// The clock reading the caller took as the call's start (`rt/clock.rs`): the balancer's
    /// `now` and the start of the replica's latency. `None`: the transport reads the clock.
    pub started: Option<std::time::Instant>,
    /// A client call: if the backend is still in its first start, wait for it (within the
    /// timeout) instead of failing at once. The gateway's own handshake calls do not wait.
    pub wait_first_start: bool,
    /// Send in the 2026-07-28 era when the backend speaks it (a 2026 client's request, or
    /// the gateway's own discovery); otherwise a dual-era backend gets its 2025 session.
    pub modern: bool,
    /// Affinity key for `consistent_hash` balancing (a hash of the client's session id).
    pub affinity: u64,
    /// A deadline the caller may push back while the call runs (progress extends it, up to
    /// a hard maximum); `None` = a fixed `timeout`.
    pub deadline: Option<Deadline>,
    /// May be retried on another replica if it could not be delivered.
    pub retry_safe: bool,
    /// A `tools/call` of a tool with `x-mcp-header` arguments: toward a 2026 HTTP backend,
    /// their `Mcp-Param-*` headers, computed from the body sent (`upstream/modern.rs`).
    pub tool_headers: Option<std::sync::Arc<crate::catalog::params::ToolHeaders>>,
    /// A 2025-era client's capabilities the gateway can bridge (`elicitation`, `sampling`,
    /// `roots`, as the client declared them): a 2026 backend is told them in `_meta`
    /// `clientCapabilities`, and its `input_required` is relayed to the client
    /// (`route/relay_input.rs`). `None`: `{}` (the gateway's own requests, a client that
    /// declared none of them, or a 2026 client, whose `_meta` travels as is).
    pub client_caps: Option<std::sync::Arc<[u8]>>,
    /// The request is a `subscriptions/listen` ([`LocalBackend::listen`]): over a channel
    /// without request links (stdio) its events are only the messages naming it
    /// (`subscriptionId`), and it is never taken for the call a log line belongs to.
    pub listen: bool,
    /// A follow-up of a task (`tasks/get` and the like): send it to this replica (HTTP) or
    /// instance (stdio `instances`), and only if the upstream that created the task is the
    /// one still there (its epoch, when not 0); otherwise fail with
    /// [`McpError::TaskLost`] without sending anything.
    pub pin: Option<Origin>,
    /// The task a follow-up is about, as the backend's id (raw JSON string): on a channel
    /// without request links (stdio), the backend's requests naming it go to this call.
    pub related_task: Option<Vec<u8>>,
    /// The call's trace context, sent to HTTP backends as `traceparent`/`tracestate`
    /// headers (`None`: tracing off).
    pub trace: Option<crate::trace::Outgoing>,
}

/// Which upstream answered a call: the replica (HTTP) or instance (stdio pool), and an
/// epoch naming the process or upstream session that ran it (a stdio child's pid, a 2025
/// HTTP session's id hashed; 0 where nothing identifies it, a stateless 2026 replica).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Origin {
    /// Replica or instance index.
    pub replica: usize,
    /// The process or upstream session; 0 = not known.
    pub epoch: u64,
}

/// An upstream session id as an epoch (FNV-1a, never 0).
pub fn epoch_of(session_id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in session_id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h.max(1)
}

/// The error of a pinned call whose upstream is no longer the one that created the task.
pub fn task_lost(server: &str, reason: &str) -> McpError {
    McpError::TaskLost {
        server: server.to_string(),
        reason: reason.to_string(),
    }
}

impl CallOpts {
    /// The same options for a retry on another replica (the cancel signal stays with the
    /// first attempt's caller).
    pub fn retry_copy(&self) -> CallOpts {
        CallOpts {
            timeout: self.timeout,
            events: self.events.clone(),
            progress: self.progress.clone(),
            cancel: None,
            started: None,
            wait_first_start: self.wait_first_start,
            modern: self.modern,
            affinity: self.affinity,
            deadline: self.deadline.clone(),
            retry_safe: false,
            pin: self.pin,
            related_task: self.related_task.clone(),
            tool_headers: self.tool_headers.clone(),
            client_caps: self.client_caps.clone(),
            listen: self.listen,
            trace: self.trace.clone(),
        }
    }

    /// Just a timeout.
    pub fn timeout(timeout: Duration) -> Self {
        CallOpts {
            timeout,
            ..Default::default()
        }
    }
}

/// One response message from a backend, verbatim, with its `id` range.
#[derive(Debug)]
pub struct BackendReply {
    /// The whole JSON-RPC response object.
    pub body: Vec<u8>,
    /// Where its id sits in `body`.
    pub id: Range<usize>,
    /// The replica (or instance) and upstream that answered (set by the transport).
    pub origin: Origin,
}

impl BackendReply {
    /// Validates that `body` is a response and finds its id.
    pub fn from_message(server: &str, body: Vec<u8>) -> Result<Self, McpError> {
        let env = Envelope::parse(&body).map_err(|e| McpError::BackendProtocol {
            server: server.to_string(),
            reason: e.to_string(),
        })?;
        match (env.kind, env.id) {
            (Kind::Response, Some(id)) => Ok(BackendReply {
                body,
                id,
                origin: Origin::default(),
            }),
            _ => Err(McpError::BackendProtocol {
                server: server.to_string(),
                reason: "expected a JSON-RPC response".into(),
            }),
        }
    }

    /// The `result` value's bytes, or the backend's JSON-RPC error as an [`McpError`].
    pub fn result(&self, server: &str) -> Result<&[u8], McpError> {
        if let Ok(r) = sonic_rs::get(&self.body[..], &["result"]) {
            let raw = r.as_raw_str();
            let start = raw.as_ptr() as usize - self.body.as_ptr() as usize;
            return Ok(&self.body[start..start + raw.len()]);
        }
        let msg = sonic_rs::get(&self.body[..], &["error", "message"])
            .ok()
            .and_then(|m| {
                use sonic_rs::JsonValueTrait;
                m.as_str().map(str::to_string)
            })
            .unwrap_or_else(|| "error without message".into());
        Err(McpError::BackendProtocol {
            server: server.to_string(),
            reason: format!("backend answered with an error: {msg}"),
        })
    }
}

/// A shard's handle on one backend.
pub enum LocalBackend {
    /// Streamable HTTP: this shard's own pool.
    Http(Rc<http::LocalHttpBackend>),
    /// stdio child owned by this shard.
    Stdio(Rc<stdio::LocalStdioSlot>),
    /// Several stdio processes of one stateless server (`instances = K`), spread over the
    /// shards; calls rotate over them.
    Pool {
        /// One member per instance: this shard's own child, or a pointer to its owner.
        members: Vec<Rc<LocalBackend>>,
        /// Round-robin position.
        next: std::cell::Cell<usize>,
    },
    /// stdio child owned by another shard: calls go to its mailbox.
    RemoteStdio {
        /// Backend id.
        id: String,
        /// Where the owner shard takes the work.
        owner: Rc<dyn messages::StdioOwner>,
    },
}

impl LocalBackend {
    /// A reload removed or changed this server: its background tasks end (stdio children
    /// are stopped by their owner shard after draining, see `apply.rs`).
    pub fn retire(&self) {
        match self {
            LocalBackend::Http(h) => h.retire(),
            LocalBackend::Pool { members, .. } => members.iter().for_each(|m| m.retire()),
            LocalBackend::Stdio(_) | LocalBackend::RemoteStdio { .. } => {}
        }
    }

    /// Whether [`retire`](Self::retire) was called (HTTP backends).
    pub fn retired(&self) -> bool {
        matches!(self, LocalBackend::Http(h) if h.retired())
    }

    /// Sends one request (`body` with a placeholder id at `id`) and awaits its response.
    pub async fn call(
        &self,
        body: Vec<u8>,
        id: Range<usize>,
        opts: CallOpts,
    ) -> Result<BackendReply, McpError> {
        match self {
            // Sent: the request's buffer goes back to the shard's list (`rt/bufs.rs`).
            LocalBackend::Http(h) => {
                let r = h.call(&body, id, opts).await;
                crate::rt::bufs::give(body);
                r
            }
            LocalBackend::Stdio(s) => {
                let r = s.call(&body, id, opts).await;
                // The answer's clock reading (HTTP's is taken by its balancer, `choose.rs`).
                crate::rt::clock::now();
                crate::rt::bufs::give(body);
                r
            }
            LocalBackend::Pool { members, next } => {
                let k = match opts.pin {
                    Some(pin) if pin.replica >= members.len() => {
                        return Err(task_lost(
                            &self.id(),
                            "its instance is no longer configured",
                        ))
                    }
                    Some(pin) => pin.replica,
                    None => {
                        let k = next.get() % members.len();
                        next.set(k + 1);
                        k
                    }
                };
                let mut opts = opts;
                if let Some(events) = opts.events.take() {
                    // Stamp the instance on the events, so an answer to a server-to-client
                    // request goes back to the same process.
                    let (tx, mut rx) = Deadline::none().events();
                    monoio::spawn(async move {
                        while let Some(mut ev) = crate::rt::next(&mut rx).await {
                            ev.replica = k;
                            if events.unbounded_send(ev).is_err() {
                                return;
                            }
                        }
                    });
                    opts.events = Some(tx);
                }
                let mut r = Box::pin(members[k].call(body, id, opts)).await?;
                r.origin.replica = k;
                Ok(r)
            }
            LocalBackend::RemoteStdio { id: server, owner } => {
                let (tx, rx) = futures_channel::oneshot::channel();
                let call = messages::StdioCall {
                    server: server.clone(),
                    body,
                    id,
                    opts,
                    reply: tx,
                };
                if owner.post_call(call).is_err() {
                    return Err(McpError::Gateway("owner shard has stopped".into()));
                }
                let r = rx.await.unwrap_or_else(|_| {
                    Err(McpError::Gateway("owner shard dropped the call".into()))
                });
                // The answer's clock reading on this shard (the owner's is its own).
                crate::rt::clock::now();
                r
            }
        }
    }
}

impl LocalBackend {
    /// The backend's id.
    pub fn id(&self) -> String {
        match self {
            LocalBackend::Http(h) => h.id().to_string(),
            LocalBackend::Stdio(s) => s.id().to_string(),
            LocalBackend::Pool { members, .. } => members[0].id(),
            LocalBackend::RemoteStdio { id, .. } => id.clone(),
        }
    }

    /// Which eras the backend speaks right now: (2025 session, 2026 stateless).
    pub fn eras(&self) -> (bool, bool) {
        match self {
            LocalBackend::Http(h) => h.eras(),
            LocalBackend::Stdio(s) => s.eras(),
            LocalBackend::Pool { members, .. } => members[0].eras(),
            LocalBackend::RemoteStdio { .. } => (true, false),
        }
    }

    /// Holds a `subscriptions/listen` of the caller's own making open (`body`, its id the
    /// placeholder at `id`) until the backend ends it, `stop` fires, or `limit` passes;
    /// every message of it (the acknowledgment, the notifications, the final answer) goes
    /// to `events`. HTTP: a connection of its own (never a pooled one, which it would hold
    /// for its whole life); stdio: a request on the child's channel, whose notifications
    /// reach `events` by their `subscriptionId` (`routes.rs`). `Err` says why it broke.
    pub async fn listen(
        &self,
        body: Vec<u8>,
        id: Range<usize>,
        events: EventTx,
        stop: CancelRx,
        limit: Duration,
    ) -> Result<(), String> {
        if let LocalBackend::Http(h) = self {
            return monoio::select! {
                r = monoio::time::timeout(limit, h.listen_stream(&body, &events)) => r.unwrap_or(Ok(())),
                _ = cancelled(Some(stop)) => Ok(()),
            };
        }
        let opts = CallOpts {
            events: Some(events.clone()),
            cancel: Some(stop),
            modern: true,
            listen: true,
            ..CallOpts::timeout(limit)
        };
        match Box::pin(self.call(body, id, opts)).await {
            Ok(reply) => {
                let _ = events.unbounded_send(BackendEvent {
                    msg: reply.body,
                    replica: 0,
                });
                Ok(())
            }
            Err(McpError::Cancelled | McpError::BackendTimeout { .. }) => Ok(()),
            Err(e) => Err(e.reason_for_backend()),
        }
    }

    /// Sends a message that answers a server-to-client request back to the backend (and the
    /// replica and upstream session) it came from.
    pub fn respond(&self, replica: usize, msg: Vec<u8>) {
        match self {
            LocalBackend::Http(h) => h.respond(replica, msg),
            LocalBackend::Stdio(s) => s.send_raw(msg),
            LocalBackend::Pool { members, .. } => {
                if let Some(m) = members.get(replica) {
                    m.respond(0, msg);
                }
            }
            LocalBackend::RemoteStdio { id, owner } => {
                owner.post_respond(id.clone(), msg);
            }
        }
    }
}

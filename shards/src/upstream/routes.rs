//! Routing what a backend sends over a message channel that carries no request link
//! (stdio lines, legacy HTTP+SSE events) to the calls waiting on it.
//!
//! Replies are matched by the gateway's own ids, progress by the gateway's tokens; a log
//! line or a server-to-client request can only be attributed when exactly one call is in
//! flight, so with none or several it is logged (or refused to the backend) rather than
//! guessed. Shared by [`crate::upstream::stdio`] and [`crate::upstream::sse_legacy`].

use std::cell::RefCell;
use std::rc::Rc;

use ahash::RandomState;
use futures_channel::{mpsc, oneshot};
use hashbrown::HashMap;

use crate::error::McpError;
use crate::mcp::jsonrpc::{Envelope, Kind};
use crate::upstream::{BackendEvent, BackendReply, EventTx};

pub(crate) type Pending =
    HashMap<u64, oneshot::Sender<Result<BackendReply, McpError>>, RandomState>;

/// Where the reader sends what arrives on a child's stdout: replies by id, progress by token,
/// other related notifications to the one call in flight (stdio carries no request link, so
/// with several calls in flight a log line cannot be attributed and is only logged).
#[derive(Default)]
pub(crate) struct LocalRoutes {
    pub(crate) pending: RefCell<Pending>,
    pub(crate) progress: RefCell<HashMap<Vec<u8>, EventTx, RandomState>>,
    pub(crate) sinks: RefCell<Vec<(u64, EventTx)>>,
    /// Signals the supervisor that the backend's lists changed (re-discover).
    pub(crate) relist: RefCell<Option<mpsc::UnboundedSender<()>>>,
    /// Unrelated notifications for clients (resources/updated), as the backend sent them.
    pub(crate) unrelated: RefCell<Option<Updates>>,
}

/// Receives a backend's `notifications/resources/updated` messages.
pub type Updates = Rc<dyn Fn(Vec<u8>)>;

/// Routes one message a backend sent (a stdio line, or an SSE event of a legacy HTTP+SSE
/// backend): a response to its waiting call, a progress notification to its call, a log line
/// or server-to-client request to the one call in flight (refused with none or several), a
/// list change to re-discovery. `send` writes an answer back to the backend; `channel` names
/// where the message came from, for the log.
pub(crate) fn handle_message(
    server: &str,
    line: &[u8],
    routes: &LocalRoutes,
    send: &dyn Fn(Vec<u8>),
    channel: &str,
) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    let env = match Envelope::parse(line) {
        Ok(e) => e,
        Err(e) => {
            let shown = String::from_utf8_lossy(&line[..line.len().min(120)]).into_owned();
            tracing::warn!(server = %server, error = %e, line = %shown, channel, "backend wrote a non-JSON-RPC line; ignored");
            return;
        }
    };
    match env.kind {
        Kind::Response => {
            let id = env.id.clone().unwrap_or_default();
            let key = std::str::from_utf8(&line[id.clone()])
                .ok()
                .and_then(|s| s.parse::<u64>().ok());
            let tx = key.and_then(|k| routes.pending.borrow_mut().remove(&k));
            match tx {
                Some(tx) => {
                    let _ = tx.send(Ok(BackendReply {
                        body: line.to_vec(),
                        id,
                    }));
                }
                None => {
                    tracing::debug!(server = %server, "response for an unknown or finished request dropped")
                }
            }
        }
        Kind::Request => {
            // A server-to-client request goes to the client of the one call in flight; stdio
            // cannot say which call it belongs to, so with none or several it is refused.
            if env.method.as_deref() != Some("ping") {
                let sinks = routes.sinks.borrow();
                if let [(_, tx)] = sinks.as_slice() {
                    let _ = tx.unbounded_send(BackendEvent {
                        msg: line.to_vec(),
                        replica: 0,
                    });
                    return;
                }
            }
            let raw_id = env.id_bytes(line);
            let mut out = Vec::with_capacity(160);
            out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
            out.extend_from_slice(raw_id);
            if env.method.as_deref() == Some("ping") {
                out.extend_from_slice(b",\"result\":{}}");
            } else {
                out.extend_from_slice(
                    b",\"error\":{\"code\":-32603,\"message\":\"the gateway cannot tell which client this request is for (no single call in flight)\"}}",
                );
            }
            send(out);
        }
        Kind::Notification => route_notification(server, line, &env, routes),
    }
}

fn route_notification(server: &str, line: &[u8], env: &Envelope<'_>, routes: &LocalRoutes) {
    let method = env.method.as_deref().unwrap_or("");
    if method == "notifications/progress" {
        let tok = sonic_rs::get(line, ["params", "progressToken"])
            .ok()
            .map(|v| v.as_raw_str().as_bytes().to_vec());
        let sink = tok.and_then(|t| routes.progress.borrow().get(&t).cloned());
        match sink {
            Some(tx) => {
                let _ = tx.unbounded_send(BackendEvent {
                    msg: line.to_vec(),
                    replica: 0,
                });
            }
            None => {
                tracing::debug!(server = %server, "progress for an unknown or finished token dropped")
            }
        }
        return;
    }
    if method.ends_with("/list_changed") {
        if let Some(tx) = routes.relist.borrow().as_ref() {
            let _ = tx.unbounded_send(());
        }
        return;
    }
    if method == "notifications/resources/updated" {
        if let Some(f) = routes.unrelated.borrow().as_ref() {
            f(line.to_vec());
        }
        return;
    }
    if method == "notifications/message" || method == "notifications/cancelled" {
        let sinks = routes.sinks.borrow();
        if let [(_, tx)] = sinks.as_slice() {
            let _ = tx.unbounded_send(BackendEvent {
                msg: line.to_vec(),
                replica: 0,
            });
            return;
        }
    }
    tracing::debug!(server = %server, method, "backend notification not relayed");
}

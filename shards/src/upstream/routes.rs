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
use sonic_rs::JsonValueTrait;

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
            let failed = fail_attributable(server, line, &e, routes);
            tracing::warn!(server = %server, error = %e, line = %shown, channel, failed_call = failed, "backend wrote a non-JSON-RPC line; ignored unless it names a call");
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

/// A backend message the envelope refused may still say which call it is about: a readable
/// id of a pending call (a reply too deep or otherwise malformed), or a JSON-RPC error with
/// id `null` (the backend could not read a request: a parse error) while exactly one call is
/// pending on this channel. That call fails at once, blamed on the backend, instead of
/// waiting for its timeout. Returns whether a call was failed.
fn fail_attributable(server: &str, line: &[u8], e: &McpError, routes: &LocalRoutes) -> bool {
    let hint = Envelope::id_hint(line);
    let by_id = std::str::from_utf8(hint)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .and_then(|k| routes.pending.borrow_mut().remove(&k));
    let (tx, reason) = match by_id {
        Some(tx) => (tx, format!("its reply is not valid JSON-RPC ({e})")),
        None if hint == b"null" && is_null_id_error(line) => {
            let mut pending = routes.pending.borrow_mut();
            if pending.len() != 1 {
                return false;
            }
            let Some(k) = pending.keys().next().copied() else {
                return false;
            };
            let Some(tx) = pending.remove(&k) else {
                return false;
            };
            let said = sonic_rs::get(line, ["error", "message"])
                .ok()
                .and_then(|v| v.as_str().map(|s| s.chars().take(200).collect::<String>()))
                .unwrap_or_default();
            (tx, format!("it could not read the request: {said}"))
        }
        None => return false,
    };
    let _ = tx.send(Err(McpError::BackendProtocol {
        server: server.to_string(),
        reason,
    }));
    true
}

/// Is `line` a JSON-RPC error response whose id is `null` (what a server answers to a
/// request it could not parse)? Read with the member walk, which is safe on any input.
fn is_null_id_error(line: &[u8]) -> bool {
    if crate::mcp::scan::check(line, crate::mcp::scan::max_depth()).is_err()
        || sonic_rs::from_slice::<serde::de::IgnoredAny>(line).is_err()
    {
        return false;
    }
    let (mut null_id, mut error) = (false, false);
    for (k, v) in crate::mcp::scan::members(line, 0) {
        match &line[k] {
            b"id" => null_id = &line[v] == b"null",
            b"error" => error = line.get(v.start) == Some(&b'{'),
            _ => {}
        }
    }
    null_id && error
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

//! Routing what a backend sends over a message channel that carries no request link
//! (stdio lines, legacy HTTP+SSE events) to the calls waiting on it.
//!
//! Replies are matched by the gateway's own ids, progress by the gateway's tokens. A log line
//! or a server-to-client request carries no request id, so it is attributed by its relation
//! to the calls in flight: a request whose `_meta.progressToken` is one the gateway gave a
//! call belongs to that call; otherwise it belongs to the one call in flight that is not
//! itself waiting for the answer to a request it sent (a call parked on a 2026 client's
//! input, or waiting for a 2025 client's answer, cannot be the sender). With no such call,
//! or several, it is logged (or refused to the backend) rather than guessed. A listen's
//! notifications name it (`subscriptionId`, the gateway's id of the request) and go to it
//! alone; a listen is never taken for the call a log line belongs to. Shared by
//! [`crate::upstream::stdio`] and [`crate::upstream::sse_legacy`].

use std::cell::RefCell;
use std::rc::Rc;

use ahash::RandomState;
use futures_channel::oneshot;
use hashbrown::HashMap;

use crate::error::McpError;
use crate::upstream::{BackendEvent, BackendReply, EventTx};
use crate::wire::jsonrpc::{Envelope, Kind};
use sonic_rs::JsonValueTrait;

pub(crate) type Pending =
    HashMap<u64, oneshot::Sender<Result<BackendReply, McpError>>, RandomState>;

/// Most unanswered server-to-client requests tracked per backend connection; beyond, new
/// ones are refused to the backend.
const MAX_AWAITING: usize = 4096;

/// Where the reader sends what arrives on a child's stdout: replies by id, progress by token,
/// other related notifications to the one call in flight (stdio carries no request link, so
/// with several calls in flight a log line cannot be attributed and is only logged).
#[derive(Default)]
pub(crate) struct LocalRoutes {
    pub(crate) pending: RefCell<Pending>,
    pub(crate) progress: RefCell<HashMap<Vec<u8>, EventTx, RandomState>>,
    /// Calls that follow up a task (a 2025 `tasks/result`), by the task's id (raw JSON): the
    /// backend's requests for that task (`_meta` related-task) go to them.
    pub(crate) tasks: RefCell<HashMap<Vec<u8>, EventTx, RandomState>>,
    pub(crate) sinks: RefCell<Vec<(u64, EventTx)>>,
    /// The event sinks of listens (`CallOpts::listen`): reached only by the `subscriptionId`
    /// their notifications carry, never taken for a call's.
    pub(crate) listens: RefCell<Vec<(u64, EventTx)>>,
    /// Server-to-client requests routed to a call and not answered yet: the backend's
    /// request id (raw JSON) → the gateway id of the call it went to.
    pub(crate) awaiting: RefCell<HashMap<Vec<u8>, u64, RandomState>>,
    /// The same by call: how many of its requests are unanswered (absent: none).
    pub(crate) waiting: RefCell<HashMap<u64, u32, RandomState>>,
    /// Signals the supervisor that the backend's lists changed (re-discover).
    pub(crate) relist: RefCell<Option<crate::upstream::relist::RelistTx>>,
    /// Unrelated notifications for clients (resources/updated, tasks/status), as the backend
    /// sent them.
    pub(crate) unrelated: RefCell<Option<Updates>>,
}

/// The answer a call waits for on its channel.
pub(crate) type ReplyRx = oneshot::Receiver<Result<BackendReply, McpError>>;

/// One call's place in its channel's routes: its pending reply, its progress token and its
/// event sink. Taken out however the call ends (answered, timed out, cancelled, or dropped
/// because the client left), so a call can never leave a route behind.
pub(crate) struct Registered<'a> {
    routes: Rc<LocalRoutes>,
    id: u64,
    progress: Option<&'a [u8]>,
    task: Option<&'a [u8]>,
    released: bool,
}

impl Registered<'_> {
    /// Takes the call's routes out now; true when its reply had not arrived (the backend
    /// may still be working on it). Later calls, and the drop, do nothing.
    pub(crate) fn release(&mut self) -> bool {
        if std::mem::replace(&mut self.released, true) {
            return false;
        }
        let r = &self.routes;
        if let Some(tok) = self.progress {
            r.progress.borrow_mut().remove(tok);
        }
        if let Some(task) = self.task {
            r.tasks.borrow_mut().remove(task);
        }
        r.call_ended(self.id);
        r.pending.borrow_mut().remove(&self.id).is_some()
    }
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

/// Puts call `id` in `routes`: its reply comes back through the returned receiver, progress
/// naming `progress`, requests naming task `task` (raw JSON id) and related messages go to
/// `events` (a listen's: only those naming it).
pub(crate) fn register<'a>(
    routes: &Rc<LocalRoutes>,
    id: u64,
    events: Option<&EventTx>,
    progress: Option<&'a [u8]>,
    task: Option<&'a [u8]>,
    listen: bool,
) -> (Registered<'a>, ReplyRx) {
    let (tx, rx) = oneshot::channel();
    routes.pending.borrow_mut().insert(id, tx);
    if let Some(ev) = events.filter(|_| listen) {
        routes.listens.borrow_mut().push((id, ev.clone()));
    } else if let Some(ev) = events {
        if let Some(tok) = progress {
            routes
                .progress
                .borrow_mut()
                .insert(tok.to_vec(), ev.clone());
        }
        if let Some(task) = task {
            routes.tasks.borrow_mut().insert(task.to_vec(), ev.clone());
        }
        routes.sinks.borrow_mut().push((id, ev.clone()));
    }
    let reg = Registered {
        routes: routes.clone(),
        id,
        progress: progress.filter(|_| events.is_some() && !listen),
        task: task.filter(|_| events.is_some() && !listen),
        released: false,
    };
    (reg, rx)
}

/// Receives a backend's `notifications/resources/updated` and `notifications/tasks/status`
/// messages.
pub type Updates = Rc<dyn Fn(Vec<u8>)>;

impl LocalRoutes {
    /// A call ended: forget its event sink and the requests it was waiting on.
    pub(crate) fn call_ended(&self, our_id: u64) {
        self.sinks.borrow_mut().retain(|(i, _)| *i != our_id);
        self.listens.borrow_mut().retain(|(i, _)| *i != our_id);
        if self.waiting.borrow_mut().remove(&our_id).is_some() {
            self.awaiting.borrow_mut().retain(|_, call| *call != our_id);
        }
    }

    /// `call` sent the backend's request `id` to its client and waits for the answer.
    fn wait_on(&self, id: &[u8], call: u64) {
        if let Some(old) = self.awaiting.borrow_mut().insert(id.to_vec(), call) {
            self.unwait(old);
        }
        *self.waiting.borrow_mut().entry(call).or_insert(0) += 1;
    }

    fn unwait(&self, call: u64) {
        let mut waiting = self.waiting.borrow_mut();
        if let Some(n) = waiting.get_mut(&call) {
            *n -= 1;
            if *n == 0 {
                waiting.remove(&call);
            }
        }
    }

    /// The gateway is sending `msg` to the backend: if it answers one of the backend's
    /// requests, the call that request went to is no longer waiting.
    pub(crate) fn answered(&self, msg: &[u8]) {
        if self.awaiting.borrow().is_empty() {
            return;
        }
        if let Ok(env) = Envelope::parse(msg) {
            if env.kind == Kind::Response {
                let call = self.awaiting.borrow_mut().remove(env.id_bytes(msg));
                if let Some(call) = call {
                    self.unwait(call);
                }
            }
        }
    }

    /// The sink of the listen a notification names in `_meta` `subscriptionId` (the
    /// gateway's id of that request).
    fn listen_of(&self, line: &[u8]) -> Option<EventTx> {
        let key = ["params", "_meta", "io.modelcontextprotocol/subscriptionId"];
        let id = sonic_rs::get(line, key).ok()?.as_u64()?;
        let listens = self.listens.borrow();
        listens
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, tx)| tx.clone())
    }

    /// The call a related message without a request id belongs to: the call whose progress
    /// token it names, else the call following up the task it names (`_meta` related-task),
    /// else the one call in flight not waiting on an answer of its own.
    fn owner_of(&self, line: &[u8]) -> Option<(u64, EventTx)> {
        let sinks = self.sinks.borrow();
        let token = sonic_rs::get(line, ["params", "_meta", "progressToken"]).ok();
        if let Some(tx) = token.and_then(|t| {
            self.progress
                .borrow()
                .get(t.as_raw_str().as_bytes())
                .cloned()
        }) {
            return sinks.iter().find(|(_, s)| s.same_receiver(&tx)).cloned();
        }
        if !self.tasks.borrow().is_empty() {
            let task = sonic_rs::get(
                line,
                [
                    "params",
                    "_meta",
                    "io.modelcontextprotocol/related-task",
                    "taskId",
                ],
            )
            .ok();
            if let Some(tx) =
                task.and_then(|t| self.tasks.borrow().get(t.as_raw_str().as_bytes()).cloned())
            {
                return sinks.iter().find(|(_, s)| s.same_receiver(&tx)).cloned();
            }
        }
        let waiting = self.waiting.borrow();
        let mut free = sinks.iter().filter(|(id, _)| !waiting.contains_key(id));
        match (free.next(), free.next()) {
            (Some(one), None) => Some(one.clone()),
            _ => None,
        }
    }
}

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
                        origin: Default::default(),
                    }));
                }
                None => {
                    tracing::debug!(server = %server, "response for an unknown or finished request dropped")
                }
            }
        }
        Kind::Request => {
            // A server-to-client request goes to the client of the call it belongs to; when
            // that cannot be told, it is refused rather than sent to the wrong client.
            let raw_id = env.id_bytes(line);
            if env.method.as_deref() != Some("ping")
                && routes.awaiting.borrow().len() < MAX_AWAITING
            {
                if let Some((call, tx)) = routes.owner_of(line) {
                    routes.wait_on(raw_id, call);
                    let _ = tx.unbounded_send(BackendEvent {
                        msg: line.to_vec(),
                        replica: 0,
                    });
                    return;
                }
            }
            let mut out = Vec::with_capacity(160);
            out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
            out.extend_from_slice(raw_id);
            if env.method.as_deref() == Some("ping") {
                out.extend_from_slice(b",\"result\":{}}");
            } else {
                out.extend_from_slice(
                    b",\"error\":{\"code\":-32603,\"message\":\"the gateway cannot tell which client this request is for (no call in flight, or several that could have sent it)\"}}",
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
    if crate::wire::scan::check(line, crate::wire::scan::max_depth()).is_err()
        || sonic_rs::from_slice::<serde::de::IgnoredAny>(line).is_err()
    {
        return false;
    }
    let (mut null_id, mut error) = (false, false);
    for (k, v) in crate::wire::scan::members(line, 0) {
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
    if let Some(kinds) = crate::catalog::ListsChanged::from_method(method) {
        // On a 2026 child this is its listen stream's (`stdio/subscribe.rs`): same channel.
        if let Some(tx) = routes.relist.borrow().as_ref() {
            tx.poke(kinds);
        }
        return;
    }
    let on_listen = matches!(
        method,
        "notifications/subscriptions/acknowledged" | "notifications/resources/updated"
    );
    if let Some(tx) = on_listen.then(|| routes.listen_of(line)).flatten() {
        // A listen of the route layer's (`LocalBackend::listen`): to it, by the id it was sent.
        let _ = tx.unbounded_send(BackendEvent {
            msg: line.to_vec(),
            replica: 0,
        });
        return;
    }
    if method == "notifications/subscriptions/acknowledged" {
        // The gateway's own listen (`stdio/subscribe.rs`) was accepted; one per process.
        tracing::info!(server = %server, "upstream subscriptions/listen open");
        return;
    }
    if method == "notifications/resources/updated" || method == "notifications/tasks/status" {
        if let Some(f) = routes.unrelated.borrow().as_ref() {
            f(line.to_vec());
        }
        return;
    }
    if method == "notifications/message" || method == "notifications/cancelled" {
        if let Some((_, tx)) = routes.owner_of(line) {
            let _ = tx.unbounded_send(BackendEvent {
                msg: line.to_vec(),
                replica: 0,
            });
            return;
        }
    }
    tracing::debug!(server = %server, method, "backend notification not relayed");
}

#[cfg(test)]
#[path = "routes_tests.rs"]
mod tests;

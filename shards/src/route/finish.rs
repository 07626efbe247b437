//! Turning a backend's messages into the client's: the `Finisher` a forwarded call carries
//! owns the client's id and progress token, the era's rules and the call's deadline. It
//! relays notifications (progress, logs) and server-to-client requests, and builds the final
//! response with one splice of the client's id (and, for a 2026 client, the result's
//! `resultType`/`ttlMs`/`cacheScope` stamps). `forward.rs` owns starting and racing the call.

use std::rc::Rc;

use crate::error::McpError;
use crate::route::forward::{log_severity, Era};
use crate::route::router::Router;
use crate::route::tables::calls::{inflight_key, S2cRoute};
use crate::upstream::{BackendEvent, BackendReply, LocalBackend};
use crate::wire::jsonrpc::{splice, Envelope, Kind};
use crate::wire::short::{ShortBytes, ShortStr};

/// Owned facts needed to turn backend messages into client messages.
pub(crate) struct Finisher {
    pub(crate) router: Rc<Router>,
    /// Inline: a session id is short (`wire/short.rs`).
    pub(crate) sid: ShortStr,
    pub(crate) handle: Rc<LocalBackend>,
    /// Inline up to 24 bytes: ids are numbers or short strings.
    pub(crate) client_id: ShortBytes,
    pub(crate) client_token: Option<Vec<u8>>,
    /// Shared with the shard's in-flight count of the backend ([`BusyGuard`]).
    ///
    /// [`BusyGuard`]: crate::route::forward::BusyGuard
    pub(crate) backend_id: Rc<str>,
    /// The method label (token accounting).
    pub(crate) method: &'static str,
    pub(crate) prefixed: bool,
    pub(crate) relayed: std::cell::RefCell<Vec<Vec<u8>>>,
    pub(crate) era: Era,
    /// The call's movable deadline: each progress notification pushes it to one timeout
    /// from now, never past the cap.
    pub(crate) deadline: (
        crate::upstream::Deadline,
        std::time::Duration,
        std::time::Instant,
    ),
}

impl Drop for Finisher {
    fn drop(&mut self) {
        // Requests the client never answered die with the call.
        let mut pending = self.router.calls.s2c.borrow_mut();
        for k in self.relayed.borrow().iter() {
            pending.remove(k);
        }
    }
}

impl Finisher {
    /// A related backend message for the client, or `None` when it was handled here.
    pub(crate) fn event(&self, mut ev: BackendEvent) -> Option<Vec<u8>> {
        if let Some(t) = &self.era.task {
            // A task's messages name it by the gateway's id.
            if let Some(msg) = crate::route::tasks::wire::related(t, &ev.msg) {
                ev.msg = msg;
            }
        }
        let env = Envelope::parse(&ev.msg).ok()?;
        if env.method.as_deref() == Some("notifications/progress") {
            let (d, timeout, cap) = &self.deadline;
            crate::upstream::extend_deadline(d, *timeout, *cap);
        }
        let kind = env.kind;
        match kind {
            Kind::Notification => {
                if self.era.modern && !self.modern_log_allowed(&ev.msg) {
                    return None;
                }
                Some(self.notification(ev.msg))
            }
            Kind::Request => self.request(&ev),
            Kind::Response => None,
        }
    }

    /// A server-to-client request: relayed with a gateway id if the client can answer it,
    /// refused to the backend otherwise (capability honesty across a shared session).
    fn request(&self, ev: &BackendEvent) -> Option<Vec<u8>> {
        let env = Envelope::parse(&ev.msg).ok()?;
        let method = env.method.as_deref().unwrap_or("");
        let backend_id = env.id_bytes(&ev.msg).to_vec();
        let answer = |body: &[u8]| {
            let mut out = b"{\"jsonrpc\":\"2.0\",\"id\":".to_vec();
            out.extend_from_slice(&backend_id);
            out.extend_from_slice(body);
            self.handle.respond(ev.replica, out);
        };
        if method == "ping" {
            answer(b",\"result\":{}}");
            return None;
        }
        let allowed = self
            .router
            .sessions
            .borrow()
            .get(&self.sid)
            .is_some_and(|s| s.caps.allows(method));
        if !allowed {
            answer(b",\"error\":{\"code\":-32601,\"message\":\"the client of this call does not support this request\"}}");
            return None;
        }
        let n = self.router.calls.mint();
        let gw_id = format!("\"o1m.{}.{n}\"", self.router.id).into_bytes();
        let key = inflight_key(&self.sid, &gw_id);
        self.router.calls.s2c.borrow_mut().insert(
            key.clone(),
            S2cRoute {
                handle: self.handle.clone(),
                replica: ev.replica,
                backend_request_id: backend_id,
            },
        );
        self.relayed.borrow_mut().push(key);
        let range = env.id.clone()?;
        let mut out = Vec::with_capacity(ev.msg.len() + 16);
        splice(&ev.msg, &[(range, &gw_id)], &mut out);
        Some(out)
    }

    /// Modern clients get log messages only when they asked (`_meta` logLevel), at or above it.
    fn modern_log_allowed(&self, msg: &[u8]) -> bool {
        use sonic_rs::JsonValueTrait;
        let method = sonic_rs::get(msg, ["method"]).ok();
        if method.as_ref().and_then(|m| m.as_str()) != Some("notifications/message") {
            return true;
        }
        let Some(min) = self.era.log_level else {
            return false;
        };
        sonic_rs::get(msg, ["params", "level"])
            .ok()
            .and_then(|l| l.as_str().and_then(log_severity))
            .is_some_and(|sev| sev >= min)
    }

    /// Modern: `resultType` (and cache hints) on the result; -32002 becomes -32602.
    fn modern_reply(&self, resp: Vec<u8>) -> Vec<u8> {
        use sonic_rs::JsonValueTrait;
        if let Ok(code) = sonic_rs::get(&resp[..], ["error", "code"]) {
            if code.as_i64() == Some(-32002) {
                let uri = self.era.uri.clone().unwrap_or_default();
                return McpError::InvalidParams(format!("resource not found: {uri}"))
                    .to_response_with_uri(&self.client_id, &uri);
            }
            return resp;
        }
        let Ok(r) = sonic_rs::get(&resp[..], ["result"]) else {
            return resp;
        };
        let raw = r.as_raw_str();
        let start = raw.as_ptr() as usize - resp.as_ptr() as usize;
        let mut fields = b"\"resultType\":\"complete\",".to_vec();
        if self.era.cacheable && sonic_rs::get(raw, ["ttlMs"]).is_err() {
            fields.extend_from_slice(b"\"ttlMs\":0,\"cacheScope\":\"private\",");
        }
        let mut out = Vec::with_capacity(resp.len() + fields.len());
        if stamp_object(
            &resp,
            start..start + raw.len(),
            "resultType",
            &fields,
            &mut out,
        ) {
            out
        } else {
            resp
        }
    }

    /// A related notification: the client's progress token goes back in.
    fn notification(&self, msg: Vec<u8>) -> Vec<u8> {
        if let Some(mapped) = self.cancelled_s2c(&msg) {
            return mapped;
        }
        let Some(tok) = &self.client_token else {
            return msg;
        };
        let Ok(v) = sonic_rs::get(&msg[..], ["params", "progressToken"]) else {
            return msg;
        };
        let raw = v.as_raw_str();
        let start = raw.as_ptr() as usize - msg.as_ptr() as usize;
        let mut out = Vec::with_capacity(msg.len() + tok.len());
        splice(&msg, &[(start..start + raw.len(), tok)], &mut out);
        out
    }

    /// The backend cancelled one of its own requests we relayed: the client knows that
    /// request by the gateway's id, so the cancellation must carry that id.
    fn cancelled_s2c(&self, msg: &[u8]) -> Option<Vec<u8>> {
        use sonic_rs::JsonValueTrait;
        if sonic_rs::get(msg, ["method"]).ok()?.as_str()? != "notifications/cancelled" {
            return None;
        }
        let v = sonic_rs::get(msg, ["params", "requestId"]).ok()?;
        let raw = v.as_raw_str();
        let pending = self.router.calls.s2c.borrow();
        let key = self
            .relayed
            .borrow()
            .iter()
            .find(|k| {
                pending
                    .get(*k)
                    .is_some_and(|r| r.backend_request_id == raw.as_bytes())
            })?
            .clone();
        drop(pending);
        self.router.calls.s2c.borrow_mut().remove(&key);
        let gw_id = &key[self.sid.len() + 1..];
        let start = raw.as_ptr() as usize - msg.as_ptr() as usize;
        let mut out = Vec::with_capacity(msg.len() + gw_id.len());
        splice(msg, &[(start..start + raw.len(), gw_id)], &mut out);
        Some(out)
    }

    /// The final response, in the client's era.
    pub(crate) fn reply(&self, result: Result<BackendReply, McpError>) -> Vec<u8> {
        if let (Some(h), Ok(r)) = (&self.era.hints, &result) {
            if let Ok(v) = sonic_rs::get(&r.body[..], ["result"]) {
                h.set(Some(crate::catalog::cache_hints(v.as_raw_str().as_bytes())));
            }
        }
        let resp = self.reply_era(result);
        let tokens = &self.router.tokens;
        if tokens.is_enabled() {
            let name = self.era.tool.as_deref().unwrap_or_default();
            tokens.served(self.method, &self.backend_id, name, &resp);
        }
        resp
    }

    fn reply_era(&self, result: Result<BackendReply, McpError>) -> Vec<u8> {
        let result = match &self.era.task {
            None => result,
            Some(t) => {
                let cx = crate::route::tasks::wire::Cx {
                    router: &self.router,
                    server: &self.backend_id,
                    client_id: &self.client_id,
                    modern: self.era.modern,
                };
                match crate::route::tasks::wire::before(&cx, t, result) {
                    crate::route::tasks::wire::Before::Done(answer) => return answer,
                    crate::route::tasks::wire::Before::Go(r) => r,
                }
            }
        };
        let resp = self.reply_2025(result);
        if self.era.modern {
            return self.modern_reply(resp);
        }
        // A 2026 backend asking a 2025-era client for input is bridged before it gets here
        // (`route/relay_input.rs`) for the requests that may ask; an `input_required` to any
        // other request breaks the spec, and the client would not know the result's shape.
        // A byte search first: the JSON lookup allocates, and almost no answer asks for input.
        let asks_input = memchr::memmem::find(&resp, b"input_required").is_some()
            && sonic_rs::get(&resp[..], ["result", "resultType"])
                .ok()
                .is_some_and(|t| t.as_raw_str() == "\"input_required\"");
        if asks_input {
            return McpError::BackendProtocol {
                server: self.backend_id.to_string(),
                reason: format!(
                    "input_required answers `{}`, which cannot ask for input (only tools/call, prompts/get and resources/read may)",
                    self.method
                ),
            }
            .to_response(&self.client_id);
        }
        resp
    }

    /// The final response: the client's id, and namespaced URIs for a namespaced backend.
    fn reply_2025(&self, result: Result<BackendReply, McpError>) -> Vec<u8> {
        let reply = match result {
            Ok(r) => r,
            Err(e) => return e.to_response(&self.client_id),
        };
        // Both buffers from and back to the shard's list (`rt/bufs.rs`): the answer is given
        // back by the front once written, the backend's reply here once spliced.
        let mut resp = crate::rt::bufs::take();
        resp.reserve(reply.body.len() + 16);
        // Only a result with a `"uri"` member is rewritten (`rewrite_result`): a byte search
        // first, as the JSON lookup allocates and most results have none.
        if self.prefixed && memchr::memmem::find(&reply.body, b"\"uri\"").is_some() {
            if let Ok(r) = sonic_rs::get(&reply.body[..], ["result"]) {
                let raw = r.as_raw_str();
                let start = raw.as_ptr() as usize - reply.body.as_ptr() as usize;
                if let Some(new) =
                    crate::catalog::uri::rewrite_result(raw.as_bytes(), &self.backend_id)
                {
                    let mut edits = [
                        (reply.id.clone(), &self.client_id[..]),
                        (start..start + raw.len(), &new[..]),
                    ];
                    edits.sort_by_key(|e| e.0.start);
                    splice(&reply.body, &edits, &mut resp);
                    crate::rt::bufs::give(reply.body);
                    return resp;
                }
            }
        }
        splice(
            &reply.body,
            &[(reply.id.clone(), &self.client_id[..])],
            &mut resp,
        );
        crate::rt::bufs::give(reply.body);
        resp
    }
}

/// Inserts `fields` (e.g. `"resultType":"complete",`) right after the `{` of the object at
/// `at` in `body`, unless `key` is already there.
pub(crate) fn stamp_object(
    body: &[u8],
    at: std::ops::Range<usize>,
    key: &str,
    fields: &[u8],
    out: &mut Vec<u8>,
) -> bool {
    let obj = &body[at.clone()];
    if !obj.starts_with(b"{") || sonic_rs::get(obj, [key]).is_ok() {
        return false;
    }
    let empty = obj[1..].iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'}');
    out.clear();
    out.extend_from_slice(&body[..at.start + 1]);
    if empty {
        out.extend_from_slice(&fields[..fields.len() - 1]);
    } else {
        out.extend_from_slice(fields);
    }
    out.extend_from_slice(&body[at.start + 1..]);
    true
}

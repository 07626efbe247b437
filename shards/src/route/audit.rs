//! The audit lines of `/mcp` requests: built only when `[audit] enabled` (one branch
//! otherwise), handed to the writer thread without blocking (`SharedAuditSink::log`).

use std::rc::Rc;
use std::time::Instant;

use crate::audit::{unix_ms_now, AuditRecord};
use crate::auth::verify::Principal;
use crate::route::router::Router;
use crate::stats::Outcome;

/// A request refused before dispatch (401, 403, 429): `principal` when it is known (a 403
/// for a missing scope, a 429), and the session the request named.
pub fn refused(
    router: &Rc<Router>,
    body: &[u8],
    reply: &crate::http::response::Reply,
    principal: Option<&str>,
    session: Option<&[u8]>,
) {
    let status = reply.status;
    if !router.auth.audit.is_enabled() {
        return;
    }
    use sonic_rs::JsonValueTrait;
    let method = sonic_rs::get(body, ["method"])
        .ok()
        .and_then(|m| m.as_str().map(str::to_string))
        .unwrap_or_default();
    let exposed = sonic_rs::get(body, ["params", "name"])
        .ok()
        .and_then(|m| m.as_str().map(str::to_string));
    let (server, tool) = match method.as_str() {
        "tools/call" | "prompts/get" => {
            let snap = router.snapshot.load();
            let route = exposed.as_deref().and_then(|n| {
                if method == "tools/call" {
                    snap.catalog.route(n)
                } else {
                    snap.catalog.route_prompt(n)
                }
            });
            match route {
                Some(r) => (
                    snap.backends.get(r.backend).map(|b| b.id.clone()),
                    Some(r.original.to_string()),
                ),
                None => (None, exposed),
            }
        }
        _ => (None, None),
    };
    router.auth.audit.log(AuditRecord {
        ts_ms: unix_ms_now(),
        principal: principal.map(str::to_string),
        session: session.map(|s| String::from_utf8_lossy(s).trim().to_string()),
        method,
        server,
        tool,
        outcome: match status {
            401 => "unauthenticated",
            403 => "forbidden",
            _ => "rate_limited",
        },
        status,
        latency_us: 0,
        bytes_in: body.len() as u64,
        bytes_out: reply.body_len() as u64,
    });
}

/// What one dispatched request was and how it ended.
pub struct Served<'a> {
    /// Who.
    pub principal: &'a Principal,
    /// Its session (2025 era), if any.
    pub session: &'a str,
    /// JSON-RPC method.
    pub method: &'a str,
    /// The namespaced tool or prompt name, or the resource URI.
    pub name: Option<&'a str>,
    /// How it ended (`denied` is worked out here for RBAC refusals, which the client sees
    /// as a missing item).
    pub outcome: Outcome,
    /// HTTP status.
    pub status: u16,
    /// When it arrived.
    pub started: Instant,
    /// Request body bytes.
    pub bytes_in: usize,
    /// Response body bytes (0 for a streamed answer).
    pub bytes_out: usize,
}

/// Logs one dispatched request.
pub fn served(router: &Rc<Router>, s: Served<'_>) {
    if !router.auth.audit.is_enabled() {
        return;
    }
    use crate::auth::policy::ItemKind;
    let snap = router.snapshot.load();
    let (route, kind) = match (s.method, s.name) {
        ("tools/call", Some(n)) => (snap.catalog.route(n), ItemKind::Tool),
        ("prompts/get", Some(n)) => (snap.catalog.route_prompt(n), ItemKind::Prompt),
        _ => (None, ItemKind::Resource),
    };
    let mut denied = false;
    let (server, tool) = match (route, s.name) {
        (Some(r), Some(n)) => {
            denied = !crate::auth::local::allows(&snap, s.principal, kind, r.backend, n);
            (
                snap.backends.get(r.backend).map(|b| b.id.clone()),
                Some(r.original.to_string()),
            )
        }
        (None, n) => (None, n.map(str::to_string)),
        (Some(_), None) => (None, None),
    };
    router.auth.audit.log(AuditRecord {
        ts_ms: unix_ms_now(),
        principal: Some(s.principal.name.to_string()),
        session: (!s.session.is_empty()).then(|| s.session.to_string()),
        method: s.method.to_string(),
        server,
        tool,
        outcome: if denied { "denied" } else { s.outcome.as_str() },
        status: s.status,
        latency_us: s.started.elapsed().as_micros() as u64,
        bytes_in: s.bytes_in as u64,
        bytes_out: s.bytes_out as u64,
    });
}

//! A 2025-era session's life outside its requests: `initialize` mints it (bound to the
//! principal that sent it, under the session caps of [`crate::route::session_table`]), `GET /mcp` opens or resumes its server-to-client stream, and
//! `DELETE /mcp` ends it. Each checks that the session belongs to the caller.

use std::rc::Rc;

use crate::auth::verify::Principal;
use crate::error::McpError;
use crate::http::response::Reply;
use crate::route::request::{
    check_version_header, owned_by, rpc_error, unknown_session, McpHttpRequest,
};
use crate::route::router::Router;
use crate::route::session::LocalSession;
use crate::route::session_table::{share, CapHit};
use crate::route::SUPPORTED_VERSIONS;
use crate::wire::jsonrpc::Envelope;

/// 404 for a session id this shard does not hold (or the caller does not own), counted by
/// why (`cluster::session_id::Verdict`: another node's, forged, malformed, or this node's but
/// ended). Only a miss pays for the MAC check; the answer is the same whatever the reason,
/// and the client's recourse too: initialize again, which the balancer sends to a live node.
pub(crate) fn refuse_session(router: &Router, sid: &str, id: &[u8]) -> Reply {
    let verdict = crate::cluster::session_id::classify(&router.snapshot.load().cluster, sid);
    let n = &router.session_ids_refused[verdict.index()];
    n.set(n.get() + 1);
    rpc_error(404, &unknown_session(), id)
}

/// GET or DELETE without a session: a 2026-07-28 client (stateless: POST only) or a
/// legacy client that has not initialized; 405 tells both that only POST works here.
fn no_session_405() -> Reply {
    let mut r = rpc_error(
        405,
        &McpError::InvalidRequest(
            "GET and DELETE need an Mcp-Session-Id (2025 era); 2026-07-28 clients use POST only"
                .into(),
        ),
        b"",
    );
    r.allow = Some("POST");
    r
}

/// `GET /mcp`: the session's standalone SSE stream (one at a time; a new GET replaces the
/// earlier one) for messages unrelated to any request: list changes and resource updates.
pub(crate) async fn get_stream(
    router: &Rc<Router>,
    req: McpHttpRequest,
    may_hand_off: bool,
) -> Reply {
    if !req.accepts_sse {
        return rpc_error(
            406,
            &McpError::InvalidRequest("GET /mcp needs Accept: text/event-stream".into()),
            b"",
        );
    }
    let Some(sid) = req.session_id.as_deref() else {
        return no_session_405();
    };
    if may_hand_off {
        let owner = router.ring.owner(sid.as_bytes());
        if owner != router.id {
            return router.hand_off(owner, req).await;
        }
    }
    if let Err(e) = check_version_header(req.protocol_version.as_deref()) {
        return rpc_error(400, &e, b"");
    }
    let current = match router.sessions.borrow_mut().get_mut(sid) {
        Some(s) if owned_by(s, &req.principal) => {
            s.used = true;
            s.get_stream_no
        }
        _ => return refuse_session(router, sid, b""),
    };
    // Resuming: replay what followed the id on that stream only, then stay attached.
    if let Some((n, after)) = req
        .last_event_id
        .as_deref()
        .and_then(crate::route::resume::parse_event_id)
    {
        if let Some(rx) = crate::route::resume::resume(router, sid, n, after) {
            return Reply::sse(rx);
        }
    }
    if let Some(n) = current {
        // One GET stream per session, and the newest GET wins: it takes the earlier one's
        // place (that response ends cleanly) and carries on its numbering. The earlier
        // client may be gone without the gateway knowing it yet (a closed socket shows only
        // when a write to it fails), so refusing the new GET would lock the session's owner
        // out of its own stream; only the session's principal gets this far.
        if let Some(rx) = crate::route::resume::resume(router, sid, n, u64::MAX) {
            return Reply::sse(rx);
        }
    }
    let (tx, rx) = futures_channel::mpsc::unbounded();
    let (n, live) = crate::route::resume::track(router, sid, rx);
    if let Some(session) = router.sessions.borrow_mut().get_mut(sid) {
        session.get_stream = Some(tx);
        session.get_stream_no = Some(n);
    }
    Reply::sse(live)
}

pub(crate) async fn delete(router: &Rc<Router>, req: McpHttpRequest, may_hand_off: bool) -> Reply {
    let Some(sid) = req.session_id.as_deref() else {
        return no_session_405();
    };
    if may_hand_off {
        let owner = router.ring.owner(sid.as_bytes());
        if owner != router.id {
            return router.hand_off(owner, req).await;
        }
    }
    let mine = router
        .sessions
        .borrow()
        .get(sid)
        .is_some_and(|s| owned_by(s, &req.principal));
    if mine && router.sessions.borrow_mut().remove(sid) {
        crate::route::per_client::release(router, sid);
        crate::route::resume::forget_session(router, sid);
        tracing::debug!(shard = router.id, session = sid, "session ended by client");
        Reply::empty(200)
    } else {
        refuse_session(router, sid, b"")
    }
}

/// A refusal at a cap (`initialize`, `subscriptions/listen`): HTTP status, message, who is to blame.
pub(crate) type Refusal = (u16, String, &'static str);

/// `Retry-After` on a refusal at a cap: sessions and listens free up as others end.
const REFUSED_RETRY_S: u32 = 5;

/// Makes room under this shard's share of the session caps (evicting never-used sessions,
/// whose streams and per-client upstreams go with them); the refusal when it cannot.
fn make_room(router: &Rc<Router>, principal: &str) -> Result<(), Refusal> {
    let (cap, per_principal) = {
        let server = &router.snapshot.load().config.server;
        (server.max_sessions, server.max_sessions_per_principal)
    };
    let shards = router.shards;
    let cap_shard = share(cap, shards);
    let cap_principal = match per_principal {
        0 => usize::MAX,
        n => share(n, shards),
    };
    let (evicted, room) =
        router
            .sessions
            .borrow_mut()
            .make_room(principal, cap_shard, cap_principal);
    for sid in evicted {
        crate::route::per_client::release(router, &sid);
        crate::route::resume::forget_session(router, &sid);
        tracing::debug!(shard = router.id, session = %sid, "never-used session evicted (max_sessions)");
    }
    match room {
        Ok(()) => Ok(()),
        Err(CapHit::Global) => Err((
            503,
            format!("too many sessions: the gateway holds server.max_sessions ({cap}, {cap_shard} on this core) and every one is in use; retry later"),
            "gateway",
        )),
        Err(CapHit::Principal) => Err((
            429,
            format!("too many sessions for this caller: its server.max_sessions_per_principal ({per_principal}, {cap_principal} on this core) are all in use; end unused ones with DELETE or retry later"),
            "client",
        )),
    }
}

/// A request refused at a cap (`what`: the method, for the log) as a JSON-RPC error (-32000)
/// carrying the request's id, with `Retry-After`.
pub(crate) fn refused(
    router: &Router,
    what: &str,
    (status, message, blame): Refusal,
    id: &[u8],
) -> Reply {
    tracing::debug!(shard = router.id, "{what} refused: {message}");
    let mut out = Vec::with_capacity(message.len() + 96);
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    out.extend_from_slice(if id.is_empty() { b"null" } else { id });
    out.extend_from_slice(b",\"error\":{\"code\":-32000,\"message\":");
    crate::wire::jsonrpc::push_json_str(&mut out, &message);
    out.extend_from_slice(b",\"data\":{\"blame\":\"");
    out.extend_from_slice(blame.as_bytes());
    out.extend_from_slice(b"\"}}}");
    let mut r = Reply::json(status, out);
    r.retry_after = Some(REFUSED_RETRY_S);
    r
}

pub(crate) fn initialize(
    router: &Rc<Router>,
    body: &[u8],
    env: &Envelope<'_>,
    principal: &Principal,
) -> Reply {
    let asked = env.protocol_version.as_deref().unwrap_or("");
    let version = SUPPORTED_VERSIONS
        .iter()
        .copied()
        .find(|v| *v == asked)
        .unwrap_or(SUPPORTED_VERSIONS[0]);
    if let Err(why) = make_room(router, &principal.name) {
        return refused(router, "initialize", why, env.id_bytes(body));
    }
    let sid =
        crate::cluster::session_id::mint(&router.snapshot.load().cluster, &router.ring, router.id);
    let mut session = LocalSession::new(
        version,
        crate::route::session::ClientCaps::from_initialize(body),
        crate::route::session::ClientCaps::raw(body),
    );
    session.principal = Some(principal.name.clone());
    router.sessions.borrow_mut().insert(&sid, session);
    let caps = router.snapshot.load().catalog.caps.clone();
    let mut out = Vec::with_capacity(320);
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    out.extend_from_slice(env.id_bytes(body));
    out.extend_from_slice(b",\"result\":{\"protocolVersion\":\"");
    out.extend_from_slice(version.as_bytes());
    out.extend_from_slice(b"\",\"capabilities\":{\"tools\":{\"listChanged\":true}");
    if caps.prompts {
        out.extend_from_slice(b",\"prompts\":{\"listChanged\":true}");
    }
    if caps.resources {
        out.extend_from_slice(if caps.subscribe {
            b",\"resources\":{\"subscribe\":true,\"listChanged\":true}"
        } else {
            b",\"resources\":{\"subscribe\":false,\"listChanged\":true}"
        });
    }
    if caps.logging {
        out.extend_from_slice(b",\"logging\":{}");
    }
    if caps.completions {
        out.extend_from_slice(b",\"completions\":{}");
    }
    out.extend_from_slice(b"},\"serverInfo\":{\"name\":\"only1mcp-uring\",\"version\":\"");
    out.extend_from_slice(env!("CARGO_PKG_VERSION").as_bytes());
    out.extend_from_slice(b"\"}}}");
    tracing::debug!(shard = router.id, session = %sid, version, "session created");
    let mut r = Reply::json(200, out);
    r.session_id = Some(sid);
    r
}

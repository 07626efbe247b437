//! Serving one MCP request on `/mcp`: session checks, handoff to the owner shard, methods.
//!
//! The order of checks follows the Streamable HTTP transport: a malformed body is 400 with a
//! JSON-RPC error; `initialize` mints a session on this shard; every other message needs a
//! known `Mcp-Session-Id` (400 when missing, 404 when unknown or ended) and a supported
//! `MCP-Protocol-Version` header when one is sent (400 otherwise). A session owned by another
//! shard is handed to it whole; its reply comes back through a oneshot. Notifications and
//! responses get 202. `tools/call` is the hot path: the name and id are spliced, the body
//! goes to the backend unchanged, the backend's reply comes back with the client's id spliced
//! in, and nothing is re-serialized.

use std::rc::Rc;
use std::time::Instant;

use crate::error::McpError;
use crate::http::request::Method;
use crate::http::response::Reply;
use crate::mcp::jsonrpc::{splice, Envelope, Kind};
use crate::mcp::session::LocalSession;
use crate::mcp::SUPPORTED_VERSIONS;
use crate::shard::{LocalShard, ShardMsg};

/// An `/mcp` request, owned so it can be handed to another shard.
#[derive(Debug)]
pub struct McpHttpRequest {
    /// HTTP method.
    pub method: Method,
    /// `Mcp-Session-Id`.
    pub session_id: Option<String>,
    /// `MCP-Protocol-Version`.
    pub protocol_version: Option<String>,
    /// Body.
    pub body: Vec<u8>,
}

fn rpc_error(status: u16, err: &McpError, id: &[u8]) -> Reply {
    Reply::json(status, err.to_response(id))
}

/// Serves one `/mcp` request. `may_hand_off` is false when this shard received it as a handoff.
pub async fn handle(shard: &Rc<LocalShard>, req: McpHttpRequest, may_hand_off: bool) -> Reply {
    match req.method {
        Method::Post => {}
        Method::Delete => return delete(shard, req, may_hand_off).await,
        Method::Get => {
            // The standalone GET stream is optional; this gateway has nothing to push on it.
            let mut r = Reply::json(
                405,
                McpError::InvalidRequest("GET stream not offered; use POST".into())
                    .to_response(b""),
            );
            r.allow = Some("POST, DELETE");
            return r;
        }
        Method::Other => {
            let mut r = Reply::text(405, "method not allowed on /mcp");
            r.allow = Some("POST, DELETE");
            return r;
        }
    }
    let env = match Envelope::parse(&req.body) {
        Ok(e) => e,
        Err(e) => return rpc_error(400, &e, b""),
    };
    if env.kind == Kind::Request && env.method.as_deref() == Some("initialize") {
        return initialize(shard, &req.body, &env);
    }
    let Some(sid) = req.session_id.as_deref() else {
        return rpc_error(
            400,
            &McpError::InvalidRequest(
                "missing Mcp-Session-Id header (send initialize first)".into(),
            ),
            env.id_bytes(&req.body),
        );
    };
    if may_hand_off {
        let owner = shard.ring.owner(sid.as_bytes());
        if owner != shard.id {
            drop(env);
            return hand_off(shard, owner, req).await;
        }
    }
    let Some(session) = shard.sessions.borrow().get(sid).cloned() else {
        return rpc_error(404, &unknown_session(), env.id_bytes(&req.body));
    };
    if let Err(e) = check_version_header(req.protocol_version.as_deref()) {
        return rpc_error(400, &e, env.id_bytes(&req.body));
    }
    match env.kind {
        Kind::Notification | Kind::Response => Reply::empty(202),
        Kind::Request => request(shard, &session, &req.body, &env).await,
    }
}

fn unknown_session() -> McpError {
    McpError::InvalidRequest(
        "unknown or ended session; send initialize without Mcp-Session-Id".into(),
    )
}

fn check_version_header(v: Option<&str>) -> Result<(), McpError> {
    match v {
        None => Ok(()),
        Some(v) if SUPPORTED_VERSIONS.contains(&v) => Ok(()),
        Some(v) => Err(McpError::InvalidRequest(format!(
            "unsupported MCP-Protocol-Version `{v}`; supported: {}",
            SUPPORTED_VERSIONS.join(", ")
        ))),
    }
}

async fn hand_off(shard: &Rc<LocalShard>, owner: usize, req: McpHttpRequest) -> Reply {
    let (tx, rx) = futures_channel::oneshot::channel();
    if shard.peers[owner]
        .send(ShardMsg::Handoff { req, reply: tx })
        .is_err()
    {
        return rpc_error(
            503,
            &McpError::Gateway("owner shard is not running".into()),
            b"",
        );
    }
    rx.await.unwrap_or_else(|_| {
        rpc_error(
            503,
            &McpError::Gateway("owner shard dropped the request".into()),
            b"",
        )
    })
}

async fn delete(shard: &Rc<LocalShard>, req: McpHttpRequest, may_hand_off: bool) -> Reply {
    let Some(sid) = req.session_id.as_deref() else {
        return rpc_error(
            400,
            &McpError::InvalidRequest("missing Mcp-Session-Id header".into()),
            b"",
        );
    };
    if may_hand_off {
        let owner = shard.ring.owner(sid.as_bytes());
        if owner != shard.id {
            return hand_off(shard, owner, req).await;
        }
    }
    if shard.sessions.borrow_mut().remove(sid) {
        tracing::debug!(shard = shard.id, session = sid, "session ended by client");
        Reply::empty(200)
    } else {
        rpc_error(404, &unknown_session(), b"")
    }
}

fn initialize(shard: &Rc<LocalShard>, body: &[u8], env: &Envelope<'_>) -> Reply {
    let asked = env.protocol_version.as_deref().unwrap_or("");
    let version = SUPPORTED_VERSIONS
        .iter()
        .copied()
        .find(|v| *v == asked)
        .unwrap_or(SUPPORTED_VERSIONS[0]);
    let sid = crate::mcp::session::mint_id(&shard.ring, shard.id);
    shard.sessions.borrow_mut().insert(
        &sid,
        LocalSession {
            version,
            created: Instant::now(),
        },
    );
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    out.extend_from_slice(env.id_bytes(body));
    out.extend_from_slice(b",\"result\":{\"protocolVersion\":\"");
    out.extend_from_slice(version.as_bytes());
    out.extend_from_slice(b"\",\"capabilities\":{\"tools\":{\"listChanged\":false}},\"serverInfo\":{\"name\":\"only1mcp-uring\",\"version\":\"");
    out.extend_from_slice(env!("CARGO_PKG_VERSION").as_bytes());
    out.extend_from_slice(b"\"}}}");
    tracing::debug!(shard = shard.id, session = %sid, version, "session created");
    let mut r = Reply::json(200, out);
    r.session_id = Some(sid);
    r
}

async fn request(
    shard: &Rc<LocalShard>,
    _session: &LocalSession,
    body: &[u8],
    env: &Envelope<'_>,
) -> Reply {
    let id = env.id_bytes(body);
    let method = env.method.as_deref().unwrap_or("");
    let result = match method {
        "ping" => Ok(ok_result(id, b"{}")),
        "tools/list" => tools_list(shard, body, env),
        "tools/call" => tools_call(shard, body, env).await,
        "initialize" => Err(McpError::InvalidRequest(
            "session already initialized".into(),
        )),
        other => Err(McpError::MethodNotFound(other.to_string())),
    };
    match result {
        Ok(bytes) => Reply::json(200, bytes),
        Err(e) => rpc_error(200, &e, id),
    }
}

fn ok_result(id: &[u8], result: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(40 + id.len() + result.len());
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    out.extend_from_slice(id);
    out.extend_from_slice(b",\"result\":");
    out.extend_from_slice(result);
    out.push(b'}');
    out
}

fn tools_list(
    shard: &Rc<LocalShard>,
    body: &[u8],
    env: &Envelope<'_>,
) -> Result<Vec<u8>, McpError> {
    if env.cursor.is_some() {
        // The gateway returns the whole catalog in one page and never issues cursors.
        return Err(McpError::InvalidParams("invalid cursor".into()));
    }
    let snap = shard.snapshot.load();
    let tools = &snap.catalog.tools_json;
    let id = env.id_bytes(body);
    let mut out = Vec::with_capacity(48 + id.len() + tools.len());
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    out.extend_from_slice(id);
    out.extend_from_slice(b",\"result\":{\"tools\":");
    out.extend_from_slice(tools);
    out.extend_from_slice(b"}}");
    Ok(out)
}

async fn tools_call(
    shard: &Rc<LocalShard>,
    body: &[u8],
    env: &Envelope<'_>,
) -> Result<Vec<u8>, McpError> {
    let (Some(name), Some(name_range)) = (env.name_str.as_deref(), env.name.clone()) else {
        return Err(McpError::InvalidParams(
            "tools/call needs params.name".into(),
        ));
    };
    let id_range = env
        .id
        .clone()
        .ok_or_else(|| McpError::InvalidRequest("missing id".into()))?;
    let (backend_id, original_json, timeout) = {
        let snap = shard.snapshot.load();
        let route = snap
            .catalog
            .route(name)
            .ok_or_else(|| McpError::UnknownTool(name.to_string()))?;
        let spec = &snap.backends[route.backend];
        (spec.id.clone(), route.original_json.clone(), spec.timeout)
    };
    let backend = shard
        .upstreams
        .borrow()
        .get(&backend_id)
        .cloned()
        .ok_or_else(|| McpError::BackendUnavailable {
            server: backend_id.clone(),
            reason: "not started on this shard".into(),
        })?;
    // Splice: the id becomes a placeholder the transport replaces; the name becomes the
    // backend's own. Edits must be in body order.
    let mut out = Vec::new();
    let placeholder: &[u8] = b"0";
    let id_first = id_range.start < name_range.start;
    let edits: [(std::ops::Range<usize>, &[u8]); 2] = if id_first {
        [
            (id_range.clone(), placeholder),
            (name_range.clone(), &original_json),
        ]
    } else {
        [
            (name_range.clone(), &original_json),
            (id_range.clone(), placeholder),
        ]
    };
    splice(body, &edits, &mut out);
    let ph_start = if id_first {
        id_range.start
    } else {
        id_range.start + original_json.len() - name_range.len()
    };
    let reply = backend.call(out, ph_start..ph_start + 1, timeout).await?;
    let mut resp = Vec::new();
    splice(
        &reply.body,
        &[(reply.id.clone(), env.id_bytes(body))],
        &mut resp,
    );
    Ok(resp)
}

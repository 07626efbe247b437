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
    let caps = shard.snapshot.load().catalog.caps.clone();
    let mut out = Vec::with_capacity(320);
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    out.extend_from_slice(env.id_bytes(body));
    out.extend_from_slice(b",\"result\":{\"protocolVersion\":\"");
    out.extend_from_slice(version.as_bytes());
    out.extend_from_slice(b"\",\"capabilities\":{\"tools\":{\"listChanged\":false}");
    if caps.prompts {
        out.extend_from_slice(b",\"prompts\":{\"listChanged\":false}");
    }
    if caps.resources {
        out.extend_from_slice(b",\"resources\":{\"subscribe\":false,\"listChanged\":false}");
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
        "tools/list" => list(shard, body, env, "tools", |c| &c.tools_json),
        "prompts/list" => list(shard, body, env, "prompts", |c| &c.prompts_json),
        "resources/list" => list(shard, body, env, "resources", |c| &c.resources_json),
        "resources/templates/list" => {
            list(shard, body, env, "resourceTemplates", |c| &c.templates_json)
        }
        "tools/call" => by_name(shard, body, env, Named::Tool).await,
        "prompts/get" => by_name(shard, body, env, Named::Prompt).await,
        "resources/read" => resources_read(shard, body, env).await,
        "completion/complete" => crate::mcp::methods::complete(shard, body, env).await,
        "logging/setLevel" => crate::mcp::methods::set_level(shard, body, env).await,
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

/// `{"jsonrpc":"2.0","id":<id>,"result":<result>}`.
pub fn ok_result(id: &[u8], result: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(40 + id.len() + result.len());
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    out.extend_from_slice(id);
    out.extend_from_slice(b",\"result\":");
    out.extend_from_slice(result);
    out.push(b'}');
    out
}

fn list(
    shard: &Rc<LocalShard>,
    body: &[u8],
    env: &Envelope<'_>,
    key: &str,
    pick: fn(&crate::catalog::Catalog) -> &std::sync::Arc<Vec<u8>>,
) -> Result<Vec<u8>, McpError> {
    if env.cursor.is_some() {
        // The gateway returns the whole merged list in one page and never issues cursors.
        return Err(McpError::InvalidParams("invalid cursor".into()));
    }
    let snap = shard.snapshot.load();
    let items = pick(&snap.catalog);
    let id = env.id_bytes(body);
    let mut out = Vec::with_capacity(48 + id.len() + items.len());
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    out.extend_from_slice(id);
    out.extend_from_slice(b",\"result\":{\"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
    out.extend_from_slice(items);
    out.extend_from_slice(b"}}");
    Ok(out)
}

#[derive(Clone, Copy)]
enum Named {
    Tool,
    Prompt,
}

async fn by_name(
    shard: &Rc<LocalShard>,
    body: &[u8],
    env: &Envelope<'_>,
    kind: Named,
) -> Result<Vec<u8>, McpError> {
    let (Some(name), Some(name_range)) = (env.name_str.as_deref(), env.name.clone()) else {
        return Err(McpError::InvalidParams("params.name is required".into()));
    };
    let (backend, original_json) = {
        let snap = shard.snapshot.load();
        let route = match kind {
            Named::Tool => snap.catalog.route(name),
            Named::Prompt => snap.catalog.route_prompt(name),
        };
        let route = route.ok_or_else(|| match kind {
            Named::Tool => McpError::UnknownTool(name.to_string()),
            Named::Prompt => McpError::InvalidParams(format!("unknown prompt: {name}")),
        })?;
        (route.backend, route.original_json.clone())
    };
    forward(
        shard,
        body,
        env,
        backend,
        Some((name_range, &original_json)),
    )
    .await
}

async fn resources_read(
    shard: &Rc<LocalShard>,
    body: &[u8],
    env: &Envelope<'_>,
) -> Result<Vec<u8>, McpError> {
    let (Some(uri), Some(range)) = (env.uri_str.as_deref(), env.uri.clone()) else {
        return Err(McpError::InvalidParams("params.uri is required".into()));
    };
    let (backend, original_json) = {
        let snap = shard.snapshot.load();
        let route = snap
            .catalog
            .route_uri(uri)
            .ok_or_else(|| McpError::ResourceNotFound(uri.to_string()))?;
        let mut j = Vec::new();
        crate::mcp::jsonrpc::push_json_str(&mut j, route.original);
        (route.backend, j)
    };
    forward(shard, body, env, backend, Some((range, &original_json))).await
}

/// Forwards a request to backend `backend` (snapshot index) with one optional splice of a
/// params field (name or uri), and returns the backend's response with the client's id and,
/// for a namespaced backend, namespaced URIs in the result.
pub(crate) async fn forward(
    shard: &Rc<LocalShard>,
    body: &[u8],
    env: &Envelope<'_>,
    backend: usize,
    edit: Option<(std::ops::Range<usize>, &[u8])>,
) -> Result<Vec<u8>, McpError> {
    let id_range = env
        .id
        .clone()
        .ok_or_else(|| McpError::InvalidRequest("missing id".into()))?;
    let (backend_id, timeout, prefixed) = {
        let snap = shard.snapshot.load();
        let spec = &snap.backends[backend];
        (
            spec.id.clone(),
            spec.timeout,
            snap.catalog.uri_prefix_of(backend),
        )
    };
    let handle = shard
        .upstreams
        .borrow()
        .get(&backend_id)
        .cloned()
        .ok_or_else(|| McpError::BackendUnavailable {
            server: backend_id.clone(),
            reason: "not started on this shard".into(),
        })?;
    // The id becomes a placeholder the transport replaces; the edit (if any) becomes the
    // backend's own name or URI. Edits must be in body order.
    let placeholder: &[u8] = b"0";
    let mut out = Vec::new();
    let ph_start = match &edit {
        Some((r, with)) if r.start < id_range.start => {
            splice(
                body,
                &[(r.clone(), with), (id_range.clone(), placeholder)],
                &mut out,
            );
            id_range.start + with.len() - r.len()
        }
        Some((r, with)) => {
            splice(
                body,
                &[(id_range.clone(), placeholder), (r.clone(), with)],
                &mut out,
            );
            id_range.start
        }
        None => {
            splice(body, &[(id_range.clone(), placeholder)], &mut out);
            id_range.start
        }
    };
    let reply = handle.call(out, ph_start..ph_start + 1, timeout).await?;
    let client_id = env.id_bytes(body);
    let mut resp = Vec::new();
    if prefixed {
        if let Ok(r) = sonic_rs::get(&reply.body[..], ["result"]) {
            let raw = r.as_raw_str();
            let start = raw.as_ptr() as usize - reply.body.as_ptr() as usize;
            let range = start..start + raw.len();
            if let Some(new) = crate::catalog::uri::rewrite_result(raw.as_bytes(), &backend_id) {
                let mut edits = [(reply.id.clone(), client_id), (range, &new[..])];
                edits.sort_by_key(|e| e.0.start);
                splice(&reply.body, &edits, &mut resp);
                return Ok(resp);
            }
        }
    }
    splice(&reply.body, &[(reply.id.clone(), client_id)], &mut resp);
    Ok(resp)
}

//! The checks a request passes before its method runs: named phases, in the order they run,
//! in one place for both eras. Each returns the refusal to send (with the request's id when
//! it can be read) or lets the request through; `route/dispatch.rs` runs the 2025 sequence,
//! `route/modern.rs` the 2026 one.
//!
//! 2025: `parse` → `rate_limit` → `session_named` → `elsewhere` (hand off to the
//! owner shard) → `session` → the method. 2026: `parse` → `rate_limit` →
//! `modern_version` → `modern_names` → the method. RBAC runs where the name is resolved
//! (`route/by_name.rs`, `route/meta.rs`, `route/lists.rs`), since a denied item must answer
//! like a missing one.

use std::rc::Rc;

use crate::auth::local::RateRefusal;
use crate::error::McpError;
use crate::http::response::Reply;
use crate::route::request::{check_version_header, rpc_error, McpHttpRequest};
use crate::route::router::Router;
use crate::route::MODERN_VERSIONS;
use crate::wire::header::header_value;
use crate::wire::jsonrpc::{Envelope, Kind};

fn err(status: u16, e: McpError, id: &[u8]) -> Reply {
    Reply::json(status, e.to_response(id))
}

/// The body is one JSON-RPC message the gateway can read (400 otherwise, with the id when
/// it can be found).
pub(crate) fn parse(body: &[u8]) -> Result<Envelope<'_>, Box<Reply>> {
    Envelope::parse(body).map_err(|e| Box::new(rpc_error(400, &e, Envelope::id_hint(body))))
}

/// The caller is within its rate limits (429; 503 when the shared store cannot decide and
/// `on_store_error = "deny"`). Run once, on the shard the client's connection is on, never
/// again after a handoff to the session's owner. Only a shared store makes it wait.
pub(crate) async fn rate_limit(
    router: &Rc<Router>,
    req: &McpHttpRequest,
    env: &Envelope<'_>,
) -> Result<(), Box<Reply>> {
    if env.kind != Kind::Request {
        return Ok(());
    }
    let tool = (env.method.as_deref() == Some("tools/call"))
        .then_some(env.name_str.as_deref())
        .flatten();
    let snap = router.snapshot.load();
    if let Err(refused) = router.auth.rate(&snap, &req.principal.name, tool).await {
        let id = env.id_bytes(&req.body);
        let reply = match refused {
            RateRefusal::OverLimit(wait) => crate::auth::local::too_many(wait, id),
            RateRefusal::StoreDown => crate::auth::local::store_down(id),
        };
        let sid = req.session_id.as_deref().map(str::as_bytes);
        let who = Some(&*req.principal.name);
        crate::route::audit::refused(router, &req.body, &reply, who, sid);
        return Err(Box::new(reply));
    }
    Ok(())
}

/// (2025) A request other than `initialize` names its session (400 otherwise).
pub(crate) fn session_named<'r>(
    req: &'r McpHttpRequest,
    env: &Envelope<'_>,
) -> Result<&'r str, Box<Reply>> {
    req.session_id.as_deref().ok_or_else(|| {
        Box::new(rpc_error(
            400,
            &McpError::InvalidRequest(
                "missing Mcp-Session-Id header (send initialize first)".into(),
            ),
            env.id_bytes(&req.body),
        ))
    })
}

/// (2025) The shard that owns session `sid`, when it is not this one: the request is handed
/// to it whole.
pub(crate) fn elsewhere(router: &Router, sid: &str) -> Option<usize> {
    let owner = router.ring.owner(sid.as_bytes());
    (owner != router.id).then_some(owner)
}

/// (2025) The session exists and belongs to the caller (404 otherwise: another caller must
/// not learn that it exists), and the `MCP-Protocol-Version` header, when sent, is served
/// (400). Touches the session: anything but the handshake's own notification puts it in
/// use, so it is never evicted for room under `max_sessions`.
pub(crate) fn session(
    router: &Router,
    req: &McpHttpRequest,
    env: &Envelope<'_>,
    sid: &str,
) -> Result<(), Box<Reply>> {
    let uses = env.method.as_deref() != Some("notifications/initialized");
    let seen = router.sessions.borrow_mut().touch(
        sid,
        &req.principal.name,
        uses,
        crate::rt::clock::recent(),
    );
    if !seen {
        return Err(Box::new(crate::route::lifecycle::refuse_session(
            router,
            sid,
            env.id_bytes(&req.body),
        )));
    }
    check_version_header(req.protocol_version.as_deref())
        .map_err(|e| Box::new(rpc_error(400, &e, env.id_bytes(&req.body))))
}

/// (2026) `MCP-Protocol-Version` is sent, `params._meta` carries the version and client
/// capabilities, the two versions agree, and the version is served (400 otherwise, as the
/// spec orders these checks).
pub(crate) fn modern_version(req: &McpHttpRequest, env: &Envelope<'_>) -> Result<(), Box<Reply>> {
    let id = env.id_bytes(&req.body);
    let Some(header) = req.protocol_version.as_deref() else {
        return Err(Box::new(err(
            400,
            McpError::HeaderMismatch("missing MCP-Protocol-Version header".into()),
            id,
        )));
    };
    let (Some(version), Some(_)) = (env.meta.version.as_deref(), env.meta.capabilities.as_ref())
    else {
        return Err(Box::new(err(
            400,
            McpError::InvalidParams(
                "params._meta needs io.modelcontextprotocol/protocolVersion and io.modelcontextprotocol/clientCapabilities".into(),
            ),
            id,
        )));
    };
    if header != version {
        return Err(Box::new(err(
            400,
            McpError::HeaderMismatch(format!(
                "MCP-Protocol-Version `{header}` does not match _meta protocolVersion `{version}`"
            )),
            id,
        )));
    }
    if !MODERN_VERSIONS.contains(&version) {
        return Err(Box::new(err(
            400,
            McpError::UnsupportedVersion {
                requested: version.to_string(),
            },
            id,
        )));
    }
    Ok(())
}

/// (2026) A request's `Mcp-Method` header equals its method, and for the methods that name
/// a tool, prompt, resource or task, `Mcp-Name` (decoded) equals that name (400 otherwise).
pub(crate) fn modern_names(
    req: &McpHttpRequest,
    env: &Envelope<'_>,
    method: &str,
) -> Result<(), Box<Reply>> {
    let id = env.id_bytes(&req.body);
    match req.mcp_method.as_deref() {
        Some(m) if m == method => {}
        Some(m) => {
            return Err(Box::new(err(
                400,
                McpError::HeaderMismatch(format!("Mcp-Method `{m}` does not match `{method}`")),
                id,
            )))
        }
        None => {
            return Err(Box::new(err(
                400,
                McpError::HeaderMismatch("missing Mcp-Method header".into()),
                id,
            )))
        }
    }
    if matches!(
        method,
        "tools/call"
            | "prompts/get"
            | "resources/read"
            | "tasks/get"
            | "tasks/update"
            | "tasks/cancel"
    ) {
        // The tasks extension routes by task id (`Mcp-Name` = `params.taskId`).
        let body_name = match method {
            "resources/read" => env.uri_str.as_deref(),
            "tasks/get" | "tasks/update" | "tasks/cancel" => env.task_id_str.as_deref(),
            _ => env.name_str.as_deref(),
        };
        match (req.mcp_name.as_deref().map(header_value), body_name) {
            (Some(Some(h)), Some(b)) if h == b => {}
            (None, _) => {
                return Err(Box::new(err(
                    400,
                    McpError::HeaderMismatch("missing Mcp-Name header".into()),
                    id,
                )))
            }
            _ => {
                return Err(Box::new(err(
                    400,
                    McpError::HeaderMismatch("Mcp-Name does not match the body".into()),
                    id,
                )))
            }
        }
    }
    Ok(())
}

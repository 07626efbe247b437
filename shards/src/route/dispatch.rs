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

use crate::catalog::ListKind;
use crate::config::Discovery;
use crate::error::McpError;
use crate::http::request::Method;
use crate::http::response::Reply;
use crate::route::forward::{Answer, Era};
use crate::route::request::{check_version_header, rpc_error, unknown_session, McpHttpRequest};
use crate::route::router::Router;
use crate::wire::jsonrpc::{Envelope, Kind};
use crate::wire::ok_result;

/// Serves one `/mcp` request. `may_hand_off` is false when this shard received it as a handoff.
pub async fn handle(router: &Rc<Router>, req: McpHttpRequest, may_hand_off: bool) -> Reply {
    match req.method {
        Method::Post => {}
        Method::Delete => return crate::route::lifecycle::delete(router, req, may_hand_off).await,
        Method::Get => return crate::route::lifecycle::get_stream(router, req, may_hand_off).await,
        Method::Other => {
            let mut r = Reply::text(405, "method not allowed on /mcp");
            r.allow = Some("GET, POST, DELETE");
            return r;
        }
    }
    let env = match Envelope::parse(&req.body) {
        Ok(e) => e,
        Err(e) => return rpc_error(400, &e, Envelope::id_hint(&req.body)),
    };
    // Rate limits, once, on the shard the client's connection is on (not again after a
    // handoff to the session's owner).
    if may_hand_off && env.kind == Kind::Request {
        let tool = (env.method.as_deref() == Some("tools/call"))
            .then_some(env.name_str.as_deref())
            .flatten();
        let snap = router.snapshot.load();
        if let Err(wait) = router.auth.rate(&snap, &req.principal.name, tool) {
            let reply = crate::auth::local::too_many(wait, env.id_bytes(&req.body));
            let sid = req.session_id.as_deref().map(str::as_bytes);
            let who = Some(&*req.principal.name);
            crate::route::audit::refused(router, &req.body, &reply, who, sid);
            return reply;
        }
    }
    if crate::route::modern::is_modern(&req, &env) {
        return crate::route::modern::serve(router, &req, &env).await;
    }
    if env.kind == Kind::Request && env.method.as_deref() == Some("initialize") {
        let started = std::time::Instant::now();
        let r = crate::route::lifecycle::initialize(router, &req.body, &env, &req.principal);
        let outcome = if r.status == 200 {
            crate::stats::Outcome::Ok
        } else {
            crate::stats::Outcome::ClientError
        };
        router
            .stats
            .request("initialize", outcome, started.elapsed());
        crate::route::audit::served(
            router,
            crate::route::audit::Served {
                principal: &req.principal,
                session: r.session_id.as_deref().unwrap_or(""),
                method: "initialize",
                name: None,
                outcome,
                status: r.status,
                started,
                bytes_in: req.body.len(),
                bytes_out: r.body_len(),
            },
        );
        return r;
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
        let owner = router.ring.owner(sid.as_bytes());
        if owner != router.id {
            drop(env);
            return router.hand_off(owner, req).await;
        }
    }
    // Anything but the handshake's own notification puts the session in use (never evicted
    // for room under `max_sessions`).
    let uses = env.method.as_deref() != Some("notifications/initialized");
    let seen = router.sessions.borrow_mut().touch(
        sid,
        &req.principal.name,
        uses,
        std::time::Instant::now(),
    );
    if !seen {
        return rpc_error(404, &unknown_session(), env.id_bytes(&req.body));
    }
    if let Err(e) = check_version_header(req.protocol_version.as_deref()) {
        return rpc_error(400, &e, env.id_bytes(&req.body));
    }
    match env.kind {
        Kind::Notification => {
            if env.method.as_deref() == Some("notifications/cancelled") {
                if let Some(r) = env.request_id.clone() {
                    crate::route::forward::cancel(router, sid, &req.body[r]);
                }
            }
            Reply::empty(202)
        }
        Kind::Response => {
            crate::route::forward::client_answer(router, sid, &req.body, &env);
            Reply::empty(202)
        }
        Kind::Request => request(router, sid, &req, &env).await,
    }
}

async fn request(
    router: &Rc<Router>,
    sid: &str,
    req: &McpHttpRequest,
    env: &Envelope<'_>,
) -> Reply {
    let (body, affinity, principal) = (&req.body[..], &req.affinity, &req.principal);
    let mode = match env.method.as_deref() {
        Some("tools/list" | "tools/call") => {
            crate::route::meta::mode(router, req.discovery, false, principal)
        }
        _ => Discovery::Full,
    };
    let id = env.id_bytes(body);
    let started = std::time::Instant::now();
    let era = || Era {
        affinity: affinity.clone(),
        principal: Some(principal.clone()),
        ..Era::default()
    };
    let method = env.method.as_deref().unwrap_or("");
    let json = |r: Result<Vec<u8>, McpError>| r.map(Answer::Json);
    let result = match method {
        "ping" => Ok(Answer::Json(ok_result(id, b"{}"))),
        "tools/list" if mode != Discovery::Full => {
            let tools = crate::route::meta::list(router, mode, false, principal);
            Ok(Answer::Json(ok_result(
                id,
                format!(r#"{{"tools":{tools}}}"#).as_bytes(),
            )))
        }
        "tools/call" if crate::route::meta::handles(mode, env) => {
            Box::pin(crate::route::meta::call(router, sid, body, env, era())).await
        }
        "tools/list" => crate::route::lists::legacy(router, body, env, ListKind::Tools, principal),
        "prompts/list" => {
            crate::route::lists::legacy(router, body, env, ListKind::Prompts, principal)
        }
        "resources/list" => {
            crate::route::lists::legacy(router, body, env, ListKind::Resources, principal)
        }
        "resources/templates/list" => {
            crate::route::lists::legacy(router, body, env, ListKind::Templates, principal)
        }
        "tools/call" => by_name(router, sid, body, env, Named::Tool, era()).await,
        "prompts/get" => by_name(router, sid, body, env, Named::Prompt, era()).await,
        "resources/read" => resources_read(router, sid, body, env, era()).await,
        // Rare methods are boxed: their futures (set_level's holds a whole backend call, 10 KiB)
        // would otherwise size every request's future, and every connection's task with it.
        "completion/complete" => {
            Box::pin(crate::route::methods::complete(
                router,
                sid,
                body,
                env,
                era(),
            ))
            .await
        }
        "resources/subscribe" => {
            Box::pin(crate::route::methods::subscribe(
                router, sid, body, env, true, principal,
            ))
            .await
        }
        "resources/unsubscribe" => {
            Box::pin(crate::route::methods::subscribe(
                router, sid, body, env, false, principal,
            ))
            .await
        }
        "logging/setLevel" => {
            json(Box::pin(crate::route::methods::set_level(router, body, env)).await)
        }
        "initialize" => Err(McpError::InvalidRequest(
            "session already initialized".into(),
        )),
        other => Err(McpError::MethodNotFound(other.to_string())),
    };
    let outcome = crate::stats::Outcome::of(&result);
    router.stats.request(method, outcome, started.elapsed());
    let meta = crate::route::meta::handles(mode, env).then_some(env.name_str.as_deref());
    crate::route::tokens::tap_gateway_answer(&router.tokens, method, meta.flatten(), &result);
    let reply = match result {
        Ok(Answer::Json(bytes)) => Reply::json(200, bytes),
        Ok(Answer::Parts(head, shared, tail)) => Reply::json_parts(200, head, shared, tail),
        Ok(Answer::Stream(rx)) => Reply::sse(crate::route::resume::track(router, sid, rx).1),
        Err(e) => rpc_error(200, &e, id),
    };
    crate::route::audit::served(
        router,
        crate::route::audit::Served {
            principal,
            session: sid,
            method,
            name: env.name_str.as_deref().or(env.uri_str.as_deref()),
            outcome,
            status: reply.status,
            started,
            bytes_in: body.len(),
            bytes_out: reply.body_len(),
        },
    );
    reply
}

/// Which catalog a name is looked up in.
#[derive(Clone, Copy)]
pub(crate) enum Named {
    /// `tools/call`
    Tool,
    Prompt,
}

pub(crate) async fn by_name(
    router: &Rc<Router>,
    sid: &str,
    body: &[u8],
    env: &Envelope<'_>,
    kind: Named,
    era: Era,
) -> Result<Answer, McpError> {
    let (Some(called), Some(name_range)) = (env.name_str.as_deref(), env.name.clone()) else {
        return Err(McpError::InvalidParams("params.name is required".into()));
    };
    // A role that sees this tool under another name calls it by that name.
    let names = match (&era.principal, kind) {
        (Some(p), Named::Tool) => {
            let snap = router.snapshot.load();
            router.auth.names(&snap, era.modern, p)
        }
        _ => None,
    };
    let name = match &names {
        Some(n) => n
            .to_gateway(called)
            .ok_or_else(|| McpError::UnknownTool(called.to_string()))?,
        None => called,
    };
    let (backend, original_json, idempotent, cacheable) = {
        let snap = router.snapshot.load();
        let catalog = snap.catalog_for(era.modern);
        let route = match kind {
            Named::Tool => catalog.route(name),
            Named::Prompt => catalog.route_prompt(name),
        };
        let Some(route) = route else {
            // A namespaced name of a backend that is not up: say so, not "unknown".
            let sep = &snap.config.proxy.tool_separator;
            let down = snap
                .backends
                .iter()
                .zip(&snap.catalog.reports)
                .find(|(b, r)| {
                    b.prefix
                        && r.state != crate::catalog::BackendState::Ready
                        && name.len() > b.id.len() + sep.len()
                        && name.starts_with(b.id.as_str())
                        && name[b.id.len()..].starts_with(sep.as_str())
                });
            return Err(match (down, kind) {
                (Some((b, r)), _) => McpError::BackendUnavailable {
                    server: b.id.clone(),
                    reason: match &r.state {
                        crate::catalog::BackendState::Down(why) => why.clone(),
                        _ => "starting; its tools are not listed yet".into(),
                    },
                },
                (None, Named::Tool) => McpError::UnknownTool(called.to_string()),
                (None, Named::Prompt) => McpError::InvalidParams(format!("unknown prompt: {name}")),
            });
        };
        // RBAC: a denied item answers exactly like one that does not exist.
        if let Some(p) = &era.principal {
            let item = match kind {
                Named::Tool => crate::auth::policy::ItemKind::Tool,
                Named::Prompt => crate::auth::policy::ItemKind::Prompt,
            };
            if !crate::auth::local::allows(&snap, p, item, route.backend, name) {
                return Err(match kind {
                    Named::Tool => McpError::UnknownTool(called.to_string()),
                    Named::Prompt => McpError::InvalidParams(format!("unknown prompt: {name}")),
                });
            }
        }
        let cacheable = route.read_only && route.idempotent && matches!(kind, Named::Tool);
        (
            route.backend,
            route.original_json.clone(),
            route.idempotent,
            cacheable,
        )
    };
    if matches!(kind, Named::Tool) {
        crate::route::meta::used(router, name);
    }
    let mut era = era;
    era.retry_safe = idempotent || matches!(kind, Named::Prompt);
    if matches!(kind, Named::Tool) {
        era.tool = sonic_rs::from_slice::<String>(&original_json).ok();
    }
    let target = cacheable.then_some(crate::route::cached::Target {
        what: crate::cache::Cacheable::Call,
        name,
    });
    let edit = Some((name_range, &original_json[..]));
    crate::route::cached::forward_cached(router, sid, body, env, backend, edit, era, target).await
}

pub(crate) async fn resources_read(
    router: &Rc<Router>,
    sid: &str,
    body: &[u8],
    env: &Envelope<'_>,
    era: Era,
) -> Result<Answer, McpError> {
    let (Some(uri), Some(range)) = (env.uri_str.as_deref(), env.uri.clone()) else {
        return Err(McpError::InvalidParams("params.uri is required".into()));
    };
    let (backend, original_json) = {
        let snap = router.snapshot.load();
        let route = snap
            .catalog_for(era.modern)
            .route_uri(uri)
            .ok_or_else(|| McpError::ResourceNotFound(uri.to_string()))?;
        if let Some(p) = &era.principal {
            let item = crate::auth::policy::ItemKind::Resource;
            if !crate::auth::local::allows(&snap, p, item, route.backend, uri) {
                return Err(McpError::ResourceNotFound(uri.to_string()));
            }
        }
        let mut j = Vec::new();
        crate::wire::jsonrpc::push_json_str(&mut j, route.original);
        (route.backend, j)
    };
    let era = Era {
        retry_safe: true,
        ..era
    };
    let target = crate::route::cached::Target {
        what: crate::cache::Cacheable::Read,
        name: uri,
    };
    let edit = Some((range, &original_json[..]));
    crate::route::cached::forward_cached(router, sid, body, env, backend, edit, era, Some(target))
        .await
}

//! The 2026-07-28 era on the same `/mcp`: stateless requests that carry their own metadata.
//!
//! A request is modern when it has no `Mcp-Session-Id` and carries a modern signal (the
//! `MCP-Protocol-Version` header or `params._meta`) that is not plain legacy traffic. Checks
//! run in the spec's order (header present, `_meta` complete, header equals `_meta`, version
//! supported, `Mcp-Method`/`Mcp-Name` equal the body) and every error echoes the request id.
//! Served here: `server/discover`, the four lists (with `resultType`, `ttlMs`, `cacheScope`),
//! `tools/call`, `prompts/get`, `resources/read`, `completion/complete` forwarded like 2025
//! requests but answered in the modern shape, and `subscriptions/listen`. Methods the era
//! removed (`initialize`, `ping`, `logging/setLevel`, `resources/subscribe`) are 404.
//! A backend that speaks 2026-07-28 gets the request in that era (`upstream/modern.rs`);
//! an older backend gets it in its 2025 session, and its server-to-client requests
//! (elicitation, sampling, roots) are bridged to an `input_required` result whose signed
//! `requestState` resumes the parked call (`route/bridge.rs`, `route/state.rs`).

use std::rc::Rc;

use crate::catalog::ListKind;
use crate::config::Discovery;
use crate::error::McpError;
use crate::http::response::Reply;
use crate::route::by_name::{by_name, resources_read, Named};
use crate::route::call::Call;
use crate::route::forward::{log_severity, Answer, Era};
use crate::route::observe::{observe, Observed};
use crate::route::request::McpHttpRequest;
use crate::route::router::Router;
use crate::wire::jsonrpc::{Envelope, Kind};

pub use crate::route::MODERN_VERSIONS;
/// Handshake-era versions (a header with one of these and no `_meta` is legacy traffic).
const LEGACY_VERSIONS: &[&str] = &["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
/// How long clients may cache the gateway's merged lists. The catalog changes only when a
/// backend does; `subscriptions/listen` tells listeners at once.
const LIST_TTL_MS: u64 = 30_000;

/// Is this request of the 2026-07-28 era?
pub fn is_modern(req: &McpHttpRequest, env: &Envelope<'_>) -> bool {
    if req.session_id.is_some() {
        return false;
    }
    let header = req.protocol_version.as_deref();
    let legacy_traffic = !env.meta.present && header.is_some_and(|h| LEGACY_VERSIONS.contains(&h));
    (header.is_some() || env.meta.present) && !legacy_traffic
}

fn err(status: u16, e: McpError, id: &[u8]) -> Reply {
    Reply::json(status, e.to_response(id))
}

/// How a dispatched modern request ended, noted by [`serve_counted`] for the observe step.
#[derive(Default)]
struct Dispatched {
    outcome: Option<crate::stats::Outcome>,
    meta: bool,
}

/// Validates and serves one modern request or notification.
pub async fn serve(router: &Rc<Router>, req: &McpHttpRequest, env: &Envelope<'_>) -> Reply {
    let started = std::time::Instant::now();
    let traced = (env.kind == Kind::Request)
        .then(|| crate::route::trace::start(router, req, env, started))
        .flatten();
    let mut seen = Dispatched::default();
    let reply = serve_counted(router, req, env, &mut seen, traced.clone()).await;
    if env.kind == Kind::Request {
        // Refused before dispatch (headers, version): the client's fault.
        let outcome = seen.outcome.unwrap_or(if reply.status >= 400 {
            crate::stats::Outcome::ClientError
        } else {
            crate::stats::Outcome::Ok
        });
        let observed = Observed {
            principal: &req.principal,
            session: "",
            method: env.method.as_deref().unwrap_or(""),
            name: env.name_str.as_deref().or(env.uri_str.as_deref()),
            dispatched: seen.outcome.is_some(),
            meta: env.name_str.as_deref().filter(|_| seen.meta),
            outcome,
            started,
            bytes_in: req.body.len(),
            trace: traced.as_ref().map(|active| crate::route::trace::Traced {
                active,
                request_id: env.id_bytes(&req.body),
                version: env.meta.version.as_deref(),
                stdio: req.trace.stdio,
            }),
        };
        observe(router, observed, &reply);
    }
    reply
}

/// [`serve`], noting in `seen` how a dispatched request ended.
async fn serve_counted(
    router: &Rc<Router>,
    req: &McpHttpRequest,
    env: &Envelope<'_>,
    seen: &mut Dispatched,
    trace: Option<std::rc::Rc<crate::trace::Active>>,
) -> Reply {
    let id = env.id_bytes(&req.body);
    if let Err(refused) = crate::route::phases::modern_version(req, env) {
        return *refused;
    }
    let method = env.method.as_deref().unwrap_or("");
    if env.kind != Kind::Request {
        return Reply::empty(202);
    }
    if let Err(refused) = crate::route::phases::modern_names(req, env, method) {
        return *refused;
    }
    let client_caps = client_caps(&req.body, env);
    let parkable = matches!(method, "tools/call" | "prompts/get" | "resources/read")
        && (client_caps.elicitation || client_caps.sampling || client_caps.roots);
    let mut era = Era {
        modern: true,
        log_level: env.meta.log_level.as_deref().and_then(log_severity),
        cacheable: method == "resources/read",
        uri: env.uri_str.as_deref().map(str::to_string),
        client_caps,
        tool: None,
        retry_safe: false,
        affinity: req.affinity.clone(),
        principal: Some(req.principal.clone()),
        hints: None,
        bind: parkable
            .then(|| crate::route::state::binding_of(&req.body, env, &req.principal.name)),
        inputs: Default::default(),
        // A client that declared the tasks extension may get a task from a tool call.
        task: (method == "tools/call" && crate::route::tasks::declares_extension(&req.body, env))
            .then(|| {
                std::rc::Rc::new(crate::route::tables::tasks::TaskCall::Create {
                    owner: crate::route::tables::tasks::TaskOwner::Principal(
                        (*req.principal.name).into(),
                    ),
                })
            }),
        params: crate::route::request::ParamCheck::On(req.mcp_params.clone()),
        tool_headers: None,
        trace,
    };
    let body = &req.body[..];
    // A retry of a call the gateway parked on this client's input.
    if matches!(method, "tools/call" | "prompts/get" | "resources/read") {
        use sonic_rs::JsonValueTrait;
        if let Some(state) = sonic_rs::get(body, ["params", "requestState"])
            .ok()
            .and_then(|v| v.as_str().map(|s: &str| s.to_string()))
            .filter(|s| crate::route::state::is_ours(s))
        {
            match crate::route::bridge::resume(router, req, env, &state).await {
                crate::route::bridge::Resumed::Reply(r) => return r,
                // Parked by another node (or an earlier life of this one): run it again
                // here, answering the backend from the client's answers.
                crate::route::bridge::Resumed::Replay(inputs) => era.inputs = inputs,
            }
        }
    }
    let mode = match method {
        "tools/list" | "tools/call" => {
            crate::route::meta::mode(router, req.discovery, true, &req.principal)
        }
        _ => Discovery::Full,
    };
    let call = |era: Era| Call {
        router,
        sid: "",
        body,
        env,
        era,
    };
    let answer = match method {
        "server/discover" => Ok(Answer::Json(crate::wire::ok_result(id, &discover(router)))),
        "tools/list" if mode != Discovery::Full => {
            let tools = crate::route::meta::list(router, mode, true, &req.principal);
            Ok(Answer::Json(crate::wire::ok_result(
                id,
                format!(r#"{{"resultType":"complete","tools":{tools}}}"#).as_bytes(),
            )))
        }
        "tools/call" if crate::route::meta::handles(mode, env) => {
            crate::route::meta::call(call(era)).await
        }
        "tools/list" | "prompts/list" | "resources/list" | "resources/templates/list" => {
            let kind = match method {
                "tools/list" => ListKind::Tools,
                "prompts/list" => ListKind::Prompts,
                "resources/list" => ListKind::Resources,
                _ => ListKind::Templates,
            };
            crate::route::lists::modern(router, body, env, kind, &req.principal, LIST_TTL_MS)
        }
        "tools/call" => by_name(call(era), Named::Tool).await,
        "prompts/get" => by_name(call(era), Named::Prompt).await,
        "resources/read" => resources_read(call(era)).await,
        "completion/complete" => crate::route::methods::complete(call(era)).await,
        "tasks/get" | "tasks/update" | "tasks/cancel"
            if crate::route::tasks::carried(router, true) =>
        {
            if !crate::route::tasks::declares_extension(body, env) {
                // -32021 goes out with HTTP 400 (`modern_status`).
                let e = crate::route::tasks::needs_extension(method);
                Ok(Answer::Json(e.to_response(id)))
            } else if let Some(shard) =
                crate::route::tasks::to_legacy::elsewhere(router, env, &req.principal.name)
            {
                // A bridged task lives on the shard that created it (`to_legacy.rs`).
                return crate::route::tasks::to_legacy::hand_off(router, req, shard).await;
            } else {
                let what = crate::route::tasks::follow_of(method, true);
                let what = what.unwrap_or(crate::route::tables::tasks::Follow::Get);
                Box::pin(crate::route::tasks::methods::follow(call(era), what)).await
            }
        }
        "subscriptions/listen" => {
            return crate::route::listen::listen(router, body, env, &req.principal)
        }
        other => return err(404, McpError::MethodNotFound(other.to_string()), id),
    };
    seen.outcome = Some(crate::stats::Outcome::of(&answer));
    seen.meta = crate::route::meta::handles(mode, env);
    match answer {
        Ok(Answer::Json(bytes)) => Reply::json(modern_status(&bytes), bytes),
        Ok(Answer::Parts(head, shared, tail, gz)) => {
            let mut reply = Reply::json_parts(200, head, shared, tail);
            reply.gz = gz;
            reply
        }
        Ok(Answer::Stream(rx)) => Reply::sse(rx),
        Err(McpError::ResourceNotFound(uri)) => Reply::json(
            200,
            McpError::InvalidParams(format!("resource not found: {uri}"))
                .to_response_with_uri(id, &uri),
        ),
        Err(e) => err(status_of(e.code()), e, id),
    }
}

/// The HTTP status a 2026 answer needs: the spec's 400 for header, capability and version
/// errors (also when a 2026 backend raised them), 404 for an unknown method, else 200.
fn modern_status(body: &[u8]) -> u16 {
    use sonic_rs::JsonValueTrait;
    if !body.windows(8).any(|w| w == b"\"error\":") {
        return 200;
    }
    sonic_rs::get(body, ["error", "code"])
        .ok()
        .and_then(|c| c.as_i64())
        .map_or(200, status_of)
}

/// The HTTP status of a 2026 error answer with JSON-RPC code `code`.
fn status_of(code: impl Into<i64>) -> u16 {
    match code.into() {
        // HeaderMismatch, MissingRequiredClientCapability, UnsupportedProtocolVersion.
        -32022..=-32020 => 400,
        -32601 => 404,
        _ => 200,
    }
}

/// What the request's `_meta` clientCapabilities declare.
fn client_caps(body: &[u8], env: &Envelope<'_>) -> crate::route::session::ClientCaps {
    use sonic_rs::JsonValueTrait;
    let Some(r) = env.meta.capabilities.clone() else {
        return Default::default();
    };
    let caps = &body[r];
    let has = |k: &str| sonic_rs::get(caps, [k]).is_ok_and(|v| v.is_object());
    crate::route::session::ClientCaps {
        sampling: has("sampling"),
        elicitation: has("elicitation"),
        roots: has("roots"),
    }
}

/// The `server/discover` result.
fn discover(router: &Rc<Router>) -> Vec<u8> {
    let caps = router.snapshot.load().catalog_modern.caps.clone();
    let mut out = br#"{"resultType":"complete","supportedVersions":["2026-07-28"],"capabilities":{"tools":{"listChanged":true}"#.to_vec();
    if caps.prompts {
        out.extend_from_slice(br#","prompts":{"listChanged":true}"#);
    }
    if caps.resources {
        out.extend_from_slice(br#","resources":{"listChanged":true}"#);
    }
    if caps.completions {
        out.extend_from_slice(br#","completions":{}"#);
    }
    if caps.tasks {
        out.extend_from_slice(br#","extensions":{"io.modelcontextprotocol/tasks":{}}"#);
    }
    out.extend_from_slice(format!(
        r#"}},"ttlMs":{LIST_TTL_MS},"cacheScope":"public","_meta":{{"io.modelcontextprotocol/serverInfo":{{"name":"only1mcp-uring","version":"{}"}}}}}}"#,
        env!("CARGO_PKG_VERSION")
    ).as_bytes());
    out
}

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
use crate::route::by_name::{by_name, resources_read, Named};
use crate::route::call::Call;
use crate::route::forward::{Answer, Era};
use crate::route::observe::{observe, Observed};
use crate::route::phases;
use crate::route::request::{rpc_error, McpHttpRequest};
use crate::route::router::Router;
use crate::wire::jsonrpc::{Envelope, Kind};
use crate::wire::ok_result;

/// Serves one `/mcp` request. `may_hand_off` is false when this shard received it as a handoff.
pub async fn handle(router: &Rc<Router>, req: McpHttpRequest, may_hand_off: bool) -> Reply {
    serve(router, req, may_hand_off, may_hand_off).await
}

/// [`handle`] with its two once-per-request phases chosen apart: `rate` (the rate limit) and
/// `hand_off` (to the session's owner shard). A batch's elements (`route/batch.rs`) run on
/// the owner shard with the rate limit and without a handoff.
pub(crate) async fn serve(
    router: &Rc<Router>,
    req: McpHttpRequest,
    rate: bool,
    may_hand_off: bool,
) -> Reply {
    match req.method {
        Method::Post => {}
        Method::Delete => return crate::route::lifecycle::delete(router, req, may_hand_off).await,
        Method::Get => return crate::route::lifecycle::get_stream(router, req, may_hand_off).await,
        Method::Head | Method::Other => {
            let mut r = Reply::text(405, "method not allowed on /mcp");
            r.allow = Some("GET, POST, DELETE");
            return r;
        }
    }
    // The checks, in order (`route/phases.rs`).
    let env = match phases::parse(&req.body) {
        Ok(e) => e,
        // Not one message: a batch is served by `route/batch.rs` when its session's
        // revision has batches, else refused as any other unreadable body.
        Err(refused) if crate::wire::batch::is_array(&req.body) => {
            return crate::route::batch::serve(router, req, may_hand_off, *refused).await
        }
        Err(refused) => return *refused,
    };
    if rate {
        if let Err(refused) = phases::rate_limit(router, &req, &env).await {
            return *refused;
        }
    }
    if crate::route::modern::is_modern(&req, &env) {
        return crate::route::modern::serve(router, &req, &env).await;
    }
    if env.kind == Kind::Request && env.method.as_deref() == Some("initialize") {
        // On the request's path since its arrival: the shard's latest reading (`rt/clock.rs`).
        let started = crate::rt::clock::recent();
        // Served all the same (a balancer may lag behind `/ready`), but counted.
        if router.readiness.state().leaving() {
            router.stats.initialize_while_draining();
        }
        let traced = crate::route::trace::start(router, &req, &env, started);
        let r = crate::route::lifecycle::initialize(router, &req.body, &env, &req.principal);
        let outcome = if r.status == 200 {
            crate::stats::Outcome::Ok
        } else {
            crate::stats::Outcome::ClientError
        };
        let seen = Observed {
            principal: &req.principal,
            session: r.session_id.as_deref().unwrap_or(""),
            method: "initialize",
            name: None,
            dispatched: false,
            meta: None,
            outcome,
            started,
            bytes_in: req.body.len(),
            trace: traced.as_ref().map(|active| crate::route::trace::Traced {
                active,
                request_id: env.id_bytes(&req.body),
                version: Some(negotiated(env.protocol_version.as_deref())),
                stdio: req.trace.stdio,
            }),
        };
        observe(router, seen, &r);
        return r;
    }
    let sid = match phases::session_named(&req, &env) {
        Ok(sid) => sid,
        Err(refused) => return *refused,
    };
    if may_hand_off {
        if let Some(owner) = phases::elsewhere(router, sid) {
            drop(env);
            return router.hand_off(owner, req).await;
        }
    }
    if let Err(refused) = phases::session(router, &req, &env, sid) {
        return *refused;
    }
    match env.kind {
        Kind::Notification => {
            if env.method.as_deref() == Some("notifications/cancelled") {
                if let Some(r) = env.request_id.clone() {
                    crate::route::client_msgs::cancel(router, sid, &req.body[r]);
                }
            }
            Reply::empty(202)
        }
        Kind::Response => {
            crate::route::client_msgs::client_answer(router, sid, &req.body, &env);
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
    // On the request's path since its arrival (read there, or on arrival from another
    // shard): the shard's latest reading (`rt/clock.rs`).
    let started = crate::rt::clock::recent();
    let traced = crate::route::trace::start(router, req, env, started);
    let method = env.method.as_deref().unwrap_or("");
    // Tasks exist for sessions of the revision that has them, when some backend's are carried.
    let tasks = || {
        crate::route::tasks::carried(router, false)
            && router
                .sessions
                .borrow()
                .get(sid)
                .is_some_and(|s| s.version == crate::route::tasks::TASKS_VERSION)
    };
    let task = (method == "tools/call" && env.task && tasks()).then(|| {
        std::rc::Rc::new(crate::route::tables::tasks::TaskCall::Create {
            owner: crate::route::tables::tasks::TaskOwner::Session(sid.into()),
        })
    });
    let era = || Era {
        affinity: affinity.clone(),
        principal: Some(principal.clone()),
        task: task.clone(),
        trace: traced.clone(),
        ..Era::default()
    };
    let call = |era: Era| Call {
        router,
        sid,
        body,
        env,
        era,
    };
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
            Box::pin(crate::route::meta::call(call(era()))).await
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
        "tools/call" => by_name(call(era()), Named::Tool).await,
        "prompts/get" => by_name(call(era()), Named::Prompt).await,
        "resources/read" => resources_read(call(era())).await,
        // Rare methods are boxed: their futures (set_level's holds a whole backend call, 10 KiB)
        // would otherwise size every request's future, and every connection's task with it.
        "completion/complete" => Box::pin(crate::route::methods::complete(call(era()))).await,
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
        "tasks/list" if tasks() => Box::pin(crate::route::tasks::methods::list(call(era()))).await,
        "tasks/get" | "tasks/result" | "tasks/cancel" if tasks() => {
            let what = crate::route::tasks::follow_of(method, false);
            let what = what.unwrap_or(crate::route::tables::tasks::Follow::Get);
            Box::pin(crate::route::tasks::methods::follow(call(era()), what)).await
        }
        "initialize" => Err(McpError::InvalidRequest(
            "session already initialized".into(),
        )),
        other => Err(McpError::MethodNotFound(other.to_string())),
    };
    let outcome = crate::stats::Outcome::of(&result);
    let meta = crate::route::meta::handles(mode, env).then_some(env.name_str.as_deref());
    let reply = match result {
        Ok(Answer::Json(bytes)) => Reply::json(200, bytes),
        Ok(Answer::Parts(head, shared, tail, gz)) => {
            let mut reply = Reply::json_parts(200, head, shared, tail);
            reply.gz = gz;
            reply
        }
        Ok(Answer::Stream(rx)) => Reply::sse(crate::route::resume::track(router, sid, rx).1),
        Err(e) => rpc_error(200, &e, id),
    };
    let seen = Observed {
        principal,
        session: sid,
        method,
        name: env.name_str.as_deref().or(env.uri_str.as_deref()),
        dispatched: true,
        meta: meta.flatten(),
        outcome,
        started,
        bytes_in: body.len(),
        trace: traced.as_ref().map(|active| crate::route::trace::Traced {
            active,
            request_id: id,
            version: router.sessions.borrow().get(sid).map(|s| s.version),
            stdio: req.trace.stdio,
        }),
    };
    observe(router, seen, &reply);
    reply
}

/// The version an `initialize` asking for `requested` is answered in (the gateway's newest
/// when it does not serve the one asked for).
fn negotiated(requested: Option<&str>) -> &'static str {
    let served = crate::route::SUPPORTED_VERSIONS;
    served
        .iter()
        .find(|v| Some(**v) == requested)
        .unwrap_or(&served[0])
}

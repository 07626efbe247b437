//! Methods that are not a plain forward by name: `completion/complete` (routed by its
//! reference) and `logging/setLevel` (fanned out to every backend that logs).

use std::rc::Rc;

use sonic_rs::JsonValueTrait;

use crate::error::McpError;
use crate::route::call::Call;
use crate::route::forward::{forward, Answer, Era};
use crate::route::router::Router;
use crate::upstream::request_body;
use crate::wire::jsonrpc::{push_json_str, Envelope};
use crate::wire::ok_result;

fn params<'b>(body: &'b [u8], env: &Envelope<'_>) -> Result<&'b [u8], McpError> {
    env.params
        .clone()
        .map(|r| &body[r])
        .ok_or_else(|| McpError::InvalidParams("params are required".into()))
}

fn field_range(body: &[u8], path: &[&str]) -> Option<(std::ops::Range<usize>, String)> {
    let v = sonic_rs::get(body, path).ok()?;
    let s = v.as_str()?.to_string();
    let raw = v.as_raw_str();
    let start = raw.as_ptr() as usize - body.as_ptr() as usize;
    Some((start..start + raw.len(), s))
}

/// `completion/complete`: `ref/prompt` routes by prompt name, `ref/resource` by URI (template);
/// the reference is rewritten to the backend's own. A backend without completions gets no call:
/// the answer is an empty completion, as the spec suggests.
pub(crate) async fn complete(call: Call<'_>) -> Result<Answer, McpError> {
    let Call {
        router,
        sid,
        body,
        env,
        era,
    } = call;
    params(body, env)?;
    let kind = sonic_rs::get(body, ["params", "ref", "type"])
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .ok_or_else(|| McpError::InvalidParams("params.ref.type is required".into()))?;
    let (range, backend, original) = {
        let snap = router.snapshot.load();
        let catalog = snap.catalog_for(era.modern);
        match kind.as_str() {
            "ref/prompt" => {
                let (range, name) = field_range(body, &["params", "ref", "name"])
                    .ok_or_else(|| McpError::InvalidParams("params.ref.name is required".into()))?;
                let unknown = || McpError::InvalidParams(format!("unknown prompt: {name}"));
                let route = catalog.route_prompt(&name).ok_or_else(unknown)?;
                // RBAC: a prompt the caller may not see does not exist for it.
                let item = crate::auth::policy::ItemKind::Prompt;
                if !rbac_allows(&snap, &era, item, route.backend, &name) {
                    return Err(unknown());
                }
                (range, route.backend, route.original.to_string())
            }
            "ref/resource" => {
                let (range, uri) = field_range(body, &["params", "ref", "uri"])
                    .ok_or_else(|| McpError::InvalidParams("params.ref.uri is required".into()))?;
                let route = catalog
                    .route_uri(&uri)
                    .or_else(|| {
                        // A template URI itself (with `{var}`) of an unprefixed backend.
                        catalog
                            .bare_templates
                            .iter()
                            .find(|(_, t)| *t == uri)
                            .map(|(b, _)| crate::catalog::UriRoute {
                                backend: *b,
                                original: &uri,
                            })
                    })
                    .ok_or_else(|| McpError::ResourceNotFound(uri.clone()))?;
                let item = crate::auth::policy::ItemKind::Resource;
                if !rbac_allows(&snap, &era, item, route.backend, &uri) {
                    return Err(McpError::ResourceNotFound(uri.clone()));
                }
                (range, route.backend, route.original.to_string())
            }
            other => {
                return Err(McpError::InvalidParams(format!(
                    "unknown completion ref type `{other}`"
                )))
            }
        }
    };
    let capable = router.snapshot.load().catalog.backend_caps[backend].completions;
    if !capable {
        let empty: &[u8] = if era.modern {
            br#"{"resultType":"complete","completion":{"values":[],"hasMore":false}}"#
        } else {
            br#"{"completion":{"values":[],"hasMore":false}}"#
        };
        return Ok(Answer::Json(ok_result(env.id_bytes(body), empty)));
    }
    let mut original_json = Vec::new();
    push_json_str(&mut original_json, &original);
    let call = Call {
        router,
        sid,
        body,
        env,
        era,
    };
    forward(call, backend, Some((range, &original_json))).await
}

/// `logging/setLevel`: sent to every backend that declared logging. With shared upstream
/// sessions the level applies to that backend for every client of the shard (the spec's
/// per-session level cannot be honoured over a shared session; per-client sessions can).
pub async fn set_level(
    router: &Rc<Router>,
    body: &[u8],
    env: &Envelope<'_>,
) -> Result<Vec<u8>, McpError> {
    let p = params(body, env)?;
    let level = sonic_rs::get(p, ["level"])
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .ok_or_else(|| McpError::InvalidParams("params.level is required".into()))?;
    if crate::route::forward::log_severity(&level).is_none() {
        return Err(McpError::InvalidParams(format!(
            "unknown log level `{level}`"
        )));
    }
    let targets: Vec<(String, std::time::Duration)> = {
        let snap = router.snapshot.load();
        snap.backends
            .iter()
            .enumerate()
            .filter(|(i, _)| snap.catalog.backend_caps[*i].logging)
            .map(|(_, b)| (b.id.clone(), b.timeout))
            .collect()
    };
    let mut failures = Vec::new();
    for (id, timeout) in targets {
        let Some(handle) = router.upstreams.backends.borrow().get(&id).cloned() else {
            continue;
        };
        let (req, idr) = request_body("logging/setLevel", p);
        match handle
            .call(req, idr, crate::upstream::CallOpts::timeout(timeout))
            .await
        {
            Ok(reply) => {
                if let Err(e) = reply.result(&id) {
                    failures.push(e.to_string());
                }
            }
            Err(e) => failures.push(e.to_string()),
        }
    }
    if !failures.is_empty() {
        tracing::warn!(failures = ?failures, "logging/setLevel did not reach every backend");
    }
    Ok(ok_result(env.id_bytes(body), b"{}"))
}

/// RBAC for an item a request names (open policy, or no principal: allowed).
fn rbac_allows(
    snap: &crate::snapshot::SharedSnapshot,
    era: &Era,
    kind: crate::auth::policy::ItemKind,
    backend: usize,
    name: &str,
) -> bool {
    era.principal
        .as_ref()
        .is_none_or(|p| crate::auth::local::allows(snap, p, kind, backend, name))
}

/// Resource subscriptions one session may hold.
pub const MAX_SUBSCRIPTIONS: usize = 1024;
/// Bytes of subscribed URIs one session may hold.
pub const MAX_SUBSCRIPTION_BYTES: usize = 256 * 1024;

/// `resources/subscribe` / `resources/unsubscribe`. The session records the URI as it sees
/// it (updates are delivered to subscribed sessions only). A backend that speaks 2026-07-28
/// only gets neither: the shard's listen toward it carries the URI instead
/// (`route/resource_listen.rs`). Toward a 2025 backend: a subscribe is
/// always forwarded (servers treat it as idempotent) and, for an HTTP backend, this shard
/// starts listening on the GET streams of the upstream it goes to (every replica; the
/// session's own for a per-client server), where the updates arrive. An unsubscribe is
/// forwarded only when no other session of this shard still wants the URI, and never to a
/// stdio backend, whose one process serves the subscriptions of every shard.
pub async fn subscribe(
    router: &Rc<Router>,
    sid: &str,
    body: &[u8],
    env: &Envelope<'_>,
    on: bool,
    principal: &crate::auth::verify::Principal,
) -> Result<Answer, McpError> {
    let (Some(uri), Some(range)) = (env.uri_str.as_deref(), env.uri.clone()) else {
        return Err(McpError::InvalidParams("params.uri is required".into()));
    };
    let (backend, original, server, capable, modern_only, timeout) = {
        let snap = router.snapshot.load();
        let route = snap
            .catalog
            .route_uri(uri)
            .ok_or_else(|| McpError::ResourceNotFound(uri.to_string()))?;
        let item = crate::auth::policy::ItemKind::Resource;
        if !crate::auth::local::allows(&snap, principal, item, route.backend, uri) {
            return Err(McpError::ResourceNotFound(uri.to_string()));
        }
        let caps = &snap.catalog.backend_caps[route.backend];
        (
            route.backend,
            route.original.to_string(),
            snap.backends[route.backend].id.clone(),
            caps.subscribe,
            caps.modern_only,
            snap.backends[route.backend].timeout,
        )
    };
    if !capable {
        return Err(McpError::InvalidParams(format!(
            "server `{server}` does not support resource subscriptions"
        )));
    }
    let others_want = {
        let mut sessions = router.sessions.borrow_mut();
        if let Some(s) = sessions.get_mut(sid) {
            if on {
                // Templates make URIs endless: one session's subscriptions are bounded, in
                // number and in bytes (each lives as long as the session).
                if !s.subscriptions.contains(uri) {
                    let held: usize = s.subscriptions.iter().map(String::len).sum();
                    if s.subscriptions.len() >= MAX_SUBSCRIPTIONS
                        || held + uri.len() > MAX_SUBSCRIPTION_BYTES
                    {
                        return Err(McpError::InvalidParams(format!(
                            "this session already holds {} resource subscriptions ({held} bytes of URIs; at most {MAX_SUBSCRIPTIONS} and {MAX_SUBSCRIPTION_BYTES} bytes); unsubscribe first",
                            s.subscriptions.len()
                        )));
                    }
                }
                s.subscriptions.insert(uri.to_string());
            } else {
                s.subscriptions.remove(uri);
            }
        }
        let others = sessions
            .iter_mut()
            .any(|(other, s)| other != sid && s.subscriptions.contains(uri));
        others
    };
    if modern_only {
        // No resources/subscribe in 2026-07-28: the shard's listen toward it carries the URI.
        let r =
            crate::route::resource_listen::subscribe(router, &server, sid, &original, on, timeout)
                .await;
        if let Err(e) = r {
            if let Some(s) = router.sessions.borrow_mut().get_mut(sid) {
                s.subscriptions.remove(uri);
            }
            let undo = crate::route::resource_listen::subscribe(
                router, &server, sid, &original, false, timeout,
            );
            let _ = undo.await;
            return Err(e);
        }
        return Ok(Answer::Json(ok_result(env.id_bytes(body), b"{}")));
    }
    let handle = router.upstreams.backends.borrow().get(&server).cloned();
    if on {
        crate::route::pushes::listen_for_updates(router, &server, Some(sid));
    } else {
        let stdio = !matches!(
            handle.as_deref(),
            Some(crate::upstream::LocalBackend::Http(_))
        );
        if others_want || stdio {
            return Ok(Answer::Json(ok_result(env.id_bytes(body), b"{}")));
        }
    }
    let mut original_json = Vec::new();
    push_json_str(&mut original_json, &original);
    let call = Call {
        router,
        sid,
        body,
        env,
        era: Era::default(),
    };
    forward(call, backend, Some((range, &original_json))).await
}

//! The methods that route a request by what it names: a tool or prompt name (`by_name`)
//! or a resource URI (`resources_read`). The name as the client sees it becomes the
//! backend's own, RBAC applies (a denied item answers like a missing one), and the request
//! goes on to its backend through the cache.

use crate::error::McpError;
use crate::route::call::Call;
use crate::route::forward::{Answer, Era};

/// Which catalog a name is looked up in.
#[derive(Clone, Copy)]
pub(crate) enum Named {
    /// `tools/call`
    Tool,
    Prompt,
}

/// A request that names its target (`tools/call`, `prompts/get`): the name as the client
/// sees it becomes the backend's own, after RBAC, and the request goes to that backend.
pub(crate) async fn by_name(call: Call<'_>, kind: Named) -> Result<Answer, McpError> {
    let Call {
        router,
        sid,
        body,
        env,
        era,
    } = call;
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
    let (backend, original, original_json, idempotent, cacheable, tool_headers, bridged) = {
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
        crate::route::bridge::may_replay(&snap, route.backend, &era)?;
        // 2026 over HTTP: the `Mcp-Param-*` headers agree with the body (`route/params.rs`).
        if let (Some(h), crate::route::request::ParamCheck::On(sent)) =
            (&route.headers, &era.params)
        {
            crate::route::params::check(h, sent.as_deref(), body, env)?;
        }
        // A replay answers its backend from this client's input, and a task is its
        // creator's: never shared with others.
        let cacheable = route.read_only
            && route.idempotent
            && matches!(kind, Named::Tool)
            && !era.inputs.replaying()
            && era.task.is_none();
        (
            route.backend,
            route.original.clone(),
            route.original_json.clone(),
            route.idempotent,
            cacheable,
            route.headers.clone(),
            crate::route::tasks::to_legacy::bridged(catalog, route, era.modern),
        )
    };
    if matches!(kind, Named::Tool) {
        crate::route::meta::used(router, name);
    }
    let mut era = era;
    era.retry_safe = idempotent || matches!(kind, Named::Prompt);
    if matches!(kind, Named::Tool) {
        era.tool = Some(original);
        era.tool_headers = tool_headers;
    }
    let target = cacheable.then_some(crate::route::cached::Target {
        what: crate::cache::Cacheable::Call,
        name,
    });
    let edit = Some((name_range, &original_json[..]));
    let call = Call {
        router,
        sid,
        body,
        env,
        era,
    };
    // A task tool of a 2025 backend, called by a 2026 client (`route/tasks/to_legacy.rs`).
    use crate::route::tasks::to_legacy::{plan, Plan};
    match bridged.map(|support| plan(&call.era, support, name)) {
        Some(Plan::Refuse(e)) => return Err(e),
        Some(Plan::Task) => {
            return crate::route::tasks::to_legacy::create(call, backend, edit).await
        }
        Some(Plan::Plain) | None => {}
    }
    crate::route::cached::forward_cached(call, backend, edit, target).await
}

/// `resources/read`: the gateway's URI becomes the backend's own, after RBAC.
pub(crate) async fn resources_read(call: Call<'_>) -> Result<Answer, McpError> {
    let Call {
        router,
        sid,
        body,
        env,
        era,
    } = call;
    let (Some(uri), Some(range)) = (env.uri_str.as_deref(), env.uri.clone()) else {
        return Err(McpError::InvalidParams("params.uri is required".into()));
    };
    let (backend, original_json) = {
        let snap = router.snapshot.load();
        let route = snap
            .catalog_for(era.modern)
            .route_uri(uri)
            .ok_or_else(|| McpError::ResourceNotFound(uri.to_string()))?;
        crate::route::bridge::may_replay(&snap, route.backend, &era)?;
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
    let call = Call {
        router,
        sid,
        body,
        env,
        era,
    };
    crate::route::cached::forward_cached(call, backend, edit, Some(target)).await
}

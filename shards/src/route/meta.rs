//! The `search` discovery mode: instead of every tool's schema, a client's `tools/list` has
//! three small meta tools, and reaches the catalog through them:
//!
//! - `search_tools {query, limit?}`: the best matches (BM25 over names, descriptions and
//!   argument names, `catalog/search.rs`), as name and short description;
//! - `get_tool_schema {name}`: one tool's full definition;
//! - `call_tool {name, arguments}`: calls it (exactly as a `tools/call` of that name would).
//!
//! In `hybrid` mode the list also carries, in full, the pinned tools and the ones this
//! shard has seen called most, within a token budget.
//!
//! RBAC applies as everywhere: a tool the caller may not use is never found, described or
//! called (it answers like an unknown tool). A role's renames and descriptions
//! (`auth/names.rs`) show in results; the index itself is over the catalog's names and
//! descriptions. The index is built once per catalog version
//! and era on each shard.

use sonic_rs::JsonValueTrait;

use crate::catalog::ListKind;
use crate::config::Discovery;
use crate::error::McpError;
use crate::route::by_name::{by_name, Named};
use crate::route::call::Call;
use crate::route::forward::{Answer, Era};
use crate::route::router::Router;
use crate::wire::jsonrpc::Envelope;
use crate::wire::ok_result;

/// The meta tools, as `tools/list` shows them.
pub const TOOLS: &str = r#"[{"name":"search_tools","description":"Find the tools that can do something: describe the task in a few words. Returns tool names with a short description; then get_tool_schema for the arguments, and call_tool to run one.","inputSchema":{"type":"object","properties":{"query":{"type":"string","description":"What the tool should do"},"limit":{"type":"integer","minimum":1,"maximum":50,"description":"Most results (default 10)"}},"required":["query"]}},{"name":"get_tool_schema","description":"The full definition of one tool (its input schema), by the name search_tools gave.","inputSchema":{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}},{"name":"call_tool","description":"Call a tool by name with its arguments.","inputSchema":{"type":"object","properties":{"name":{"type":"string"},"arguments":{"type":"object"}},"required":["name"]}}]"#;

/// How this client discovers tools: the mode it asked for (or the config's), switched to
/// `search` when it would see more than `[proxy] max_tools` in `full` mode and the overflow
/// policy is `search`.
pub fn mode(
    router: &Router,
    asked: Discovery,
    modern: bool,
    principal: &crate::auth::verify::Principal,
) -> Discovery {
    if asked != Discovery::Full {
        return asked;
    }
    let snap = router.snapshot.load();
    let p = &snap.config.proxy;
    if p.max_tools == 0 || p.tools_overflow != crate::config::ToolsOverflow::Search {
        return Discovery::Full;
    }
    let seen = match router.auth.view(&snap, modern, ListKind::Tools, principal) {
        Some(v) => v.1.len(),
        None => snap.catalog_for(modern).tools_items.len(),
    };
    if seen > p.max_tools {
        Discovery::Search
    } else {
        Discovery::Full
    }
}

/// The `tools` array of `tools/list` in `search` or `hybrid` mode: the meta tools, and in
/// `hybrid` mode also, in full, the pinned tools (catalog order) and then the most used
/// ones on this shard (most calls first), while their estimated tokens (bytes / 4) fit in
/// `hybrid_token_budget`.
pub fn list(
    router: &Router,
    mode: Discovery,
    modern: bool,
    principal: &crate::auth::verify::Principal,
) -> String {
    let meta = TOOLS.trim_end_matches(']');
    if mode != Discovery::Hybrid {
        return TOOLS.to_string();
    }
    let snap = router.snapshot.load();
    let p = &snap.config.proxy;
    let (json, items, keys) = snap.catalog_for(modern).list(ListKind::Tools);
    let allowed = |i: usize| {
        crate::auth::local::allows(
            &snap,
            principal,
            crate::auth::policy::ItemKind::Tool,
            keys[i].0 as usize,
            &keys[i].1,
        )
    };
    let pinned = |name: &str| {
        p.hybrid_pinned
            .iter()
            .any(|g| crate::auth::policy::glob(g.as_bytes(), name.as_bytes()))
    };
    let mut chosen: Vec<usize> = (0..keys.len())
        .filter(|&i| pinned(&keys[i].1) && allowed(i))
        .collect();
    let usage = router.search.usage.borrow();
    let mut used: Vec<(u64, usize)> = (0..keys.len())
        .filter(|&i| !chosen.contains(&i) && allowed(i))
        .filter_map(|i| usage.get(&*keys[i].1).map(|n| (*n, i)))
        .collect();
    used.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    chosen.extend(used.into_iter().take(p.hybrid_most_used).map(|(_, i)| i));
    let names = router.auth.names(&snap, modern, principal);
    let mut out = String::from(meta);
    let mut budget = p.hybrid_token_budget.saturating_mul(4);
    for i in chosen {
        let (s, e) = items[i];
        let item = &json[s as usize..e as usize];
        let renamed = names.as_ref().and_then(|n| n.rewrite(&keys[i].1, item));
        let item = renamed.as_deref().unwrap_or(item);
        if item.len() > budget {
            continue;
        }
        budget -= item.len();
        out.push(',');
        out.push_str(&String::from_utf8_lossy(item));
    }
    out.push(']');
    out
}

/// Counts a call of exposed tool `name` (what `hybrid` mode ranks by).
pub fn used(router: &Router, name: &str) {
    let mut usage = router.search.usage.borrow_mut();
    if let Some(n) = usage.get_mut(name) {
        *n += 1;
    } else if usage.len() < 100_000 {
        usage.insert(name.to_string(), 1);
    }
}

/// Is this `tools/call` one of the meta tools, for a client that has them?
pub fn handles(mode: Discovery, env: &Envelope<'_>) -> bool {
    mode != Discovery::Full && env.name_str.as_deref().is_some_and(is_meta)
}

pub use crate::catalog::search::is_meta;

/// A string argument of the meta tool's call.
fn arg_str(body: &[u8], key: &str) -> Option<String> {
    sonic_rs::get(body, ["params", "arguments", key])
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
}

/// The item JSON and backend of tool `name` in the era's catalog, if the caller may use it.
fn visible(router: &Router, era: &Era, name: &str) -> Option<Vec<u8>> {
    let snap = router.snapshot.load();
    let catalog = snap.catalog_for(era.modern);
    let (json, items, keys) = catalog.list(ListKind::Tools);
    let i = keys.iter().position(|(_, k)| &**k == name)?;
    let backend = keys[i].0 as usize;
    let allowed = era.principal.as_ref().is_none_or(|p| {
        crate::auth::local::allows(&snap, p, crate::auth::policy::ItemKind::Tool, backend, name)
    });
    let (s, e) = items[i];
    allowed.then(|| json[s as usize..e as usize].to_vec())
}

/// `{"content":[{"type":"text","text":<text>}],"structuredContent":<structured>}`.
fn text_result(id: &[u8], text: &str, structured: Option<&str>) -> Answer {
    let mut r = String::from(r#"{"content":[{"type":"text","text":"#);
    r.push_str(&sonic_rs::to_string(text).unwrap_or_default());
    r.push_str("}]");
    if let Some(s) = structured {
        r.push_str(r#","structuredContent":"#);
        r.push_str(s);
    }
    r.push('}');
    Answer::Json(ok_result(id, r.as_bytes()))
}

/// Runs the meta tool a `tools/call` names (see [`handles`]).
pub(crate) async fn call(call: Call<'_>) -> Result<Answer, McpError> {
    let Call {
        router,
        sid,
        body,
        env,
        era,
    } = call;
    let id = env.id_bytes(body);
    let name = env.name_str.as_deref().unwrap_or_default();
    match name {
        "search_tools" => {
            let query = arg_str(body, "query")
                .ok_or_else(|| McpError::InvalidParams("search_tools needs a query".into()))?;
            let limit = sonic_rs::get(body, ["params", "arguments", "limit"])
                .ok()
                .and_then(|v| v.as_u64())
                .unwrap_or(10)
                .clamp(1, 50) as usize;
            // One snapshot for the index and the items it points into: a reload between two
            // loads could leave the index longer than the list.
            let snap = router.snapshot.load();
            let idx = router.search.index(&snap, era.modern);
            let (json, items, keys) = snap.catalog_for(era.modern).list(ListKind::Tools);
            let allowed = |i: usize| {
                era.principal.as_ref().is_none_or(|p| {
                    let kind = crate::auth::policy::ItemKind::Tool;
                    crate::auth::local::allows(&snap, p, kind, keys[i].0 as usize, &keys[i].1)
                })
            };
            let hits = idx.search(&query, limit, &allowed);
            let names = era
                .principal
                .as_ref()
                .and_then(|p| router.auth.names(&snap, era.modern, p));
            let mut found = Vec::with_capacity(hits.len());
            for (i, _) in hits {
                let (s, e) = items[i];
                let item = &json[s as usize..e as usize];
                let key = &*keys[i].1;
                let role_desc = names.as_ref().and_then(|n| n.description(key));
                let desc = match role_desc {
                    Some(d) => short(d, 160),
                    None => sonic_rs::get(item, ["description"])
                        .ok()
                        .and_then(|d| d.as_str().map(|d| short(d, 160)))
                        .unwrap_or_default(),
                };
                let name = names.as_ref().map_or(key, |n| n.shown(key));
                found.push(sonic_rs::json!({"name": name, "description": desc}));
            }
            let list = sonic_rs::to_string(&found).unwrap_or_default();
            let structured = format!(r#"{{"tools":{list}}}"#);
            Ok(text_result(id, &list, Some(&structured)))
        }
        "get_tool_schema" => {
            let wanted = arg_str(body, "name")
                .ok_or_else(|| McpError::InvalidParams("get_tool_schema needs a name".into()))?;
            let names = era.principal.as_ref().and_then(|p| {
                let snap = router.snapshot.load();
                router.auth.names(&snap, era.modern, p)
            });
            let gateway = match &names {
                Some(n) => n.to_gateway(&wanted),
                None => Some(wanted.as_str()),
            };
            let item = gateway
                .and_then(|g| {
                    let item = visible(router, &era, g)?;
                    let renamed = names.as_ref().and_then(|n| n.rewrite(g, &item));
                    Some(renamed.unwrap_or(item))
                })
                .ok_or_else(|| McpError::UnknownTool(wanted.clone()))?;
            let text = String::from_utf8_lossy(&item).to_string();
            Ok(text_result(id, &text, None))
        }
        _ => {
            let wanted = arg_str(body, "name")
                .ok_or_else(|| McpError::InvalidParams("call_tool needs a name".into()))?;
            let args = sonic_rs::get(body, ["params", "arguments", "arguments"])
                .ok()
                .map(|v| v.as_raw_str().to_string())
                .unwrap_or_else(|| "{}".into());
            // The same request as a direct tools/call of that tool (the client's id kept).
            let inner = format!(
                r#"{{"jsonrpc":"2.0","id":{},"method":"tools/call","params":{{"name":{},"arguments":{args}}}}}"#,
                String::from_utf8_lossy(if id.is_empty() { b"null" } else { id }),
                sonic_rs::to_string(&wanted).unwrap_or_default()
            );
            let inner = inner.into_bytes();
            let inner_env = Envelope::parse(&inner)?;
            // The client's `Mcp-Param-*` headers were those of `call_tool` (none): the
            // inner tool's are not asked of it. Its backend still gets them, computed.
            let era = Era {
                params: crate::route::request::ParamCheck::Off,
                ..era
            };
            let inner_call = Call {
                router,
                sid,
                body: &inner,
                env: &inner_env,
                era,
            };
            by_name(inner_call, Named::Tool).await
        }
    }
}

fn short(s: &str, max: usize) -> String {
    let one: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() <= max {
        return one;
    }
    let cut: String = one.chars().take(max - 1).collect();
    format!("{}…", cut.trim_end())
}

//! Merging every backend's discovery into one [`Catalog`] (control thread, once per change).

use std::sync::Arc;

use crate::catalog::curate::Curated;
use crate::catalog::{
    uri, BackendCaps, BackendReport, BackendState, Catalog, Discovery, MergedCaps, NameRoute,
    RawItem, RouteMap,
};
use crate::wire::jsonrpc::push_json_str;

/// Input for one backend when building a catalog.
pub struct BackendInput<'a> {
    /// Backend id.
    pub id: &'a str,
    /// Namespace names and URIs with the id?
    pub prefix: bool,
    /// Discovery state.
    pub state: BackendState,
    /// What it listed last. A backend that went down keeps its last known items, so a call
    /// gets "backend unavailable" (true, and retryable) rather than "unknown tool".
    pub discovery: Option<&'a Discovery>,
    /// Which of its tools are exposed, and how (`None`: all, as sent).
    pub curation: Option<&'a crate::catalog::curate::Curation>,
    /// The gateway carries this backend's tasks in the catalog's era (2025: it declared
    /// `tasks.requests.tools.call`; 2026: the tasks extension). When it does not, a tool's
    /// `execution.taskSupport` is taken out, and a tool that requires a task is not listed
    /// (nobody could call it through the gateway).
    pub tasks: bool,
}

/// Replaces the string value of `field` in an item's JSON.
fn with_field(json: &[u8], field: &str, value: &str) -> Option<Vec<u8>> {
    let v = sonic_rs::get(json, [field]).ok()?;
    let raw = v.as_raw_str();
    if !raw.starts_with('"') {
        return None;
    }
    let start = raw.as_ptr() as usize - json.as_ptr() as usize;
    let mut out = Vec::with_capacity(json.len() + value.len());
    out.extend_from_slice(&json[..start]);
    push_json_str(&mut out, value);
    out.extend_from_slice(&json[start + raw.len()..]);
    Some(out)
}

/// Per item of a rendered list: its backend and exposed name or URI (for RBAC views).
pub type ItemKey = (u32, Box<str>);

/// Byte ranges of the items of a rendered list.
type ItemRanges = Arc<Vec<(u32, u32)>>;

struct ListOut {
    json: Vec<u8>,
    items: Vec<(u32, u32)>,
    keys: Vec<ItemKey>,
}

impl ListOut {
    fn new() -> Self {
        ListOut {
            json: vec![b'['],
            items: Vec::new(),
            keys: Vec::new(),
        }
    }
    /// Appends one item of backend `backend`, exposed as `key` (name or URI).
    fn push(&mut self, item: &[u8], backend: usize, key: &str) {
        if self.json.len() > 1 {
            self.json.push(b',');
        }
        let start = self.json.len() as u32;
        self.json.extend_from_slice(item);
        self.items.push((start, self.json.len() as u32));
        self.keys.push((backend as u32, key.into()));
    }
    /// The rendered list, trimmed to its length: it lives as long as its snapshot.
    fn finish(mut self) -> (Arc<Vec<u8>>, ItemRanges, Arc<Vec<ItemKey>>) {
        self.json.push(b']');
        self.json.shrink_to_fit();
        self.items.shrink_to_fit();
        self.keys.shrink_to_fit();
        (
            Arc::new(self.json),
            Arc::new(self.items),
            Arc::new(self.keys),
        )
    }
}

impl Catalog {
    /// Merges backends in config order; earlier servers win collisions.
    pub fn build(backends: &[BackendInput<'_>], separator: &str) -> Catalog {
        let mut cat = Catalog::default();
        let (mut tools, mut prompts, mut resources, mut templates) = (
            ListOut::new(),
            ListOut::new(),
            ListOut::new(),
            ListOut::new(),
        );
        let (mut tool_routes, mut prompt_routes, mut resource_routes) = (
            RouteMap::default(),
            RouteMap::default(),
            RouteMap::default(),
        );
        let mut caps = MergedCaps::default();
        let empty = Discovery::default();
        for (idx, b) in backends.iter().enumerate() {
            let d = b.discovery.unwrap_or(&empty);
            let mut report = BackendReport {
                id: b.id.to_string(),
                state: b.state.clone(),
                tools: 0,
                prompts: 0,
                resources: 0,
                dropped: Vec::new(),
            };
            if b.discovery.is_some() {
                cat.min_ttl_ms = match (cat.min_ttl_ms, d.ttl_ms) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                cat.private |= d.private;
                caps.prompts |= d.caps.prompts;
                caps.resources |= d.caps.resources;
                caps.subscribe |= d.caps.subscribe;
                caps.logging |= d.caps.logging;
                caps.completions |= d.caps.completions;
                caps.tasks |= b.tasks;
            }
            cat.backend_caps.push(if b.discovery.is_some() {
                d.caps.clone()
            } else {
                BackendCaps::default()
            });
            if b.prefix {
                cat.uri_prefixed.insert(b.id.to_ascii_lowercase(), idx);
            }
            let exposed_name = |n: &str| {
                if b.prefix {
                    format!("{}{}{}", b.id, separator, n)
                } else {
                    n.to_string()
                }
            };
            let mut curated = match b.curation.filter(|c| !c.is_identity()) {
                Some(c) => c.tools(&d.tools, &mut report.dropped),
                None => d.tools.iter().map(plain).collect(),
            };
            if !b.tasks {
                curated = without_tasks(curated, &mut report.dropped);
            }
            report.tools = merge_names(
                &curated,
                idx,
                backends,
                &exposed_name,
                &mut tool_routes,
                &mut tools,
                &mut report.dropped,
                true,
            );
            report.prompts = merge_names(
                &d.prompts.iter().map(plain).collect::<Vec<_>>(),
                idx,
                backends,
                &exposed_name,
                &mut prompt_routes,
                &mut prompts,
                &mut report.dropped,
                false,
            );
            for r in d.resources.iter() {
                let exposed = if b.prefix {
                    uri::wrap(b.id, &r.key)
                } else {
                    r.key.clone()
                };
                if !b.prefix {
                    if let Some(prev) = resource_routes.get(&exposed) {
                        let owner = backends[prev.backend].id;
                        report.dropped.push((
                            r.key.clone(),
                            format!("resource `{exposed}` already offered by server `{owner}`"),
                        ));
                        continue;
                    }
                    resource_routes.insert(
                        exposed.clone(),
                        NameRoute {
                            backend: idx,
                            original: r.key.as_str().into(),
                            original_json: Arc::from(&[][..]),
                            idempotent: true,
                            read_only: true,
                            headers: None,
                            task_support: Default::default(),
                        },
                    );
                }
                match with_field(&r.json, "uri", &exposed) {
                    Some(j) => resources.push(&j, idx, &exposed),
                    None => continue,
                }
                report.resources += 1;
            }
            for t in d.templates.iter() {
                let exposed = if b.prefix {
                    uri::wrap(b.id, &t.key)
                } else {
                    t.key.clone()
                };
                if !b.prefix {
                    cat.bare_templates.push((idx, t.key.clone()));
                }
                if let Some(j) = with_field(&t.json, "uriTemplate", &exposed) {
                    templates.push(&j, idx, &exposed);
                    report.resources += 1;
                }
            }
            cat.reports.push(report);
        }
        cat.tools = Arc::new(tool_routes);
        cat.prompts = Arc::new(prompt_routes);
        cat.resources = Arc::new(resource_routes);
        (cat.tools_json, cat.tools_items, cat.tools_keys) = tools.finish();
        (cat.prompts_json, cat.prompts_items, cat.prompts_keys) = prompts.finish();
        (cat.resources_json, cat.resources_items, cat.resources_keys) = resources.finish();
        (cat.templates_json, cat.templates_items, cat.templates_keys) = templates.finish();
        cat.caps = caps;
        cat
    }
}

/// The tools of a backend whose tasks the gateway does not carry: `execution.taskSupport`
/// taken out, and tools that require a task dropped with the reason.
fn without_tasks<'a>(
    tools: Vec<Curated<'a>>,
    dropped: &mut Vec<(String, String)>,
) -> Vec<Curated<'a>> {
    use sonic_rs::{JsonValueMutTrait, JsonValueTrait};
    let mut out = Vec::with_capacity(tools.len());
    for mut t in tools {
        // A byte search first: almost no tool declares task support.
        if memchr::memmem::find(&t.json, b"taskSupport").is_none() {
            out.push(t);
            continue;
        }
        let Ok(mut v) = sonic_rs::from_slice::<sonic_rs::Value>(&t.json) else {
            out.push(t);
            continue;
        };
        let support = v
            .get("execution")
            .and_then(|e| e.get("taskSupport"))
            .and_then(|s| s.as_str().map(str::to_string));
        match support.as_deref() {
            None => {
                out.push(t);
                continue;
            }
            Some("required") => {
                dropped.push((
                    t.original.to_string(),
                    "requires a task (execution.taskSupport), and the gateway does not carry this server's tasks in this protocol era".into(),
                ));
                continue;
            }
            Some(_) => {}
        }
        if let Some(exec) = v.get_mut("execution").and_then(|e| e.as_object_mut()) {
            exec.remove(&"taskSupport");
            if exec.is_empty() {
                if let Some(obj) = v.as_object_mut() {
                    obj.remove(&"execution");
                }
            }
        }
        if let Ok(json) = sonic_rs::to_vec(&v) {
            t.json = std::borrow::Cow::Owned(json);
        }
        out.push(t);
    }
    out
}

/// A backend that speaks only 2026-07-28 and declared the tasks extension, as 2025 clients
/// see it (the gateway carries its tasks to them, `route/tasks/to_modern.rs`): each tool that
/// names no `execution.taskSupport` is offered with `"optional"` (2026 tasks are
/// server-directed, so 2026 tools name none; the backend still decides per call, and a plain
/// answer becomes a completed task); a tool that names one keeps it.
pub fn offer_tasks(d: &Discovery) -> Discovery {
    let tools = d
        .tools
        .iter()
        .map(|t| RawItem {
            key: t.key.clone(),
            json: with_optional_tasks(&t.json).unwrap_or_else(|| t.json.clone()),
        })
        .collect();
    Discovery {
        tools: Arc::new(tools),
        ..d.clone()
    }
}

/// `tool` with `execution.taskSupport: "optional"`; `None` when it names a task support
/// already (or is not an object with an object `execution`, if any).
fn with_optional_tasks(tool: &[u8]) -> Option<Vec<u8>> {
    use sonic_rs::JsonValueMutTrait;
    if memchr::memmem::find(tool, b"taskSupport").is_some() {
        return None;
    }
    let mut v = sonic_rs::from_slice::<sonic_rs::Value>(tool).ok()?;
    let obj = v.as_object_mut()?;
    match obj.get_mut(&"execution") {
        None => {
            obj.insert(&"execution", sonic_rs::json!({"taskSupport": "optional"}));
        }
        Some(e) => {
            e.as_object_mut()?.insert(&"taskSupport", "optional");
        }
    }
    sonic_rs::to_vec(&v).ok()
}

/// An item exposed as the backend sent it.
fn plain(t: &RawItem) -> Curated<'_> {
    Curated {
        original: &t.key,
        name: std::borrow::Cow::Borrowed(&t.key),
        json: std::borrow::Cow::Borrowed(&t.json),
    }
}

#[allow(clippy::too_many_arguments)]
fn merge_names(
    items: &[Curated<'_>],
    idx: usize,
    backends: &[BackendInput<'_>],
    exposed_name: &dyn Fn(&str) -> String,
    routes: &mut RouteMap,
    out: &mut ListOut,
    dropped: &mut Vec<(String, String)>,
    tools: bool,
) -> usize {
    let mut n = 0;
    for t in items {
        // A tool's `x-mcp-header` arguments, checked once here; an invalid annotation makes
        // the tool one that HTTP clients must drop (`catalog/params.rs`).
        let headers = match tools.then(|| crate::catalog::params::of_tool(&t.json)) {
            Some(Err(why)) => {
                dropped.push((
                    t.original.to_string(),
                    format!("invalid x-mcp-header: {why}"),
                ));
                continue;
            }
            Some(Ok(h)) => h.map(Arc::new),
            None => None,
        };
        let exposed = exposed_name(&t.name);
        if !crate::catalog::valid_tool_name(&exposed) {
            dropped.push((
                t.original.to_string(),
                format!("name `{exposed}` is not 1-64 chars of [A-Za-z0-9_-]"),
            ));
            continue;
        }
        if let Some(prev) = routes.get(&exposed) {
            let owner = backends[prev.backend].id;
            dropped.push((
                t.original.to_string(),
                format!("name `{exposed}` already taken by server `{owner}`"),
            ));
            continue;
        }
        let Some(json) = with_field(&t.json, "name", &exposed) else {
            dropped.push((t.original.to_string(), "entry has no string `name`".into()));
            continue;
        };
        out.push(&json, idx, &exposed);
        let mut original_json = Vec::new();
        push_json_str(&mut original_json, t.original);
        routes.insert(
            exposed,
            NameRoute {
                backend: idx,
                original: t.original.into(),
                original_json: original_json.into(),
                idempotent: hint(&t.json, "idempotentHint"),
                read_only: hint(&t.json, "readOnlyHint"),
                headers,
                task_support: crate::catalog::TaskSupport::of(&t.json),
            },
        );
        n += 1;
    }
    n
}

/// A tool's boolean annotation `name` (false when absent).
fn hint(tool: &[u8], name: &str) -> bool {
    sonic_rs::get(tool, ["annotations", name])
        .ok()
        .and_then(|v| sonic_rs::JsonValueTrait::as_bool(&v))
        .unwrap_or(false)
}

#[cfg(test)]
#[path = "build_tests.rs"]
mod tests;

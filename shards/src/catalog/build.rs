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
            );
            report.prompts = merge_names(
                &d.prompts.iter().map(plain).collect::<Vec<_>>(),
                idx,
                backends,
                &exposed_name,
                &mut prompt_routes,
                &mut prompts,
                &mut report.dropped,
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
                            original: r.key.clone(),
                            original_json: Vec::new(),
                            idempotent: true,
                            read_only: true,
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
) -> usize {
    let mut n = 0;
    for t in items {
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
                original: t.original.to_string(),
                original_json,
                idempotent: hint(&t.json, "idempotentHint"),
                read_only: hint(&t.json, "readOnlyHint"),
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
mod tests {
    use super::*;
    use sonic_rs::{JsonContainerTrait, JsonValueTrait};

    fn item(key_field: &str, key: &str) -> RawItem {
        RawItem {
            key: key.into(),
            json: format!(r#"{{"{key_field}":"{key}","x":1}}"#).into_bytes(),
        }
    }

    fn disc(tools: &[&str]) -> Discovery {
        Discovery {
            tools: tools
                .iter()
                .map(|t| item("name", t))
                .collect::<Vec<_>>()
                .into(),
            ..Default::default()
        }
    }

    #[test]
    fn namespaces_and_routes_tools() {
        let a = disc(&["echo", "add"]);
        let b = disc(&["echo"]);
        let c = Catalog::build(
            &[
                BackendInput {
                    id: "a",
                    prefix: true,
                    state: BackendState::Ready,
                    discovery: Some(&a),
                    curation: None,
                    tasks: false,
                },
                BackendInput {
                    id: "b",
                    prefix: true,
                    state: BackendState::Ready,
                    discovery: Some(&b),
                    curation: None,
                    tasks: false,
                },
            ],
            "__",
        );
        assert_eq!(c.len(), 3);
        assert_eq!(c.route("b__echo").unwrap().backend, 1);
        assert_eq!(c.route("a__add").unwrap().original, "add");
        let v: sonic_rs::Value = sonic_rs::from_slice(&c.tools_json).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 3);
    }

    #[test]
    fn drops_collisions_and_bad_names_with_reasons() {
        let a = disc(&["echo"]);
        let long = "x".repeat(70);
        let b = disc(&["echo", "has space", &long]);
        let c = Catalog::build(
            &[
                BackendInput {
                    id: "a",
                    prefix: false,
                    state: BackendState::Ready,
                    discovery: Some(&a),
                    curation: None,
                    tasks: false,
                },
                BackendInput {
                    id: "b",
                    prefix: false,
                    state: BackendState::Down("x".into()),
                    discovery: Some(&b),
                    curation: None,
                    tasks: false,
                },
            ],
            "__",
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c.reports[1].dropped.len(), 3);
        assert!(c.reports[1].dropped[0]
            .1
            .contains("already taken by server `a`"));
    }

    #[test]
    fn task_support_is_shown_only_where_tasks_are_carried() {
        let tools = |json: &[&str]| Discovery {
            tools: json
                .iter()
                .map(|j| RawItem {
                    key: sonic_rs::get(j.as_bytes(), ["name"])
                        .unwrap()
                        .as_str()
                        .unwrap()
                        .to_string(),
                    json: j.as_bytes().to_vec(),
                })
                .collect::<Vec<_>>()
                .into(),
            ..Default::default()
        };
        let d = tools(&[
            r#"{"name":"opt","execution":{"taskSupport":"optional"}}"#,
            r#"{"name":"req","execution":{"taskSupport":"required"}}"#,
            r#"{"name":"both","execution":{"taskSupport":"forbidden","other":1}}"#,
            r#"{"name":"plain"}"#,
        ]);
        let input = |tasks| BackendInput {
            id: "a",
            prefix: false,
            state: BackendState::Ready,
            discovery: Some(&d),
            curation: None,
            tasks,
        };
        let carried = Catalog::build(&[input(true)], "__");
        assert_eq!(carried.len(), 4);
        assert!(carried.caps.tasks);
        let v: sonic_rs::Value = sonic_rs::from_slice(&carried.tools_json).unwrap();
        assert_eq!(v[1]["execution"]["taskSupport"].as_str(), Some("required"));
        let not = Catalog::build(&[input(false)], "__");
        assert!(!not.caps.tasks);
        assert_eq!(not.len(), 3, "the tool that requires a task is hidden");
        assert!(not.route("req").is_none());
        assert!(not.reports[0].dropped[0].1.contains("requires a task"));
        let v: sonic_rs::Value = sonic_rs::from_slice(&not.tools_json).unwrap();
        assert!(v[0].get("execution").is_none(), "{}", v[0]);
        assert!(v[1]["execution"].get("taskSupport").is_none());
        assert_eq!(v[1]["execution"]["other"].as_i64(), Some(1));
    }

    #[test]
    fn cache_hints_merge_to_the_minimum_ttl_and_private_wins() {
        let a = Discovery {
            ttl_ms: Some(60_000),
            ..Default::default()
        };
        let b = Discovery {
            ttl_ms: Some(5_000),
            private: true,
            ..Default::default()
        };
        let c = Discovery::default();
        let input = |id, d| BackendInput {
            id,
            prefix: true,
            state: BackendState::Ready,
            discovery: Some(d),
            curation: None,
            tasks: false,
        };
        let cat = Catalog::build(&[input("a", &a), input("b", &b), input("c", &c)], "__");
        assert_eq!(cat.min_ttl_ms, Some(5_000));
        assert!(cat.private);
        let cat = Catalog::build(&[input("a", &a), input("c", &c)], "__");
        assert_eq!((cat.min_ttl_ms, cat.private), (Some(60_000), false));
    }

    #[test]
    fn resources_are_namespaced_and_routed() {
        let a = Discovery {
            resources: vec![item("uri", "test://static-text")].into(),
            templates: vec![item("uriTemplate", "test://template/{id}/data")].into(),
            prompts: vec![item("name", "greet")].into(),
            caps: BackendCaps {
                resources: true,
                prompts: true,
                ..Default::default()
            },
            ..Default::default()
        };
        let b = Discovery {
            resources: vec![item("uri", "file:///x")].into(),
            templates: vec![item("uriTemplate", "file:///{+path}")].into(),
            ..Default::default()
        };
        let c = Catalog::build(
            &[
                BackendInput {
                    id: "ns",
                    prefix: true,
                    state: BackendState::Ready,
                    discovery: Some(&a),
                    curation: None,
                    tasks: false,
                },
                BackendInput {
                    id: "bare",
                    prefix: false,
                    state: BackendState::Ready,
                    discovery: Some(&b),
                    curation: None,
                    tasks: false,
                },
            ],
            "__",
        );
        assert!(c.caps.resources && c.caps.prompts);
        let r = c.route_uri("o1m://ns/test://static-text").unwrap();
        assert_eq!((r.backend, r.original), (0, "test://static-text"));
        assert_eq!(c.route_uri("file:///x").unwrap().backend, 1);
        assert_eq!(c.route_uri("file:///deep/er.txt").unwrap().backend, 1);
        assert!(c.route_uri("nope://x").is_none());
        assert_eq!(c.route_prompt("ns__greet").unwrap().original, "greet");
        let v: sonic_rs::Value = sonic_rs::from_slice(&c.resources_json).unwrap();
        assert_eq!(v[0]["uri"].as_str(), Some("o1m://ns/test://static-text"));
        let t: sonic_rs::Value = sonic_rs::from_slice(&c.templates_json).unwrap();
        assert_eq!(
            t[0]["uriTemplate"].as_str(),
            Some("o1m://ns/test://template/{id}/data")
        );
    }
}

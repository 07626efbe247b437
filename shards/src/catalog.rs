//! The merged tool catalog: namespaced names, routes back to backends, and the rendered list.
//!
//! Built on the control thread from each backend's discovered tools (every page already
//! followed by the discovering shard). Names become `<server_id><sep><tool>` unless the server
//! has `prefix = false`; names that break the rule LLM APIs enforce (1-64 chars of
//! `[A-Za-z0-9_-]`) or collide with an earlier server's are dropped and reported with the
//! reason, never silently. The `tools/list` result is rendered once here, so serving it is a
//! copy of shared bytes.

use std::sync::Arc;

use ahash::RandomState;
use hashbrown::HashMap;

use crate::mcp::jsonrpc::push_json_str;

/// A tool as a backend listed it: its name and its JSON object, verbatim.
#[derive(Debug, Clone)]
pub struct RawTool {
    /// The backend's own name.
    pub name: String,
    /// The tool object exactly as the backend sent it.
    pub json: Vec<u8>,
}

/// Where a catalog name routes to.
#[derive(Debug, Clone)]
pub struct ToolRoute {
    /// Backend index in the snapshot.
    pub backend: usize,
    /// The backend's own tool name.
    pub original: String,
    /// `original` as a JSON string literal, ready to splice into a request.
    pub original_json: Vec<u8>,
}

/// A backend's discovery state as the catalog sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendState {
    /// Not discovered yet.
    Starting,
    /// Discovered; tools are in the catalog.
    Ready,
    /// Discovery failed or the backend died; the message says why.
    Down(String),
}

/// Per-backend report: state, tools exposed, tools dropped and why.
#[derive(Debug, Clone)]
pub struct BackendReport {
    /// Backend id.
    pub id: String,
    /// State.
    pub state: BackendState,
    /// Tools exposed.
    pub tools: usize,
    /// Tools dropped: (backend name, reason).
    pub dropped: Vec<(String, String)>,
}

/// The merged catalog.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    routes: HashMap<String, ToolRoute, RandomState>,
    /// `[tool, tool, ...]` rendered once.
    pub tools_json: Arc<Vec<u8>>,
    /// One report per backend, by index.
    pub reports: Vec<BackendReport>,
}

/// Is `name` acceptable to LLM tool APIs (1-64 of `[A-Za-z0-9_-]`)?
pub fn valid_tool_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Input for one backend when building a catalog.
pub struct BackendTools<'a> {
    /// Backend id.
    pub id: &'a str,
    /// Namespace with the id?
    pub prefix: bool,
    /// Discovery state.
    pub state: BackendState,
    /// The last tools it listed. A backend that went down keeps its last known tools, so a
    /// call gets "backend unavailable" (true, and retryable) rather than "unknown tool".
    pub tools: &'a [RawTool],
}

impl Catalog {
    /// Merges backends in config order; earlier servers win collisions.
    pub fn build(backends: &[BackendTools<'_>], separator: &str) -> Catalog {
        let mut routes: HashMap<String, ToolRoute, RandomState> = HashMap::default();
        let mut out = Vec::with_capacity(4096);
        out.push(b'[');
        let mut reports = Vec::with_capacity(backends.len());
        let mut first = true;
        for (idx, b) in backends.iter().enumerate() {
            let mut report = BackendReport {
                id: b.id.to_string(),
                state: b.state.clone(),
                tools: 0,
                dropped: Vec::new(),
            };
            for t in b.tools {
                let exposed = if b.prefix {
                    format!("{}{}{}", b.id, separator, t.name)
                } else {
                    t.name.clone()
                };
                if !valid_tool_name(&exposed) {
                    report.dropped.push((
                        t.name.clone(),
                        format!("name `{exposed}` is not 1-64 chars of [A-Za-z0-9_-]"),
                    ));
                    continue;
                }
                if let Some(prev) = routes.get(&exposed) {
                    let owner = backends[prev.backend].id;
                    report.dropped.push((
                        t.name.clone(),
                        format!("name `{exposed}` already taken by server `{owner}`"),
                    ));
                    continue;
                }
                let Some(range) = name_range(&t.json) else {
                    report
                        .dropped
                        .push((t.name.clone(), "tool has no string `name`".into()));
                    continue;
                };
                if !first {
                    out.push(b',');
                }
                first = false;
                out.extend_from_slice(&t.json[..range.start]);
                push_json_str(&mut out, &exposed);
                out.extend_from_slice(&t.json[range.end..]);
                let mut original_json = Vec::new();
                push_json_str(&mut original_json, &t.name);
                routes.insert(
                    exposed,
                    ToolRoute {
                        backend: idx,
                        original: t.name.clone(),
                        original_json,
                    },
                );
                report.tools += 1;
            }
            reports.push(report);
        }
        out.push(b']');
        Catalog {
            routes,
            tools_json: Arc::new(out),
            reports,
        }
    }

    /// Looks a catalog name up.
    pub fn route(&self, name: &str) -> Option<&ToolRoute> {
        self.routes.get(name)
    }

    /// Number of exposed tools.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// True when no tool is exposed.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

fn name_range(json: &[u8]) -> Option<std::ops::Range<usize>> {
    let v = sonic_rs::get(json, &["name"]).ok()?;
    let raw = v.as_raw_str();
    if !raw.starts_with('"') {
        return None;
    }
    let start = raw.as_ptr() as usize - json.as_ptr() as usize;
    Some(start..start + raw.len())
}

/// Splits a backend's `tools/list` result into tools; returns the tools and `nextCursor`.
pub fn parse_tools_page(result: &[u8]) -> Result<(Vec<RawTool>, Option<String>), String> {
    use sonic_rs::JsonValueTrait;
    let tools =
        sonic_rs::get(result, &["tools"]).map_err(|_| "result has no `tools` array".to_string())?;
    if !tools.is_array() {
        return Err("`tools` is not an array".into());
    }
    let mut out = Vec::new();
    for item in sonic_rs::to_array_iter(tools.as_raw_str()) {
        let item = item.map_err(|e| format!("bad tool entry: {e}"))?;
        let raw = item.as_raw_str();
        let name = sonic_rs::get(raw, &["name"])
            .ok()
            .and_then(|n| n.as_str().map(str::to_string))
            .ok_or_else(|| "a tool has no string `name`".to_string())?;
        out.push(RawTool {
            name,
            json: raw.as_bytes().to_vec(),
        });
    }
    let cursor = sonic_rs::get(result, &["nextCursor"])
        .ok()
        .and_then(|c| c.as_str().map(str::to_string));
    Ok((out, cursor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sonic_rs::JsonContainerTrait;

    fn tool(name: &str) -> RawTool {
        RawTool {
            name: name.into(),
            json: format!(r#"{{"name":"{name}","inputSchema":{{"type":"object"}}}}"#).into_bytes(),
        }
    }

    #[test]
    fn namespaces_and_routes() {
        let a = [tool("echo"), tool("add")];
        let b = [tool("echo")];
        let c = Catalog::build(
            &[
                BackendTools {
                    id: "a",
                    prefix: true,
                    state: BackendState::Ready,
                    tools: &a,
                },
                BackendTools {
                    id: "b",
                    prefix: true,
                    state: BackendState::Ready,
                    tools: &b,
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
        let a = [tool("echo")];
        let b = [tool("echo"), tool("has space"), tool(&"x".repeat(70))];
        let c = Catalog::build(
            &[
                BackendTools {
                    id: "a",
                    prefix: false,
                    state: BackendState::Ready,
                    tools: &a,
                },
                BackendTools {
                    id: "b",
                    prefix: false,
                    state: BackendState::Down("x".into()),
                    tools: &b,
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
    fn pages_parse_with_cursor() {
        let (t, cur) =
            parse_tools_page(br#"{"tools":[{"name":"x","inputSchema":{}}],"nextCursor":"p2"}"#)
                .unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(cur.as_deref(), Some("p2"));
        assert!(parse_tools_page(br#"{"nope":1}"#).is_err());
    }
}

//! Curation of one backend's tools before they enter the merged catalog: which tools are
//! exposed (allow and deny globs over the backend's own names), under which name
//! (`rename`), with which description (`descriptions`), whether a tool whose input schema is
//! unusable is hidden, and how much of each schema is kept (`compaction`).
//!
//! Compaction removes only what no validator needs: annotation keywords (`$schema`,
//! `$comment`, titles that restate a property's name, `examples`), whitespace in
//! descriptions, and description text past a budget. Validation keywords are never touched,
//! so every instance valid before is valid after (checked over captured real tool lists in
//! `tests/compaction_fixtures.rs`). A curated server's tools are sorted by exposed name, so
//! the list a model sees is byte-identical from one start to the next whatever order the
//! backend lists them in (stable prompt caches); a server without curation keeps its order.

use std::borrow::Cow;

use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

use crate::auth::policy::glob;
use crate::catalog::RawItem;

/// How much of a tool's schema is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compaction {
    /// As the backend sent it.
    #[default]
    Off,
    /// Annotations dropped, unreferenced definitions dropped, whitespace collapsed, every
    /// description cut to the budget.
    Safe,
    /// `safe`, with nested (property) descriptions cut to a quarter of the budget.
    Aggressive,
}

/// One backend's curation rules (from its `[[servers]]` block).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Curation {
    /// Only tools matching one of these (backend names, globs); empty = all.
    pub allow: Vec<String>,
    /// Never these.
    pub deny: Vec<String>,
    /// Backend name → exposed name (before namespacing).
    pub rename: Vec<(String, String)>,
    /// Backend name → description.
    pub descriptions: Vec<(String, String)>,
    /// Hide tools whose `inputSchema` is not an object schema.
    pub hide_invalid: bool,
    /// See [`Compaction`].
    pub compaction: Compaction,
    /// Characters a tool description keeps under compaction.
    pub description_budget: usize,
}

/// A tool as it will be exposed.
#[derive(Debug, Clone)]
pub struct Curated<'a> {
    /// The backend's own name (what calls are sent as).
    pub original: &'a str,
    /// The name to expose (before namespacing).
    pub name: Cow<'a, str>,
    /// Its JSON.
    pub json: Cow<'a, [u8]>,
}

impl Curation {
    /// Nothing to do: every tool as the backend sent it.
    pub fn is_identity(&self) -> bool {
        self.allow.is_empty()
            && self.deny.is_empty()
            && self.rename.is_empty()
            && self.descriptions.is_empty()
            && !self.hide_invalid
            && self.compaction == Compaction::Off
    }

    fn exposed(&self, name: &str) -> bool {
        let any = |v: &[String]| v.iter().any(|g| glob(g.as_bytes(), name.as_bytes()));
        (self.allow.is_empty() || any(&self.allow)) && !any(&self.deny)
    }

    /// The backend's tools after curation, sorted by exposed name; what was hidden, and why,
    /// goes to `dropped`.
    pub fn tools<'a>(
        &self,
        items: &'a [RawItem],
        dropped: &mut Vec<(String, String)>,
    ) -> Vec<Curated<'a>> {
        let mut out = Vec::with_capacity(items.len());
        for t in items {
            if !self.exposed(&t.key) {
                continue;
            }
            let name = match self.rename.iter().find(|(from, _)| *from == t.key) {
                Some((_, to)) => Cow::Owned(to.clone()),
                None => Cow::Borrowed(t.key.as_str()),
            };
            let described = self
                .descriptions
                .iter()
                .find(|(n, _)| *n == t.key)
                .map(|(_, d)| d.as_str());
            let needs_edit = described.is_some() || self.compaction != Compaction::Off;
            if !needs_edit && !self.hide_invalid {
                out.push(Curated {
                    original: &t.key,
                    name,
                    json: Cow::Borrowed(&t.json),
                });
                continue;
            }
            let Ok(v) = sonic_rs::from_slice::<Value>(&t.json) else {
                dropped.push((t.key.clone(), "entry is not a JSON object".into()));
                continue;
            };
            if self.hide_invalid && !object_schema(v.get("inputSchema")) {
                dropped.push((
                    t.key.clone(),
                    "hidden: inputSchema is not a JSON Schema object (`\"type\": \"object\"`)"
                        .into(),
                ));
                continue;
            }
            let mut json = String::with_capacity(t.json.len());
            emit_tool(
                &v,
                described,
                self.compaction,
                self.description_budget.max(16),
                &mut json,
            );
            out.push(Curated {
                original: &t.key,
                name,
                json: Cow::Owned(json.into_bytes()),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

fn object_schema(s: Option<&Value>) -> bool {
    s.is_some_and(|s| s.is_object() && s.get("type").and_then(|t| t.as_str()) == Some("object"))
}

/// Writes one tool object, compacted, in the backend's own key order (parsed values keep
/// document order; nothing is mutated, so the output is the same bytes on every run).
fn emit_tool(
    tool: &Value,
    description: Option<&str>,
    level: Compaction,
    budget: usize,
    out: &mut String,
) {
    let nested = match level {
        Compaction::Off => None,
        Compaction::Safe => Some(budget),
        Compaction::Aggressive => Some((budget / 4).max(16)),
    };
    let Some(obj) = tool.as_object() else {
        out.push_str(&sonic_rs::to_string(tool).unwrap_or_default());
        return;
    };
    out.push('{');
    let mut first = true;
    let mut key = |k: &str, out: &mut String| {
        if !first {
            out.push(',');
        }
        first = false;
        push_str(out, k);
        out.push(':');
    };
    for (k, v) in obj.iter() {
        match k {
            "description" => {
                let text = description
                    .map(str::to_string)
                    .or_else(|| v.as_str().map(str::to_string));
                key(k, out);
                match (text, level) {
                    (Some(t), Compaction::Off) => push_str(out, &t),
                    (Some(t), _) => push_str(out, &shorten(&squash(&t), budget)),
                    (None, _) => out.push_str(&sonic_rs::to_string(v).unwrap_or_default()),
                }
            }
            "inputSchema" | "outputSchema" if level != Compaction::Off => {
                key(k, out);
                let keep = reachable_definitions(v);
                emit_schema(v, None, nested, Some(&keep), out);
            }
            _ => {
                key(k, out);
                out.push_str(&sonic_rs::to_string(v).unwrap_or_default());
            }
        }
    }
    if let (Some(d), false) = (description, obj.iter().any(|(k, _)| k == "description")) {
        key("description", out);
        push_str(out, d);
    }
    out.push('}');
}

fn push_str(out: &mut String, s: &str) {
    out.push_str(&sonic_rs::to_string(s).unwrap_or_default());
}

/// Annotation keywords no validator reads.
const ANNOTATIONS: [&str; 3] = ["$schema", "$comment", "examples"];

/// Keywords whose value is one schema or a list of schemas.
const SUBSCHEMAS: [&str; 11] = [
    "items",
    "additionalProperties",
    "anyOf",
    "oneOf",
    "allOf",
    "not",
    "prefixItems",
    "contains",
    "if",
    "then",
    "else",
];

/// Writes a schema node compacted; `prop` is the property it describes, `keep` the
/// definitions to keep (root only).
fn emit_schema(
    node: &Value,
    prop: Option<&str>,
    budget: Option<usize>,
    keep: Option<&[String]>,
    out: &mut String,
) {
    if let Some(arr) = node.as_array() {
        out.push('[');
        for (i, v) in arr.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            emit_schema(v, None, budget, None, out);
        }
        out.push(']');
        return;
    }
    let Some(obj) = node.as_object() else {
        out.push_str(&sonic_rs::to_string(node).unwrap_or_default());
        return;
    };
    out.push('{');
    let mut first = true;
    for (k, v) in obj.iter() {
        if ANNOTATIONS.contains(&k) {
            continue;
        }
        if k == "title"
            && v.as_str()
                .is_some_and(|t| prop.is_some_and(|p| same_words(t, p)))
        {
            continue;
        }
        // Definitions of which nothing is referenced: the keyword goes too.
        let defs_unused = (k == "$defs" || k == "definitions")
            && keep.is_some_and(|keep| {
                v.as_object()
                    .is_some_and(|m| m.iter().all(|(n, _)| !keep.iter().any(|x| x == n)))
            });
        if defs_unused {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        push_str(out, k);
        out.push(':');
        match k {
            "description" => match (v.as_str(), budget) {
                (Some(t), Some(b)) => push_str(out, &shorten(&squash(t), b)),
                _ => out.push_str(&sonic_rs::to_string(v).unwrap_or_default()),
            },
            "properties" | "patternProperties" | "$defs" | "definitions" => {
                let Some(m) = v.as_object() else {
                    out.push_str(&sonic_rs::to_string(v).unwrap_or_default());
                    continue;
                };
                let is_defs = k == "$defs" || k == "definitions";
                out.push('{');
                let mut f = true;
                for (name, child) in m.iter() {
                    if is_defs && keep.is_some_and(|keep| !keep.iter().any(|n| n == name)) {
                        continue;
                    }
                    if !f {
                        out.push(',');
                    }
                    f = false;
                    push_str(out, name);
                    out.push(':');
                    emit_schema(child, Some(name), budget, None, out);
                }
                out.push('}');
            }
            _ if SUBSCHEMAS.contains(&k) => emit_schema(v, None, budget, None, out),
            _ => out.push_str(&sonic_rs::to_string(v).unwrap_or_default()),
        }
    }
    out.push('}');
}

/// The definitions (`$defs`, `definitions`) some `$ref` reaches from the rest of the schema,
/// transitively. An unreferenced definition never takes part in validation, and generated
/// schemas often carry a whole API's definitions in every tool.
fn reachable_definitions(schema: &Value) -> Vec<String> {
    let mut wanted = Vec::new();
    let Some(obj) = schema.as_object() else {
        return wanted;
    };
    for (k, v) in obj.iter() {
        if k != "$defs" && k != "definitions" {
            refs(v, &mut wanted);
        }
    }
    let mut i = 0;
    while i < wanted.len() {
        for key in ["$defs", "definitions"] {
            if let Some(d) = schema.get(key).and_then(|d| d.get(wanted[i].as_str())) {
                let mut more = Vec::new();
                refs(d, &mut more);
                for m in more {
                    if !wanted.contains(&m) {
                        wanted.push(m);
                    }
                }
            }
        }
        i += 1;
    }
    wanted
}

/// Names of definitions referenced as `#/$defs/<name>` or `#/definitions/<name>` in `v`.
fn refs(v: &Value, out: &mut Vec<String>) {
    if let Some(a) = v.as_array() {
        for x in a.iter() {
            refs(x, out);
        }
    } else if let Some(o) = v.as_object() {
        for (k, x) in o.iter() {
            if k == "$ref" {
                let target = x.as_str().and_then(|r| {
                    r.strip_prefix("#/$defs/")
                        .or_else(|| r.strip_prefix("#/definitions/"))
                });
                if let Some(name) = target {
                    let name = name.split('/').next().unwrap_or(name).to_string();
                    if !out.contains(&name) {
                        out.push(name);
                    }
                }
            } else {
                refs(x, out);
            }
        }
    }
}

/// Same words, ignoring case, `_`, `-` and spaces (`user_id` = `User ID`).
fn same_words(a: &str, b: &str) -> bool {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    };
    norm(a) == norm(b)
}

/// Whitespace runs become one space; trimmed.
fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// At most `budget` characters: whole sentences when they fit, else cut at a word, with `…`.
fn shorten(s: &str, budget: usize) -> String {
    if s.chars().count() <= budget {
        return s.to_string();
    }
    let cut: String = s.chars().take(budget.saturating_sub(1)).collect();
    if let Some(end) = cut.rfind(". ") {
        if end > budget / 2 {
            return cut[..=end].to_string();
        }
    }
    let word = cut
        .rfind(' ')
        .filter(|i| *i > budget / 2)
        .unwrap_or(cut.len());
    format!("{}…", cut[..word].trim_end())
}

#[cfg(test)]
mod tests;

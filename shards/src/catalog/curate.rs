//! Curation of one backend's tools before they enter the merged catalog: which tools are
//! exposed (allow and deny globs over the backend's own names), under which name
//! (`rename`), with which description (`descriptions`), whether a tool whose input schema is
//! unusable is hidden, and how much of each schema is kept (`compaction`).
//!
//! Compaction removes only what no validator needs: annotation keywords (`$schema`,
//! `$comment`, titles that restate a property's name, `examples`), whitespace in
//! descriptions, and description text past a budget. Validation keywords are never touched,
//! so every instance valid before is valid after (checked over captured real tool lists in
//! `tests/python/test_context.py`). A curated server's tools are sorted by exposed name, so
//! the list a model sees is byte-identical from one start to the next whatever order the
//! backend lists them in (stable prompt caches); a server without curation keeps its order.

use std::borrow::Cow;

use sonic_rs::{JsonValueMutTrait, JsonValueTrait, Value};

use crate::auth::policy::glob;
use crate::catalog::RawItem;

/// How much of a tool's schema is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compaction {
    /// As the backend sent it.
    #[default]
    Off,
    /// Annotations dropped, whitespace collapsed, the tool's description cut to the budget.
    Safe,
    /// `safe`, and nested (property) descriptions cut to a quarter of the budget.
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
            let Ok(mut v) = sonic_rs::from_slice::<Value>(&t.json) else {
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
            if let Some(d) = described {
                if let Some(obj) = v.as_object_mut() {
                    obj.insert("description", Value::from(d));
                }
            }
            if self.compaction != Compaction::Off {
                compact_tool(&mut v, self.compaction, self.description_budget.max(16));
            }
            out.push(Curated {
                original: &t.key,
                name,
                json: Cow::Owned(sonic_rs::to_vec(&v).unwrap_or_else(|_| t.json.clone())),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

fn object_schema(s: Option<&Value>) -> bool {
    s.is_some_and(|s| s.is_object() && s.get("type").and_then(|t| t.as_str()) == Some("object"))
}

/// Compacts one tool object in place.
pub fn compact_tool(tool: &mut Value, level: Compaction, budget: usize) {
    if let Some(d) = tool.get_mut("description") {
        if let Some(text) = d.as_str() {
            *d = Value::from(shorten(&squash(text), budget).as_str());
        }
    }
    let nested = match level {
        Compaction::Aggressive => Some((budget / 4).max(16)),
        _ => None,
    };
    for key in ["inputSchema", "outputSchema"] {
        if let Some(s) = tool.get_mut(key) {
            compact_schema(s, None, nested);
        }
    }
}

/// Annotation keywords no validator reads.
const ANNOTATIONS: [&str; 3] = ["$schema", "$comment", "examples"];

/// Compacts a schema node; `prop` is the property name it describes, if any.
fn compact_schema(node: &mut Value, prop: Option<&str>, nested_budget: Option<usize>) {
    let Some(obj) = node.as_object_mut() else {
        if let Some(arr) = node.as_array_mut() {
            for v in arr.iter_mut() {
                compact_schema(v, None, nested_budget);
            }
        }
        return;
    };
    for k in ANNOTATIONS {
        obj.remove(&k);
    }
    let restates = |t: &str| prop.is_some_and(|p| same_words(t, p));
    if obj
        .get(&"title")
        .and_then(|t| t.as_str())
        .is_some_and(restates)
    {
        obj.remove(&"title");
    }
    if let Some(d) = obj.get_mut(&"description") {
        if let Some(text) = d.as_str() {
            let mut t = squash(text);
            if let Some(b) = nested_budget {
                t = shorten(&t, b);
            }
            *d = Value::from(t.as_str());
        }
    }
    // Recurse into every value: properties (by name), items, combinators, definitions.
    let keys: Vec<String> = obj.iter().map(|(k, _)| k.to_string()).collect();
    for k in keys {
        let Some(child) = obj.get_mut(&k) else {
            continue;
        };
        if k == "properties" || k == "patternProperties" || k == "$defs" || k == "definitions" {
            if let Some(props) = child.as_object_mut() {
                let names: Vec<String> = props.iter().map(|(n, _)| n.to_string()).collect();
                for n in names {
                    if let Some(p) = props.get_mut(&n) {
                        compact_schema(p, Some(&n), nested_budget);
                    }
                }
            }
        } else if matches!(
            k.as_str(),
            "items"
                | "additionalProperties"
                | "anyOf"
                | "oneOf"
                | "allOf"
                | "not"
                | "prefixItems"
                | "contains"
                | "if"
                | "then"
                | "else"
        ) {
            compact_schema(child, None, nested_budget);
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

//! BM25 search over the tools of a catalog, for the `search` discovery mode: a client loads
//! three small meta tools instead of every schema, and finds the tool it needs by words.
//!
//! Each tool is indexed by the words of its name (split at `_`, `-`, `.` and camelCase),
//! its description, and its argument names; a query is split the same way. The index is
//! built once per catalog (per shard, lazily) and answers in microseconds; ranking is
//! classic Okapi BM25 (k1 = 1.2, b = 0.75).

use hashbrown::HashMap;
use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

/// Is `name` one of the meta tools (`search_tools`, `get_tool_schema`, `call_tool`)? Those
/// names are the gateway's in the search modes, so config may not rename a tool to one.
pub fn is_meta(name: &str) -> bool {
    matches!(name, "search_tools" | "get_tool_schema" | "call_tool")
}

/// One indexed tool.
#[derive(Debug)]
struct Doc {
    /// Term → count.
    tf: HashMap<String, u32, ahash::RandomState>,
    len: u32,
}

/// The index of one tools list.
#[derive(Debug, Default)]
pub struct SearchIndex {
    docs: Vec<Doc>,
    df: HashMap<String, u32, ahash::RandomState>,
    avg_len: f64,
}

/// Lower-case words of `text`: letters and digits, split at everything else and at
/// lower→upper case changes (`getUser` → `get`, `user`).
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in text.chars() {
        if c.is_alphanumeric() {
            if c.is_uppercase() && prev_lower && !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = c.is_lowercase() || c.is_numeric();
            cur.extend(c.to_lowercase());
        } else {
            prev_lower = false;
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out.retain(|w| !STOP.contains(&w.as_str()));
    for w in &mut out {
        stem(w);
    }
    out
}

/// A light suffix stemmer (`relations` → `relation`, `indexes` → `index`, `listing` →
/// `list`), so plural and verb forms of a word meet.
fn stem(w: &mut String) {
    for suffix in ["ing", "ies", "es", "ed", "s"] {
        if w.len() > suffix.len() + 3 && w.ends_with(suffix) && !w.ends_with("ss") {
            w.truncate(w.len() - suffix.len());
            if suffix == "ies" {
                w.push('y');
            }
            return;
        }
    }
}

/// Words too common to tell tools apart.
const STOP: [&str; 18] = [
    "the", "a", "an", "of", "to", "and", "or", "in", "on", "for", "with", "is", "be", "this",
    "that", "it", "by", "as",
];

/// The words a tool is found by.
fn tool_terms(tool: &Value) -> Vec<String> {
    let mut terms = Vec::new();
    if let Some(n) = tool.get("name").and_then(|v| v.as_str()) {
        // The name counts three times: it is the strongest signal.
        let w = words(n);
        for _ in 0..2 {
            terms.extend(w.iter().cloned());
        }
        terms.extend(w);
    }
    if let Some(d) = tool.get("description").and_then(|v| v.as_str()) {
        terms.extend(words(d));
    }
    if let Some(props) = tool
        .get("inputSchema")
        .and_then(|s| s.get("properties"))
        .and_then(|p| p.as_object())
    {
        for (name, p) in props.iter() {
            terms.extend(words(name));
            if let Some(d) = p.get("description").and_then(|v| v.as_str()) {
                terms.extend(words(d));
            }
        }
    }
    terms
}

impl SearchIndex {
    /// Indexes `tools` (each a tool's JSON object), in order.
    pub fn build<'a>(tools: impl IntoIterator<Item = &'a [u8]>) -> SearchIndex {
        let mut idx = SearchIndex::default();
        let mut total = 0u64;
        for json in tools {
            let terms = sonic_rs::from_slice::<Value>(json)
                .map(|v| tool_terms(&v))
                .unwrap_or_default();
            let mut tf: HashMap<String, u32, ahash::RandomState> = HashMap::default();
            for t in &terms {
                *tf.entry(t.clone()).or_default() += 1;
            }
            for t in tf.keys() {
                *idx.df.entry(t.clone()).or_default() += 1;
            }
            total += terms.len() as u64;
            idx.docs.push(Doc {
                tf,
                len: terms.len() as u32,
            });
        }
        idx.avg_len = total as f64 / idx.docs.len().max(1) as f64;
        idx
    }

    /// The best `k` tools for `query` among those `keep(i)` accepts: (index, score), best
    /// first; ties keep list order. Tools that match no query word are left out.
    pub fn search(&self, query: &str, k: usize, keep: &dyn Fn(usize) -> bool) -> Vec<(usize, f64)> {
        let q = words(query);
        let n = self.docs.len() as f64;
        let (k1, b) = (1.2, 0.75);
        let mut scored: Vec<(usize, f64)> = Vec::new();
        for (i, d) in self.docs.iter().enumerate() {
            if !keep(i) {
                continue;
            }
            let mut s = 0.0;
            for t in &q {
                let Some(&f) = d.tf.get(t.as_str()) else {
                    continue;
                };
                let df = *self.df.get(t.as_str()).unwrap_or(&0) as f64;
                let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
                let f = f as f64;
                s += idf * f * (k1 + 1.0) / (f + k1 * (1.0 - b + b * d.len as f64 / self.avg_len));
            }
            if s > 0.0 {
                scored.push((i, s));
            }
        }
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored.truncate(k);
        scored
    }

    /// Number of indexed tools.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// No tools indexed.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_names_and_drop_stop_words() {
        assert_eq!(words("getUser_by-ID.now"), ["get", "user", "id", "now"]);
        assert_eq!(
            words("listing relations indexes queries"),
            ["list", "relation", "index", "query"]
        );
        assert_eq!(words("Create a new issue"), ["create", "new", "issue"]);
    }

    #[test]
    fn the_matching_tool_ranks_first() {
        let tools: Vec<Vec<u8>> = [
            r#"{"name":"create_issue","description":"Open a new issue in a repository","inputSchema":{"type":"object","properties":{"title":{"type":"string"}}}}"#,
            r#"{"name":"list_commits","description":"List commits of a branch","inputSchema":{"type":"object","properties":{"branch":{"type":"string"}}}}"#,
            r#"{"name":"get_time","description":"Current time in a timezone","inputSchema":{"type":"object","properties":{"timezone":{"type":"string"}}}}"#,
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        let idx = SearchIndex::build(tools.iter().map(|t| t.as_slice()));
        assert_eq!(
            idx.search("what time is it in Tokyo timezone", 3, &|_| true)[0].0,
            2
        );
        assert_eq!(idx.search("open an issue", 3, &|_| true)[0].0, 0);
        assert_eq!(idx.search("commits on main branch", 3, &|_| true)[0].0, 1);
        assert!(idx
            .search("open an issue", 3, &|i| i != 0)
            .iter()
            .all(|(i, _)| *i != 0));
        assert!(idx.search("zzz", 3, &|_| true).is_empty());
    }
}

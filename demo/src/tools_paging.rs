//! The demo's big-catalogue and paging side of `tools/list`: `DEMO_EXTRA_TOOLS=N` echo-like
//! tools `t0..t{N-1}` (benchmarks of large catalogues) and the opaque `demo-page-N` cursors
//! that page any tool list. Apart from `tools.rs`, which owns what each tool does.

use std::sync::OnceLock;

use sonic_rs::Value;

/// Upper bound of `DEMO_EXTRA_TOOLS`.
const MAX_EXTRA_TOOLS: usize = 100_000;

/// `DEMO_EXTRA_TOOLS=N`: how many echo-like tools `t0..t{N-1}` to add (default
/// 0), read once per process.
pub(crate) fn extra_tools() -> usize {
    static EXTRA: OnceLock<usize> = OnceLock::new();
    *EXTRA.get_or_init(|| {
        let Ok(v) = std::env::var("DEMO_EXTRA_TOOLS") else {
            return 0;
        };
        match v.parse::<usize>() {
            Ok(n) if n <= MAX_EXTRA_TOOLS => n,
            _ if v.is_empty() => 0,
            _ => {
                eprintln!(
                    "demo-server: ignoring DEMO_EXTRA_TOOLS (not an integer 0..={MAX_EXTRA_TOOLS})"
                );
                0
            }
        }
    })
}

/// The definitions of the extra tools `t0..t{n-1}` (schema of `echo`).
pub(crate) fn extra_definitions(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let def = format!(
                r#"{{"name":"t{i}","description":"Benchmark tool {i}: returns the message it is given.","inputSchema":{{"type":"object","properties":{{"message":{{"type":"string"}}}},"required":["message"]}}}}"#
            );
            sonic_rs::from_str(&def).unwrap_or_default()
        })
        .collect()
}

/// Whether `name` is one of the `n` extra tools (`t0`, not `t00`).
pub(crate) fn is_extra(name: &str, n: usize) -> bool {
    name.strip_prefix('t')
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        .filter(|d| d.len() == 1 || !d.starts_with('0'))
        .and_then(|d| d.parse::<usize>().ok())
        .is_some_and(|i| i < n)
}

/// Cursor for the page starting at `offset`. Opaque to clients.
fn encode_cursor(offset: usize) -> String {
    format!("demo-page-{offset}")
}

/// Accepts only cursors this server could have produced.
fn decode_cursor(cursor: &str, total: usize, page_size: usize) -> Option<usize> {
    let offset: usize = cursor.strip_prefix("demo-page-")?.parse().ok()?;
    let canonical = encode_cursor(offset) == cursor; // rejects "+3", "03", ...
    (canonical && offset > 0 && offset < total && offset % page_size == 0).then_some(offset)
}

/// One `tools/list` page of `all` (pages of `page_size` >= 1): the tools
/// after `cursor` (`None` = first page) and the cursor of the next page.
/// `None` if the cursor is invalid.
pub fn page(
    mut all: Vec<Value>,
    cursor: Option<&str>,
    page_size: usize,
) -> Option<(Vec<Value>, Option<String>)> {
    let page_size = page_size.max(1);
    let offset = match cursor {
        None => 0,
        Some(c) => decode_cursor(c, all.len(), page_size)?,
    };
    let end = (offset + page_size).min(all.len());
    let next = (end < all.len()).then(|| encode_cursor(end));
    all.truncate(end);
    Some((all.split_off(offset), next))
}

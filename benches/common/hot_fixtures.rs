//! Synthetic requests and catalogs shared by the hot-path benches (`hot_path.rs`, `iai.rs`).

// Each bench binary uses a subset of these.
#![allow(dead_code)]

use only1mcp_shards::catalog::build::BackendInput;
use only1mcp_shards::catalog::{BackendCaps, BackendState, Catalog, Discovery, RawItem};
use only1mcp_shards::wire::jsonrpc::{splice_placeholder, Envelope};

/// Tools per synthetic backend; catalogs are built from whole backends of this size.
pub const TOOLS_PER_BACKEND: usize = 50;

/// A typical `tools/call` as an MCP client sends it (~200 bytes), for tool `tool_0025` of
/// synthetic backend number `server`.
pub fn small_call(server: usize) -> Vec<u8> {
    format!(
        r#"{{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{{"name":"srv{server:03}__tool_0025","arguments":{{"message":"hello from the benchmark","count":3,"verbose":false}},"_meta":{{"progressToken":"p-42"}}}}}}"#
    )
    .into_bytes()
}

/// A `tools/call` carrying 64 KiB of arguments (a file's content, with escapes in it).
pub fn big_call() -> Vec<u8> {
    let line = r#"fn main() { println!(\"hello, world\"); }\n"#;
    let mut content = String::with_capacity(64 * 1024 + line.len());
    while content.len() < 64 * 1024 {
        content.push_str(line);
    }
    format!(
        r#"{{"jsonrpc":"2.0","id":43,"method":"tools/call","params":{{"name":"srv003__tool_0025","arguments":{{"path":"src/main.rs","content":"{content}"}}}}}}"#
    )
    .into_bytes()
}

/// One tool object as a backend would list it (~300 bytes).
pub fn tool_json(name: &str, i: usize) -> Vec<u8> {
    format!(
        r#"{{"name":"{name}","title":"Tool {i}","description":"Does thing number {i} with the given input and returns a text result.","inputSchema":{{"type":"object","properties":{{"message":{{"type":"string","description":"What to process"}},"count":{{"type":"integer","minimum":0}}}},"required":["message"]}}}}"#
    )
    .into_bytes()
}

/// `backends` synthetic backends of [`TOOLS_PER_BACKEND`] tools each, as discovery saw them.
pub fn fleet(backends: usize) -> (Vec<String>, Vec<Discovery>) {
    let ids = (0..backends).map(|b| format!("srv{b:03}")).collect();
    let found = (0..backends)
        .map(|_| Discovery {
            caps: BackendCaps {
                tools: true,
                ..BackendCaps::default()
            },
            tools: (0..TOOLS_PER_BACKEND)
                .map(|i| {
                    let key = format!("tool_{i:04}");
                    let json = tool_json(&key, i);
                    RawItem { key, json }
                })
                .collect::<Vec<_>>()
                .into(),
            ..Discovery::default()
        })
        .collect();
    (ids, found)
}

pub fn inputs<'a>(ids: &'a [String], found: &'a [Discovery]) -> Vec<BackendInput<'a>> {
    ids.iter()
        .zip(found)
        .map(|(id, d)| BackendInput {
            id,
            prefix: true,
            state: BackendState::Ready,
            discovery: Some(d),
            curation: None,
            tasks: false,
        })
        .collect()
}

pub fn catalog_of(tools: usize) -> Catalog {
    let (ids, raw) = fleet(tools / TOOLS_PER_BACKEND);
    let c = Catalog::build(&inputs(&ids, &raw), "__");
    assert_eq!(c.len(), tools);
    c
}

/// The request side of `tools/call` in `mcp::dispatch`: parse, route, splice id + name.
/// Returns the spliced length so nothing is optimized away.
pub fn rewrite(catalog: &Catalog, body: &[u8], out: &mut Vec<u8>) -> usize {
    let env = Envelope::parse(body).expect("valid request");
    let name = env.name_str.as_deref().expect("params.name");
    let name_range = env.name.clone().expect("name range");
    let id_range = env.id.clone().expect("id");
    // As in dispatch.rs `by_name`: the route's backend and original name are copied out of
    // the snapshot before the call.
    let route = catalog.route(name).expect("routed");
    let (backend, original_json) = (route.backend, route.original_json.clone());
    // As in forward.rs: the name rewritten and the id made the placeholder, in one pass.
    let ph = splice_placeholder(body, id_range, &[(name_range, &original_json)], out);
    out.len() + backend + ph.start
}

/// The head of a `POST /mcp` as the official SDKs send it, for a body of `len` bytes.
pub fn post_head(len: usize) -> Vec<u8> {
    format!(
        "POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:8080\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\nmcp-session-id: 7f3a9c2e4b5d6a7f8e9d0c1b2a3f4e5d\r\nmcp-protocol-version: 2025-11-25\r\nuser-agent: python-httpx/0.28.1\r\ncontent-length: {len}\r\n\r\n"
    )
    .into_bytes()
}

/// A response cache holding 10,000 `tools/call` results of one role, the key of one of them,
/// and the result they all hold: the cache benches' starting point.
pub fn filled_cache() -> (
    std::rc::Rc<only1mcp_shards::cache::LocalCache>,
    Vec<u8>,
    std::rc::Rc<[u8]>,
) {
    use only1mcp_shards::cache::{key, Cacheable, LocalCache};
    use std::time::{Duration, Instant};
    let cache = std::rc::Rc::new(LocalCache::default());
    let far = Instant::now() + Duration::from_secs(3600);
    let result: std::rc::Rc<[u8]> =
        std::rc::Rc::from(&br#"{"content":[{"type":"text","text":"4"}]}"#[..]);
    // The key of call number `i` (arguments: its 4 bytes), as one role set sees it.
    let key_of = |i: u32, k: &mut Vec<u8>| {
        let args = i.to_le_bytes();
        key(
            k,
            Cacheable::Call,
            false,
            3,
            "demo__add",
            &args,
            "reader",
            None,
        )
    };
    let mut k = Vec::new();
    for i in 0..10_000u32 {
        key_of(i, &mut k);
        cache.put(&k, result.clone(), 1, far, (10_000, 1 << 30));
    }
    key_of(7, &mut k);
    (cache, k, result)
}

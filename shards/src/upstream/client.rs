//! The gateway as an MCP client of its backends: the requests it builds (`initialize`, list
//! calls), the check of a backend's `initialize` answer, and discovery of everything a
//! backend offers, every page followed, in each era it speaks.

use std::ops::Range;
use std::time::Duration;

use super::{BackendReply, CallOpts, LocalBackend};
use crate::catalog::{parse_page, BackendCaps, Discovery, RawItem};
use crate::error::McpError;

/// Builds a request body `{"jsonrpc":"2.0","id":0,"method":M,"params":P}` and the id range.
pub fn request_body(method: &str, params: &[u8]) -> (Vec<u8>, Range<usize>) {
    let mut b = Vec::with_capacity(64 + params.len());
    b.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    let start = b.len();
    b.push(b'0');
    let id = start..b.len();
    b.extend_from_slice(b",\"method\":\"");
    b.extend_from_slice(method.as_bytes());
    b.extend_from_slice(b"\",\"params\":");
    b.extend_from_slice(params);
    b.push(b'}');
    (b, id)
}

/// The `initialize` params the gateway sends as a client.
///
/// Sampling and elicitation are declared because the gateway relays them to the client whose
/// call caused them; a client that did not declare the capability gets nothing relayed and
/// the backend gets a JSON-RPC error for that request instead.
pub fn initialize_params() -> Vec<u8> {
    initialize_params_for(br#"{"sampling":{},"elicitation":{"form":{},"url":{}}}"#)
}

/// The `initialize` params with the given client capabilities (per-client upstream
/// sessions declare exactly what their client declared).
pub fn initialize_params_for(capabilities: &[u8]) -> Vec<u8> {
    let mut p = br#"{"protocolVersion":"2025-11-25","capabilities":"#.to_vec();
    p.extend_from_slice(capabilities);
    p.extend_from_slice(
        format!(
            r#","clientInfo":{{"name":"only1mcp-uring","version":"{}"}}}}"#,
            env!("CARGO_PKG_VERSION")
        )
        .as_bytes(),
    );
    p
}

/// The `notifications/initialized` message.
pub const INITIALIZED: &[u8] = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

/// Lists every item of one kind, following `nextCursor` until it ends (at most 1000 pages;
/// a repeated cursor is an error: a backend that loops must not hang discovery).
pub async fn list_all(
    server: &str,
    backend: &LocalBackend,
    method: &str,
    array_key: &str,
    key_field: &str,
    timeout: Duration,
    modern: bool,
) -> Result<(Vec<RawItem>, (Option<u64>, bool)), McpError> {
    let mut hints = (None::<u64>, false);
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    let mut seen = hashbrown::HashSet::new();
    for _ in 0..1000 {
        let params = match &cursor {
            None => b"{}".to_vec(),
            Some(c) => {
                let mut p = b"{\"cursor\":".to_vec();
                crate::wire::jsonrpc::push_json_str(&mut p, c);
                p.push(b'}');
                p
            }
        };
        let (body, id) = request_body(method, &params);
        let opts = CallOpts {
            modern,
            ..CallOpts::timeout(timeout)
        };
        let reply = backend.call(body, id, opts).await?;
        let result = reply.result(server)?;
        let (ttl, private) = crate::catalog::cache_hints(result);
        hints.0 = match (hints.0, ttl) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        hints.1 |= private;
        let (page, next) = parse_page(result, array_key, key_field).map_err(|reason| {
            McpError::BackendProtocol {
                server: server.to_string(),
                reason: format!("{method}: {reason}"),
            }
        })?;
        items.extend(page);
        match next {
            Some(c) if !c.is_empty() => {
                if !seen.insert(c.clone()) {
                    return Err(McpError::BackendProtocol {
                        server: server.to_string(),
                        reason: format!("{method} cursor `{c}` repeated"),
                    });
                }
                cursor = Some(c);
            }
            _ => return Ok((items, hints)),
        }
    }
    Err(McpError::BackendProtocol {
        server: server.to_string(),
        reason: format!("{method} returned more than 1000 pages"),
    })
}

/// Lists everything a backend declared: tools, prompts, resources and templates, every page.
/// A dual-era backend is listed in both eras (what its 2025 session offers can differ from
/// what its stateless side offers), so each kind of client sees what it can call; a list
/// both eras return alike is kept once.
pub async fn discover(
    server: &str,
    backend: &LocalBackend,
    caps: BackendCaps,
    timeout: Duration,
) -> Result<Discovery, McpError> {
    let (legacy, modern) = backend.eras();
    let mut d = discover_era(server, backend, caps.clone(), timeout, modern && !legacy).await?;
    if legacy && modern {
        let mut m = discover_era(server, backend, caps, timeout, true).await?;
        for (mine, theirs) in [
            (&mut m.tools, &d.tools),
            (&mut m.prompts, &d.prompts),
            (&mut m.resources, &d.resources),
            (&mut m.templates, &d.templates),
        ] {
            if *mine == *theirs {
                *mine = theirs.clone();
            }
        }
        d.modern = Some(Box::new(m));
    }
    Ok(d)
}

async fn discover_era(
    server: &str,
    backend: &LocalBackend,
    caps: BackendCaps,
    timeout: Duration,
    modern: bool,
) -> Result<Discovery, McpError> {
    let mut d = Discovery {
        caps,
        ..Default::default()
    };
    let list = |method: &'static str, key: &'static str, field: &'static str| {
        list_all(server, backend, method, key, field, timeout, modern)
    };
    let mut hints = Vec::new();
    if d.caps.tools {
        let (items, h) = list("tools/list", "tools", "name").await?;
        d.tools = items.into();
        hints.push(h);
    }
    if d.caps.prompts {
        let (items, h) = list("prompts/list", "prompts", "name").await?;
        d.prompts = items.into();
        hints.push(h);
    }
    if d.caps.resources {
        let (items, h) = list("resources/list", "resources", "uri").await?;
        d.resources = items.into();
        hints.push(h);
        // Templates are optional even for servers with resources.
        if let Ok((items, h)) = list(
            "resources/templates/list",
            "resourceTemplates",
            "uriTemplate",
        )
        .await
        {
            d.templates = items.into();
            hints.push(h);
        }
    }
    d.ttl_ms = hints.iter().filter_map(|h| h.0).min();
    d.private = hints.iter().any(|h| h.1);
    Ok(d)
}

/// Protocol versions the gateway understands from a backend's `initialize` result.
pub const BACKEND_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// Reads `result.protocolVersion` of an initialize reply, checks it is one we speak, and
/// reads the backend's capabilities.
pub fn negotiated_version(
    server: &str,
    reply: &BackendReply,
) -> Result<(String, BackendCaps), McpError> {
    use sonic_rs::JsonValueTrait;
    let result = reply.result(server)?;
    let v = sonic_rs::get(result, &["protocolVersion"])
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .ok_or_else(|| McpError::BackendProtocol {
            server: server.to_string(),
            reason: "initialize result has no protocolVersion".into(),
        })?;
    if !BACKEND_VERSIONS.contains(&v.as_str()) {
        return Err(McpError::BackendProtocol {
            server: server.to_string(),
            reason: format!("unsupported protocol version `{v}`"),
        });
    }
    Ok((v, BackendCaps::from_initialize_result(result)))
}

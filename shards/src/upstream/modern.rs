//! Speaking 2026-07-28 to backends that speak it.
//!
//! Each backend's era is probed once per upstream (stdio process, or shard and replica for
//! HTTP): `server/discover` first, and a `DiscoverResult` naming 2026-07-28 means modern;
//! anything else (an error, a 4xx, a timeout) means the 2025 handshake. A modern backend gets
//! no session: every request carries the per-request `_meta` (added here when the client is
//! a 2025-era one; a modern client's own `_meta`, with its own capabilities, travels as is)
//! and, over HTTP, the `Mcp-Method`/`Mcp-Name` headers and a tool's `Mcp-Param-*` headers
//! computed from the outgoing body.

use std::ops::Range;

use sonic_rs::JsonValueTrait;

use crate::catalog::BackendCaps;
use crate::error::McpError;
use crate::upstream::BackendReply;
use crate::wire::args;
use crate::wire::header::encode_value;
use crate::wire::jsonrpc::{splice_tracking, Envelope};

/// The modern version the gateway speaks to backends.
pub const MODERN: &str = "2026-07-28";

/// The modern `_meta` keys for a request the gateway itself makes (no client capabilities).
pub fn meta_keys() -> String {
    meta_keys_for(b"{}")
}

/// The modern `_meta` keys for a request relayed for a 2025-era client: `caps` is the
/// `clientCapabilities` object (the client's capabilities the gateway can bridge, `{}` when
/// none).
pub fn meta_keys_for(caps: &[u8]) -> String {
    format!(
        r#""io.modelcontextprotocol/protocolVersion":"{MODERN}","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{{"name":"only1mcp-uring","version":"{}"}}"#,
        String::from_utf8_lossy(caps),
        env!("CARGO_PKG_VERSION")
    )
}

/// The probe: `server/discover` with modern `_meta`, id 0, and where the id sits.
pub fn discover_body() -> (Vec<u8>, Range<usize>) {
    crate::upstream::request_body(
        "server/discover",
        format!(r#"{{"_meta":{{{}}}}}"#, meta_keys()).as_bytes(),
    )
}

/// Reads a probe reply: `Some(caps)` when the backend is modern.
pub fn parse_discover(server: &str, reply: &BackendReply) -> Option<BackendCaps> {
    let result = reply.result(server).ok()?;
    let versions = sonic_rs::get(result, ["supportedVersions"]).ok()?;
    let modern = sonic_rs::to_array_iter(versions.as_raw_str())
        .flatten()
        .any(|v| v.as_str() == Some(MODERN));
    modern.then(|| BackendCaps::from_initialize_result(result))
}

/// Gives `body` the modern `_meta` keys unless it already has them (a modern client's own),
/// declaring `caps` (see [`meta_keys_for`]; `None`: `{}`); returns the new body and where
/// the id (at `id`) ended up.
pub fn to_modern(
    body: &[u8],
    id: Range<usize>,
    caps: Option<&[u8]>,
) -> Result<(Vec<u8>, Range<usize>), McpError> {
    let env = Envelope::parse(body)?;
    if env.meta.version.is_some() {
        return Ok((body.to_vec(), id));
    }
    let keys = meta_keys_for(caps.unwrap_or(b"{}"));
    let (at, insert): (usize, String) = match (&env.meta.range, &env.params) {
        (Some(m), _) => {
            let empty = body[m.start + 1..m.end - 1]
                .iter()
                .all(u8::is_ascii_whitespace);
            (m.start + 1, if empty { keys } else { format!("{keys},") })
        }
        (None, Some(p)) if body[p.start] == b'{' => {
            let empty = body[p.start + 1..p.end - 1]
                .iter()
                .all(u8::is_ascii_whitespace);
            (
                p.start + 1,
                if empty {
                    format!(r#""_meta":{{{keys}}}"#)
                } else {
                    format!(r#""_meta":{{{keys}}},"#)
                },
            )
        }
        _ => {
            let end = body.iter().rposition(|&b| b == b'}').unwrap_or(body.len());
            (end, format!(r#","params":{{"_meta":{{{keys}}}}}"#))
        }
    };
    let mut out = Vec::with_capacity(body.len() + insert.len());
    let mut edits = [(at..at, insert.as_bytes())];
    let id_at = splice_tracking(body, &mut edits, id, &mut out);
    Ok((out, id_at))
}

/// `Mcp-Method` and, for the methods that name something (a tool, prompt, resource or
/// task), `Mcp-Name` of an outgoing modern request;
/// for a `tools/call` of a tool with `x-mcp-header` arguments (`tool`), their
/// `Mcp-Param-*` headers: all of them computed from `body`, the request as the backend gets
/// it (its own tool name, whatever the client called the tool). An argument the body names
/// twice gets no header (the client's request was refused for it where it was checked).
pub fn request_headers(
    body: &[u8],
    tool: Option<&crate::catalog::params::ToolHeaders>,
) -> Vec<(String, String)> {
    let Ok(env) = Envelope::parse(body) else {
        return Vec::new();
    };
    let method = env.method.as_deref().unwrap_or("");
    let mirrored = tool
        .filter(|_| method == "tools/call")
        .map(|t| &t.mirrored[..]);
    let mut h = Vec::with_capacity(2 + mirrored.map_or(0, <[_]>::len));
    h.push(("mcp-method".to_string(), method.to_string()));
    let name = match method {
        "tools/call" | "prompts/get" => env.name_str.as_deref(),
        "resources/read" => env.uri_str.as_deref(),
        "tasks/get" | "tasks/update" | "tasks/cancel" => env.task_id_str.as_deref(),
        _ => None,
    };
    if let Some(n) = name {
        h.push(("mcp-name".to_string(), encode_value(n).into_owned()));
    }
    if let Some(mirrored) = mirrored {
        let args = env.params.clone().and_then(|p| args::arguments(body, p));
        for m in mirrored {
            let arg = args::at(body, args.clone(), &m.path);
            if let Some(text) = args::render(&arg) {
                h.push((
                    format!("mcp-param-{}", m.name),
                    encode_value(&text).into_owned(),
                ));
            }
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: &str) -> String {
        let b = body.as_bytes();
        let env = Envelope::parse(b).unwrap();
        let (out, id) = to_modern(b, env.id.clone().unwrap(), None).unwrap();
        assert_eq!(
            &out[id],
            b"7",
            "id tracked in {}",
            String::from_utf8_lossy(&out)
        );
        let e = Envelope::parse(&out).unwrap();
        assert_eq!(e.meta.version.as_deref(), Some(MODERN));
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn adds_meta_wherever_it_is_missing() {
        check(r#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#);
        check(r#"{"jsonrpc":"2.0","id":7,"method":"tools/list","params":{}}"#);
        let s = check(
            r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"x","_meta":{"progressToken":"t"}},"id":7}"#,
        );
        assert!(s.contains(r#""progressToken":"t""#));
        check(r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"_meta":{},"name":"x"}}"#);
    }

    #[test]
    fn header_sentinels_are_standard_padded_base64() {
        use crate::wire::header::base64_sentinel;
        assert_eq!(base64_sentinel(b""), "=?base64??=");
        assert_eq!(base64_sentinel(b"H"), "=?base64?SA==?=");
        assert_eq!(base64_sentinel(b"He"), "=?base64?SGU=?=");
        assert_eq!(base64_sentinel("héllo".as_bytes()), "=?base64?aMOpbGxv?=");
        assert_eq!(base64_sentinel(&[0xfb, 0xff]), "=?base64?+/8=?=");
    }

    #[test]
    fn names_become_headers() {
        let h = request_headers(
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#,
            None,
        );
        assert_eq!(
            h,
            vec![
                ("mcp-method".into(), "tools/call".into()),
                ("mcp-name".into(), "echo".into())
            ]
        );
        let h = request_headers("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":{\"uri\":\"a://é\"}}".as_bytes(), None);
        assert!(h[1].1.starts_with("=?base64?"));
        let h = request_headers(
            br#"{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"taskId":"t-1"}}"#,
            None,
        );
        assert_eq!(h[1], ("mcp-name".into(), "t-1".into()));
    }

    #[test]
    fn mirrored_arguments_become_headers_computed_from_the_body_sent() {
        let tool = crate::catalog::params::of_tool(
            br#"{"name":"q","inputSchema":{"type":"object","properties":{
                "region":{"type":"string","x-mcp-header":"Region"},
                "n":{"type":"integer","x-mcp-header":"N"},
                "o":{"type":"object","properties":{"dry":{"type":"boolean","x-mcp-header":"Dry"}}},
                "gone":{"type":"string","x-mcp-header":"Gone"},
                "nil":{"type":"string","x-mcp-header":"Nil"}}}}"#,
        )
        .unwrap()
        .unwrap();
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"query","arguments":{"region":"日本語","n":42.0,"o":{"dry":false},"nil":null}}}"#;
        let h = request_headers(body.as_bytes(), Some(&tool));
        let want: Vec<(String, String)> = [
            ("mcp-method", "tools/call"),
            ("mcp-name", "query"),
            ("mcp-param-Region", "=?base64?5pel5pys6Kqe?="),
            ("mcp-param-N", "42"),
            ("mcp-param-Dry", "false"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(h, want, "absent and null arguments send no header");
        // Only for tools/call: a prompt with the same name mirrors nothing.
        let p = r#"{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"query","arguments":{"region":"x"}}}"#;
        assert_eq!(request_headers(p.as_bytes(), Some(&tool)).len(), 2);
    }
}

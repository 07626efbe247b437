//! Resource URI namespacing and RFC 6570 template matching.
//!
//! A namespaced backend's URIs are exposed as `o1m://<server_id>/<original uri>`: a valid URL
//! whatever the original scheme (so SDKs that validate URIs accept it), readable, and
//! reversible without a table. The same rule is applied everywhere a URI crosses the gateway:
//! list results, reads, subscriptions, update notifications, completion refs, and resource
//! blocks inside tool and prompt results ([`rewrite_result`]).

use sonic_rs::{JsonValueMutTrait, JsonValueTrait};

/// The scheme of namespaced URIs.
pub const PREFIX: &str = "o1m://";

/// `o1m://<id>/<uri>`.
pub fn wrap(id: &str, uri: &str) -> String {
    let mut s = String::with_capacity(PREFIX.len() + id.len() + 1 + uri.len());
    s.push_str(PREFIX);
    s.push_str(id);
    s.push('/');
    s.push_str(uri);
    s
}

/// Splits a namespaced URI into (server id, original uri).
pub fn unwrap(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix(PREFIX)?;
    let slash = rest.find('/')?;
    Some((&rest[..slash], &rest[slash + 1..]))
}

/// Does `uri` match the RFC 6570 template `t`? Supports `{var}` (no `/?#`), `{+var}` and
/// `{#var}` (anything), and `{?a,b}` / `{&a}` (a query tail). Enough for MCP templates.
pub fn template_matches(t: &str, uri: &str) -> bool {
    match_from(t.as_bytes(), uri.as_bytes())
}

fn match_from(t: &[u8], u: &[u8]) -> bool {
    let Some(open) = t.iter().position(|&c| c == b'{') else {
        return t == u;
    };
    if u.len() < open || t[..open] != u[..open] {
        return false;
    }
    let Some(close) = t[open..].iter().position(|&c| c == b'}').map(|c| c + open) else {
        return false;
    };
    let expr = &t[open + 1..close];
    let rest_t = &t[close + 1..];
    let u = &u[open..];
    match expr.first() {
        Some(b'?') | Some(b'&') => {
            // Query expansion: the rest of the URI may be a query (or nothing).
            u.is_empty() || u[0] == b'?' || u[0] == b'&'
        }
        Some(b'+') | Some(b'#') => (1..=u.len()).any(|n| match_from(rest_t, &u[n..])),
        _ => {
            let mut n = 0;
            while n < u.len() && !matches!(u[n], b'/' | b'?' | b'#') {
                n += 1;
                if match_from(rest_t, &u[n..]) {
                    return true;
                }
            }
            false
        }
    }
}

fn wrap_field(obj: &mut sonic_rs::Value, key: &str, id: &str) -> bool {
    let Some(v) = obj.get_mut(key) else {
        return false;
    };
    let Some(s) = v.as_str() else {
        return false;
    };
    let wrapped = wrap(id, s);
    *v = sonic_rs::Value::from(wrapped.as_str());
    true
}

fn rewrite_block(block: &mut sonic_rs::Value, id: &str) -> bool {
    match block.get("type").and_then(|t| t.as_str()) {
        Some("resource_link") => wrap_field(block, "uri", id),
        Some("resource") => block
            .get_mut("resource")
            .is_some_and(|r| wrap_field(r, "uri", id)),
        _ => false,
    }
}

/// Namespaces the URIs inside a result of backend `id`: tool results (`content[]`), prompt
/// results (`messages[].content`) and `resources/read` results (`contents[].uri`). Returns
/// `None` when nothing needed rewriting (the caller then passes the bytes through).
pub fn rewrite_result(result: &[u8], id: &str) -> Option<Vec<u8>> {
    if !result.windows(5).any(|w| w == b"\"uri\"") {
        return None;
    }
    let mut v: sonic_rs::Value = sonic_rs::from_slice(result).ok()?;
    let mut changed = false;
    if let Some(content) = v.get_mut("content").and_then(|c| c.as_array_mut()) {
        for b in content.iter_mut() {
            changed |= rewrite_block(b, id);
        }
    }
    if let Some(msgs) = v.get_mut("messages").and_then(|m| m.as_array_mut()) {
        for m in msgs.iter_mut() {
            if let Some(c) = m.get_mut("content") {
                changed |= rewrite_block(c, id);
            }
        }
    }
    if let Some(contents) = v.get_mut("contents").and_then(|c| c.as_array_mut()) {
        for c in contents.iter_mut() {
            changed |= wrap_field(c, "uri", id);
        }
    }
    if changed {
        sonic_rs::to_vec(&v).ok()
    } else {
        None
    }
}

/// Namespaces `params.uri` of a backend notification (`notifications/resources/updated`).
pub fn rewrite_params_uri(message: &[u8], id: &str) -> Option<Vec<u8>> {
    let mut v: sonic_rs::Value = sonic_rs::from_slice(message).ok()?;
    let params = v.get_mut("params")?;
    if wrap_field(params, "uri", id) {
        sonic_rs::to_vec(&v).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_round_trips() {
        let w = wrap("demo", "test://static-text");
        assert_eq!(w, "o1m://demo/test://static-text");
        assert_eq!(unwrap(&w), Some(("demo", "test://static-text")));
        assert_eq!(unwrap("file:///x"), None);
    }

    #[test]
    fn templates_match() {
        assert!(template_matches(
            "test://template/{id}/data",
            "test://template/42/data"
        ));
        assert!(!template_matches(
            "test://template/{id}/data",
            "test://template/4/2/data"
        ));
        assert!(!template_matches(
            "test://template/{id}/data",
            "test://other/42/data"
        ));
        assert!(template_matches("file:///{+path}", "file:///a/b/c.txt"));
        assert!(template_matches(
            "search://q{?term,limit}",
            "search://q?term=x"
        ));
        assert!(template_matches("exact://x", "exact://x"));
    }

    #[test]
    fn results_get_their_uris_namespaced() {
        let r = br#"{"content":[{"type":"text","text":"uri"},{"type":"resource_link","uri":"a://1","name":"n"},{"type":"resource","resource":{"uri":"a://2","text":"t"}}],"structuredContent":{"uri":"keep"}}"#;
        let out = rewrite_result(r, "s").unwrap();
        let v: sonic_rs::Value = sonic_rs::from_slice(&out).unwrap();
        assert_eq!(v["content"][1]["uri"].as_str(), Some("o1m://s/a://1"));
        assert_eq!(
            v["content"][2]["resource"]["uri"].as_str(),
            Some("o1m://s/a://2")
        );
        assert_eq!(v["structuredContent"]["uri"].as_str(), Some("keep"));
        assert!(rewrite_result(br#"{"content":[]}"#, "s").is_none());
        let read = rewrite_result(br#"{"contents":[{"uri":"a://3","text":"x"}]}"#, "s").unwrap();
        assert!(String::from_utf8(read).unwrap().contains("o1m://s/a://3"));
    }
}

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
///
/// The URI is the client's: matching is a left-to-right pass over the template's parts with
/// the set of URI positions reachable so far, O(parts x URI length). (It used to backtrack,
/// one nested loop per variable: a 600-byte URI against a four-variable template held a
/// shard for 20 s.)
pub fn template_matches(t: &str, uri: &str) -> bool {
    let (t, u) = (t.as_bytes(), uri.as_bytes());
    if !t.contains(&b'{') {
        return t == u;
    }
    let n = u.len();
    // `reach[p]`: the parts matched so far can end at URI position `p`.
    let mut reach = vec![false; n + 1];
    let mut next = vec![false; n + 1];
    reach[0] = true;
    // `stops[p]`: where a simple variable starting at `p` must end at the latest (the next
    // `/`, `?` or `#`, or the end).
    let mut stops = vec![n; n + 1];
    for p in (0..n).rev() {
        stops[p] = if matches!(u[p], b'/' | b'?' | b'#') {
            p
        } else {
            stops[p + 1]
        };
    }
    let mut rest = t;
    while !rest.is_empty() {
        let open = rest.iter().position(|&c| c == b'{').unwrap_or(rest.len());
        if open > 0 {
            // A literal.
            let lit = &rest[..open];
            next.fill(false);
            for p in 0..=n {
                if reach[p] && u.get(p..p + lit.len()) == Some(lit) {
                    next[p + lit.len()] = true;
                }
            }
            std::mem::swap(&mut reach, &mut next);
            rest = &rest[open..];
            continue;
        }
        let Some(close) = rest.iter().position(|&c| c == b'}') else {
            return false;
        };
        let expr = &rest[1..close];
        rest = &rest[close + 1..];
        match expr.first() {
            // Query expansion: the rest of the URI may be a query (or nothing), whatever
            // the template says after it.
            Some(b'?' | b'&') => {
                return (0..=n).any(|p| reach[p] && (p == n || matches!(u[p], b'?' | b'&')));
            }
            kind => {
                // One or more bytes; a simple variable stops before `/`, `?` or `#`. Sweep:
                // `j` is reachable when a variable started at a reachable `p < j` may end
                // at or after `j`.
                let any = matches!(kind, Some(b'+' | b'#'));
                next.fill(false);
                let mut until = 0usize;
                for (p, (&from, &stop)) in reach[..n].iter().zip(&stops[..n]).enumerate() {
                    if from {
                        until = until.max(if any { n } else { stop });
                    }
                    next[p + 1] = p < until;
                }
                std::mem::swap(&mut reach, &mut next);
            }
        }
    }
    reach[n]
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
    fn matching_is_linear_in_the_uri() {
        // The attack: dots against a four-variable template backtracked for 20 s at 606 B.
        let t = "db://{schema}.{table}.{column}.{row}";
        let uri = format!("db://{}/", ".".repeat(200_000));
        let started = std::time::Instant::now();
        assert!(!template_matches(t, &uri));
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert!(template_matches(t, "db://s.t.c.r"));
        assert!(
            template_matches(t, "db://s.t.c.r.x"),
            "the last variable may hold dots"
        );
        assert!(!template_matches(t, "db://s.t.c"));
        assert!(!template_matches(t, "db://s/x.t.c.r"));
        assert!(template_matches("a://{x}/{+rest}", "a://1/b/c?d"));
        assert!(!template_matches("a://{x}/{+rest}", "a://1/"));
        assert!(template_matches("q://{x}{?a,b}", "q://1?a=2"));
        assert!(template_matches("q://{x}{?a,b}", "q://1"));
        assert!(!template_matches("u://{x", "u://1"));
    }

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

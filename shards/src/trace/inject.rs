//! The trace context of a forwarded request, put in its `params._meta` by one splice.
//!
//! MCP's convention (OpenTelemetry MCP semantic conventions, "Context propagation") is that
//! `traceparent` and `tracestate` travel in `params._meta`, on every transport. The gateway
//! never rebuilds a body it routes, so the context goes in as one byte edit, merged into the
//! splice that already rewrites the id and the name: the `traceparent` value replaced when
//! `_meta` has one, else the keys added at the start of `_meta`, else a `_meta` added at the
//! start of `params`, else a `params` added. A `tracestate` already in `_meta` travels as is.

use std::ops::Range;

use crate::wire::jsonrpc::{push_json_str, Envelope};

fn keys(out: &mut Vec<u8>, tp: &[u8], tracestate: Option<&str>) {
    out.extend_from_slice(b"\"traceparent\":\"");
    out.extend_from_slice(tp);
    out.push(b'"');
    if let Some(ts) = tracestate {
        out.extend_from_slice(b",\"tracestate\":");
        push_json_str(out, ts);
    }
}

fn is_empty_object(body: &[u8], r: &Range<usize>) -> bool {
    body[r.start + 1..r.end - 1]
        .iter()
        .all(u8::is_ascii_whitespace)
}

/// The edit (range of `body`, bytes to put there) that makes `params._meta.traceparent` of
/// `body` equal `tp` and, when `_meta` has no `tracestate`, adds `tracestate` when given.
/// `None` when `params` is not an object (positional params have no `_meta`).
pub fn meta_edit(
    body: &[u8],
    env: &Envelope<'_>,
    tp: &[u8],
    tracestate: Option<&str>,
) -> Option<(Range<usize>, Vec<u8>)> {
    let ts = tracestate.filter(|_| env.meta.tracestate.is_none());
    let mut out = Vec::with_capacity(96 + ts.map_or(0, str::len));
    if let Some(r) = &env.meta.traceparent {
        out.push(b'"');
        out.extend_from_slice(tp);
        out.push(b'"');
        if let Some(ts) = ts {
            out.extend_from_slice(b",\"tracestate\":");
            push_json_str(&mut out, ts);
        }
        return Some((r.clone(), out));
    }
    if let Some(m) = &env.meta.range {
        keys(&mut out, tp, ts);
        if !is_empty_object(body, m) {
            out.push(b',');
        }
        return Some((m.start + 1..m.start + 1, out));
    }
    match &env.params {
        Some(p) if body[p.start] == b'{' => {
            out.extend_from_slice(b"\"_meta\":{");
            keys(&mut out, tp, ts);
            out.push(b'}');
            if !is_empty_object(body, p) {
                out.push(b',');
            }
            Some((p.start + 1..p.start + 1, out))
        }
        Some(_) => None,
        None => {
            let end = body.iter().rposition(|&b| b == b'}')?;
            out.extend_from_slice(b",\"params\":{\"_meta\":{");
            keys(&mut out, tp, ts);
            out.extend_from_slice(b"}}");
            Some((end..end, out))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::jsonrpc::splice;

    const TP: &[u8] = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn apply(body: &str, ts: Option<&str>) -> sonic_rs::Value {
        let env = Envelope::parse(body.as_bytes()).unwrap();
        let (r, with) = meta_edit(body.as_bytes(), &env, TP, ts).unwrap();
        let mut out = Vec::new();
        splice(body.as_bytes(), &[(r, &with)], &mut out);
        // Still one valid message, which the envelope reader accepts (no duplicate keys).
        Envelope::parse(&out).unwrap();
        sonic_rs::from_slice(&out).unwrap()
    }

    fn meta(v: &sonic_rs::Value) -> String {
        use sonic_rs::JsonValueTrait;
        v.get("params").unwrap().get("_meta").unwrap().to_string()
    }

    #[test]
    fn the_context_lands_in_meta_wherever_it_is_missing() {
        let tp = std::str::from_utf8(TP).unwrap();
        let want = format!(r#"{{"traceparent":"{tp}"}}"#);
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{ "_meta": { } }}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tasks/list"}"#,
        ] {
            let v = apply(body, None);
            assert_eq!(meta(&v).replace(' ', ""), want, "{body}");
        }
        let v = apply(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"_meta":{"progressToken":"t"},"name":"x"}}"#,
            Some("a=b"),
        );
        assert_eq!(
            meta(&v),
            format!(r#"{{"traceparent":"{tp}","tracestate":"a=b","progressToken":"t"}}"#)
        );
    }

    #[test]
    fn a_client_traceparent_is_replaced_and_its_tracestate_kept() {
        let tp = std::str::from_utf8(TP).unwrap();
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","_meta":{"traceparent":"00-11111111111111111111111111111111-2222222222222222-01","tracestate":"c=d"}}}"#;
        let v = apply(body, Some("a=b"));
        assert_eq!(
            meta(&v),
            format!(r#"{{"traceparent":"{tp}","tracestate":"c=d"}}"#)
        );
        // A tracestate with quotes or backslashes (legal in W3C values) stays valid JSON.
        let body =
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"_meta":{"traceparent":"bad"}}}"#;
        let v = apply(body, Some(r#"k=a"b\c"#));
        use sonic_rs::JsonValueTrait;
        let m = v.get("params").unwrap().get("_meta").unwrap();
        assert_eq!(m.get("tracestate").unwrap().as_str(), Some(r#"k=a"b\c"#));
    }

    #[test]
    fn positional_params_get_nothing() {
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}"#;
        let env = Envelope::parse(body.as_bytes()).unwrap();
        assert!(meta_edit(body.as_bytes(), &env, TP, None).is_none());
    }
}

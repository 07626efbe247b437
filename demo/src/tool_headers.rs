//! The `headers` demo tool: which HTTP headers reached this server.
//!
//! Owns one test aid: a `tools/call` of `headers` answers with the HTTP
//! request headers the demo server received on the request that carried
//! that call, as one JSON object in a text block (names lowercased, sorted;
//! a header sent more than once has its values joined with `", "`, as RFC
//! 9110 §5.3 allows). Tests put it behind the gateway to prove what the
//! gateway forwards to a backend, e.g. that a client's `Authorization`
//! header never reaches it. Over stdio there are no headers: the answer is
//! `{}`. The transport hands the headers over through
//! [`Related::request_headers`](super::session::Related::request_headers).

use std::collections::BTreeMap;

use super::tools::{ok_text, CallToolResult};

/// The `headers` tool's result for a request with `headers` (`None` on
/// stdio).
pub fn result(headers: Option<&[(String, String)]>) -> CallToolResult {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers.unwrap_or_default() {
        map.entry(name.to_ascii_lowercase())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(value);
            })
            .or_insert_with(|| value.clone());
    }
    // A map of strings always serializes.
    ok_text(sonic_rs::to_string(&map).unwrap_or_else(|_| "{}".into()))
}

#[cfg(test)]
mod tests {
    use sonic_rs::{json, JsonValueTrait, Value};

    use super::result;
    use crate::server::Transport;
    use crate::session::{Call, Related, Session, Sink};
    use crate::tools::{self, Content, Ctx, ToolOutcome};

    struct NoSink;
    impl Sink for NoSink {
        fn send(&self, _: &str) -> bool {
            false
        }
    }

    /// A request stream that carries headers, like the HTTP transport's.
    struct WithHeaders(Vec<(String, String)>);
    impl Related for WithHeaders {
        fn send(&mut self, _: String) -> bool {
            false
        }
        fn request_headers(&self) -> Option<&[(String, String)]> {
            Some(&self.0)
        }
    }

    fn text(r: &tools::CallToolResult) -> Value {
        match r.content.as_slice() {
            [Content::Text { text }] => sonic_rs::from_str(text).expect("JSON text"),
            _ => panic!("one text block expected"),
        }
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn names_are_lowercased_and_repeats_joined() {
        let h = pairs(&[
            ("Host", "127.0.0.1:1"),
            ("X-Api-Key", "backend-secret"),
            ("Accept", "application/json"),
            ("accept", "text/event-stream"),
        ]);
        let r = result(Some(&h));
        assert!(!r.is_error);
        let v = text(&r);
        assert_eq!(v.get("host").and_then(|x| x.as_str()), Some("127.0.0.1:1"));
        assert_eq!(
            v.get("x-api-key").and_then(|x| x.as_str()),
            Some("backend-secret")
        );
        assert_eq!(
            v.get("accept").and_then(|x| x.as_str()),
            Some("application/json, text/event-stream")
        );
        assert!(v.get("Host").is_none());
        assert_eq!(text(&result(None)), json!({}));
        assert_eq!(text(&result(Some(&[]))), json!({}));
    }

    #[test]
    fn the_tool_reads_the_request_stream() {
        let session = Session::new(std::sync::Arc::new(NoSink));
        let run = |related: &mut dyn Related, transport| {
            let mut call = Call {
                session: &session,
                related,
                progress_token: None,
                input: None,
            };
            let ctx = Ctx {
                server_name: "t",
                transport,
                fixture: false,
                dynamic: false,
                call: &mut call,
            };
            match tools::call("headers", &json!({}), ctx) {
                Some(ToolOutcome::Result(r)) => text(&r),
                _ => panic!("headers is a plain tool"),
            }
        };
        let mut http = WithHeaders(pairs(&[("Authorization", "Bearer backend")]));
        let v = run(&mut http, Transport::Http);
        assert_eq!(
            v.get("authorization").and_then(|x| x.as_str()),
            Some("Bearer backend")
        );
        // A transport without headers (stdio's closure outlet): `{}`.
        let mut stdio = |_: String| true;
        assert_eq!(run(&mut stdio, Transport::Stdio), json!({}));
    }
}

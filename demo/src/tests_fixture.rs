//! Unit tests for the conformance fixture's tools (`DEMO_CONFORMANCE=1`):
//! content, logging, progress, and server→client requests with their
//! response matching, driven through the [`Harness`] of `tests.rs`. Also
//! the helpers shared with `tests_catalog.rs` (resources, prompts,
//! completions, timed notifications).

use std::sync::mpsc;

use sonic_rs::{pointer, JsonContainerTrait, JsonValueTrait, Value};

use super::protocol::{parse, Reply};
use super::server::Transport;
use super::tests::{call_line, error_code, first_text, is_error, reply_json, Harness};

pub(super) fn fixture() -> Harness {
    Harness::new(Transport::Http, true)
}

fn parsed(notes: &[String]) -> Vec<Value> {
    notes
        .iter()
        .map(|n| sonic_rs::from_str(n).unwrap())
        .collect()
}

pub(super) fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    v.pointer(path).and_then(|x| x.as_str())
}

pub(super) fn request(s: &Harness, id: u32, method: &str, params: &str) -> Value {
    s.response(&format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#
    ))
}

#[test]
fn capabilities_and_content_tools() {
    let s = fixture();
    let r = s.init("2025-11-25", "{}");
    let caps = r.pointer(&pointer!["result", "capabilities"]).unwrap();
    assert_eq!(
        sonic_rs::to_string(caps).unwrap(),
        r#"{"tools":{"listChanged":true},"resources":{"subscribe":true,"listChanged":true},"prompts":{"listChanged":true},"logging":{},"completions":{},"tasks":{"list":{},"cancel":{},"requests":{"tools":{"call":{}}}}}"#
    );
    let kinds = |r: &Value| -> Vec<String> {
        let content = r.pointer(&pointer!["result", "content"]).unwrap();
        let blocks = content.as_array().unwrap();
        blocks
            .iter()
            .map(|b| str_at(b, &["type"]).unwrap().to_string())
            .collect()
    };
    let r = s.response(&call_line(1, "test_simple_text", "{}"));
    assert_eq!(
        first_text(&r).as_deref(),
        Some("This is a simple text response for testing.")
    );
    let r = s.response(&call_line(2, "test_image_content", "{}"));
    assert_eq!(kinds(&r), ["image"]);
    let r = s.response(&call_line(3, "test_audio_content", "{}"));
    assert_eq!(
        r.pointer(&pointer!["result", "content", 0, "mimeType"])
            .and_then(|m| m.as_str()),
        Some("audio/wav")
    );
    let r = s.response(&call_line(4, "test_embedded_resource", "{}"));
    assert_eq!(
        r.pointer(&pointer!["result", "content", 0, "resource", "uri"])
            .and_then(|u| u.as_str()),
        Some("test://embedded-resource")
    );
    let r = s.response(&call_line(5, "test_multiple_content_types", "{}"));
    assert_eq!(kinds(&r), ["text", "image", "resource"]);
    let r = s.response(&call_line(6, "test_error_handling", "{}"));
    assert!(is_error(&r));
    let r = s.response(&call_line(7, "json_schema_2020_12_tool", r#"{"name":"x"}"#));
    assert_eq!(
        first_text(&r).as_deref(),
        Some(r#"JSON Schema 2020-12 tool called with: {"name":"x"}"#)
    );
    // Not there until 2 s after initialize.
    assert_eq!(
        error_code(&s.response(&call_line(8, "test_dynamic_tool", "{}"))),
        Some(-32602)
    );
    // The 2020-12 schema is listed byte for byte.
    let list = tools_page(&s);
    let tool = list
        .iter()
        .find(|t| str_at(t, &["name"]) == Some("json_schema_2020_12_tool"));
    let schema = sonic_rs::to_string(tool.unwrap().get("inputSchema").unwrap()).unwrap();
    assert!(schema.starts_with(r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","$defs":{"address":{"$anchor":"addressDef""#));
    assert!(schema
        .contains(r#""allOf":[{"anyOf":[{"required":["phone"]},{"required":["email"]}]}],"if":"#));
    assert!(schema.ends_with(r#""else":{"required":["email"]},"additionalProperties":false}"#));
}

/// Every tool, following cursors.
pub(super) fn tools_page(s: &Harness) -> Vec<Value> {
    let mut all = Vec::new();
    let mut params = "{}".to_string();
    loop {
        let r = request(s, 50, "tools/list", &params);
        all.extend(
            r.pointer(&pointer!["result", "tools"])
                .unwrap()
                .as_array()
                .unwrap()
                .iter()
                .cloned(),
        );
        match str_at(&r, &["result", "nextCursor"]) {
            Some(c) => params = format!(r#"{{"cursor":"{c}"}}"#),
            None => return all,
        }
    }
}

#[test]
fn logging_and_progress_go_on_the_request_stream() {
    let s = fixture();
    s.init("2025-11-25", "{}");
    let (notes, reply) = s.exchange(&call_line(1, "test_tool_with_logging", "{}"));
    let logs: Vec<String> = parsed(&notes)
        .iter()
        .inspect(|n| assert_eq!(str_at(n, &["method"]), Some("notifications/message")))
        .map(|n| str_at(n, &["params", "data"]).unwrap().to_string())
        .collect();
    assert_eq!(
        logs,
        [
            "Tool execution started",
            "Tool processing data",
            "Tool execution completed"
        ]
    );
    assert!(first_text(&reply_json(reply))
        .unwrap()
        .contains("successfully"));
    // setLevel filters (and is itself logged on the standalone stream).
    assert_eq!(
        error_code(&request(&s, 2, "logging/setLevel", r#"{"level":"loud"}"#)),
        Some(-32602)
    );
    let r = request(&s, 3, "logging/setLevel", r#"{"level":"info"}"#);
    assert!(r
        .get("result")
        .is_some_and(|r| r.as_object().is_some_and(|o| o.is_empty())));
    let standalone = s.unsolicited.take();
    assert_eq!(
        str_at(&standalone[0], &["params", "data"]),
        Some("Log level set to: info")
    );
    request(&s, 4, "logging/setLevel", r#"{"level":"warning"}"#);
    assert!(
        s.unsolicited.take().is_empty(),
        "an info log is below warning"
    );
    let (notes, _) = s.exchange(&call_line(5, "test_tool_with_logging", "{}"));
    assert!(notes.is_empty());

    let line = r#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"test_tool_with_progress","arguments":{},"_meta":{"progressToken":7}}}"#;
    let (notes, reply) = s.exchange(line);
    let progress: Vec<(u64, u64)> = parsed(&notes)
        .iter()
        .map(|n| {
            assert_eq!(
                n.pointer(&pointer!["params", "progressToken"])
                    .and_then(|t| t.as_u64()),
                Some(7)
            );
            let p = |k: &str| {
                n.pointer(&pointer!["params", k])
                    .and_then(|v| v.as_u64())
                    .unwrap()
            };
            (p("progress"), p("total"))
        })
        .collect();
    assert_eq!(progress, [(0, 100), (50, 100), (100, 100)]);
    assert_eq!(first_text(&reply_json(reply)).as_deref(), Some("7"));
    let (notes, _) = s.exchange(&call_line(8, "test_tool_with_progress", "{}"));
    assert!(notes.is_empty(), "no token, no progress");
}

/// Calls `tool` with a related stream that hands each server→client request
/// to `answer` and feeds its response back as the client would (as a
/// separate message, from another thread). Returns the requests and the
/// tool's response.
fn with_client(
    s: &Harness,
    tool: &str,
    args: &str,
    answer: impl Fn(&Value) -> String + Sync,
) -> (Vec<Value>, Value) {
    let (tx, rx) = mpsc::channel::<Value>();
    let mut seen = Vec::new();
    let answer = &answer;
    let reply = std::thread::scope(|scope| {
        let client = scope.spawn(move || {
            let mut requests = Vec::new();
            while let Ok(req) = rx.recv() {
                let msg = parse(answer(&req).as_bytes()).unwrap();
                assert!(matches!(
                    s.server.handle(&s.session, msg, &mut |_| false),
                    Reply::Silent
                ));
                requests.push(req);
            }
            requests
        });
        let reply = s.handle(&call_line(1, tool, args), &mut |n: String| {
            tx.send(sonic_rs::from_str(&n).unwrap()).is_ok()
        });
        drop(tx);
        seen = client.join().unwrap();
        reply
    });
    (seen, reply_json(reply))
}

fn id_of(req: &Value) -> String {
    sonic_rs::to_string(req.get("id").unwrap()).unwrap()
}

#[test]
fn sampling_round_trip_and_failures() {
    let s = fixture();
    // No capability: no request, an isError result.
    s.init("2025-11-25", r#"{"elicitation":{}}"#);
    let (requests, r) = with_client(
        &s,
        "test_sampling",
        r#"{"prompt":"hi"}"#,
        |_| unreachable!(),
    );
    assert!(requests.is_empty());
    assert!(
        is_error(&r)
            && first_text(&r)
                .unwrap()
                .contains("does not support sampling")
    );

    s.init("2025-11-25", r#"{"sampling":{}}"#);
    let answer = |req: &Value| {
        format!(
            r#"{{"jsonrpc":"2.0","id":{},"result":{{"role":"assistant","content":{{"type":"text","text":"pong"}},"model":"m"}}}}"#,
            id_of(req)
        )
    };
    let (requests, r) = with_client(&s, "test_sampling", r#"{"prompt":"ping?"}"#, answer);
    assert_eq!(requests.len(), 1);
    assert_eq!(
        str_at(&requests[0], &["method"]),
        Some("sampling/createMessage")
    );
    assert_eq!(
        requests[0]
            .pointer(&pointer!["params", "messages", 0, "content", "text"])
            .and_then(|t| t.as_str()),
        Some("ping?")
    );
    assert_eq!(
        requests[0]
            .pointer(&pointer!["params", "maxTokens"])
            .and_then(|m| m.as_u64()),
        Some(100)
    );
    assert_eq!(first_text(&r).as_deref(), Some("LLM response: pong"));
    assert!(!is_error(&r));
    // Ids are the server's own, fresh per request.
    let (again, _) = with_client(&s, "test_sampling", r#"{"prompt":"x"}"#, answer);
    assert_ne!(id_of(&again[0]), id_of(&requests[0]));

    // A JSON-RPC error from the client, and an undeliverable request.
    let refuse = |req: &Value| {
        format!(
            r#"{{"jsonrpc":"2.0","id":{},"error":{{"code":-1,"message":"no"}}}}"#,
            id_of(req)
        )
    };
    let (_, r) = with_client(&s, "test_sampling", r#"{"prompt":"x"}"#, refuse);
    assert!(is_error(&r) && first_text(&r).unwrap().contains("client error -1: no"));
    let reply = s.handle(
        &call_line(2, "test_sampling", r#"{"prompt":"x"}"#),
        &mut |_| false,
    );
    let r = reply_json(reply);
    assert!(is_error(&r) && first_text(&r).unwrap().contains("cannot send"));
    let r = s.response(&call_line(3, "test_sampling", "{}"));
    assert!(is_error(&r), "prompt is required");
    // A response nobody waits for is dropped quietly.
    let stray = parse(br#"{"jsonrpc":"2.0","id":999,"result":{}}"#).unwrap();
    assert!(matches!(
        s.server.handle(&s.session, stray, &mut |_| false),
        Reply::Silent
    ));
}

#[test]
fn elicitation_schemas_modes_and_capabilities() {
    let s = fixture();
    let accept = |req: &Value| {
        format!(
            r#"{{"jsonrpc":"2.0","id":{},"result":{{"action":"accept","content":{{"response":"ok"}}}}}}"#,
            id_of(req)
        )
    };
    s.init("2025-11-25", r#"{"elicitation":{"url":{}}}"#);
    let (requests, r) = with_client(&s, "test_elicitation", r#"{"message":"m"}"#, accept);
    assert!(
        requests.is_empty() && is_error(&r),
        "url-only clients get no form request"
    );

    s.init("2025-11-25", r#"{"elicitation":{}}"#);
    let (requests, r) = with_client(&s, "test_elicitation", r#"{"message":"Who?"}"#, accept);
    assert_eq!(str_at(&requests[0], &["params", "mode"]), Some("form"));
    assert_eq!(str_at(&requests[0], &["params", "message"]), Some("Who?"));
    assert_eq!(
        first_text(&r).as_deref(),
        Some(r#"User response: action=accept, content={"response":"ok"}"#)
    );
    let (requests, _) = with_client(&s, "test_elicitation_sep1034_defaults", "{}", accept);
    let props = requests[0]
        .pointer(&pointer!["params", "requestedSchema", "properties"])
        .unwrap();
    assert_eq!(
        props
            .get("name")
            .and_then(|p| p.get("default"))
            .and_then(|d| d.as_str()),
        Some("John Doe")
    );
    assert_eq!(
        props
            .get("score")
            .and_then(|p| p.get("default"))
            .and_then(|d| d.as_f64()),
        Some(95.5)
    );
    let (requests, r) = with_client(&s, "test_elicitation_sep1330_enums", "{}", accept);
    let props = requests[0]
        .pointer(&pointer!["params", "requestedSchema", "properties"])
        .unwrap();
    let keys: Vec<&str> = props.as_object().unwrap().iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        [
            "untitledSingle",
            "titledSingle",
            "legacyEnum",
            "untitledMulti",
            "titledMulti"
        ]
    );
    assert!(first_text(&r)
        .unwrap()
        .starts_with("Elicitation completed: action=accept"));

    // 2025-06-18 has no `mode`.
    s.init("2025-06-18", r#"{"elicitation":{}}"#);
    let (requests, _) = with_client(&s, "test_elicitation", r#"{"message":"m"}"#, accept);
    assert!(requests[0].pointer(&pointer!["params", "mode"]).is_none());
}

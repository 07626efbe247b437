//! Unit tests for the transport-independent part of the demo server:
//! message classification, MCP dispatch, pagination and tool behaviour, all
//! driven through [`Server::handle`] exactly as the transports drive it.
//! Transport behaviour (framing, sessions, SSE) is exercised end to end by
//! the integration tests that spawn the binary.

use sonic_rs::{pointer, JsonContainerTrait, JsonValueTrait, Value};

use super::protocol::{parse, Reply, Server, Transport};
use super::DemoOptions;

fn server(transport: Transport) -> Server {
    Server::new(
        DemoOptions {
            name: "unit".into(),
        },
        transport,
    )
}

/// Handles one line; returns the notifications and the reply.
fn exchange(server: &Server, line: &str) -> (Vec<String>, Reply) {
    let msg = parse(line.as_bytes()).expect("valid message");
    let mut notes = Vec::new();
    let reply = server.handle(msg, &mut |n| notes.push(n));
    (notes, reply)
}

/// Handles one request line and returns its parsed response.
fn response(server: &Server, line: &str) -> Value {
    match exchange(server, line).1 {
        Reply::Send { json, .. } => {
            assert!(!json.contains('\n'), "responses are single lines");
            sonic_rs::from_str(&json).expect("response is JSON")
        }
        other => panic!("expected a response, got {other:?}"),
    }
}

fn error_code(v: &Value) -> Option<i64> {
    v.pointer(&pointer!["error", "code"])
        .and_then(|c| c.as_i64())
}

fn call_line(id: u32, name: &str, args: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{name}","arguments":{args}}}}}"#
    )
}

#[test]
fn invalid_messages_get_json_rpc_errors() {
    for (input, code) in [
        ("{not json", -32700),
        ("[1,2]", -32600),
        ("\"hello\"", -32600),
        (r#"{"id":1,"method":"ping"}"#, -32600),
        (r#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#, -32600),
        (r#"{"jsonrpc":"2.0","id":1,"method":7}"#, -32600),
    ] {
        let err: Value = sonic_rs::from_str(&parse(input.as_bytes()).expect_err(input)).unwrap();
        assert_eq!(error_code(&err), Some(code), "{input}");
    }
}

#[test]
fn initialize_negotiates_version() {
    let s = server(Transport::Stdio);
    let init = |v: &str| {
        let line = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"{v}"}}}}"#
        );
        response(&s, &line)
    };
    let r = init("2025-03-26");
    assert_eq!(
        r.pointer(&pointer!["result", "protocolVersion"])
            .and_then(|v| v.as_str()),
        Some("2025-03-26")
    );
    assert_eq!(
        r.pointer(&pointer!["result", "serverInfo", "name"])
            .and_then(|v| v.as_str()),
        Some("unit")
    );
    let r = init("2024-11-05");
    assert_eq!(
        r.pointer(&pointer!["result", "protocolVersion"])
            .and_then(|v| v.as_str()),
        Some("2025-11-25")
    );
    let r = response(
        &s,
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#,
    );
    assert_eq!(error_code(&r), Some(-32602));
}

#[test]
fn notifications_and_responses_are_silent() {
    let s = server(Transport::Stdio);
    for line in [
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}"#,
        r#"{"jsonrpc":"2.0","id":5,"result":{}}"#,
    ] {
        assert!(matches!(exchange(&s, line).1, Reply::Silent), "{line}");
    }
}

#[test]
fn tools_list_paginates_in_fixed_order() {
    let s = server(Transport::Http);
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let params = cursor.as_ref().map_or(String::new(), |c| {
            format!(r#","params":{{"cursor":"{c}"}}"#)
        });
        let r = response(
            &s,
            &format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list"{params}}}"#),
        );
        let tools = r
            .pointer(&pointer!["result", "tools"])
            .and_then(|t| t.as_array())
            .expect("tools");
        assert!(tools.len() <= 3);
        names.extend(
            tools
                .iter()
                .filter_map(|t| t.get("name").and_then(|n| n.as_str()).map(String::from)),
        );
        cursor = r
            .pointer(&pointer!["result", "nextCursor"])
            .and_then(|c| c.as_str())
            .map(String::from);
        if cursor.is_none() {
            break;
        }
    }
    let expected = [
        "echo", "add", "now", "fail", "image", "sleep", "big", "garbage", "crash", "whoami",
    ];
    assert_eq!(names, expected);
    for bad in [
        r#""nope""#,
        r#""demo-page-4""#,
        r#""demo-page-0""#,
        r#""demo-page-30""#,
        "3",
    ] {
        let line = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{"cursor":{bad}}}}}"#
        );
        assert_eq!(error_code(&response(&s, &line)), Some(-32602), "{bad}");
    }
}

#[test]
fn protocol_errors() {
    let s = server(Transport::Stdio);
    let r = response(&s, &call_line(1, "nope", "{}"));
    assert_eq!(error_code(&r), Some(-32602));
    assert_eq!(
        r.pointer(&pointer!["error", "message"])
            .and_then(|m| m.as_str()),
        Some("Unknown tool: nope")
    );
    let r = response(&s, r#"{"jsonrpc":"2.0","id":1,"method":"resources/list"}"#);
    assert_eq!(error_code(&r), Some(-32601));
    let r = response(
        &s,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":[]}}"#,
    );
    assert_eq!(error_code(&r), Some(-32602));
    let r = response(&s, r#"{"jsonrpc":"2.0","id":"x","method":"ping"}"#);
    assert_eq!(r.get("id").and_then(|i| i.as_str()), Some("x"));
    assert!(r
        .pointer(&pointer!["result"])
        .is_some_and(|r| r.is_object()));
}

#[test]
fn tools_return_expected_results() {
    let s = server(Transport::Http);
    let text = |r: &Value| {
        r.pointer(&pointer!["result", "content", 0, "text"])
            .and_then(|t| t.as_str())
            .map(String::from)
    };
    let r = response(&s, &call_line(1, "echo", r#"{"message":"hi\nthere"}"#));
    assert_eq!(text(&r).as_deref(), Some("hi\nthere"));
    assert_eq!(
        r.pointer(&pointer!["result", "structuredContent", "message"])
            .and_then(|m| m.as_str()),
        Some("hi\nthere")
    );
    let r = response(&s, &call_line(2, "add", r#"{"a":2,"b":3.5}"#));
    assert_eq!(text(&r).as_deref(), Some("5.5"));
    assert_eq!(
        r.pointer(&pointer!["result", "structuredContent", "sum"])
            .and_then(|m| m.as_f64()),
        Some(5.5)
    );
    let r = response(&s, &call_line(3, "add", r#"{"a":"2","b":3}"#));
    assert!(r
        .pointer(&pointer!["result", "isError"])
        .is_some_and(|e| e.is_true()));
    let r = response(&s, &call_line(4, "fail", "{}"));
    assert!(r
        .pointer(&pointer!["result", "isError"])
        .is_some_and(|e| e.is_true()));
    let r = response(&s, &call_line(5, "whoami", "{}"));
    assert_eq!(text(&r).as_deref(), Some("unit"));
    let r = response(&s, &call_line(6, "big", r#"{"kb":2}"#));
    assert_eq!(text(&r).map(|t| t.len()), Some(2048));
    let r = response(&s, &call_line(7, "image", "{}"));
    let kinds: Vec<&str> = (0..4)
        .filter_map(|i| {
            r.pointer(&pointer!["result", "content", i, "type"])
                .and_then(|t| t.as_str())
        })
        .collect();
    assert_eq!(kinds, ["image", "audio", "resource_link", "resource"]);
    let r = response(&s, &call_line(8, "now", "{}"));
    assert!(text(&r).is_some_and(|t| t.parse::<u64>().is_ok_and(|n| n > 1_700_000_000)));
}

#[test]
fn sleep_reports_progress_before_answering() {
    let s = server(Transport::Stdio);
    let line = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"sleep","arguments":{"ms":1},"_meta":{"progressToken":"t"}}}"#;
    assert!(parse(line.as_bytes()).unwrap().streams_progress());
    let (notes, reply) = exchange(&s, line);
    assert_eq!(notes.len(), 2);
    for (i, note) in notes.iter().enumerate() {
        let n: Value = sonic_rs::from_str(note).unwrap();
        assert_eq!(
            n.get("method").and_then(|m| m.as_str()),
            Some("notifications/progress")
        );
        assert_eq!(
            n.pointer(&pointer!["params", "progressToken"])
                .and_then(|t| t.as_str()),
            Some("t")
        );
        assert_eq!(
            n.pointer(&pointer!["params", "progress"])
                .and_then(|p| p.as_u64()),
            Some(i as u64)
        );
    }
    assert!(matches!(reply, Reply::Send { ref json, .. } if json.contains("slept 1ms")));
    let (notes, _) = exchange(&s, &call_line(2, "sleep", r#"{"ms":0}"#));
    assert!(notes.is_empty(), "no token, no progress");
}

#[test]
fn transport_specific_tools() {
    let stdio = server(Transport::Stdio);
    assert!(matches!(
        exchange(&stdio, &call_line(1, "garbage", "{}")).1,
        Reply::GarbageThen(..)
    ));
    assert!(matches!(
        exchange(&stdio, &call_line(2, "crash", "{}")).1,
        Reply::Exit(3)
    ));
    let http = server(Transport::Http);
    let r = response(&http, &call_line(3, "crash", "{}"));
    assert!(r
        .pointer(&pointer!["result", "isError"])
        .is_some_and(|e| e.is_true()));
    let r = response(&http, &call_line(4, "garbage", "{}"));
    assert_eq!(
        r.pointer(&pointer!["result", "content", 0, "text"])
            .and_then(|t| t.as_str()),
        Some("garbage sent")
    );
}

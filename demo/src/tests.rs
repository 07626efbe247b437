//! Unit tests for the transport-independent part of the demo server:
//! message classification, MCP dispatch, pagination and tool behaviour, all
//! driven through [`Server::handle`] exactly as the transports drive it, and
//! the shared [`Harness`] (the conformance fixture's tests are in
//! `tests_fixture.rs`). Transport behaviour (framing, sessions, SSE) is
//! exercised end to end by the integration tests that spawn the binary and
//! by `tests/conformance/run.sh`.

use std::sync::{Arc, Mutex};

use sonic_rs::{pointer, JsonContainerTrait, JsonValueTrait, Value};

use super::http::is_loopback_host;
use super::protocol::{parse, Reply};
use super::server::{Server, Transport};
use super::session::{Related, Session, Sink};
use super::tools;
use super::{Config, DemoOptions};

/// A [`Sink`] that records what the session sends unsolicited.
#[derive(Default)]
pub(super) struct Recorder(Mutex<Vec<String>>);

impl Sink for Recorder {
    fn send(&self, json: &str) -> bool {
        self.0.lock().unwrap().push(json.to_string());
        true
    }
}

impl Recorder {
    /// The recorded messages, parsed; the record is emptied.
    pub(super) fn take(&self) -> Vec<Value> {
        let all = std::mem::take(&mut *self.0.lock().unwrap());
        all.iter().map(|m| sonic_rs::from_str(m).unwrap()).collect()
    }
}

/// One server with one session, driven like a transport drives them.
pub(super) struct Harness {
    pub server: Server,
    pub session: Arc<Session>,
    pub unsolicited: Arc<Recorder>,
}

impl Harness {
    pub(super) fn new(transport: Transport, conformance: bool) -> Self {
        let config = Config {
            conformance,
            ..Config::default()
        };
        Self::with_config(transport, config)
    }

    pub(super) fn with_config(transport: Transport, config: Config) -> Self {
        let opts = DemoOptions {
            name: "unit".into(),
        };
        let server = Server::new(opts, transport, config);
        let unsolicited = Arc::new(Recorder::default());
        let session = server.new_session(unsolicited.clone());
        Self {
            server,
            session,
            unsolicited,
        }
    }

    /// Handles one line with `related` as the request's stream.
    pub(super) fn handle(&self, line: &str, related: &mut dyn Related) -> Reply {
        let msg = parse(line.as_bytes()).expect("valid message");
        self.server.handle(&self.session, msg, related)
    }

    /// Handles one line; returns the related messages and the reply.
    pub(super) fn exchange(&self, line: &str) -> (Vec<String>, Reply) {
        let mut notes = Vec::new();
        let reply = self.handle(line, &mut |n| {
            notes.push(n);
            true
        });
        (notes, reply)
    }

    /// Handles one request line and returns its parsed response.
    pub(super) fn response(&self, line: &str) -> Value {
        reply_json(self.exchange(line).1)
    }

    /// `initialize` with this version and client capabilities (JSON).
    pub(super) fn init(&self, version: &str, capabilities: &str) -> Value {
        self.response(&format!(
            r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"{version}","capabilities":{capabilities},"clientInfo":{{"name":"t","version":"1"}}}}}}"#
        ))
    }
}

/// The parsed JSON-RPC message of a `Reply::Send`.
pub(super) fn reply_json(reply: Reply) -> Value {
    match reply {
        Reply::Send { json, .. } => {
            assert!(!json.contains('\n'), "responses are single lines");
            sonic_rs::from_str(&json).expect("response is JSON")
        }
        other => panic!("expected a response, got {other:?}"),
    }
}

pub(super) fn error_code(v: &Value) -> Option<i64> {
    v.pointer(&pointer!["error", "code"])
        .and_then(|c| c.as_i64())
}

pub(super) fn call_line(id: u32, name: &str, args: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{name}","arguments":{args}}}}}"#
    )
}

/// `result.content[0].text` of a tool call response.
pub(super) fn first_text(r: &Value) -> Option<String> {
    r.pointer(&pointer!["result", "content", 0, "text"])
        .and_then(|t| t.as_str())
        .map(String::from)
}

pub(super) fn is_error(r: &Value) -> bool {
    r.pointer(&pointer!["result", "isError"])
        .is_some_and(|e| e.is_true())
}

fn server(transport: Transport) -> Harness {
    Harness::new(transport, false)
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
        s.response(&line)
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
    let r = s.response(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#);
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
        assert!(matches!(s.exchange(line).1, Reply::Silent), "{line}");
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
        let r = s.response(&format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list"{params}}}"#
        ));
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
        "headers",
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
        assert_eq!(error_code(&s.response(&line)), Some(-32602), "{bad}");
    }
}

#[test]
fn protocol_errors() {
    let s = server(Transport::Stdio);
    let r = s.response(&call_line(1, "nope", "{}"));
    assert_eq!(error_code(&r), Some(-32602));
    assert_eq!(
        r.pointer(&pointer!["error", "message"])
            .and_then(|m| m.as_str()),
        Some("Unknown tool: nope")
    );
    let r = s.response(r#"{"jsonrpc":"2.0","id":1,"method":"resources/list"}"#);
    assert_eq!(error_code(&r), Some(-32601));
    let r = s.response(
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":[]}}"#,
    );
    assert_eq!(error_code(&r), Some(-32602));
    let r = s.response(r#"{"jsonrpc":"2.0","id":"x","method":"ping"}"#);
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
    let r = s.response(&call_line(1, "echo", r#"{"message":"hi\nthere"}"#));
    assert_eq!(text(&r).as_deref(), Some("hi\nthere"));
    assert_eq!(
        r.pointer(&pointer!["result", "structuredContent", "message"])
            .and_then(|m| m.as_str()),
        Some("hi\nthere")
    );
    let r = s.response(&call_line(2, "add", r#"{"a":2,"b":3.5}"#));
    assert_eq!(text(&r).as_deref(), Some("5.5"));
    assert_eq!(
        r.pointer(&pointer!["result", "structuredContent", "sum"])
            .and_then(|m| m.as_f64()),
        Some(5.5)
    );
    let r = s.response(&call_line(3, "add", r#"{"a":"2","b":3}"#));
    assert!(r
        .pointer(&pointer!["result", "isError"])
        .is_some_and(|e| e.is_true()));
    let r = s.response(&call_line(4, "fail", "{}"));
    assert!(r
        .pointer(&pointer!["result", "isError"])
        .is_some_and(|e| e.is_true()));
    let r = s.response(&call_line(5, "whoami", "{}"));
    assert_eq!(text(&r).as_deref(), Some("unit"));
    let r = s.response(&call_line(6, "big", r#"{"kb":2}"#));
    assert_eq!(text(&r).map(|t| t.len()), Some(2048));
    let r = s.response(&call_line(7, "image", "{}"));
    let kinds: Vec<&str> = (0..4)
        .filter_map(|i| {
            r.pointer(&pointer!["result", "content", i, "type"])
                .and_then(|t| t.as_str())
        })
        .collect();
    assert_eq!(kinds, ["image", "audio", "resource_link", "resource"]);
    let r = s.response(&call_line(8, "now", "{}"));
    assert!(text(&r).is_some_and(|t| t.parse::<u64>().is_ok_and(|n| n > 1_700_000_000)));
}

#[test]
fn sleep_reports_progress_before_answering() {
    let s = server(Transport::Stdio);
    let line = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"sleep","arguments":{"ms":1},"_meta":{"progressToken":"t"}}}"#;
    let (notes, reply) = s.exchange(line);
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
    let (notes, _) = s.exchange(&call_line(2, "sleep", r#"{"ms":0}"#));
    assert!(notes.is_empty(), "no token, no progress");
}

#[test]
fn transport_specific_tools() {
    let stdio = server(Transport::Stdio);
    assert!(matches!(
        stdio.exchange(&call_line(1, "garbage", "{}")).1,
        Reply::GarbageThen(..)
    ));
    assert!(matches!(
        stdio.exchange(&call_line(2, "crash", "{}")).1,
        Reply::Exit(3)
    ));
    let http = server(Transport::Http);
    let r = http.response(&call_line(3, "crash", "{}"));
    assert!(r
        .pointer(&pointer!["result", "isError"])
        .is_some_and(|e| e.is_true()));
    let r = http.response(&call_line(4, "garbage", "{}"));
    assert_eq!(
        r.pointer(&pointer!["result", "content", 0, "text"])
            .and_then(|t| t.as_str()),
        Some("garbage sent")
    );
}

#[test]
fn without_the_fixture_only_tools_are_served() {
    let s = server(Transport::Http);
    let r = s.init("2025-11-25", r#"{"sampling":{}}"#);
    let caps = r.pointer(&pointer!["result", "capabilities"]).unwrap();
    assert_eq!(
        sonic_rs::to_string(caps).unwrap(),
        r#"{"tools":{"listChanged":false}}"#
    );
    for method in [
        "resources/list",
        "prompts/list",
        "logging/setLevel",
        "completion/complete",
    ] {
        let line = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{{}}}}"#);
        assert_eq!(error_code(&s.response(&line)), Some(-32601), "{method}");
    }
    let r = s.response(&call_line(2, "test_simple_text", "{}"));
    assert_eq!(error_code(&r), Some(-32602), "fixture tools are off");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        s.unsolicited.take().is_empty(),
        "no ticker without the fixture"
    );
}

#[test]
fn page_size_is_configurable() {
    let names = |page: &[Value]| -> Vec<String> {
        page.iter()
            .map(|t| t.get("name").and_then(|n| n.as_str()).unwrap().to_string())
            .collect()
    };
    let all = tools::definitions(false, false);
    let (first, next) = tools::page(all.clone(), None, 4).unwrap();
    assert_eq!(names(&first), ["echo", "add", "now", "fail"]);
    assert_eq!(next.as_deref(), Some("demo-page-4"));
    let (last, next) = tools::page(all.clone(), Some("demo-page-8"), 4).unwrap();
    assert_eq!(names(&last), ["crash", "whoami", "headers"]);
    assert_eq!(next, None);
    assert!(
        tools::page(all.clone(), Some("demo-page-3"), 4).is_none(),
        "not a page start"
    );
    let (one, next) = tools::page(all.clone(), None, 100).unwrap();
    assert_eq!((one.len(), next), (11, None));
    // Through the server, with the fixture: 11 demo tools + 14 fixture tools + 6 task tools.
    let config = Config {
        conformance: true,
        page_size: 100,
        ..Config::default()
    };
    let s = Harness::with_config(Transport::Http, config);
    s.init("2025-11-25", "{}");
    let r = s.response(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
    let tools = r
        .pointer(&pointer!["result", "tools"])
        .unwrap()
        .as_array()
        .unwrap();
    assert_eq!(tools.len(), 31);
    assert!(r.pointer(&pointer!["result", "nextCursor"]).is_none());
}

#[test]
fn loopback_hosts_only() {
    for ok in [
        "localhost",
        "LOCALHOST:80",
        "127.0.0.1",
        "127.0.0.1:3000",
        "127.1.2.3:1",
        "[::1]",
        "[::1]:8080",
    ] {
        assert!(is_loopback_host(ok), "{ok}");
    }
    for bad in [
        "evil.example.com",
        "evil.example.com:3000",
        "localhost.evil.com",
        "127.0.0.1.nip.io",
        "[::2]:80",
        "localhost:",
        "localhost:80x",
        "10.0.0.1:80",
        "",
    ] {
        assert!(!is_loopback_host(bad), "{bad}");
    }
}

//! Unit tests for the 2026-07-28 path, driven through the stdio transport's
//! [`stdio::handle`] exactly as stdin lines are (era classification,
//! validation order and errors, `server/discover`, result stamping,
//! logging and progress per `_meta`) plus the HTTP era rule, and the
//! [`Stdio`] harness shared with `tests_mrtr.rs` (MRTR and listen streams).
//! The HTTP headers, statuses and SSE are exercised end to end by
//! `tests/conformance/run.sh demo with-2026`.

use std::sync::{Arc, Mutex};

use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

use super::modern::is_modern_http;
use super::protocol::parse;
use super::server::{Server, Transport};
use super::session::Session;
use super::stdio::{self, Lines};
use super::tests::{error_code, first_text, Harness};
use super::tests_fixture::str_at;
use super::{Config, DemoOptions};

/// Records what the stdio transport writes.
#[derive(Default)]
pub(super) struct Out(pub Mutex<Vec<String>>);

impl Lines for Out {
    fn write_line(&self, line: &str) {
        self.0.lock().unwrap().push(line.to_string());
    }

    fn exit(&self, code: i32) -> ! {
        panic!("exit {code}")
    }
}

impl Out {
    pub(super) fn take(&self) -> Vec<Value> {
        let all = std::mem::take(&mut *self.0.lock().unwrap());
        all.iter().map(|l| sonic_rs::from_str(l).unwrap()).collect()
    }
}

pub(super) struct Stdio {
    pub server: Arc<Server>,
    pub session: Arc<Session>,
    pub out: Arc<Out>,
}

pub(super) fn stdio(conformance: bool) -> Stdio {
    let config = Config {
        conformance,
        page_size: 100,
        ..Config::default()
    };
    let server = Arc::new(Server::new(
        DemoOptions::default(),
        Transport::Stdio,
        config,
    ));
    let session = Arc::new(Session::new(Arc::new(super::tests::Recorder::default())));
    Stdio {
        server,
        session,
        out: Arc::default(),
    }
}

pub(super) const CAPS: &str = r#"{"sampling":{},"elicitation":{},"roots":{}}"#;

/// `_meta` for version 2026-07-28 with these capabilities and extra keys.
pub(super) fn meta(caps: &str, extra: &str) -> String {
    format!(
        r#""_meta":{{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{caps}{extra}}}"#
    )
}

impl Stdio {
    /// Handles one line; returns every line written, parsed.
    pub(super) fn lines(&self, line: &str) -> Vec<Value> {
        let msg = parse(line.as_bytes()).expect("valid message");
        stdio::handle(&self.server, &self.session, &*self.out, msg);
        self.out.take()
    }

    /// Handles one request line; returns its response (the last line).
    pub(super) fn rpc(&self, line: &str) -> Value {
        self.lines(line).pop().expect("a response")
    }

    /// A modern `tools/call` of `name` with default capabilities.
    pub(super) fn call(&self, id: u32, name: &str, extra_params: &str) -> Value {
        self.rpc(&format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{name}","arguments":{{}}{extra_params},{}}}}}"#,
            meta(CAPS, "")
        ))
    }
}

pub(super) fn result_type(r: &Value) -> Option<&str> {
    str_at(r, &["result", "resultType"])
}

#[test]
fn discover_over_stdio() {
    let s = stdio(true);
    let r = s.rpc(&format!(
        r#"{{"jsonrpc":"2.0","id":"d1","method":"server/discover","params":{{{}}}}}"#,
        meta("{}", "")
    ));
    assert_eq!(str_at(&r, &["id"]), Some("d1"));
    let result = r.get("result").expect("a result");
    assert_eq!(result_type(&r), Some("complete"));
    let versions = sonic_rs::to_string(result.get("supportedVersions").unwrap()).unwrap();
    assert_eq!(versions, r#"["2026-07-28"]"#);
    assert!(result
        .pointer(["capabilities", "tools", "listChanged"])
        .is_some());
    assert_eq!(result.get("ttlMs").and_then(|t| t.as_u64()), Some(60_000));
    assert_eq!(str_at(result, &["cacheScope"]), Some("public"));
    let info = ["_meta", "io.modelcontextprotocol/serverInfo", "name"];
    assert_eq!(str_at(result, &info), Some("demo"));
    // `server/discover` is modern even without _meta, so that is -32602.
    let r = s.rpc(r#"{"jsonrpc":"2.0","id":2,"method":"server/discover","params":{}}"#);
    assert_eq!(error_code(&r), Some(-32602));
    assert_eq!(r.get("id").and_then(|i| i.as_u64()), Some(2));
}

#[test]
fn tools_call_with_meta_is_stateless_and_stamped() {
    let s = stdio(false);
    let line = format!(
        r#"{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"echo","arguments":{{"message":"hi"}},{}}}}}"#,
        meta("{}", "")
    );
    let r = s.rpc(&line);
    assert_eq!(first_text(&r).as_deref(), Some("hi"));
    assert_eq!(result_type(&r), Some("complete"));
    assert!(
        r.pointer(["result", "ttlMs"]).is_none(),
        "tools/call is not cacheable"
    );
    assert!(r
        .pointer(["result", "structuredContent", "message"])
        .is_some());
    // The legacy session was never initialized by it.
    assert!(s.session.version().is_none());
    // tools/list: the eleven demo tools, cache hints, no fixture tools.
    let r = s.rpc(&format!(
        r#"{{"jsonrpc":"2.0","id":4,"method":"tools/list","params":{{{}}}}}"#,
        meta("{}", "")
    ));
    assert_eq!(
        r.pointer(["result", "tools"])
            .and_then(|t| t.as_array())
            .map(|a| a.len()),
        Some(11)
    );
    assert_eq!(str_at(&r, &["result", "cacheScope"]), Some("public"));
    // Without the fixture, prompts are not served: 404-style -32601.
    let r = s.rpc(&format!(
        r#"{{"jsonrpc":"2.0","id":5,"method":"prompts/list","params":{{{}}}}}"#,
        meta("{}", "")
    ));
    assert_eq!(error_code(&r), Some(-32601));
}

#[test]
fn validation_errors_echo_the_id() {
    let s = stdio(true);
    let call = |id: u32, meta_json: &str| {
        s.rpc(&format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"test_simple_text",{meta_json}}}}}"#
        ))
    };
    // Unsupported version: -32022 with the supported and requested versions.
    let r = call(
        7,
        r#""_meta":{"io.modelcontextprotocol/protocolVersion":"1900-01-01","io.modelcontextprotocol/clientCapabilities":{}}"#,
    );
    assert_eq!(error_code(&r), Some(-32022));
    assert_eq!(r.get("id").and_then(|i| i.as_u64()), Some(7));
    let data = r.pointer(["error", "data"]).unwrap();
    assert_eq!(
        sonic_rs::to_string(data).unwrap(),
        r#"{"supported":["2026-07-28"],"requested":"1900-01-01"}"#
    );
    // No clientCapabilities, or a bad logLevel: -32602.
    let r = call(
        8,
        r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}"#,
    );
    assert_eq!(error_code(&r), Some(-32602));
    let r = call(
        9,
        &meta("{}", r#","io.modelcontextprotocol/logLevel":"loud""#),
    );
    assert_eq!(error_code(&r), Some(-32602));
    // Removed methods are -32601, even with a valid _meta.
    for method in ["ping", "logging/setLevel", "resources/subscribe"] {
        let r = s.rpc(&format!(
            r#"{{"jsonrpc":"2.0","id":10,"method":"{method}","params":{{{}}}}}"#,
            meta("{}", "")
        ));
        assert_eq!(error_code(&r), Some(-32601), "{method}");
    }
    // A missing capability: -32021 with requiredCapabilities as an object.
    let r = s.rpc(&format!(
        r#"{{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{{"name":"test_missing_capability",{}}}}}"#,
        meta("{}", "")
    ));
    assert_eq!(error_code(&r), Some(-32021));
    assert!(r
        .pointer(["error", "data", "requiredCapabilities", "sampling"])
        .is_some_and(|c| c.is_object()));
    // A missing resource: -32602 with the URI.
    let r = s.rpc(&format!(
        r#"{{"jsonrpc":"2.0","id":12,"method":"resources/read","params":{{"uri":"test://nope",{}}}}}"#,
        meta("{}", "")
    ));
    assert_eq!(error_code(&r), Some(-32602));
    assert_eq!(str_at(&r, &["error", "data", "uri"]), Some("test://nope"));
}

#[test]
fn initialize_stays_legacy() {
    let s = stdio(false);
    let r = s.rpc(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{}}}"#);
    assert_eq!(
        str_at(&r, &["result", "protocolVersion"]),
        Some("2025-11-25")
    );
    assert!(r.pointer(["result", "resultType"]).is_none());
}

#[test]
fn logs_and_progress_follow_the_request_meta() {
    let s = stdio(true);
    let call = |id: u32, extra_meta: &str| {
        s.lines(&format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"test_logging_tool",{}}}}}"#,
            meta("{}", extra_meta)
        ))
    };
    assert_eq!(call(1, "").len(), 1, "no logLevel, no logs");
    let lines = call(2, r#","io.modelcontextprotocol/logLevel":"info""#);
    let levels: Vec<&str> = lines[..lines.len() - 1]
        .iter()
        .map(|l| str_at(l, &["params", "level"]).unwrap())
        .collect();
    assert_eq!(levels, ["info", "warning"]);
    let lines = s.lines(&format!(
        r#"{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"test_tool_with_progress",{}}}}}"#,
        meta("{}", r#","progressToken":7"#)
    ));
    assert_eq!(lines.len(), 4, "three progress lines, then the response");
    assert!(lines[..3].iter().all(|l| l
        .pointer(["params", "progressToken"])
        .and_then(|t| t.as_u64())
        == Some(7)));
}

#[test]
fn http_era_rule() {
    // (session, version header, _meta) → modern?
    assert!(is_modern_http(false, Some("2026-07-28"), true));
    assert!(
        is_modern_http(false, Some("2026-07-28"), false),
        "params {{}} with a modern header"
    );
    assert!(
        is_modern_http(false, None, true),
        "_meta without header: modern (then -32020)"
    );
    assert!(
        is_modern_http(false, Some("2025-11-25"), true),
        "legacy header with _meta: modern (then -32020)"
    );
    assert!(
        !is_modern_http(false, Some("2025-11-25"), false),
        "legacy initialize"
    );
    assert!(!is_modern_http(false, None, false), "plain initialize");
    assert!(
        !is_modern_http(true, Some("2026-07-28"), true),
        "a session id means legacy"
    );
}

#[test]
fn legacy_sessions_are_unchanged() {
    // The legacy dispatch still answers without resultType or _meta.
    let config = Config {
        conformance: true,
        page_size: 100,
        ..Config::default()
    };
    let h = Harness::with_config(Transport::Stdio, config);
    h.init("2025-11-25", "{}");
    let r = h.response(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
    assert!(r.pointer(["result", "resultType"]).is_none());
    let names: Vec<&str> = r
        .pointer(["result", "tools"])
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|t| str_at(t, &["name"]).unwrap())
        .collect();
    assert!(!names.iter().any(|n| n.starts_with("test_input_required")));
}

#[test]
fn demo_modern_0_serves_the_legacy_era_only() {
    let s = stdio(true);
    let server = Server::new(
        DemoOptions::default(),
        Transport::Stdio,
        Config {
            modern: false,
            ..Config::default()
        },
    );
    let legacy = Stdio {
        server: Arc::new(server),
        ..s
    };
    let r = legacy.rpc(&format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{{{}}}}}"#,
        meta("{}", "")
    ));
    assert_eq!(error_code(&r), Some(-32601), "a 2026 probe falls back");
    let r = legacy.call(2, "echo", "").get("result").cloned();
    assert!(r.is_some_and(|r| r.get("resultType").is_none()));
}

#[test]
fn demo_legacy_0_serves_2026_only_and_refuses_initialize_naming_its_version() {
    let s = stdio(true);
    let server = Server::new(
        DemoOptions::default(),
        Transport::Stdio,
        Config {
            legacy: false,
            ..Config::default()
        },
    );
    let modern_only = Stdio {
        server: Arc::new(server),
        ..s
    };
    let r = modern_only.rpc(
        r#"{"jsonrpc":"2.0","id":"i","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}"#,
    );
    assert_eq!(error_code(&r), Some(-32022), "{r:?}");
    assert_eq!(str_at(&r, &["id"]), Some("i"));
    let supported = r
        .pointer(["error", "data", "supported"])
        .and_then(|a| a.get(0));
    assert_eq!(supported.and_then(|v| v.as_str()), Some("2026-07-28"));
    let n = modern_only.lines(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    assert!(n.is_empty(), "a legacy notification is ignored: {n:?}");
    // The modern era is served as ever.
    let r = modern_only.call(2, "echo", "");
    assert_eq!(result_type(&r), Some("complete"), "{r:?}");
}

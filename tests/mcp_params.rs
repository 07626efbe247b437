//! `Mcp-Param-*` headers (2026-07-28, SEP-2243) through the real gateway, both drivers, raw
//! HTTP: a client's headers are checked against the body for tools whose schema mirrors
//! arguments (`x-mcp-header`), and a backend gets the headers of its own tool, computed from
//! the body it is sent, under its own name, whatever the gateway calls the tool.
//!
//! Backends: `echo` (tests/mcp_params/echo_backend.rs, 2026 over HTTP, shows what it got;
//! its `query` tool is renamed `lookup`), `fx` (the demo server's conformance fixture over
//! HTTP, which itself refuses a call whose headers disagree with the body; its
//! `test_header_param` is renamed `region_echo`), and `st` (the same fixture over stdio,
//! where no headers travel: what is refused there, the gateway refused).

mod common;
#[path = "mcp_params/echo_backend.rs"]
mod echo_backend;

use std::process::{Child, Command, Stdio};

use common::{demo_stdio, http_server, Gateway, Resp, DRIVERS};
use echo_backend::EchoBackend;
use sonic_rs::JsonValueTrait;

const META: &str = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;

/// The demo server with its conformance fixture over HTTP; killed and reaped on drop.
struct Fixture(Child, String);

impl Fixture {
    fn start() -> Fixture {
        use std::io::BufRead;
        let mut child = Command::new(common::bin())
            .args(["demo-server", "--http", "127.0.0.1:0"])
            .env("DEMO_CONFORMANCE", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        out.read_line(&mut line).unwrap();
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .unwrap_or_else(|| panic!("demo-server said {line:?}"))
            .to_string();
        Fixture(child, addr)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A 2026 `tools/call` of `name` with `args` (JSON) and `extra` headers; `Mcp-Method` and
/// `Mcp-Name` are right.
fn call(gw: &Gateway, id: u32, name: &str, args: &str, extra: &[(&str, &str)]) -> Resp {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{name}","arguments":{args},{META}}}}}"#
    );
    let mut h = vec![
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", name),
    ];
    h.extend_from_slice(extra);
    gw.post(&h, &body)
}

/// The text of a successful call's first content block.
fn text(r: &Resp) -> String {
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert!(v.get("error").is_none(), "{v:?}");
    v["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{v:?}"))
        .to_string()
}

/// The `Mcp-*` headers the echo backend saw.
fn seen(r: &Resp) -> sonic_rs::Value {
    sonic_rs::from_str(&text(r)).unwrap()
}

/// A refusal: HTTP 400, HeaderMismatch, the request's id, naming `header`.
fn refused(r: &Resp, id: u32, header: &str) {
    assert_eq!(r.status, 400, "{}", r.text());
    let v = r.json();
    assert_eq!(v["error"]["code"].as_i64(), Some(-32020), "{v:?}");
    assert_eq!(v["id"].as_u64(), Some(u64::from(id)), "{v:?}");
    let msg = v["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains(header), "{msg}");
}

fn gateway(driver: &str, echo: &EchoBackend, fx: &Fixture) -> Gateway {
    let cfg = format!(
        "{}[servers.rename]\nquery = \"lookup\"\n{}[servers.rename]\ntest_header_param = \"region_echo\"\n{}",
        http_server("echo", &echo.addr, ""),
        http_server("fx", &fx.1, ""),
        demo_stdio("st", "env = { DEMO_CONFORMANCE = \"1\" }"),
    );
    Gateway::start(&cfg, driver, 2, &["echo", "fx", "st"])
}

#[test]
fn backends_get_the_headers_of_their_own_tool_computed_from_the_body() {
    for driver in DRIVERS {
        let (echo, fx) = (EchoBackend::start(), Fixture::start());
        let gw = gateway(driver, &echo, &fx);
        // A 2026 client's call of a renamed, namespaced tool with every kind of argument.
        let args = r#"{"region":" spaced ","opts":{"limit":42.0,"dry":true},"note":"n"}"#;
        let r = call(
            &gw,
            1,
            "echo__lookup",
            args,
            &[
                ("Mcp-Param-Region", "=?base64?IHNwYWNlZCA=?="),
                ("mcp-param-limit", "42"),
                ("MCP-PARAM-DRY-RUN", "true"),
                ("Mcp-Param-Unknown", "not the backend's"),
            ],
        );
        let h = seen(&r);
        assert_eq!(h["mcp-name"].as_str(), Some("query"), "{driver}: {h:?}");
        assert_eq!(h["mcp-method"].as_str(), Some("tools/call"));
        assert_eq!(
            h["mcp-param-region"].as_str(),
            Some("=?base64?IHNwYWNlZCA=?=")
        );
        assert_eq!(
            h["mcp-param-limit"].as_str(),
            Some("42"),
            "42.0 as an integer"
        );
        assert_eq!(h["mcp-param-dry-run"].as_str(), Some("true"));
        assert!(
            h.get("mcp-param-unknown").is_none(),
            "{driver}: only what the backend's schema implies: {h:?}"
        );
        // A 2025 client sends no such headers; the 2026-only backend still gets them.
        let sid = gw.initialize();
        let v = gw.call(&sid, "echo__lookup", r#"{"region":"日本語","opts":{}}"#);
        let h: sonic_rs::Value =
            sonic_rs::from_str(v["result"]["content"][0]["text"].as_str().unwrap()).unwrap();
        assert_eq!(
            h["mcp-param-region"].as_str(),
            Some("=?base64?5pel5pys6Kqe?=")
        );
        assert_eq!(h["mcp-name"].as_str(), Some("query"));
        assert!(
            h.get("mcp-param-limit").is_none(),
            "absent: no header: {h:?}"
        );
        // Search discovery: the client calls `call_tool`, which mirrors nothing, so it sends
        // no Mcp-Param header; the backend's are computed all the same.
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"call_tool","arguments":{{"name":"echo__lookup","arguments":{{"region":"r1"}}}},{META}}}}}"#
        );
        let r = gw.post(
            &[
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/call"),
                ("mcp-name", "call_tool"),
                ("x-mcp-discovery", "search"),
            ],
            &body,
        );
        let h = seen(&r);
        assert_eq!(
            h["mcp-param-region"].as_str(),
            Some("r1"),
            "{driver}: {h:?}"
        );
        assert_eq!(h["mcp-name"].as_str(), Some("query"));
        // The demo fixture checks the headers itself: a renamed tool's call passes it only
        // with its own name and the value's header, base64 for non-ASCII.
        let r = call(
            &gw,
            4,
            "fx__region_echo",
            r#"{"region":"Grüße"}"#,
            &[("Mcp-Param-Region", "=?base64?R3LDvMOfZQ==?=")],
        );
        assert!(text(&r).contains("Grüße"), "{driver}: {}", r.text());
    }
}

#[test]
fn headers_that_disagree_with_the_body_are_refused_by_the_gateway() {
    for driver in DRIVERS {
        let (echo, fx) = (EchoBackend::start(), Fixture::start());
        let gw = gateway(driver, &echo, &fx);
        let tool = "st__test_header_param";
        let region = |v: &'static str| [("Mcp-Param-Region", v)];
        // Agreeing (the conformance suite's accepted forms), over stdio where the backend
        // checks nothing: what follows is refused by the gateway alone.
        for (arg, header) in [
            ("Hello", "=?base64?SGVsbG8=?="),
            ("SGVsbG8=", "SGVsbG8="),
            ("=?base64?SGVsbG8=", "=?base64?SGVsbG8="),
            ("us west 1", "us west 1"),
        ] {
            let r = call(
                &gw,
                10,
                tool,
                &format!(r#"{{"region":"{arg}"}}"#),
                &region(header),
            );
            assert!(text(&r).contains(arg), "{driver}: {arg}");
        }
        let r = call(&gw, 11, tool, r#"{"region":null}"#, &[]);
        assert_eq!(r.status, 200, "null: no header expected: {}", r.text());
        let r = call(
            &gw,
            12,
            tool,
            r#"{"region":"x"}"#,
            &[("Mcp-Param-Other", "y")],
        );
        refused(&r, 12, "Mcp-Param-Region is missing");
        let r = call(&gw, 13, tool, r#"{}"#, &region("x"));
        refused(&r, 13, "Mcp-Param-Region is sent but the argument is not");
        let r = call(&gw, 14, tool, r#"{"region":"a"}"#, &region("b"));
        refused(&r, 14, "does not match");
        let r = call(
            &gw,
            15,
            tool,
            r#"{"region":"Hello"}"#,
            &region("=?base64?SGVsbG8?="),
        );
        refused(&r, 15, "not valid");
        let r = call(
            &gw,
            16,
            tool,
            r#"{"region":"Hello"}"#,
            &region("=?base64?SGVs!!!bG8=?="),
        );
        refused(&r, 16, "not valid");
        let r = call(&gw, 17, tool, r#"{"region":"café"}"#, &region("café"));
        refused(&r, 17, "characters");
        let twice = [("Mcp-Param-Region", "a"), ("mcp-param-region", "a")];
        let r = call(&gw, 18, tool, r#"{"region":"a"}"#, &twice);
        refused(&r, 18, "more than once");
        let r = call(
            &gw,
            19,
            tool,
            r#"{"region":"a","region":"b"}"#,
            &region("a"),
        );
        refused(&r, 19, "twice");
        // A string id is echoed too.
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":"s-1","method":"tools/call","params":{{"name":"{tool}","arguments":{{"region":"x"}},{META}}}}}"#
        );
        let r = gw.post(
            &[
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/call"),
                ("mcp-name", tool),
            ],
            &body,
        );
        assert_eq!(
            (r.status, r.json()["id"].as_str()),
            (400, Some("s-1")),
            "{}",
            r.text()
        );
        // Through an HTTP backend and a rename, refused the same (the gateway answers).
        let r = call(&gw, 20, "echo__lookup", r#"{"opts":{"dry":false}}"#, &[]);
        refused(&r, 20, "Mcp-Param-Dry-Run is missing");
    }
}

#[test]
fn huge_or_hostile_header_values_are_bounded() {
    for driver in DRIVERS {
        let (echo, fx) = (EchoBackend::start(), Fixture::start());
        let gw = gateway(driver, &echo, &fx);
        let tool = "st__test_header_param";
        // Past the head limit (server.max_header_bytes, 16 KiB): 431 before anything reads it.
        let big = "a".repeat(20_000);
        let r = call(
            &gw,
            30,
            tool,
            &format!(r#"{{"region":"{big}"}}"#),
            &[("Mcp-Param-Region", &big)],
        );
        assert_eq!(r.status, 431, "{driver}");
        // More header lines than a head may have: 431 too.
        let names: Vec<String> = (0..70).map(|i| format!("Mcp-Param-P{i}")).collect();
        let many: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
        let r = call(&gw, 31, tool, r#"{"region":"x"}"#, &many);
        assert_eq!(r.status, 431, "{driver}");
        // Within it, a long value is checked in full: one byte off at the end is refused, and
        // a long bogus Base64 payload is refused, not decoded into anything.
        let long = "a".repeat(12_000);
        let off = format!("{}b", &long[1..]);
        let r = call(
            &gw,
            32,
            tool,
            &format!(r#"{{"region":"{long}"}}"#),
            &[("Mcp-Param-Region", &off)],
        );
        refused(&r, 32, "does not match");
        let bogus = format!("=?base64?{}?=", "!".repeat(12_000));
        let r = call(
            &gw,
            33,
            tool,
            r#"{"region":"x"}"#,
            &[("Mcp-Param-Region", &bogus)],
        );
        refused(&r, 33, "not valid");
        let r = call(
            &gw,
            34,
            tool,
            &format!(r#"{{"region":"{long}"}}"#),
            &[("Mcp-Param-Region", &long)],
        );
        assert!(text(&r).contains(&long), "{driver}: served");
        // The gateway is unharmed.
        let r = call(
            &gw,
            35,
            tool,
            r#"{"region":"ok"}"#,
            &[("Mcp-Param-Region", "ok")],
        );
        assert!(text(&r).contains("ok"), "{driver}");
    }
}

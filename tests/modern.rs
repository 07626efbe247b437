//! The 2026-07-28 stateless era on the same `/mcp`, against the real binary on both drivers.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{demo_stdio, Gateway, DRIVERS};
use sonic_rs::JsonValueTrait;

const META: &str = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;

fn modern(gw: &Gateway, method: &str, name: Option<&str>, params: &str, id: u32) -> common::Resp {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{{{params}{}{META}}}}}"#,
        if params.is_empty() { "" } else { "," }
    );
    let mut h = vec![
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", method),
    ];
    if let Some(n) = name {
        h.push(("mcp-name", n));
    }
    gw.post(&h, &body)
}

#[test]
fn stateless_requests_are_validated_and_answered_in_the_modern_shape() {
    for driver in DRIVERS {
        let gw = Gateway::start(&demo_stdio("demo", ""), driver, 2, &["demo"]);
        let d = modern(&gw, "server/discover", None, "", 1);
        assert_eq!(d.status, 200, "{}", d.text());
        let v = d.json();
        assert_eq!(
            v["result"]["supportedVersions"][0].as_str(),
            Some("2026-07-28")
        );
        assert_eq!(v["result"]["resultType"].as_str(), Some("complete"));
        assert!(v["result"]["ttlMs"].as_u64().is_some());
        assert_eq!(
            v["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"].as_str(),
            Some("only1mcp-uring")
        );
        assert!(
            d.header("mcp-session-id").is_none(),
            "no session in the stateless era"
        );
        // Lists carry resultType and cache hints.
        let l = modern(&gw, "tools/list", None, "", 2).json();
        assert_eq!(l["result"]["cacheScope"].as_str(), Some("public"));
        assert!(sonic_rs::to_string(&l).unwrap().contains("demo__echo"));
        // A forwarded call is answered with resultType stamped on the backend's result.
        let c = modern(
            &gw,
            "tools/call",
            Some("demo__echo"),
            r#""name":"demo__echo","arguments":{"message":"m"}"#,
            3,
        )
        .json();
        assert_eq!(
            c["result"]["resultType"].as_str(),
            Some("complete"),
            "{c:?}"
        );
        assert_eq!(c["result"]["content"][0]["text"].as_str(), Some("m"));
        // Errors, in the spec's order, echoing the id.
        let r = gw.post(
            &[("mcp-method", "tools/list")],
            &format!(r#"{{"jsonrpc":"2.0","id":9,"method":"tools/list","params":{{{META}}}}}"#),
        );
        assert_eq!(
            (r.status, r.json()["error"]["code"].as_i64()),
            (400, Some(-32020)),
            "missing version header"
        );
        assert_eq!(r.json()["id"].as_i64(), Some(9));
        let r = gw.post(
            &[
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/list"),
            ],
            r#"{"jsonrpc":"2.0","id":10,"method":"tools/list","params":{}}"#,
        );
        assert_eq!(
            (r.status, r.json()["error"]["code"].as_i64()),
            (400, Some(-32602)),
            "missing _meta"
        );
        let bad = META.replace("\"2026-07-28\"", "\"v999\"");
        let r = gw.post(
            &[
                ("mcp-protocol-version", "v999"),
                ("mcp-method", "tools/list"),
            ],
            &format!(r#"{{"jsonrpc":"2.0","id":11,"method":"tools/list","params":{{{bad}}}}}"#),
        );
        let v = r.json();
        assert_eq!((r.status, v["error"]["code"].as_i64()), (400, Some(-32022)));
        assert_eq!(v["error"]["data"]["requested"].as_str(), Some("v999"));
        let r = modern(
            &gw,
            "tools/call",
            Some("wrong"),
            r#""name":"demo__echo","arguments":{"message":"m"}"#,
            12,
        );
        assert_eq!(
            (r.status, r.json()["error"]["code"].as_i64()),
            (400, Some(-32020)),
            "Mcp-Name mismatch"
        );
        let r = modern(
            &gw,
            "tools/call",
            Some("=?base64?ZGVtb19fZWNobw==?="),
            r#""name":"demo__echo","arguments":{"message":"b"}"#,
            13,
        );
        assert_eq!(
            r.json()["result"]["content"][0]["text"].as_str(),
            Some("b"),
            "base64 Mcp-Name"
        );
        let r = modern(&gw, "ping", None, "", 14);
        assert_eq!(
            (r.status, r.json()["error"]["code"].as_i64()),
            (404, Some(-32601)),
            "removed method"
        );
        assert_eq!(
            gw.request("GET", "/mcp", &[("accept", "text/event-stream")], b"")
                .status,
            405
        );
        // The legacy era still works beside it.
        let sid = gw.initialize();
        assert_eq!(
            gw.call(&sid, "demo__echo", r#"{"message":"old"}"#)["result"]["content"][0]["text"]
                .as_str(),
            Some("old")
        );
    }
}

#[test]
fn listen_acknowledges_and_tags_list_changes() {
    for driver in DRIVERS {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cfg = format!("{}[[servers]]\nid = \"late\"\ntransport = \"http\"\nurl = \"http://127.0.0.1:{port}/mcp\"\n", demo_stdio("demo", ""));
        let gw = Gateway::start(&cfg, driver, 1, &["demo"]);
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":77,"method":"subscriptions/listen","params":{{"notifications":{{"toolsListChanged":true}},{META}}}}}"#
        );
        let mut s = std::net::TcpStream::connect(&gw.addr).unwrap();
        write!(s, "POST /mcp HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\nmcp-protocol-version: 2026-07-28\r\nmcp-method: subscriptions/listen\r\ncontent-length: {}\r\n\r\n{body}", gw.addr, body.len()).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut demo = std::process::Command::new(common::bin())
            .args(["demo-server", "--http", &format!("127.0.0.1:{port}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let text = loop {
            if let Ok(n) = s.read(&mut chunk) {
                buf.extend_from_slice(&chunk[..n]);
            }
            let t = String::from_utf8_lossy(&buf).to_string();
            if t.contains("notifications/tools/list_changed") || Instant::now() > deadline {
                break t;
            }
        };
        let _ = demo.kill();
        let _ = demo.wait();
        assert!(
            text.contains("notifications/subscriptions/acknowledged"),
            "{driver}: {text}"
        );
        let ack_at = text.find("acknowledged").unwrap();
        let change_at = text
            .find("notifications/tools/list_changed")
            .unwrap_or_else(|| panic!("{driver}: no list_changed: {text}"));
        assert!(ack_at < change_at, "the acknowledgement comes first");
        assert!(
            text.contains(r#""io.modelcontextprotocol/subscriptionId":77"#),
            "{driver}: {text}"
        );
    }
}

#[test]
fn a_2025_backends_elicitation_reaches_a_2026_client_as_input_required() {
    for driver in DRIVERS {
        let cfg = demo_stdio(
            "fx",
            // A 2025-only backend (DEMO_MODERN=0): the gateway must bridge its request.
            "prefix = false\nenv = { DEMO_CONFORMANCE = \"1\", DEMO_PAGE_SIZE = \"100\", DEMO_MODERN = \"0\" }",
        );
        let gw = Gateway::start(&cfg, driver, 2, &["fx"]);
        let meta = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"elicitation":{}}}"#;
        let h = [
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "test_elicitation"),
        ];
        let first = gw
            .post(&h, &format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"test_elicitation","arguments":{{"message":"Who?"}},{meta}}}}}"#))
            .answer();
        assert_eq!(
            first["result"]["resultType"].as_str(),
            Some("input_required"),
            "{driver}: {first:?}"
        );
        assert_eq!(
            first["result"]["inputRequests"]["input"]["method"].as_str(),
            Some("elicitation/create")
        );
        let state = first["result"]["requestState"]
            .as_str()
            .unwrap()
            .to_string();
        // Tampered state: a JSON-RPC error, and the parked call is untouched.
        let tampered = format!("{}x", &state[..state.len() - 1]);
        let retry = |id: u32, st: &str| {
            gw.post(&h, &format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"test_elicitation","arguments":{{"message":"Who?"}},"inputResponses":{{"input":{{"action":"accept","content":{{"response":"alice"}}}}}},"requestState":"{st}",{meta}}}}}"#)).json()
        };
        assert_eq!(
            retry(2, &tampered)["error"]["code"].as_i64(),
            Some(-32602),
            "{driver}"
        );
        let done = retry(3, &state);
        assert_eq!(
            done["result"]["resultType"].as_str(),
            Some("complete"),
            "{driver}: {done:?}"
        );
        assert!(
            sonic_rs::to_string(&done).unwrap().contains("alice"),
            "{driver}: {done:?}"
        );
        // A state is single-use.
        assert_eq!(
            retry(4, &state)["error"]["code"].as_i64(),
            Some(-32602),
            "{driver}"
        );
        // Without the elicitation capability the backend is refused and the tool says so.
        let no_caps = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;
        let r = gw
            .post(&h, &format!(r#"{{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{{"name":"test_elicitation","arguments":{{"message":"Who?"}},{no_caps}}}}}"#))
            .answer();
        assert_ne!(
            r["result"]["resultType"].as_str(),
            Some("input_required"),
            "{driver}: {r:?}"
        );
    }
}

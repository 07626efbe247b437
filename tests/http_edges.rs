//! Protocol edges and bad input on the wire, against the real binary, on both drivers.
//!
//! Each case sends raw HTTP so the exact status, headers and JSON-RPC error are visible, then
//! checks that the gateway is still serving. Backends are the built-in demo server.

mod common;

use std::time::{Duration, Instant};

use common::{demo_stdio, Gateway, DRIVERS};
use sonic_rs::{JsonContainerTrait, JsonValueTrait};

fn config(extra_server: &str) -> String {
    format!(
        "[server]\nmax_body_bytes = 4096\nread_timeout_ms = 600\nidle_timeout_ms = 5000\n\n{}{}",
        demo_stdio("demo", ""),
        extra_server
    )
}

fn assert_alive(gw: &Gateway) {
    let h = gw.get("/health");
    assert_eq!(
        h.status,
        200,
        "gateway not serving after bad input: {}",
        h.text()
    );
}

fn code(r: &common::Resp) -> i64 {
    r.json()["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("no error code: {}", r.text()))
}

#[test]
fn malformed_messages_get_400_and_a_jsonrpc_error() {
    for driver in DRIVERS {
        let gw = Gateway::start(&config(""), driver, 1, &["demo"]);
        // The error carries the request's id when one can be read safely, else null.
        let cases: &[(&str, i64, Option<i64>)] = &[
            ("{not json", -32700, None),
            ("", -32700, None),
            // A batch without a session: refused (only a 2025-03-26 session may batch,
            // tests/batches.rs).
            (
                r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
                -32600,
                None,
            ),
            ("42", -32600, None),
            (r#"{"id":1,"method":"ping"}"#, -32600, Some(1)),
            (r#"{"jsonrpc":"2.0","id":1}"#, -32600, Some(1)),
            (
                r#"{"jsonrpc":"2.0","id":true,"method":"ping"}"#,
                -32600,
                None,
            ),
        ];
        for (body, want, id) in cases {
            let r = gw.post(&[], body);
            assert_eq!(r.status, 400, "{driver} {body}: {}", r.text());
            assert_eq!(code(&r), *want, "{driver} {body}");
            assert_eq!(r.json()["id"].as_i64(), *id, "{driver} {body}");
            assert_eq!(r.json()["id"].is_null(), id.is_none(), "{driver} {body}");
        }
        assert_alive(&gw);
    }
}

#[test]
fn wrong_headers_get_415_406_and_403() {
    for driver in DRIVERS {
        let gw = Gateway::start(&config(""), driver, 1, &["demo"]);
        let ping = br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
        let r = gw.request(
            "POST",
            "/mcp",
            &[
                ("content-type", "text/plain"),
                ("accept", "application/json, text/event-stream"),
            ],
            ping,
        );
        assert_eq!(r.status, 415, "{driver}");
        let r = gw.request(
            "POST",
            "/mcp",
            &[("content-type", "application/json")],
            ping,
        );
        assert_eq!(r.status, 406, "{driver}: missing Accept");
        let r = gw.request(
            "POST",
            "/mcp",
            &[
                ("content-type", "application/json"),
                ("accept", "application/json"),
            ],
            ping,
        );
        assert_eq!(r.status, 406, "{driver}: Accept without SSE");
        // DNS rebinding: a foreign Origin or Host on a loopback listener.
        let r = gw.post(
            &[("origin", "http://evil.example")],
            r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
        );
        assert_eq!(r.status, 403, "{driver}: foreign Origin");
        let raw = format!(
            "POST /mcp HTTP/1.1\r\nhost: evil.example:{}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{}",
            gw.addr.rsplit(':').next().unwrap(),
            ping.len(),
            String::from_utf8_lossy(ping)
        );
        let r = common::parse_response(&gw.raw(raw.as_bytes()));
        assert_eq!(r.status, 403, "{driver}: foreign Host");
        // A local Origin is fine.
        let r = gw.post(&[("origin", "http://localhost:3000")], r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#);
        assert_eq!(r.status, 200, "{driver}: local Origin");
        assert_alive(&gw);
    }
}

#[test]
fn session_rules_400_404_and_delete() {
    for driver in DRIVERS {
        let gw = Gateway::start(&config(""), driver, 2, &["demo"]);
        let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
        let r = gw.post(&[], ping);
        assert_eq!(r.status, 400, "{driver}: no session");
        let r = gw.post(
            &[("mcp-session-id", "0123456789abcdef0123456789abcdef")],
            ping,
        );
        assert_eq!(r.status, 404, "{driver}: unknown session");
        let r = gw.post(&[("mcp-session-id", "garbage!")], ping);
        assert_eq!(r.status, 404, "{driver}: malformed session id");
        let sid = gw.initialize();
        let r = gw.post(&[("mcp-session-id", &sid)], ping);
        assert_eq!(r.status, 200, "{driver}");
        assert!(r.json()["result"].is_object());
        let r = gw.post(
            &[
                ("mcp-session-id", &sid),
                ("mcp-protocol-version", "1999-01-01"),
            ],
            ping,
        );
        assert_eq!(
            r.status, 400,
            "{driver}: unsupported protocol version header"
        );
        let r = gw.request("DELETE", "/mcp", &[("mcp-session-id", &sid)], b"");
        assert_eq!(r.status, 200, "{driver}: delete");
        let r = gw.post(&[("mcp-session-id", &sid)], ping);
        assert_eq!(r.status, 404, "{driver}: deleted session");
        let r = gw.request("DELETE", "/mcp", &[("mcp-session-id", &sid)], b"");
        assert_eq!(r.status, 404, "{driver}: delete twice");
        let r = gw.request(
            "GET",
            "/mcp",
            &[("accept", "text/event-stream"), ("mcp-session-id", &sid)],
            b"",
        );
        assert_eq!(r.status, 404, "{driver}: GET stream of a deleted session");
        assert_eq!(gw.get("/nope").status, 404);
        assert_alive(&gw);
    }
}

#[test]
fn oversized_and_slow_requests_are_cut_off() {
    for driver in DRIVERS {
        let gw = Gateway::start(&config(""), driver, 1, &["demo"]);
        let sid = gw.initialize();
        let big = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"demo__echo","arguments":{{"message":"{}"}}}}}}"#,
            "x".repeat(8000)
        );
        let r = gw.post(&[("mcp-session-id", &sid)], &big);
        assert_eq!(r.status, 413, "{driver}");
        assert_eq!(code(&r), -32600);
        // Chunked body over the limit is refused too.
        let chunk = "y".repeat(3000);
        let raw = format!(
            "POST /mcp HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
            gw.addr,
            chunk.len(),
            chunk.len()
        );
        assert_eq!(
            common::parse_response(&gw.raw(raw.as_bytes())).status,
            413,
            "{driver}: chunked"
        );
        // A head over server.max_header_bytes (16 KiB) is 431, also when it arrives whole in
        // one read (the buffer may take more than the limit at once).
        let pad = "p".repeat(20_000);
        let raw = format!(
            "GET /health HTTP/1.1\r\nhost: {}\r\nx-pad: {pad}\r\n\r\n",
            gw.addr
        );
        let r = common::parse_response(&gw.raw(raw.as_bytes()));
        assert_eq!(r.status, 431, "{driver}: head of {} bytes", raw.len());
        // A client that sends half a head and stalls gets 408 after read_timeout_ms.
        let started = Instant::now();
        let out =
            gw.raw(format!("POST /mcp HTTP/1.1\r\nhost: {}\r\ncontent-le", gw.addr).as_bytes());
        let elapsed = started.elapsed();
        assert_eq!(common::parse_response(&out).status, 408, "{driver}");
        assert!(
            elapsed < Duration::from_secs(5),
            "{driver}: slow client held for {elapsed:?}"
        );
        assert_alive(&gw);
    }
}

#[test]
fn chunked_bodies_and_keep_alive_work() {
    for driver in DRIVERS {
        let gw = Gateway::start(&config(""), driver, 1, &["demo"]);
        let sid = gw.initialize();
        let body = r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"demo__echo","arguments":{"message":"chunky"}}}"#;
        let (a, b) = body.split_at(20);
        let one = format!(
            "POST /mcp HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\nmcp-session-id: {sid}\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
            a.len(),
            b.len(),
            addr = gw.addr
        );
        let ping = r#"{"jsonrpc":"2.0","id":6,"method":"ping"}"#;
        let two = format!(
            "POST /mcp HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\nmcp-session-id: {sid}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{ping}",
            ping.len(),
            addr = gw.addr
        );
        // Two pipelined requests on one connection: both answered, in order.
        let out = gw.raw(format!("{one}{two}").as_bytes());
        let first = common::parse_response(&out);
        assert_eq!(first.status, 200, "{driver}: {}", first.text());
        assert_eq!(
            first.json()["result"]["content"][0]["text"].as_str(),
            Some("chunky")
        );
        let text = String::from_utf8_lossy(&out);
        let second_at = text[4..].find("HTTP/1.1").expect("second response") + 4;
        let second = common::parse_response(&out[second_at..]);
        assert_eq!(second.json()["id"].as_i64(), Some(6), "{driver}");
    }
}

#[test]
fn tools_route_and_errors_name_the_backend() {
    for driver in DRIVERS {
        let extra = format!(
            "{}{}",
            demo_stdio("slow", "timeout_ms = 300"),
            "[[servers]]\nid = \"ghost\"\ntransport = \"stdio\"\ncommand = \"/nonexistent/definitely-not-here\"\n"
        );
        let gw = Gateway::start(&config(&extra), driver, 2, &["demo", "slow"]);
        let ghost = gw.wait_state("ghost", "down", Duration::from_secs(10));
        assert!(
            ghost["reason"]
                .as_str()
                .unwrap()
                .contains("definitely-not-here"),
            "{ghost:?}"
        );
        let sid = gw.initialize();
        // The list has every demo tool (11, over four backend pages) for both live servers.
        let list = gw
            .post(
                &[("mcp-session-id", &sid)],
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            )
            .json();
        let names: Vec<String> = list["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            names.iter().filter(|n| n.starts_with("demo__")).count(),
            11,
            "{names:?}"
        );
        assert!(names.contains(&"slow__whoami".to_string()));
        // Results come back unchanged: structuredContent, isError, every content type.
        let add = gw.call(&sid, "demo__add", r#"{"a":2,"b":40}"#);
        assert_eq!(
            add["result"]["structuredContent"]["sum"].as_i64(),
            Some(42),
            "{add:?}"
        );
        let fail = gw.call(&sid, "demo__fail", r#"{"message":"boom"}"#);
        assert_eq!(fail["result"]["isError"].as_bool(), Some(true));
        let img = gw.call(&sid, "demo__image", "{}");
        let kinds: Vec<&str> = img["result"]["content"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["image", "audio", "resource_link", "resource"]);
        // Unknown tool: -32602. Unknown method: -32601.
        let unk = gw.call(&sid, "nope__nothing", "{}");
        assert_eq!(unk["error"]["code"].as_i64(), Some(-32602));
        assert_eq!(unk["id"].as_str(), Some("c1"));
        let r = gw.post(
            &[("mcp-session-id", &sid)],
            r#"{"jsonrpc":"2.0","id":2,"method":"bogus/method"}"#,
        );
        assert_eq!(r.json()["error"]["code"].as_i64(), Some(-32601));
        // A backend that does not answer in time: error names it, within its timeout.
        let started = Instant::now();
        let slow = gw.call(&sid, "slow__sleep", r#"{"ms":5000}"#);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{driver}: timeout took {:?}",
            started.elapsed()
        );
        assert_eq!(slow["error"]["code"].as_i64(), Some(-32001), "{slow:?}");
        assert_eq!(slow["error"]["data"]["server"].as_str(), Some("slow"));
        assert!(slow["error"]["message"].as_str().unwrap().contains("slow"));
        // The slow backend still serves quick calls afterwards, and others are unaffected.
        assert_eq!(
            gw.call(&sid, "slow__whoami", "{}")["result"]["content"][0]["text"].as_str(),
            Some("slow")
        );
        // A backend that prints garbage on stdout: the line is ignored, the call works.
        let g = gw.call(&sid, "demo__garbage", "{}");
        assert_eq!(
            g["result"]["content"][0]["text"].as_str(),
            Some("garbage sent"),
            "{g:?}"
        );
        assert!(gw.log().contains("non-JSON-RPC line"), "garbage not logged");
        assert_alive(&gw);
    }
}

#[test]
fn crashed_stdio_backend_fails_fast_and_comes_back() {
    for driver in DRIVERS {
        let gw = Gateway::start(&config(""), driver, 1, &["demo"]);
        let sid = gw.initialize();
        let crash = gw.call(&sid, "demo__crash", "{}");
        assert_eq!(crash["error"]["code"].as_i64(), Some(-32000), "{crash:?}");
        assert_eq!(crash["error"]["data"]["server"].as_str(), Some("demo"));
        // While it restarts, calls fail fast with a reason; then it serves again.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let who = gw.call(&sid, "demo__whoami", "{}");
            if who["result"]["content"][0]["text"].as_str() == Some("demo") {
                break;
            }
            let msg = who["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            assert!(
                msg.contains("exited") || msg.contains("restarting"),
                "{driver}: {who:?}"
            );
            assert!(
                Instant::now() < deadline,
                "{driver}: backend never came back"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        gw.wait_ready(&["demo"], Duration::from_secs(15));
        assert!(gw.log().contains("restarting"), "restart not logged");
    }
}

#[test]
fn sessions_work_whichever_shard_accepts_the_connection() {
    for driver in DRIVERS {
        let gw = Gateway::start(&config(""), driver, 2, &["demo"]);
        let mut shards_seen = std::collections::HashSet::new();
        let mut sessions = Vec::new();
        for _ in 0..6 {
            sessions.push(gw.initialize());
        }
        // Every call opens a new connection; the kernel spreads them over both shards.
        for i in 0..60 {
            let sid = &sessions[i % sessions.len()];
            let r = gw.call(sid, "demo__echo", &format!(r#"{{"message":"m{i}"}}"#));
            assert_eq!(
                r["result"]["content"][0]["text"].as_str(),
                Some(format!("m{i}").as_str()),
                "{driver}: {r:?}"
            );
            shards_seen.insert(gw.get("/health").json()["shard"].as_u64().unwrap());
        }
        assert_eq!(
            shards_seen.len(),
            2,
            "{driver}: only saw shards {shards_seen:?}"
        );
    }
}

#[test]
fn shutdown_is_clean_and_leaves_no_children() {
    for driver in DRIVERS {
        let cfg = format!("{}{}", config(""), demo_stdio("second", ""));
        let mut gw = Gateway::start(&cfg, driver, 2, &["demo", "second"]);
        let kids = common::descendants(gw.pid());
        assert!(
            kids.len() >= 2,
            "{driver}: expected stdio children, got {kids:?}"
        );
        let status = gw.stop();
        assert!(status.success(), "{driver}: exit {status}\n{}", gw.log());
        for k in kids {
            assert!(!common::alive(k), "{driver}: child {k} left behind");
        }
        assert!(gw.log().contains("gateway stopped"));
    }
}

#[test]
fn clients_get_the_gateways_own_cursors() {
    for driver in DRIVERS {
        let cfg = format!("[proxy]\nlist_page_size = 4\n\n{}", demo_stdio("demo", ""));
        let gw = Gateway::start(&cfg, driver, 1, &["demo"]);
        let sid = gw.initialize();
        let mut names = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..10 {
            let params = cursor
                .as_ref()
                .map(|c| format!(r#","params":{{"cursor":"{c}"}}"#))
                .unwrap_or_default();
            let r = gw
                .post(
                    &[("mcp-session-id", &sid)],
                    &format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list"{params}}}"#),
                )
                .json();
            let page = r["result"]["tools"].as_array().unwrap().len();
            assert!(page <= 4, "{driver}: page of {page}");
            for t in r["result"]["tools"].as_array().unwrap().iter() {
                names.push(t["name"].as_str().unwrap().to_string());
            }
            match r["result"]["nextCursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        assert_eq!(names.len(), 11, "{driver}: every tool once: {names:?}");
        names.dedup();
        assert_eq!(names.len(), 11);
        for bad in ["nope", "o1m-999"] {
            let r = gw.post(
                &[("mcp-session-id", &sid)],
                &format!(r#"{{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{{"cursor":"{bad}"}}}}"#),
            );
            assert_eq!(
                r.json()["error"]["code"].as_i64(),
                Some(-32602),
                "{driver}: cursor {bad}"
            );
        }
    }
}

#[test]
fn per_tool_timeouts_override_the_servers() {
    for driver in DRIVERS {
        let cfg = format!(
            "{}{}",
            demo_stdio("quick", "timeout_ms = 300"),
            demo_stdio(
                "patient",
                "timeout_ms = 300\ntool_timeouts = { sleep = 5000 }"
            )
        );
        let gw = Gateway::start(&cfg, driver, 1, &["quick", "patient"]);
        let sid = gw.initialize();
        let r = gw.call(&sid, "quick__sleep", r#"{"ms":800}"#);
        assert_eq!(r["error"]["code"].as_i64(), Some(-32001), "{driver}: {r:?}");
        let r = gw.call(&sid, "patient__sleep", r#"{"ms":800}"#);
        assert_eq!(
            r["result"]["content"][0]["text"].as_str(),
            Some("slept 800ms"),
            "{driver}: {r:?}"
        );
    }
}

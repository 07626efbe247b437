//! Hostile input from clients and backends, against the real binary, on both drivers: what an
//! attack run found (issue 15), each as a regression test. Every case checks the answer and
//! then that the gateway, every shard of it, still serves.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{demo_stdio, Gateway, DRIVERS};
use sonic_rs::JsonValueTrait;

fn config(extra: &str) -> String {
    format!(
        "[server]\nread_timeout_ms = 2000\n\n[proxy]\nrequest_timeout_ms = 20000\n\n{}{extra}",
        demo_stdio(
            "demo",
            "tools_deny = [\"fail\"]\nmax_inflight = 2\ntimeout_ms = 20000"
        )
    )
}

/// Every shard answers: `n` new connections in a row each get `/health` within 3 s.
fn every_shard_serves(gw: &Gateway, n: usize) {
    for i in 0..n {
        let mut s = TcpStream::connect(&gw.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        s.write_all(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
            .unwrap();
        let mut out = Vec::new();
        let r = s.read_to_end(&mut out);
        assert!(
            r.is_ok() && out.starts_with(b"HTTP/1.1 200"),
            "connection {i} after the attack: {r:?} {:?}\n{}",
            String::from_utf8_lossy(&out),
            gw.log()
        );
    }
}

fn status_of(raw: &[u8]) -> u16 {
    common::parse_response(raw).status
}

#[test]
fn deep_nesting_is_refused_with_the_id_and_the_process_lives() {
    for driver in DRIVERS {
        let gw = Gateway::start(&config(""), driver, 2, &["demo"]);
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"x":{}{}}}}}"#,
            "[".repeat(20_000),
            "]".repeat(20_000)
        );
        for _ in 0..4 {
            let r = gw.post(&[], &body);
            assert_eq!(r.status, 400, "{driver}: {}", r.text());
            let v = r.json();
            assert_eq!(v["error"]["code"].as_i64(), Some(-32600), "{driver}");
            assert_eq!(v["id"].as_i64(), Some(1), "{driver}: the id is read back");
        }
        every_shard_serves(&gw, 10);
    }
}

#[test]
fn a_wrapping_chunk_size_gets_413_and_no_shard_dies() {
    for driver in DRIVERS {
        let gw = Gateway::start(&config(""), driver, 2, &["demo"]);
        // Enough connections that both shards get some (SO_REUSEPORT hashes them).
        for _ in 0..8 {
            let out = gw.raw(b"POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\nfffffffffffffffe\r\nxx\r\n0\r\n\r\n");
            assert_eq!(
                status_of(&out),
                413,
                "{driver}: {}",
                String::from_utf8_lossy(&out)
            );
        }
        every_shard_serves(&gw, 10);
        assert!(!gw.log().contains("panicked"), "{driver}: {}", gw.log());
    }
}

#[test]
fn repeated_id_or_name_is_refused_so_no_reply_crosses_and_no_deny_is_bypassed() {
    for driver in DRIVERS {
        let gw = Gateway::start(&config(""), driver, 1, &["demo"]);
        let sid = gw.initialize();
        let h = [
            ("mcp-session-id", sid.as_str()),
            ("mcp-protocol-version", "2025-11-25"),
        ];
        let started = Instant::now();
        for body in [
            r#"{"jsonrpc":"2.0","id":11,"id":"x","method":"tools/call","params":{"name":"demo__echo","arguments":{"message":"attacker"}}}"#,
            // Routed by the last name (allowed), run by the first (denied) in a backend that
            // keeps the first: refused instead.
            r#"{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"name":"fail","name":"demo__echo","arguments":{"message":"x"}}}"#,
            r#"{"jsonrpc":"2.0","id":13,"method":"tools/call","params":{"name":"demo__echo","arguments":{"message":"a"},"arguments":{"message":"b"}}}"#,
        ] {
            let r = gw.post(&h, body);
            assert_eq!(r.status, 400, "{driver}: {body}: {}", r.text());
            let v = r.json();
            assert_eq!(
                v["error"]["code"].as_i64(),
                Some(-32600),
                "{driver}: {body}"
            );
            assert!(v["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("duplicate member"));
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{driver}: refused at once"
        );
        // The denied tool stays denied by its own name, and echo still works.
        let denied = gw.call(&sid, "demo__fail", "{}");
        assert!(denied["error"].is_object(), "{driver}: {denied:?}");
        let ok = gw.call(&sid, "demo__echo", r#"{"message":"hi"}"#);
        assert_eq!(
            ok["result"]["structuredContent"]["message"].as_str(),
            Some("hi"),
            "{driver}"
        );
    }
}

#[test]
fn a_lone_surrogate_is_a_parse_error_at_once_and_holds_no_slot() {
    for driver in DRIVERS {
        let gw = Gateway::start(&config(""), driver, 1, &["demo"]);
        let sid = gw.initialize();
        let h = [
            ("mcp-session-id", sid.as_str()),
            ("mcp-protocol-version", "2025-11-25"),
        ];
        let started = Instant::now();
        // More than max_inflight (2) of them: none may keep a slot.
        for i in 0..4 {
            let body = format!(
                r#"{{"jsonrpc":"2.0","id":{i},"method":"tools/call","params":{{"name":"demo__echo","arguments":{{"message":"x\ud800y"}}}}}}"#
            );
            let r = gw.post(&h, &body);
            assert_eq!(r.status, 400, "{driver}: {}", r.text());
            let v = r.json();
            assert_eq!(v["error"]["code"].as_i64(), Some(-32700), "{driver}");
            assert_eq!(v["id"].as_i64(), Some(i), "{driver}");
        }
        let ok = gw.call(&sid, "demo__echo", r#"{"message":"\ud83d\ude00"}"#);
        assert_eq!(
            ok["result"]["structuredContent"]["message"].as_str(),
            Some("😀"),
            "{driver}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{driver}: {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn a_lying_backend_fails_only_its_call_and_at_once() {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/hostile_backends/lying_stdio.py"
    );
    let extra = format!(
        "[[servers]]\nid = \"liar\"\ntransport = \"stdio\"\ncommand = \"python3\"\nargs = [\"{script}\"]\ntimeout_ms = 20000\n"
    );
    for driver in DRIVERS {
        let gw = Gateway::start(&config(&extra), driver, 1, &["demo", "liar"]);
        let sid = gw.initialize();
        for (tool, why) in [
            ("liar__nullid", "could not read the request"),
            ("liar__deep", "deeper than"),
        ] {
            let started = Instant::now();
            let v = gw.call(&sid, tool, "{}");
            assert_eq!(
                v["error"]["code"].as_i64(),
                Some(-32003),
                "{driver} {tool}: {v:?}"
            );
            let msg = v["error"]["message"].as_str().unwrap_or("");
            assert!(
                msg.contains("liar") && msg.contains(why),
                "{driver} {tool}: {msg}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{driver} {tool}: failed after {:?}, not at once",
                started.elapsed()
            );
        }
        let ok = gw.call(&sid, "liar__echo", "{}");
        assert_eq!(
            ok["result"]["content"][0]["text"].as_str(),
            Some("still here"),
            "{driver}"
        );
        every_shard_serves(&gw, 3);
    }
}

#[test]
fn http_framing_follows_rfc_9112() {
    for driver in DRIVERS {
        let gw = Gateway::start(&config(""), driver, 1, &["demo"]);
        let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;
        let head = |target: &str, extra: &str, body: &str| {
            format!("POST {target} HTTP/1.1\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\nconnection: close\r\n{extra}\r\n{body}")
        };
        let host = "host: 127.0.0.1\r\n";
        let cases = [
            (
                head(
                    "/mcp",
                    &format!("{host}transfer-encoding: chunked, identity\r\n"),
                    "0\r\n\r\n",
                ),
                400,
            ),
            (
                head(
                    "/mcp",
                    &format!("{host}content-length: +{}\r\n", init.len()),
                    init,
                ),
                400,
            ),
            (
                head(
                    "/mcp",
                    &format!(
                        "{host}host: evil.example\r\ncontent-length: {}\r\n",
                        init.len()
                    ),
                    init,
                ),
                400,
            ),
            (
                head("/mcp", &format!("content-length: {}\r\n", init.len()), init),
                400,
            ),
            // Absolute form is accepted; its authority, not Host, is what the guard checks.
            (
                head(
                    &format!("http://{}/mcp", gw.addr),
                    &format!("host: evil.example\r\ncontent-length: {}\r\n", init.len()),
                    init,
                ),
                200,
            ),
            (
                head(
                    "http://evil.example/mcp",
                    &format!("{host}content-length: {}\r\n", init.len()),
                    init,
                ),
                403,
            ),
            (
                head(
                    "/mcp",
                    &format!(
                        "{host}mcp-session-id: a\r\nmcp-session-id: b\r\ncontent-length: {}\r\n",
                        init.len()
                    ),
                    init,
                ),
                400,
            ),
        ];
        for (req, want) in cases {
            let out = gw.raw(req.as_bytes());
            assert_eq!(
                status_of(&out),
                want,
                "{driver}: {req}\n{}",
                String::from_utf8_lossy(&out)
            );
        }
        every_shard_serves(&gw, 2);
    }
}

#[test]
fn a_client_that_leaves_cancels_its_call_and_frees_its_slot() {
    for driver in DRIVERS {
        let gw = Gateway::start(&config(""), driver, 1, &["demo"]);
        let sid = gw.initialize();
        // max_inflight = 2: two slow calls whose clients hang up must not keep both slots
        // for the call's 20 s timeout.
        for i in 0..2 {
            let body = format!(
                r#"{{"jsonrpc":"2.0","id":{i},"method":"tools/call","params":{{"name":"demo__sleep","arguments":{{"ms":15000}}}}}}"#
            );
            let mut s = TcpStream::connect(&gw.addr).unwrap();
            let req = format!(
                "POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\nmcp-session-id: {sid}\r\nmcp-protocol-version: 2025-11-25\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            s.write_all(req.as_bytes()).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            drop(s);
        }
        let started = Instant::now();
        let mut last = sonic_rs::Value::new();
        while started.elapsed() < Duration::from_secs(5) {
            last = gw.call(&sid, "demo__echo", r#"{"message":"next"}"#);
            if last["result"].is_object() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(
            last["result"]["structuredContent"]["message"].as_str(),
            Some("next"),
            "{driver}: slots still held after the clients left: {last:?}"
        );
        // Shards report every 500 ms.
        let mut metrics = String::new();
        for _ in 0..30 {
            metrics = gw.get("/metrics").text();
            if metrics.contains("only1mcp_client_disconnects_total 2") {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(
            metrics.contains("only1mcp_client_disconnects_total 2"),
            "{driver}: {}",
            metrics
                .lines()
                .filter(|l| l.contains("disconnect"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[test]
fn one_sessions_resource_subscriptions_are_bounded() {
    let cfg = demo_stdio(
        "demo",
        "prefix = false\nenv = { DEMO_CONFORMANCE = \"1\", DEMO_MODERN = \"0\" }",
    );
    for driver in DRIVERS {
        let gw = Gateway::start(&cfg, driver, 1, &["demo"]);
        let sid = gw.initialize();
        let c = gw.client();
        let h = [
            ("mcp-session-id", sid.as_str()),
            ("mcp-protocol-version", "2025-11-25"),
        ];
        let sub = |id: usize, uri: &str, on: bool| {
            let m = if on { "subscribe" } else { "unsubscribe" };
            let body = format!(
                r#"{{"jsonrpc":"2.0","id":{id},"method":"resources/{m}","params":{{"uri":"{uri}"}}}}"#
            );
            let r = c.post(&h, &body);
            assert_eq!(r.status, 200, "{driver}: {}", r.text());
            r.answer()
        };
        // A template makes URIs endless; 1,024 per session are accepted.
        for i in 0..1024 {
            let v = sub(i, &format!("test://template/{i}/data"), true);
            assert!(v["result"].is_object(), "{driver} #{i}: {v:?}");
        }
        let v = sub(5000, "test://template/more/data", true);
        assert_eq!(v["error"]["code"].as_i64(), Some(-32602), "{driver}: {v:?}");
        assert!(v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("1024"));
        // Subscribing again to one it holds is fine; freeing one makes room.
        assert!(sub(5001, "test://template/7/data", true)["result"].is_object());
        assert!(sub(5002, "test://template/7/data", false)["result"].is_object());
        assert!(
            sub(5003, "test://template/more/data", true)["result"].is_object(),
            "{driver}"
        );
        // Bounded in bytes too: long URIs fill the 256 KiB long before 1,024 of them.
        let other = gw.initialize();
        let h2 = [
            ("mcp-session-id", other.as_str()),
            ("mcp-protocol-version", "2025-11-25"),
        ];
        let long = "x".repeat(64 * 1024);
        let mut refused = None;
        for i in 0..8 {
            let body = format!(
                r#"{{"jsonrpc":"2.0","id":{i},"method":"resources/subscribe","params":{{"uri":"test://template/{i}{long}/data"}}}}"#
            );
            let v = c.post(&h2, &body).answer();
            if v["error"].is_object() {
                refused = Some(i);
                break;
            }
        }
        assert_eq!(
            refused,
            Some(3),
            "{driver}: the fourth 64 KiB URI passes 256 KiB"
        );
    }
}

#[test]
fn chunk_extensions_cannot_carry_a_body_past_the_limit() {
    for driver in DRIVERS {
        let gw = Gateway::start(
            &format!(
                "[server]\nmax_body_bytes = 4096\n\n{}",
                demo_stdio("demo", "")
            ),
            driver,
            1,
            &["demo"],
        );
        // 100 bytes of body in 1-byte chunks, each with a 1,000-byte extension: 100 KB
        // held for a 100-byte body. Bounded at twice the body limit plus 64 KiB.
        let mut req = b"POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
        let ext = "e".repeat(1000);
        for _ in 0..100 {
            req.extend_from_slice(format!("1;x={ext}\r\n ").as_bytes());
            req.extend_from_slice(b"\r\n");
        }
        req.extend_from_slice(b"0\r\n\r\n");
        let out = gw.raw(&req);
        assert_eq!(
            status_of(&out),
            413,
            "{driver}: {}",
            String::from_utf8_lossy(&out[..out.len().min(300)])
        );
        every_shard_serves(&gw, 2);
    }
}

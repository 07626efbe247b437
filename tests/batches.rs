//! JSON-RPC batches, which MCP 2025-03-26 servers MUST receive and later revisions removed,
//! against the real binary on both drivers, through the demo server over stdio (`demo`) and
//! over HTTP (`web`); the stdio front last.
//!
//! Every batch here is raw JSON written by hand. Of the official clients, only the TypeScript
//! SDK's `StreamableHTTPClientTransport.send` takes an array (its `Client` sends one message
//! per request): `tests/ts/batches.test.mjs` drives that transport. The Python `mcp` client
//! (2.3.0) posts one `JSONRPCMessage` per request and cannot send a batch, so there is no
//! Python test.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{demo_stdio, http_server, DemoHttp, Gateway, Resp, DRIVERS};
use sonic_rs::{JsonContainerTrait, JsonValueTrait};

fn start(driver: &str, cores: usize) -> (DemoHttp, Gateway) {
    let demo = DemoHttp::start("127.0.0.1:0", "web");
    let cfg = format!(
        "[server]\nmax_body_bytes = 1048576\n\n{}{}",
        demo_stdio("demo", ""),
        http_server("web", &demo.addr, "")
    );
    let gw = Gateway::start(&cfg, driver, cores, &["demo", "web"]);
    (demo, gw)
}

/// Opens a session that negotiated `version`; returns its id.
fn session(gw: &Gateway, version: &str) -> String {
    let r = gw.post(
        &[],
        &format!(
            r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"{version}","capabilities":{{}},"clientInfo":{{"name":"batch-test","version":"1"}}}}}}"#
        ),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["result"]["protocolVersion"].as_str(),
        Some(version)
    );
    let sid = r.header("mcp-session-id").expect("session id").to_string();
    let n = gw.post(
        &[("mcp-session-id", &sid)],
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    );
    assert_eq!(n.status, 202);
    sid
}

fn call(id: &str, tool: &str, args: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{args}}}}}"#
    )
}

fn ping(id: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#)
}

fn batch(parts: &[String]) -> String {
    format!("[{}]", parts.join(","))
}

/// A batch answered as one JSON array: its elements by their id's JSON text.
fn array(r: &Resp) -> Vec<sonic_rs::Value> {
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {}", r.text()))
        .iter()
        .cloned()
        .collect()
}

fn by_id<'a>(answers: &'a [sonic_rs::Value], id: &str) -> &'a sonic_rs::Value {
    let found: Vec<_> = answers
        .iter()
        .filter(|a| sonic_rs::to_string(&a["id"]).unwrap() == id)
        .collect();
    assert_eq!(found.len(), 1, "one answer with id {id} in {answers:?}");
    found[0]
}

fn text(v: &sonic_rs::Value) -> &str {
    v["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text result: {v:?}"))
}

fn code(v: &sonic_rs::Value) -> i64 {
    v["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("no error: {v:?}"))
}

#[test]
fn a_2025_03_26_batch_gets_one_array_of_responses() {
    for driver in DRIVERS {
        // Two shards: a session lands on either, so half the time the batch is handed off.
        let (_demo, gw) = start(driver, 2);
        for _ in 0..2 {
            let sid = session(&gw, "2025-03-26");
            let body = batch(&[
                ping("1"),
                call(r#""e""#, "demo__echo", r#"{"message":"over stdio"}"#),
                r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"nobody"}}"#
                    .into(),
                call("3", "web__echo", r#"{"message":"over http"}"#),
                r#"{"jsonrpc":"2.0","id":4,"method":"no/such"}"#.into(),
            ]);
            // No MCP-Protocol-Version header: what a 2025-03-26 client sends.
            let answers = array(&gw.post(&[("mcp-session-id", &sid)], &body));
            assert_eq!(answers.len(), 4, "{answers:?}");
            assert!(by_id(&answers, "1")["result"].is_object());
            assert_eq!(text(by_id(&answers, r#""e""#)), "over stdio");
            assert_eq!(text(by_id(&answers, "3")), "over http");
            assert_eq!(code(by_id(&answers, "4")), -32601);
            // Header naming the session's own revision: the same.
            let r = gw.post(
                &[
                    ("mcp-session-id", &sid),
                    ("mcp-protocol-version", "2025-03-26"),
                ],
                &batch(&[ping("9")]),
            );
            assert!(by_id(&array(&r), "9")["result"].is_object());
            // Duplicate ids inside one batch: each element runs and is answered.
            let dup = batch(&[
                call("5", "demo__echo", r#"{"message":"a"}"#),
                call("5", "web__echo", r#"{"message":"b"}"#),
            ]);
            let answers = array(&gw.post(&[("mcp-session-id", &sid)], &dup));
            let mut texts: Vec<&str> = answers.iter().map(text).collect();
            texts.sort();
            assert_eq!(texts, ["a", "b"], "{answers:?}");
            assert!(answers.iter().all(|a| a["id"].as_i64() == Some(5)));
        }
    }
}

#[test]
fn a_streamed_element_turns_the_answer_into_sse() {
    for driver in DRIVERS {
        // Two shards, three sessions: some batches are handed to their session's owner, and
        // their stream comes back across shards.
        let (_demo, gw) = start(driver, 2);
        for _ in 0..3 {
            let sid = session(&gw, "2025-03-26");
            let body = batch(&[
            r#"{"jsonrpc":"2.0","id":"s","method":"tools/call","params":{"name":"web__sleep","arguments":{"ms":200},"_meta":{"progressToken":"p1"}}}"#.into(),
            ping(r#""p""#),
            call(r#""e""#, "demo__echo", r#"{"message":"plain"}"#),
        ]);
            let started = Instant::now();
            let r = gw.post(&[("mcp-session-id", &sid)], &body);
            assert_eq!(r.status, 200, "{}", r.text());
            let msgs = r.sse_messages();
            assert!(started.elapsed() < Duration::from_secs(10));
            let progress: Vec<_> = msgs
                .iter()
                .filter(|m| m["method"].as_str() == Some("notifications/progress"))
                .collect();
            assert_eq!(progress.len(), 2, "{msgs:?}");
            assert!(progress
                .iter()
                .all(|m| m["params"]["progressToken"].as_str() == Some("p1")));
            let answers: Vec<_> = msgs
                .iter()
                .filter(|m| m.get("id").is_some())
                .cloned()
                .collect();
            assert_eq!(answers.len(), 3, "one response per request: {msgs:?}");
            assert_eq!(text(by_id(&answers, r#""s""#)), "slept 200ms");
            assert!(by_id(&answers, r#""p""#)["result"].is_object());
            assert_eq!(text(by_id(&answers, r#""e""#)), "plain");
            // The sleeper's progress precedes its response on the stream.
            let last_progress = msgs
                .iter()
                .rposition(|m| m["method"].as_str() == Some("notifications/progress"))
                .unwrap();
            let response = msgs
                .iter()
                .position(|m| m["id"].as_str() == Some("s"))
                .unwrap();
            assert!(last_progress < response, "{msgs:?}");
        }
    }
}

#[test]
fn notifications_and_responses_only_get_202_and_initialize_is_refused_alone() {
    for driver in DRIVERS {
        let (_demo, gw) = start(driver, 1);
        let sid = session(&gw, "2025-03-26");
        let h = [("mcp-session-id", sid.as_str())];
        let notes = r#"[{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}},{"jsonrpc":"2.0","method":"notifications/roots/list_changed"}]"#;
        let r = gw.post(&h, notes);
        assert_eq!(r.status, 202, "{}", r.text());
        assert!(r.body.is_empty(), "{}", r.text());
        let responses = r#"[{"jsonrpc":"2.0","id":"x1","result":{}},{"jsonrpc":"2.0","id":"x2","error":{"code":-1,"message":"no"}}]"#;
        let r = gw.post(&h, responses);
        assert_eq!(r.status, 202, "{}", r.text());
        assert!(r.body.is_empty());
        let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}"#;
        let answers = array(&gw.post(&h, &batch(&[init.into(), ping("2")])));
        assert_eq!(answers.len(), 2);
        let refused = by_id(&answers, "1");
        assert_eq!(code(refused), -32600);
        assert!(
            refused["error"]["message"]
                .as_str()
                .unwrap()
                .contains("initialize must not be batched"),
            "{refused:?}"
        );
        assert!(by_id(&answers, "2")["result"].is_object());
    }
}

fn refused_as_today(r: &Resp, why: &str) {
    assert_eq!(r.status, 400, "{why}: {}", r.text());
    let v = r.json();
    assert!(
        v.is_object(),
        "{why}: one error, not an array: {}",
        r.text()
    );
    assert_eq!(v["error"]["code"].as_i64(), Some(-32600), "{why}");
    assert!(v["id"].is_null(), "{why}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("batches are not supported"),
        "{why}: {}",
        r.text()
    );
}

#[test]
fn later_revisions_and_sessionless_batches_stay_refused() {
    for driver in DRIVERS {
        let (_demo, gw) = start(driver, 2);
        let body = batch(&[ping("1")]);
        let old = session(&gw, "2025-03-26");
        // The contrast: the same batch on a 2025-03-26 session is served.
        assert!(
            by_id(&array(&gw.post(&[("mcp-session-id", &old)], &body)), "1")["result"].is_object()
        );
        refused_as_today(&gw.post(&[], &body), "no session");
        // An unknown (or ended) session: 404, as for a single message, so the client
        // initializes again.
        let r = gw.post(&[("mcp-session-id", "no-such-session")], &body);
        assert_eq!(r.status, 404, "{}", r.text());
        for version in ["2025-06-18", "2025-11-25"] {
            let sid = session(&gw, version);
            refused_as_today(&gw.post(&[("mcp-session-id", &sid)], &body), version);
            let h = [
                ("mcp-session-id", sid.as_str()),
                ("mcp-protocol-version", version),
            ];
            refused_as_today(&gw.post(&h, &body), version);
        }
        // A 2025-03-26 session whose request claims a later revision.
        let h = [
            ("mcp-session-id", old.as_str()),
            ("mcp-protocol-version", "2025-11-25"),
        ];
        refused_as_today(&gw.post(&h, &body), "header 2025-11-25");
        // Stateless 2026-07-28.
        let h = [
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "ping"),
        ];
        refused_as_today(&gw.post(&h, &body), "2026-07-28");
    }
}

#[test]
fn bad_batches_are_answered_as_json_rpc_orders() {
    for driver in DRIVERS {
        let (mut demo, gw) = start(driver, 1);
        let sid = session(&gw, "2025-03-26");
        let h = [("mcp-session-id", sid.as_str())];
        // Empty: one error, not an array.
        for empty in ["[]", " [ ] "] {
            let r = gw.post(&h, empty);
            assert_eq!(r.status, 400, "{}", r.text());
            assert_eq!(code(&r.json()), -32600);
            assert!(r.json()["id"].is_null());
        }
        // Not JSON: one parse error.
        let r = gw.post(&h, r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},"#);
        assert_eq!(r.status, 400);
        assert_eq!(code(&r.json()), -32700);
        // Non-objects and nested arrays: an error each, the rest served.
        let answers = array(&gw.post(&h, &format!("[1,\"x\",[{}],{}]", ping("7"), ping("8"))));
        assert_eq!(answers.len(), 4, "{answers:?}");
        let errors: Vec<_> = answers.iter().filter(|a| a["id"].is_null()).collect();
        assert_eq!(errors.len(), 3, "{answers:?}");
        assert!(errors.iter().all(|e| code(e) == -32600));
        assert!(by_id(&answers, "8")["result"].is_object());
        // Requests and responses mixed: refused whole (the transport allows one or the other).
        let mixed = batch(&[
            ping("1"),
            r#"{"jsonrpc":"2.0","id":"x","result":{}}"#.into(),
        ]);
        let r = gw.post(&h, &mixed);
        assert_eq!(r.status, 400, "{}", r.text());
        assert_eq!(code(&r.json()), -32600);
        // 10,000 elements, the first a 3 s sleep: refused at once, nothing dispatched.
        let mut many = vec![call("0", "web__sleep", r#"{"ms":3000}"#)];
        many.extend((1..10_000).map(|i| ping(&i.to_string())));
        let started = Instant::now();
        let r = gw.post(&h, &batch(&many));
        assert_eq!(r.status, 400, "{}", r.text());
        assert_eq!(code(&r.json()), -32600);
        assert!(r.text().contains("more than 64"), "{}", r.text());
        assert!(started.elapsed() < Duration::from_millis(2500));
        // One huge element: the body limit holds for the whole batch.
        let huge = batch(&[
            ping("1"),
            call(
                "2",
                "demo__echo",
                &format!(r#"{{"message":"{}"}}"#, "x".repeat(1 << 20)),
            ),
        ]);
        let r = gw.post(&h, &huge);
        assert_eq!(r.status, 413, "{}", r.text());
        // One element's backend is dead: its error, the others answered.
        demo.kill9();
        let body = batch(&[
            call("1", "web__echo", r#"{"message":"gone"}"#),
            call("2", "demo__echo", r#"{"message":"here"}"#),
            ping("3"),
        ]);
        let answers = array(&gw.post(&h, &body));
        assert_eq!(answers.len(), 3, "{answers:?}");
        assert!(by_id(&answers, "1")["error"].is_object(), "{answers:?}");
        assert_eq!(text(by_id(&answers, "2")), "here");
        assert!(by_id(&answers, "3")["result"].is_object());
    }
}

#[test]
fn each_element_is_rate_limited_as_a_request_of_its_own() {
    for driver in DRIVERS {
        let cfg = format!(
            "[rate_limit.tools]\n\"demo__echo\" = {{ requests_per_s = 0.01, burst = 2 }}\n\n{}",
            demo_stdio("demo", "")
        );
        let gw = Gateway::start(&cfg, driver, 2, &["demo"]);
        let sid = session(&gw, "2025-03-26");
        let mut parts: Vec<String> = (1..=4)
            .map(|i| call(&i.to_string(), "demo__echo", r#"{"message":"m"}"#))
            .collect();
        parts.push(ping("5"));
        let answers = array(&gw.post(&[("mcp-session-id", &sid)], &batch(&parts)));
        assert_eq!(answers.len(), 5, "{answers:?}");
        let served = answers
            .iter()
            .filter(|a| a["result"]["content"].is_array())
            .count();
        let limited: Vec<_> = answers
            .iter()
            .filter(|a| {
                a["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("rate limit exceeded"))
            })
            .collect();
        assert_eq!(served, 2, "the tool's burst: {answers:?}");
        assert_eq!(limited.len(), 2, "{answers:?}");
        assert!(limited
            .iter()
            .all(|a| code(a) == -32000 && a["id"].as_i64().is_some()));
        assert!(by_id(&answers, "5")["result"].is_object());
    }
}

#[test]
fn elements_run_concurrently_within_max_inflight() {
    for driver in DRIVERS {
        let cfg = demo_stdio("demo", "max_inflight = 2");
        let gw = Gateway::start(&cfg, driver, 2, &["demo"]);
        let sid = session(&gw, "2025-03-26");
        let parts: Vec<String> = (1..=3)
            .map(|i| call(&i.to_string(), "demo__sleep", r#"{"ms":500}"#))
            .collect();
        let answers = array(&gw.post(&[("mcp-session-id", &sid)], &batch(&parts)));
        assert_eq!(answers.len(), 3, "{answers:?}");
        // Run one after another, all three would have been served; at once, the third finds
        // the backend's two slots taken.
        let slept = answers
            .iter()
            .filter(|a| a["result"]["content"][0]["text"].as_str() == Some("slept 500ms"))
            .count();
        let busy: Vec<_> = answers
            .iter()
            .filter(|a| {
                a["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("busy"))
            })
            .collect();
        assert_eq!((slept, busy.len()), (2, 1), "{answers:?}");
    }
}

#[test]
fn a_client_cancels_one_element() {
    for driver in DRIVERS {
        let (_demo, gw) = start(driver, 2);
        let sid = session(&gw, "2025-03-26");
        let client = gw.client();
        let body = batch(&[
            call(r#""slow""#, "web__sleep", r#"{"ms":5000}"#),
            call(r#""fast""#, "demo__echo", r#"{"message":"fast"}"#),
        ]);
        let started = Instant::now();
        let s = sid.clone();
        let waiter = std::thread::spawn(move || client.post(&[("mcp-session-id", &s)], &body));
        std::thread::sleep(Duration::from_millis(400));
        let cancel = r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"slow","reason":"test"}}"#;
        assert_eq!(gw.post(&[("mcp-session-id", &sid)], cancel).status, 202);
        let r = waiter.join().unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "the cancelled element still held the batch: {:?}",
            started.elapsed()
        );
        let answers = array(&r);
        assert_eq!(text(by_id(&answers, r#""fast""#)), "fast");
        // The cancelled element answers -32800 (what a cancelled single request answers).
        assert_eq!(code(by_id(&answers, r#""slow""#)), -32800, "{answers:?}");
    }
}

#[test]
fn stdio_front_answers_a_batch_with_one_line() {
    for driver in DRIVERS {
        let dir = common::scratch("batch-stdio");
        let cfg = dir.join(format!("{driver}.toml"));
        let conf = format!(
            "[server]\ndriver = \"{driver}\"\n\n{}",
            demo_stdio("demo", "")
        );
        std::fs::write(&cfg, conf).unwrap();
        let mut child = Command::new(common::bin())
            .args(["stdio", "--config"])
            .arg(&cfg)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines() {
                let Ok(l) = l else { return };
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        let mut send = |s: &str| {
            stdin.write_all(s.as_bytes()).unwrap();
            stdin.write_all(b"\n").unwrap();
        };
        send(
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
        );
        send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        // Until the batch's array line: lines in order (notifications may come between).
        let until = |pick: &dyn Fn(&sonic_rs::Value) -> bool| {
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut seen = Vec::new();
            while Instant::now() < deadline {
                if let Ok(l) = rx.recv_timeout(Duration::from_millis(100)) {
                    let v: sonic_rs::Value = sonic_rs::from_str(&l).unwrap();
                    if pick(&v) {
                        return (v, seen);
                    }
                    seen.push(v);
                }
            }
            panic!("no matching line; saw {seen:?}");
        };
        let (init, _) = until(&|v| v["id"].as_i64() == Some(1));
        assert_eq!(
            init["result"]["protocolVersion"].as_str(),
            Some("2025-03-26")
        );
        send(&batch(&[
            ping("2"),
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"demo__sleep","arguments":{"ms":100},"_meta":{"progressToken":"pt"}}}"#.into(),
            call("4", "demo__echo", r#"{"message":"line"}"#),
            r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":99}}"#.into(),
        ]));
        let (line, before) = until(&|v| v.is_array());
        let answers: Vec<_> = line.as_array().unwrap().iter().cloned().collect();
        assert_eq!(answers.len(), 3, "{answers:?}");
        assert!(by_id(&answers, "2")["result"].is_object());
        assert_eq!(text(by_id(&answers, "3")), "slept 100ms");
        assert_eq!(text(by_id(&answers, "4")), "line");
        // The sleeper's progress came first, each on its own line.
        let progress = before
            .iter()
            .filter(|m| {
                m["method"].as_str() == Some("notifications/progress")
                    && m["params"]["progressToken"].as_str() == Some("pt")
            })
            .count();
        assert_eq!(progress, 2, "{before:?}");
        // A batch of notifications writes nothing: the next line is the ping's answer.
        send(r#"[{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":98}}]"#);
        send(&ping("5"));
        let (pong, between) = until(&|v| v["id"].as_i64() == Some(5));
        assert!(pong["result"].is_object());
        assert!(between.iter().all(|v| !v.is_array()), "{between:?}");
        drop(stdin);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("stdio gateway did not exit on EOF");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn an_element_left_running_when_the_batch_streams_still_meets_its_timeout() {
    // One element streams (progress), so the unfinished ones are handed to the task that
    // merges the stream; a hung call among them must still time out there. (Its transport
    // timer was set in the connection task: `upstream/rewake.rs` sees the task change.)
    for driver in DRIVERS {
        let demo = DemoHttp::start("127.0.0.1:0", "web");
        let cfg = http_server("web", &demo.addr, "timeout_ms = 800");
        let gw = Gateway::start(&cfg, driver, 1, &["web"]);
        let sid = session(&gw, "2025-03-26");
        let body = batch(&[
            r#"{"jsonrpc":"2.0","id":"s","method":"tools/call","params":{"name":"web__sleep","arguments":{"ms":150},"_meta":{"progressToken":"p1"}}}"#.into(),
            call(r#""h""#, "web__sleep", r#"{"ms":6000}"#),
        ]);
        let started = Instant::now();
        let r = gw.post(&[("mcp-session-id", &sid)], &body);
        assert_eq!(r.status, 200, "{}", r.text());
        let msgs = r.sse_messages();
        let took = started.elapsed();
        let answers: Vec<_> = msgs
            .iter()
            .filter(|m| m.get("id").is_some())
            .cloned()
            .collect();
        assert_eq!(answers.len(), 2, "{driver}: {msgs:?}");
        assert_eq!(text(by_id(&answers, r#""s""#)), "slept 150ms");
        let hung = by_id(&answers, r#""h""#);
        assert!(
            hung["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("did not answer within 800 ms")),
            "{driver}: the hung element ends with its timeout, not its late answer: {hung:?}"
        );
        assert!(
            took < Duration::from_secs(4),
            "{driver}: the stream waited for the hung call ({took:?})"
        );
    }
}

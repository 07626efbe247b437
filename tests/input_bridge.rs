//! A 2026-07-28 backend's `input_required` bridged to a 2025-era client: each input request
//! reaches the client as a server-to-client request on its call's stream, the client's
//! answers resume the backend call with `inputResponses` and the backend's `requestState`,
//! round after round, and the final answer carries the client's own id. And the ways it
//! ends otherwise: a client without the capability, one that answers with an error or never,
//! answers under a wrong id or from another session, a cancelled call, a backend that asks
//! for ever or too much. The backends are the demo server speaking 2026-07-28 only
//! (`DEMO_LEGACY=0`, its conformance fixture) over stdio (`st`) and HTTP (`ht`), and a
//! careless 2026 stdio backend (`ask`, `tests/hostile_backends/asker_2026_stdio.py`); two
//! shards (answers land on either and reach the session's owner), both drivers.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{demo_stdio, http_server, DemoHttp, Gateway, DRIVERS};
use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

const FIXTURE_ENV: &[(&str, &str)] = &[("DEMO_CONFORMANCE", "1"), ("DEMO_LEGACY", "0")];
const ALL_CAPS: &str = r#"{"elicitation":{},"sampling":{},"roots":{"listChanged":true}}"#;

/// A gateway on `driver` with the three backends (`extra` added to each), and the HTTP demo.
fn gateway(driver: &str, extra: &str) -> (Gateway, DemoHttp) {
    let demo = DemoHttp::start_with("127.0.0.1:0", "ht", FIXTURE_ENV, None);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/hostile_backends/asker_2026_stdio.py"
    );
    let cfg = format!(
        "{}{}[[servers]]\nid = \"ask\"\ntransport = \"stdio\"\ncommand = \"python3\"\nargs = [\"{script}\"]\n{extra}\n",
        demo_stdio(
            "st",
            &format!("env = {{ DEMO_CONFORMANCE = \"1\", DEMO_LEGACY = \"0\" }}\n{extra}")
        ),
        http_server("ht", &demo.addr, extra),
    );
    let gw = Gateway::start(&cfg, driver, 2, &["st", "ht", "ask"]);
    (gw, demo)
}

/// A 2025-11-25 session over raw HTTP.
struct Session {
    addr: String,
    sid: String,
}

impl Session {
    /// `initialize` declaring `caps`, then `notifications/initialized`.
    fn open(gw: &Gateway, caps: &str) -> Session {
        let client = gw.client();
        let r = client.post(
            &[],
            &format!(
                r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"2025-11-25","capabilities":{caps},"clientInfo":{{"name":"bridge-test","version":"1"}}}}}}"#
            ),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let sid = r.header("mcp-session-id").expect("session id").to_string();
        let s = Session {
            addr: gw.addr.clone(),
            sid,
        };
        assert_eq!(
            s.post(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
                .status,
            202
        );
        s
    }

    /// POSTs `body` (a response or notification) in the session.
    fn post(&self, body: &str) -> common::Resp {
        common::Client {
            addr: self.addr.clone(),
        }
        .post(
            &[
                ("mcp-session-id", &self.sid),
                ("mcp-protocol-version", "2025-11-25"),
            ],
            body,
        )
    }

    /// Starts request `method` with `params` under id `"c1"`; its answer is read as it comes.
    fn start(&self, method: &str, params: &str) -> Answer {
        let body =
            format!(r#"{{"jsonrpc":"2.0","id":"c1","method":"{method}","params":{params}}}"#);
        let mut s = TcpStream::connect(&self.addr).unwrap();
        write!(
            s,
            "POST /mcp HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\nmcp-session-id: {}\r\nmcp-protocol-version: 2025-11-25\r\ncontent-length: {}\r\n\r\n{body}",
            self.addr,
            self.sid,
            body.len()
        )
        .unwrap();
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        Answer {
            s,
            raw: Vec::new(),
            head: None,
            body: Vec::new(),
            taken: 0,
            closed: false,
        }
    }

    /// A `tools/call` of `tool`, answering each relayed request with `answer` (no answer when
    /// it gives `None`); returns the relayed requests and the final response.
    fn call(&self, tool: &str, answer: impl Fn(&Value) -> Option<String>) -> (Vec<Value>, Value) {
        let a = self.start(
            "tools/call",
            &format!(r#"{{"name":"{tool}","arguments":{{}}}}"#),
        );
        self.drive(a, answer)
    }

    /// Reads `a` to its end, answering relayed requests as [`Session::call`] does.
    fn drive(
        &self,
        mut a: Answer,
        answer: impl Fn(&Value) -> Option<String>,
    ) -> (Vec<Value>, Value) {
        let mut asked = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let m = a
                .next(deadline)
                .unwrap_or_else(|| panic!("the call never ended; asked {asked:?}"));
            if m["id"].as_str() == Some("c1") {
                return (asked, m);
            }
            if m.get("method").is_some() && m.get("id").is_some() {
                if let Some(body) = answer(&m) {
                    let r = self.post(&body);
                    assert_eq!(r.status, 202, "{}", r.text());
                }
                asked.push(m);
            }
        }
    }
}

/// The answer to a request, read as it arrives (JSON, or SSE in chunks).
struct Answer {
    s: TcpStream,
    raw: Vec<u8>,
    /// (end of the head, chunked, SSE) once the head is in.
    head: Option<(usize, bool, bool)>,
    /// The body decoded so far, and how much of it was handed out.
    body: Vec<u8>,
    taken: usize,
    closed: bool,
}

impl Answer {
    /// The next JSON-RPC message, or `None` if the answer ended or `deadline` passed first.
    fn next(&mut self, deadline: Instant) -> Option<Value> {
        loop {
            self.decode();
            if let Some(m) = self.take() {
                return Some(m);
            }
            if self.closed || Instant::now() >= deadline {
                return None;
            }
            let mut chunk = [0u8; 16384];
            match self.s.read(&mut chunk) {
                Ok(0) => self.closed = true,
                Ok(n) => self.raw.extend_from_slice(&chunk[..n]),
                Err(_) => {}
            }
        }
    }

    /// Everything that came after the answer's last message (`deadline` bounds the wait).
    fn rest(&mut self, deadline: Instant) -> Vec<Value> {
        let mut out = Vec::new();
        while let Some(m) = self.next(deadline) {
            out.push(m);
        }
        out
    }

    fn decode(&mut self) {
        if self.head.is_none() {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut r = httparse::Response::new(&mut headers);
            let Ok(httparse::Status::Complete(n)) = r.parse(&self.raw) else {
                return;
            };
            assert_eq!(r.code, Some(200), "{}", String::from_utf8_lossy(&self.raw));
            let has = |k: &str, v: &str| {
                r.headers.iter().any(|h| {
                    h.name.eq_ignore_ascii_case(k) && String::from_utf8_lossy(h.value).contains(v)
                })
            };
            self.head = Some((
                n,
                has("transfer-encoding", "chunked"),
                has("content-type", "text/event-stream"),
            ));
            self.raw.drain(..n);
        }
        let Some((_, chunked, _)) = self.head else {
            return;
        };
        if !chunked {
            self.body.append(&mut self.raw);
            return;
        }
        while let Ok(httparse::Status::Complete((used, size))) =
            httparse::parse_chunk_size(&self.raw)
        {
            let size = size as usize;
            if self.raw.len() < used + size + 2 {
                return;
            }
            self.body.extend_from_slice(&self.raw[used..used + size]);
            self.raw.drain(..used + size + 2);
            if size == 0 {
                self.closed = true;
                return;
            }
        }
    }

    fn take(&mut self) -> Option<Value> {
        let (_, _, sse) = self.head?;
        if !sse {
            if self.taken > 0 || self.body.is_empty() {
                return None;
            }
            let v = sonic_rs::from_slice(&self.body).ok()?;
            self.taken = self.body.len();
            return Some(v);
        }
        loop {
            let rest = &self.body[self.taken..];
            let end = rest.windows(2).position(|w| w == b"\n\n")?;
            let event = String::from_utf8_lossy(&rest[..end]).into_owned();
            self.taken += end + 2;
            let data: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim_start)
                .collect();
            let data = data.join("\n");
            if !data.trim().is_empty() {
                return Some(sonic_rs::from_str(&data).unwrap());
            }
        }
    }
}

/// A fitting answer to a relayed request: an accepted form filled from its schema (`name`
/// Ada, `color` blue, `context` ctx, anything else v), a sampled "Paris", two roots.
fn auto(req: &Value) -> Option<String> {
    let result = match req["method"].as_str().unwrap() {
        "elicitation/create" => {
            let props = req["params"]["requestedSchema"]["properties"]
                .as_object()
                .expect("a form schema");
            let fields: Vec<String> = props
                .iter()
                .map(|(k, _)| {
                    let v = match k {
                        "name" => "Ada",
                        "color" => "blue",
                        "context" => "ctx",
                        _ => "v",
                    };
                    format!(r#""{k}":"{v}""#)
                })
                .collect();
            format!(
                r#"{{"action":"accept","content":{{{}}}}}"#,
                fields.join(",")
            )
        }
        "sampling/createMessage" => {
            r#"{"role":"assistant","content":{"type":"text","text":"Paris"},"model":"test-model","stopReason":"endTurn"}"#.to_string()
        }
        "roots/list" => {
            r#"{"roots":[{"uri":"file:///work","name":"work"},{"uri":"file:///tmp"}]}"#.to_string()
        }
        other => panic!("unexpected request {other}"),
    };
    Some(reply(req, &result))
}

/// The client's response to `req` with `result`.
fn reply(req: &Value, result: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{},"result":{result}}}"#,
        sonic_rs::to_string(&req["id"]).unwrap()
    )
}

/// The text of a tool result.
fn text(v: &Value) -> String {
    v["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {v:?}"))
        .to_string()
}

fn methods(asked: &[Value]) -> Vec<&str> {
    asked
        .iter()
        .map(|r| r["method"].as_str().unwrap())
        .collect()
}

/// This gateway's `only1mcp_client_input_pending` of `kind`, summed over shards.
fn pending(gw: &Gateway, kind: &str) -> i64 {
    let needle = format!("kind=\"{kind}\"}} ");
    gw.get("/metrics")
        .text()
        .lines()
        .filter(|l| l.starts_with("only1mcp_client_input_pending{"))
        .filter_map(|l| {
            l.split_once(&needle)
                .map(|(_, n)| n.parse::<i64>().unwrap())
        })
        .sum()
}

/// Polls `/metrics` (rendered every 500 ms) until `pending(kind)` is `want`.
fn wait_pending(gw: &Gateway, kind: &str, want: i64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while pending(gw, kind) != want {
        assert!(
            Instant::now() < deadline,
            "{what}: {kind} never {want}:\n{}",
            gw.get("/metrics").text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_2026_backends_input_requests_reach_a_2025_client_and_its_answers_resume_the_call() {
    for driver in DRIVERS {
        let (gw, _demo) = gateway(driver, "");
        let s = Session::open(&gw, ALL_CAPS);
        for b in ["st", "ht"] {
            let what = format!("{driver}/{b}");
            let tool = |t: &str| format!("{b}__test_input_required_result_{t}");

            let (asked, done) = s.call(&tool("elicitation"), auto);
            assert_eq!(methods(&asked), ["elicitation/create"], "{what}");
            assert_eq!(
                asked[0]["params"]["message"].as_str(),
                Some("What is your name?"),
                "{what}"
            );
            assert!(
                asked[0]["id"].as_str().unwrap().starts_with("o1m."),
                "{what}: the gateway's own id: {:?}",
                asked[0]
            );
            assert_eq!(text(&done), "Hello, Ada!", "{what}");

            let (asked, done) = s.call(&tool("sampling"), auto);
            assert_eq!(methods(&asked), ["sampling/createMessage"], "{what}");
            assert_eq!(text(&done), "Sampling result: Paris", "{what}");

            let (asked, done) = s.call(&tool("list_roots"), auto);
            assert_eq!(methods(&asked), ["roots/list"], "{what}");
            assert_eq!(text(&done), "Found 2 root(s)", "{what}");

            // Three requests in one round, with the backend's sealed requestState.
            let (asked, done) = s.call(&tool("multiple_inputs"), auto);
            let mut m = methods(&asked);
            m.sort();
            assert_eq!(
                m,
                ["elicitation/create", "roots/list", "sampling/createMessage"],
                "{what}"
            );
            assert_eq!(
                text(&done),
                "Name: Ada; Greeting: Paris; Roots: 2",
                "{what}"
            );

            // Two rounds, a new requestState each.
            let (asked, done) = s.call(&tool("multi_round"), auto);
            assert_eq!(
                methods(&asked),
                ["elicitation/create", "elicitation/create"],
                "{what}"
            );
            assert_eq!(
                text(&done),
                "Multi-round complete for Ada who likes blue",
                "{what}"
            );

            // A prompt asks too.
            let a = s.start(
                "prompts/get",
                &format!(r#"{{"name":"{b}__test_input_required_result_prompt"}}"#),
            );
            let (asked, done) = s.drive(a, auto);
            assert_eq!(methods(&asked), ["elicitation/create"], "{what}");
            let got = sonic_rs::to_string(&done["result"]["messages"]).unwrap();
            assert!(got.contains("Prompt with context: ctx"), "{what}: {done:?}");

            // A backend that says something first (progress) before asking: the answer was
            // already a stream, and the progress carries the client's own token.
            let a = s.start(
                "tools/call",
                &format!(
                    r#"{{"name":"{b}__test_streaming_elicitation","arguments":{{}},"_meta":{{"progressToken":"mine"}}}}"#
                ),
            );
            let mut a = a;
            let first = a
                .next(Instant::now() + Duration::from_secs(10))
                .expect("progress first");
            assert_eq!(
                first["method"].as_str(),
                Some("notifications/progress"),
                "{what}: {first:?}"
            );
            assert_eq!(
                first["params"]["progressToken"].as_str(),
                Some("mine"),
                "{what}"
            );
            let (asked, done) = s.drive(a, auto);
            assert_eq!(methods(&asked), ["elicitation/create"], "{what}");
            assert_eq!(text(&done), "Received: v", "{what}");
        }
        wait_pending(&gw, "bridged", 0, driver);
    }
}

#[test]
fn the_backend_gets_the_clients_capabilities_its_answers_and_its_own_state() {
    for driver in DRIVERS {
        let (gw, _demo) = gateway(driver, "");
        let s = Session::open(
            &gw,
            r#"{"experimental":{"x":{}},"elicitation":{"form":{}}}"#,
        );
        let (asked, done) = s.call("ask__ask_anyway", |req| {
            Some(reply(
                req,
                r#"{"action":"accept","content":{"name":"Ada"}}"#,
            ))
        });
        assert_eq!(methods(&asked), ["elicitation/create"], "{driver}");
        let seen: Value = sonic_rs::from_str(&text(&done)).unwrap();
        let want: Value = sonic_rs::from_str(
            r#"{"clientCapabilities":{"elicitation":{"form":{}}},"inputResponses":{"who":{"action":"accept","content":{"name":"Ada"}}},"requestState":"s-1"}"#,
        )
        .unwrap();
        assert_eq!(seen, want, "{driver}");
    }
}

#[test]
fn a_client_without_the_capability_or_with_an_error_gets_a_clear_error() {
    for driver in DRIVERS {
        let (gw, _demo) = gateway(driver, "");
        let sampler = Session::open(&gw, r#"{"sampling":{}}"#);
        // A backend that asks anyway: the gateway refuses to relay it.
        let (asked, done) = sampler.call("ask__ask_anyway", auto);
        assert!(asked.is_empty(), "{driver}: {asked:?}");
        assert_eq!(
            done["error"]["code"].as_i64(),
            Some(-32021),
            "{driver}: {done:?}"
        );
        let msg = done["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains("`elicitation` capability") && msg.contains("backend `ask`"),
            "{driver}: {msg}"
        );
        // A well-behaved one was told the truth and says so itself.
        let (asked, done) = sampler.call("st__test_input_required_result_elicitation", auto);
        assert!(asked.is_empty(), "{driver}: {asked:?}");
        assert_eq!(
            done["error"]["code"].as_i64(),
            Some(-32021),
            "{driver}: {done:?}"
        );

        let s = Session::open(&gw, ALL_CAPS);
        for b in ["st", "ht"] {
            let tool = format!("{b}__test_input_required_result_elicitation");
            // The client answers with an error: the call ends with it.
            let (_, done) = s.call(&tool, |req| {
                Some(format!(
                    r#"{{"jsonrpc":"2.0","id":{},"error":{{"code":-1,"message":"User rejected the request"}}}}"#,
                    sonic_rs::to_string(&req["id"]).unwrap()
                ))
            });
            assert_eq!(
                done["error"]["code"].as_i64(),
                Some(-1),
                "{driver}/{b}: {done:?}"
            );
            let msg = done["error"]["message"].as_str().unwrap();
            assert!(
                msg.contains("User rejected the request") && msg.contains("elicitation/create"),
                "{driver}/{b}: {msg}"
            );
            // An answer that is no result object.
            let (_, done) = s.call(&tool, |req| Some(reply(req, "[1]")));
            assert_eq!(
                done["error"]["code"].as_i64(),
                Some(-32602),
                "{driver}/{b}: {done:?}"
            );
        }
        wait_pending(&gw, "bridged", 0, driver);
    }
}

#[test]
fn a_client_that_never_answers_ends_the_call_at_its_timeout_and_nothing_stays_behind() {
    for driver in DRIVERS {
        let (gw, _demo) = gateway(driver, "timeout_ms = 1500");
        let s = Session::open(&gw, ALL_CAPS);
        for b in ["st", "ht"] {
            let what = format!("{driver}/{b}");
            let started = Instant::now();
            let mut a = s.start(
                "tools/call",
                &format!(
                    r#"{{"name":"{b}__test_input_required_result_elicitation","arguments":{{}}}}"#
                ),
            );
            let asked = a
                .next(Instant::now() + Duration::from_secs(10))
                .expect("the relayed request");
            assert_eq!(
                asked["method"].as_str(),
                Some("elicitation/create"),
                "{what}"
            );
            // It waits in the table while the client does nothing.
            wait_pending(&gw, "bridged", 1, &what);
            let rest = a.rest(Instant::now() + Duration::from_secs(10));
            let took = started.elapsed();
            let done = rest.last().expect("an answer");
            assert_eq!(done["id"].as_str(), Some("c1"), "{what}: {rest:?}");
            assert_eq!(
                done["error"]["code"].as_i64(),
                Some(-32001),
                "{what}: {done:?}"
            );
            let msg = done["error"]["message"].as_str().unwrap();
            assert!(
                msg.contains("did not answer") && msg.contains("elicitation/create"),
                "{what}: {msg}"
            );
            assert!(
                took >= Duration::from_millis(1400) && took < Duration::from_secs(5),
                "{what}: ended after {took:?}"
            );
            // The client was told its request is void.
            let cancel = rest
                .iter()
                .find(|m| m["method"].as_str() == Some("notifications/cancelled"))
                .unwrap_or_else(|| panic!("{what}: no cancellation in {rest:?}"));
            assert_eq!(cancel["params"]["requestId"], asked["id"], "{what}");
            wait_pending(&gw, "bridged", 0, &what);
            // A late answer goes nowhere, and the session carries on.
            let late = s.post(&auto(&asked).unwrap());
            assert_eq!(late.status, 202, "{what}");
            let (_, again) = s.call(
                &format!("{b}__test_input_required_result_elicitation"),
                auto,
            );
            assert_eq!(text(&again), "Hello, Ada!", "{what}");
        }
        wait_pending(&gw, "bridged", 0, driver);
    }
}

#[test]
fn answers_under_a_wrong_id_or_from_another_session_do_not_reach_the_call() {
    for driver in DRIVERS {
        let (gw, _demo) = gateway(driver, "");
        let alice = Session::open(&gw, ALL_CAPS);
        let mallory = Session::open(&gw, ALL_CAPS);
        for b in ["st", "ht"] {
            let what = format!("{driver}/{b}");
            let mut a = alice.start(
                "tools/call",
                &format!(
                    r#"{{"name":"{b}__test_input_required_result_elicitation","arguments":{{}}}}"#
                ),
            );
            let asked = a
                .next(Instant::now() + Duration::from_secs(10))
                .expect("the relayed request");
            let forged_id = r#""o1m.0.999999999""#;
            let cases = [
                // The right id, from another session.
                (
                    &mallory,
                    reply(
                        &asked,
                        r#"{"action":"accept","content":{"name":"Mallory"}}"#,
                    ),
                ),
                // A forged id, in the right session.
                (
                    &alice,
                    format!(
                        r#"{{"jsonrpc":"2.0","id":{forged_id},"result":{{"action":"accept","content":{{"name":"Forged"}}}}}}"#
                    ),
                ),
            ];
            for (who, body) in cases {
                let r = who.post(&body);
                assert_eq!(r.status, 202, "{what}: {}", r.text());
            }
            // Nothing reached the call: it still waits, and takes the right answer.
            assert!(
                a.next(Instant::now() + Duration::from_millis(300))
                    .is_none(),
                "{what}: the call moved on"
            );
            wait_pending(&gw, "bridged", 1, &what);
            let r = alice.post(&auto(&asked).unwrap());
            assert_eq!(r.status, 202, "{what}");
            let (more, done) = alice.drive(a, |_| None);
            assert!(more.is_empty(), "{what}: {more:?}");
            assert_eq!(text(&done), "Hello, Ada!", "{what}");
            // A second answer to the same request goes nowhere.
            assert_eq!(alice.post(&auto(&asked).unwrap()).status, 202, "{what}");
        }
        wait_pending(&gw, "bridged", 0, driver);
    }
}

#[test]
fn a_cancelled_call_ends_its_bridge() {
    for driver in DRIVERS {
        let (gw, _demo) = gateway(driver, "");
        let s = Session::open(&gw, ALL_CAPS);
        for b in ["st", "ht"] {
            let what = format!("{driver}/{b}");
            let mut a = s.start(
                "tools/call",
                &format!(
                    r#"{{"name":"{b}__test_input_required_result_multi_round","arguments":{{}}}}"#
                ),
            );
            let asked = a
                .next(Instant::now() + Duration::from_secs(10))
                .expect("the relayed request");
            assert_eq!(
                asked["method"].as_str(),
                Some("elicitation/create"),
                "{what}"
            );
            wait_pending(&gw, "bridged", 1, &what);
            let r = s.post(
                r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"c1","reason":"changed my mind"}}"#,
            );
            assert_eq!(r.status, 202, "{what}");
            // The stream ends without an answer, and the request left the table.
            let rest = a.rest(Instant::now() + Duration::from_secs(5));
            assert!(
                rest.iter()
                    .all(|m| m.get("id").is_none() || m["id"] != "c1"),
                "{what}: {rest:?}"
            );
            assert!(a.closed, "{what}: the stream did not end");
            wait_pending(&gw, "bridged", 0, &what);
            assert_eq!(s.post(&auto(&asked).unwrap()).status, 202, "{what}");
        }
    }
}

#[test]
fn a_backend_that_asks_for_ever_or_for_too_much_is_stopped() {
    for driver in DRIVERS {
        let (gw, _demo) = gateway(driver, "");
        let s = Session::open(&gw, ALL_CAPS);
        let (asked, done) = s.call("ask__ask_forever", auto);
        assert!(asked.is_empty(), "{driver}: {asked:?}");
        assert_eq!(
            done["error"]["code"].as_i64(),
            Some(-32003),
            "{driver}: {done:?}"
        );
        assert!(
            done["error"]["message"]
                .as_str()
                .unwrap()
                .contains("more than 16 times"),
            "{driver}: {done:?}"
        );
        let (asked, done) = s.call("ask__ask_many", auto);
        assert!(asked.is_empty(), "{driver}: {asked:?}");
        assert_eq!(
            done["error"]["code"].as_i64(),
            Some(-32003),
            "{driver}: {done:?}"
        );
        assert!(
            done["error"]["message"]
                .as_str()
                .unwrap()
                .contains("more than 16 input requests"),
            "{driver}: {done:?}"
        );
        wait_pending(&gw, "bridged", 0, driver);
    }
}

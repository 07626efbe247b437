//! The gateway's own `subscriptions/listen` toward 2026-07-28 backends: a backend's list change
//! reaches a 2026 client's listen stream and a 2025 client's GET stream within a second (the
//! demo's `test_trigger_*` tools announce a change without changing a list: the gateway
//! forwards the announcement); the listen comes back after the backend restarts, with
//! backoff and without a log flood; and a backend that floods `list_changed` is re-listed a
//! bounded number of times. The backend is the demo server speaking 2026-07-28 only
//! (`DEMO_LEGACY=0`), over stdio and over HTTP, on both drivers.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::{demo_stdio, http_server, DemoHttp, Gateway, DRIVERS};

const META: &str = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;
const FIXTURE_ENV: &[(&str, &str)] = &[
    ("DEMO_CONFORMANCE", "1"),
    ("DEMO_LEGACY", "0"),
    ("DEMO_PAGE_SIZE", "100"),
];
const TOOLS_CHANGED: &str = r#""method":"notifications/tools/list_changed""#;
const PROMPTS_CHANGED: &str = r#""method":"notifications/prompts/list_changed""#;
const OPEN: &str = "upstream subscriptions/listen open";

/// An SSE response read as it arrives.
struct Stream {
    s: TcpStream,
    buf: Vec<u8>,
    /// Bytes already matched (a wait looks only at what came after).
    seen: usize,
}

impl Stream {
    fn open(addr: &str, head: &str, body: &str) -> Stream {
        let mut s = TcpStream::connect(addr).unwrap();
        write!(s, "{head}content-length: {}\r\n\r\n{body}", body.len()).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        Stream {
            s,
            buf: Vec::new(),
            seen: 0,
        }
    }

    fn fill(&mut self) {
        let mut chunk = [0u8; 8192];
        match self.s.read(&mut chunk) {
            Ok(n) if n > 0 => self.buf.extend_from_slice(&chunk[..n]),
            // Closed: nothing more will come; do not spin on it.
            Ok(_) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => {}
        }
    }

    /// Waits until `needle` arrives after what was already matched; true if it came by
    /// `deadline`.
    fn wait_for(&mut self, needle: &str, deadline: Instant) -> bool {
        loop {
            if let Some(at) = find(&self.buf[self.seen..], needle) {
                self.seen += at + needle.len();
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            self.fill();
        }
    }

    /// Reads for `d`, then counts `needle` in everything not matched yet (and marks it read).
    fn count_for(&mut self, needle: &str, d: Duration) -> usize {
        let until = Instant::now() + d;
        while Instant::now() < until {
            self.fill();
        }
        let text = String::from_utf8_lossy(&self.buf[self.seen..]).into_owned();
        self.seen = self.buf.len();
        text.matches(needle).count()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf).into_owned()
    }
}

fn find(hay: &[u8], needle: &str) -> Option<usize> {
    hay.windows(needle.len())
        .position(|w| w == needle.as_bytes())
}

/// A 2026 client's listen on the gateway for tool and prompt list changes, acknowledged.
fn listen(gw: &Gateway, id: &str) -> Stream {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":"{id}","method":"subscriptions/listen","params":{{"notifications":{{"toolsListChanged":true,"promptsListChanged":true}},{META}}}}}"#
    );
    let head = format!("POST /mcp HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\nmcp-protocol-version: 2026-07-28\r\nmcp-method: subscriptions/listen\r\n", gw.addr);
    let mut s = Stream::open(&gw.addr, &head, &body);
    let ack = "notifications/subscriptions/acknowledged";
    assert!(
        s.wait_for(ack, Instant::now() + Duration::from_secs(10)),
        "listen not acknowledged: {}",
        s.text()
    );
    s
}

/// A 2025 client's session on the gateway with its standalone GET stream open.
fn get_stream(gw: &Gateway) -> Stream {
    let sid = gw.initialize();
    let head = format!(
        "GET /mcp HTTP/1.1\r\nhost: {}\r\naccept: text/event-stream\r\nmcp-session-id: {sid}\r\nmcp-protocol-version: 2025-11-25\r\n",
        gw.addr
    );
    let mut s = Stream::open(&gw.addr, &head, "");
    assert!(
        s.wait_for("text/event-stream", Instant::now() + Duration::from_secs(5)),
        "no GET stream: {}",
        s.text()
    );
    s
}

/// A 2026 `tools/call` of `tool` through the gateway.
fn call(addr: &str, tool: &str) -> common::Resp {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{tool}","arguments":{{}},{META}}}}}"#
    );
    common::Client {
        addr: addr.to_string(),
    }
    .post(
        &[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", tool),
        ],
        &body,
    )
}

fn log_count(gw: &Gateway, needle: &str) -> usize {
    gw.log().matches(needle).count()
}

/// Waits until the gateway's log holds `needle` `n` times.
fn wait_log(gw: &Gateway, needle: &str, n: usize, within: Duration) {
    let deadline = Instant::now() + within;
    while log_count(gw, needle) < n {
        assert!(
            Instant::now() < deadline,
            "`{needle}` never seen {n} times:\n{}",
            gw.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The fixture backend as `fx`, 2026 only, over `transport`; the HTTP one is returned too.
fn backend(transport: &str, stderr: Option<&std::path::Path>) -> (String, Option<DemoHttp>) {
    match transport {
        "stdio" => (
            demo_stdio(
                "fx",
                r#"env = { DEMO_CONFORMANCE = "1", DEMO_LEGACY = "0", DEMO_PAGE_SIZE = "100" }"#,
            ),
            None,
        ),
        _ => {
            let demo = DemoHttp::start_with("127.0.0.1:0", "fx", FIXTURE_ENV, stderr);
            (http_server("fx", &demo.addr, ""), Some(demo))
        }
    }
}

/// Triggers `tool` on the backend (through the gateway) and checks that `needle` reaches
/// both clients within a second of the call's answer.
fn announce_reaches_both(
    gw: &Gateway,
    tool: &str,
    needle: &str,
    modern: &mut Stream,
    legacy: &mut Stream,
    what: &str,
) {
    let r = call(&gw.addr, tool);
    assert_eq!(r.status, 200, "{what}: {}", r.text());
    assert!(
        r.text().contains("open listen stream"),
        "{what}: {}",
        r.text()
    );
    let answered = Instant::now();
    let within = answered + Duration::from_secs(1);
    assert!(
        modern.wait_for(needle, within),
        "{what}: {needle} did not reach the 2026 listen within 1 s: {}\n{}",
        modern.text(),
        gw.log()
    );
    let tag = r#""io.modelcontextprotocol/subscriptionId":"L1""#;
    assert!(
        modern.text().contains(tag),
        "{what}: tagged: {}",
        modern.text()
    );
    let modern_after = answered.elapsed();
    assert!(
        legacy.wait_for(needle, within),
        "{what}: {needle} did not reach the 2025 GET stream within 1 s: {}",
        legacy.text()
    );
    eprintln!(
        "{what}: announced; 2026 listen after {modern_after:?}, both after {:?}",
        answered.elapsed()
    );
}

#[test]
fn a_2026_backends_list_change_reaches_both_eras_clients_within_a_second() {
    for transport in ["stdio", "http"] {
        for driver in DRIVERS {
            let what = format!("{transport}/{driver}");
            let (cfg, _demo) = backend(transport, None);
            let gw = Gateway::start(&cfg, driver, 2, &["fx"]);
            wait_log(&gw, OPEN, 1, Duration::from_secs(10));
            let mut modern = listen(&gw, "L1");
            let mut legacy = get_stream(&gw);
            // The lists do not change: the backend's announcement is what is forwarded.
            let before = gw.post(
                &[
                    ("mcp-protocol-version", "2026-07-28"),
                    ("mcp-method", "tools/list"),
                ],
                &format!(r#"{{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{{{META}}}}}"#),
            );
            for (tool, needle) in [
                ("fx__test_trigger_tool_change", TOOLS_CHANGED),
                ("fx__test_trigger_prompt_change", PROMPTS_CHANGED),
                ("fx__test_trigger_tool_change", TOOLS_CHANGED),
            ] {
                announce_reaches_both(&gw, tool, needle, &mut modern, &mut legacy, &what);
            }
            let after = gw.post(
                &[
                    ("mcp-protocol-version", "2026-07-28"),
                    ("mcp-method", "tools/list"),
                ],
                &format!(r#"{{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{{{META}}}}}"#),
            );
            assert_eq!(
                before.json()["result"]["tools"],
                after.json()["result"]["tools"],
                "{what}"
            );
            // One upstream listen per backend per gateway, whatever the shard count.
            assert_eq!(log_count(&gw, OPEN), 1, "{what}: {}", gw.log());
        }
    }
}

/// Holds `addr` while the backend is down: accepts, reads the request head and closes,
/// counting the gateway's `subscriptions/listen` attempts, for `d`.
fn count_listen_attempts(addr: &str, d: Duration) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    let l = loop {
        match TcpListener::bind(addr) {
            Ok(l) => break l,
            Err(e) => {
                assert!(Instant::now() < deadline, "cannot hold {addr}: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    };
    l.set_nonblocking(true).unwrap();
    let until = Instant::now() + d;
    let mut attempts = 0;
    while Instant::now() < until {
        match l.accept() {
            Ok((mut s, _)) => {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(Duration::from_millis(200)))
                    .unwrap();
                let mut head = [0u8; 4096];
                let n = s.read(&mut head).unwrap_or(0);
                if String::from_utf8_lossy(&head[..n])
                    .to_ascii_lowercase()
                    .contains("mcp-method: subscriptions/listen")
                {
                    attempts += 1;
                }
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    attempts
}

#[test]
fn the_upstream_listen_comes_back_with_backoff_when_the_backend_restarts() {
    for driver in DRIVERS {
        // HTTP: killed, its address held by a listener that drops every connection for 3 s
        // (the gateway must back off, not spin), then started again with one more tool.
        let mut demo = DemoHttp::start_with("127.0.0.1:0", "fx", FIXTURE_ENV, None);
        let addr = demo.addr.clone();
        let gw = Gateway::start(&http_server("fx", &addr, ""), driver, 2, &["fx"]);
        wait_log(&gw, OPEN, 1, Duration::from_secs(10));
        let mut modern = listen(&gw, "L1");
        demo.kill9();
        let attempts = count_listen_attempts(&addr, Duration::from_secs(3));
        eprintln!("{driver}: {attempts} listen attempts during a 3 s outage");
        assert!(
            (1..=5).contains(&attempts),
            "{driver}: {attempts} listen attempts in 3 s of outage (backoff from 500 ms)"
        );
        let mut env = FIXTURE_ENV.to_vec();
        env.push(("DEMO_EXTRA_TOOLS", "1"));
        let _demo2 = DemoHttp::start_with(&addr, "fx", &env, None);
        wait_log(
            &gw,
            "upstream subscriptions/listen re-established",
            1,
            Duration::from_secs(20),
        );
        // Back: the gateway re-lists (announcements made meanwhile were lost) and finds the
        // new tool; its clients hear of it without any announcement.
        assert!(
            modern.wait_for(TOOLS_CHANGED, Instant::now() + Duration::from_secs(2)),
            "{driver}: no list_changed after the restart: {}\n{}",
            modern.text(),
            gw.log()
        );
        let r = call(&gw.addr, "fx__t0");
        assert_eq!(r.status, 200, "{driver}: {}", r.text());
        assert!(!r.text().contains("\"error\""), "{driver}: {}", r.text());
        let mut legacy = get_stream(&gw);
        announce_reaches_both(
            &gw,
            "fx__test_trigger_tool_change",
            TOOLS_CHANGED,
            &mut modern,
            &mut legacy,
            driver,
        );
        // One outage, one warning: the retries while it lasted are not in the log at info.
        let warned = log_count(&gw, "upstream subscriptions/listen: ");
        assert_eq!(warned, 1, "{driver}: {}", gw.log());
        drop(gw);

        // stdio: the child crashes; its next process gets a listen of its own.
        let (cfg, _) = backend("stdio", None);
        let gw = Gateway::start(&cfg, driver, 2, &["fx"]);
        wait_log(&gw, OPEN, 1, Duration::from_secs(10));
        let mut modern = listen(&gw, "L1");
        let mut legacy = get_stream(&gw);
        let r = call(&gw.addr, "fx__crash");
        assert!(r.text().contains("error"), "{driver}: {}", r.text());
        wait_log(&gw, OPEN, 2, Duration::from_secs(15));
        gw.wait_ready(&["fx"], Duration::from_secs(10));
        announce_reaches_both(
            &gw,
            "fx__test_trigger_tool_change",
            TOOLS_CHANGED,
            &mut modern,
            &mut legacy,
            driver,
        );
    }
}

#[test]
fn a_backend_that_floods_list_changed_is_relisted_a_bounded_number_of_times() {
    for driver in DRIVERS {
        let dir = common::scratch("flood");
        let log = dir.join(format!("demo-{driver}.log"));
        let _ = std::fs::remove_file(&log);
        let mut env = FIXTURE_ENV.to_vec();
        env.push(("DEMO_VERBOSE", "1"));
        let demo = DemoHttp::start_with("127.0.0.1:0", "fx", &env, Some(&log));
        let gw = Gateway::start(&http_server("fx", &demo.addr, ""), driver, 2, &["fx"]);
        wait_log(&gw, OPEN, 1, Duration::from_secs(10));
        let mut modern = listen(&gw, "L1");
        let relists = || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .matches("demo-server: request tools/list")
                .count()
        };
        let before = relists();
        // Announcements straight at the backend, as fast as one client can make them, 2 s.
        let start = Instant::now();
        let mut announced = 0;
        while start.elapsed() < Duration::from_secs(2) {
            let r = call(&demo.addr, "test_trigger_tool_change");
            assert_eq!(r.status, 200, "{driver}: {}", r.text());
            announced += 1;
        }
        let flood = start.elapsed();
        let told = modern.count_for(TOOLS_CHANGED, Duration::from_millis(1500));
        let relisted = relists() - before;
        eprintln!("{driver}: {announced} announcements in {flood:?}: {relisted} re-lists, clients told {told} times");
        // Paced at one re-list per 250 ms at most (`upstream/relist.rs`), and still re-listed.
        let bound = (flood.as_millis() / 250) as usize + 3;
        assert!(announced >= 100, "{driver}: only {announced} announcements");
        assert!(
            (1..=bound).contains(&relisted),
            "{driver}: {announced} announcements in {flood:?} caused {relisted} re-lists (at most {bound})"
        );
        assert!(
            (1..=relisted).contains(&told),
            "{driver}: clients told {told} times for {relisted} re-lists"
        );
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert_eq!(
            text.matches("demo-server: request subscriptions/listen")
                .count(),
            1,
            "{driver}: one upstream listen for two shards"
        );
    }
}

//! Keep-alive while a node stops behind a load balancer, on both drivers.
//!
//! A balancer keeps idle keep-alive connections to each node and reuses them for later
//! requests. If a stopping node still left its connections open for reuse when its drain
//! grace ends, a request the balancer writes on one of them at that moment is lost: the node
//! closes the connection without reading it, and the balancer may not resend a request that
//! may have reached a node (HAProxy closes the client's connection, nginx answers 502). So
//! from SIGTERM on, every answer says `connection: close` and the connection ends after it:
//! each later request comes on a fresh connection, which the stopped node refuses outright
//! (and the balancer sends elsewhere). Draining without stopping (SIGUSR2) keeps keep-alive.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{demo_stdio, Gateway, DRIVERS};

/// One `GET /health` on `s`; the response head (lowercase), after reading the whole body.
fn health(s: &mut TcpStream) -> String {
    s.write_all(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "connection closed before a response");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .expect("content-length");
    while buf.len() < end + len {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "connection closed inside a body");
        buf.extend_from_slice(&chunk[..n]);
    }
    head
}

/// True when the peer closes `s` within `within` (reads EOF).
fn closes(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut b = [0u8; 16];
    matches!(s.read(&mut b), Ok(0))
}

fn connect(gw: &Gateway) -> TcpStream {
    let s = TcpStream::connect(&gw.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

#[test]
fn a_stopping_node_closes_each_connection_after_its_answer() {
    let cfg = format!(
        "[server]\ndrain_grace_ms = 3000\n\n{}",
        demo_stdio("demo", "")
    );
    for driver in DRIVERS {
        let mut gw = Gateway::start(&cfg, driver, 2, &["demo"]);
        // Serving, and drained without stopping: keep-alive as usual.
        let mut kept = connect(&gw);
        let head = health(&mut kept);
        assert!(!head.contains("connection: close"), "{driver}: {head}");
        gw.signal(libc::SIGUSR2);
        std::thread::sleep(Duration::from_millis(200));
        let head = health(&mut kept);
        assert!(
            !head.contains("connection: close"),
            "{driver}: draining: {head}"
        );
        // Stopping: the same connection gets its answer, then is closed.
        let sent = Instant::now();
        gw.signal(libc::SIGTERM);
        std::thread::sleep(Duration::from_millis(200));
        let head = health(&mut kept);
        assert!(head.starts_with("http/1.1 200"), "{driver}: {head}");
        assert!(head.contains("connection: close"), "{driver}: {head}");
        assert!(
            closes(&mut kept, Duration::from_secs(2)),
            "{driver}: the connection stayed open"
        );
        // A fresh connection during the grace: answered, then closed too.
        let mut fresh = connect(&gw);
        let head = health(&mut fresh);
        assert!(head.contains("connection: close"), "{driver}: {head}");
        assert!(
            closes(&mut fresh, Duration::from_secs(2)),
            "{driver}: fresh"
        );
        assert!(
            sent.elapsed() < Duration::from_millis(2500),
            "{driver}: the checks must fit in the grace"
        );
        let st = gw
            .wait_exit(Duration::from_secs(15))
            .unwrap_or_else(|| panic!("{driver}: still running after the grace"));
        assert!(st.success(), "{driver}: {st}");
    }
}

/// A POST `tools/call` of `demo__echo` on `s` (session `sid`); the response head and body.
fn call_echo(s: &mut TcpStream, sid: &str) -> String {
    let body = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"demo__echo","arguments":{"message":"hi"}}}"#;
    let req = format!(
        "POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\nmcp-session-id: {sid}\r\nmcp-protocol-version: 2025-11-25\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    // The answer is short: read until it has a body, or the peer closes.
    while let Ok(n) = s.read(&mut chunk) {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some(i) = text.find("\r\n\r\n") {
            let len = text[..i]
                .to_ascii_lowercase()
                .lines()
                .find_map(|l| {
                    l.strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>())
                })
                .and_then(Result::ok);
            if len.is_some_and(|len| got.len() >= i + 4 + len) {
                break;
            }
        }
    }
    String::from_utf8_lossy(&got).to_string()
}

/// Once the drain grace is over the node stops its backends. A request that reaches it then,
/// on a keep-alive connection idle since before SIGTERM, is refused with 503 and the
/// connection closed (a balancer retries it elsewhere), never sent to a backend that is
/// already stopping nor left unanswered.
#[test]
fn a_request_after_the_grace_is_refused_with_503_not_sent_to_a_stopping_backend() {
    let slow = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/hostile_backends/slow_exit_stdio.py"
    );
    let cfg = format!(
        "[server]\ndrain_grace_ms = 300\n\n{}\n[[servers]]\nid = \"slow\"\ntransport = \"stdio\"\ncommand = \"python3\"\nargs = [\"{slow}\"]\n",
        demo_stdio("demo", "")
    );
    for driver in DRIVERS {
        let mut gw = Gateway::start(&cfg, driver, 1, &["demo", "slow"]);
        let sid = gw.initialize();
        // (Before, this request reached the stopping demo: 200 with "backend `demo`
        // unavailable", blamed on the backend.)
        let mut idle = connect(&gw);
        let head = call_echo(&mut idle, &sid);
        assert!(head.starts_with("HTTP/1.1 200"), "{driver}: {head}");
        gw.signal(libc::SIGTERM);
        // Past the grace (300 ms): the demo is being stopped, and the slow backend keeps
        // the shard up (about 1.5 s: the gateway's stop escalates to SIGKILL).
        std::thread::sleep(Duration::from_millis(800));
        assert!(
            gw.wait_exit(Duration::from_millis(1)).is_none(),
            "{driver}: the shard is still stopping"
        );
        let answer = call_echo(&mut idle, &sid);
        assert!(
            answer.starts_with("HTTP/1.1 503"),
            "{driver}: refused, not served by a stopping backend: {answer}"
        );
        assert!(
            answer.to_ascii_lowercase().contains("connection: close"),
            "{driver}: {answer}"
        );
        assert!(
            answer.contains(r#""id":3"#) && answer.contains(r#""blame":"gateway""#),
            "{driver}: {answer}"
        );
        let st = gw
            .wait_exit(Duration::from_secs(15))
            .unwrap_or_else(|| panic!("{driver}: still running"));
        assert!(st.success(), "{driver}: {st}");
    }
}

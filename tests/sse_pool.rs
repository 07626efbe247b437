//! A backend connection whose answer came as an SSE stream goes back to the pool once the
//! stream ends, on both drivers; one whose stream does not end in time, or goes on with
//! garbage, is closed, and the next call still works.
//!
//! The backend is a small Streamable HTTP server in this file (raw TCP, one thread per
//! connection): it answers every request on SSE, and `tools/call` with the response event
//! first and the rest of the stream (the chunked terminator, or garbage, or nothing) after
//! a pause, which is what a real SDK server does when its write of the terminator lands in
//! a later packet. No real MCP server can be made to pause or misbehave here on purpose.
//!
//! A stream left open must not hold the pool's slot for the whole drain (queued calls would
//! wait up to 1 s each), and bytes after the end of an answer, in the same packet as its
//! end, must never be read as the next call's answer.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{http_server, Gateway, DRIVERS};
use sonic_rs::JsonValueTrait;

/// What the backend sends after a `tools/call` response event.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tail {
    /// After 20 ms: a notification event, then the chunked terminator.
    EndsLater,
    /// The same after 5 ms.
    EndsSoon,
    /// Nothing, ever: the stream stays open.
    Never,
    /// After 20 ms: an event that is not JSON-RPC, then the terminator.
    GarbageEvent,
    /// After 20 ms: bytes that are not chunked framing.
    GarbageFraming,
    /// In the same write as the response event and the chunked terminator: a whole second
    /// HTTP response (a stale answer that must never reach a later call).
    JunkAfterEnd,
    /// The same after a JSON answer (chunked `application/json`, not SSE).
    JsonJunkAfterEnd,
}

/// A complete HTTP response whose answer says "stale": what a connection reused after
/// [`Tail::JunkAfterEnd`] would hand the next call.
const STALE: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 78\r\n\r\n{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"stale\"}]}}";

/// One accepted connection: how many `tools/call` it carried, and when (after its last
/// answer) the gateway closed it.
#[derive(Default, Debug, Clone)]
struct Conn {
    calls: usize,
    closed_after: Option<Duration>,
}

struct Backend {
    addr: String,
    conns: Arc<Mutex<Vec<Conn>>>,
    stop: Arc<AtomicBool>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Backend {
    fn start(tail: Tail) -> Backend {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        l.set_nonblocking(true).unwrap();
        let conns = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (c2, s2) = (conns.clone(), stop.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            while !s2.load(Ordering::Relaxed) && Instant::now() < deadline {
                match l.accept() {
                    Ok((s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        let idx = {
                            let mut c = c2.lock().unwrap();
                            c.push(Conn::default());
                            c.len() - 1
                        };
                        let c3 = c2.clone();
                        std::thread::spawn(move || serve(s, tail, idx, c3));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Backend { addr, conns, stop }
    }

    /// The connections that carried at least one `tools/call`.
    fn call_conns(&self) -> Vec<Conn> {
        let c = self.conns.lock().unwrap();
        c.iter().filter(|c| c.calls > 0).cloned().collect()
    }
}

fn chunk(s: &mut TcpStream, data: &[u8]) -> std::io::Result<()> {
    s.write_all(format!("{:x}\r\n", data.len()).as_bytes())?;
    s.write_all(data)?;
    s.write_all(b"\r\n")
}

/// Reads one request (head and Content-Length body); `None` at EOF or on error.
fn read_request(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .unwrap_or(0);
            let total = end + 4 + len;
            if buf.len() >= total {
                let body = buf[end + 4..total].to_vec();
                let method_get = head.starts_with("get ");
                buf.drain(..total);
                return Some(if method_get { b"GET".to_vec() } else { body });
            }
        }
        let mut tmp = [0u8; 8192];
        match s.read(&mut tmp) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
        }
    }
}

fn serve(mut s: TcpStream, tail: Tail, idx: usize, conns: Arc<Mutex<Vec<Conn>>>) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let mut buf = Vec::new();
    let mut answered = Instant::now();
    while let Some(body) = read_request(&mut s, &mut buf) {
        if body == b"GET" {
            let _ = s.write_all(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n");
            continue;
        }
        let v: sonic_rs::Value = sonic_rs::from_slice(&body).unwrap();
        let method = v["method"].as_str().unwrap_or("").to_string();
        if v.get("id").is_none() {
            let _ = s.write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n");
            continue;
        }
        let id = sonic_rs::to_string(&v["id"]).unwrap();
        let payload = match method.as_str() {
            "initialize" => r#""result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"ssefake","version":"1"}}"#.to_string(),
            "tools/list" => r#""result":{"tools":[{"name":"echo","description":"echo","inputSchema":{"type":"object"}}]}"#.to_string(),
            "tools/call" => r#""result":{"content":[{"type":"text","text":"ok"}]}"#.to_string(),
            "ping" => r#""result":{}"#.to_string(),
            _ => {
                // A 2025 server knows no `server/discover` and wants a session.
                let e = format!(r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":-32600,"message":"no session"}}}}"#);
                let _ = s.write_all(
                    format!("HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{e}", e.len()).as_bytes(),
                );
                continue;
            }
        };
        let message = format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},{payload}}}");
        let event = format!("event: message\ndata: {message}\n\n");
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nmcp-session-id: s1\r\n\r\n";
        if method == "tools/call" && matches!(tail, Tail::JunkAfterEnd | Tail::JsonJunkAfterEnd) {
            // One write: the answer, its end, and the stale response right behind it.
            let (head, body) = match tail {
                Tail::JunkAfterEnd => (head, event.as_bytes()),
                _ => (
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
                    message.as_bytes(),
                ),
            };
            let mut out = head.as_bytes().to_vec();
            out.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
            out.extend_from_slice(body);
            out.extend_from_slice(b"\r\n0\r\n\r\n");
            out.extend_from_slice(STALE);
            if s.write_all(&out).is_err() {
                break;
            }
            answered = Instant::now();
            conns.lock().unwrap()[idx].calls += 1;
            continue;
        }
        if s.write_all(head.as_bytes()).is_err() || chunk(&mut s, event.as_bytes()).is_err() {
            break;
        }
        answered = Instant::now();
        if method != "tools/call" {
            if s.write_all(b"0\r\n\r\n").is_err() {
                break;
            }
            continue;
        }
        conns.lock().unwrap()[idx].calls += 1;
        if tail == Tail::Never {
            // Wait for the gateway to give up on this connection.
            let mut tmp = [0u8; 1024];
            while let Ok(n) = s.read(&mut tmp) {
                if n == 0 {
                    break;
                }
            }
            break;
        }
        let pause = if tail == Tail::EndsSoon { 5 } else { 20 };
        std::thread::sleep(Duration::from_millis(pause));
        let sent = match tail {
            Tail::EndsLater | Tail::EndsSoon => chunk(
                &mut s,
                b"data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/x\"}\n\n",
            )
            .and_then(|_| s.write_all(b"0\r\n\r\n")),
            Tail::GarbageEvent => {
                chunk(&mut s, b"data: this is not json\n\n").and_then(|_| s.write_all(b"0\r\n\r\n"))
            }
            Tail::GarbageFraming => s.write_all(b"this is not chunked framing\r\n\r\n"),
            Tail::Never | Tail::JunkAfterEnd | Tail::JsonJunkAfterEnd => unreachable!(),
        };
        if sent.is_err() {
            break;
        }
    }
    conns.lock().unwrap()[idx].closed_after = Some(answered.elapsed());
}

fn config(addr: &str) -> String {
    config_pool(addr, 2)
}

fn config_pool(addr: &str, pool_size: usize) -> String {
    http_server(
        "sse",
        addr,
        &format!("pool_size = {pool_size}\nhealth_interval_ms = 0\ntimeout_ms = 5000"),
    )
}

fn call_ok(gw: &Gateway, sid: &str, driver: &str) -> Duration {
    let t = Instant::now();
    let r = gw.call(sid, "sse__echo", "{}");
    assert_eq!(
        r["result"]["content"][0]["text"].as_str(),
        Some("ok"),
        "{driver}: {r:?}"
    );
    t.elapsed()
}

/// Waits (bounded) until `f` holds for the backend's connections.
fn wait_for(b: &Backend, within: Duration, f: impl Fn(&[Conn]) -> bool) -> Vec<Conn> {
    let end = Instant::now() + within;
    loop {
        let c = b.call_conns();
        if f(&c) || Instant::now() > end {
            return c;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sse_answered_connections_are_reused_within_the_pool_bound() {
    for driver in DRIVERS {
        let b = Backend::start(Tail::EndsLater);
        let gw = Gateway::start(&config(&b.addr), driver, 1, &["sse"]);
        let sid = gw.initialize();
        for _ in 0..20 {
            call_ok(&gw, &sid, driver);
        }
        let conns = b.call_conns();
        let calls: usize = conns.iter().map(|c| c.calls).sum();
        assert_eq!(calls, 20, "{driver}: {conns:?}");
        assert!(
            conns.len() <= 2,
            "{driver}: 20 calls opened {} connections (pool_size 2): {conns:?}",
            conns.len()
        );
    }
}

#[test]
fn under_saturation_streams_that_end_soon_keep_their_connections_pooled() {
    for driver in DRIVERS {
        // Each stream ends 5 ms after its response; six callers keep both slots busy and
        // calls queued. A drain that gave its slot up at once would have each queued call
        // open a connection of its own, and the drained one closed for want of room: a
        // connect and a close per call, the churn the pool exists to prevent.
        let b = Backend::start(Tail::EndsSoon);
        let gw = Gateway::start(&config(&b.addr), driver, 1, &["sse"]);
        let sid = gw.initialize();
        std::thread::scope(|s| {
            for _ in 0..6 {
                s.spawn(|| {
                    for _ in 0..5 {
                        call_ok(&gw, &sid, driver);
                    }
                });
            }
        });
        let conns = b.call_conns();
        let calls: usize = conns.iter().map(|c| c.calls).sum();
        assert_eq!(calls, 30, "{driver}: {conns:?}");
        assert!(
            conns.len() <= 2,
            "{driver}: 30 calls opened {} connections (pool_size 2): {conns:?}",
            conns.len()
        );
    }
}

#[test]
fn a_stream_that_never_ends_is_answered_at_once_and_closed_after_the_drain_bound() {
    for driver in DRIVERS {
        let b = Backend::start(Tail::Never);
        let gw = Gateway::start(&config(&b.addr), driver, 1, &["sse"]);
        let sid = gw.initialize();
        let took = call_ok(&gw, &sid, driver);
        assert!(took < Duration::from_millis(800), "{driver}: took {took:?}");
        // The gateway drains for a bounded while, then closes the connection.
        let conns = wait_for(&b, Duration::from_secs(5), |c| {
            c.first().is_some_and(|c| c.closed_after.is_some())
        });
        let closed = conns[0].closed_after.expect("the gateway closed it");
        assert!(
            closed >= Duration::from_millis(500) && closed < Duration::from_secs(4),
            "{driver}: closed {closed:?} after the answer"
        );
        // The next call works (on a new connection).
        call_ok(&gw, &sid, driver);
        assert_eq!(b.call_conns().len(), 2, "{driver}");
    }
}

#[test]
fn garbage_after_the_response_closes_the_connection_and_the_next_call_works() {
    for driver in DRIVERS {
        for tail in [Tail::GarbageEvent, Tail::GarbageFraming] {
            let b = Backend::start(tail);
            let gw = Gateway::start(&config(&b.addr), driver, 1, &["sse"]);
            let sid = gw.initialize();
            for _ in 0..3 {
                call_ok(&gw, &sid, driver);
                // Let the garbage arrive and the gateway act on it before the next call.
                std::thread::sleep(Duration::from_millis(100));
            }
            let conns = wait_for(&b, Duration::from_secs(3), |c| {
                c.iter().all(|c| c.closed_after.is_some())
            });
            assert_eq!(conns.len(), 3, "{driver} {tail:?}: {conns:?}");
            for c in &conns {
                assert_eq!(c.calls, 1, "{driver} {tail:?}: never reused: {conns:?}");
                let closed = c.closed_after.expect("closed");
                assert!(
                    closed < Duration::from_millis(500),
                    "{driver} {tail:?}: closed at once, not after the drain bound: {conns:?}"
                );
            }
        }
    }
}

#[test]
fn a_stream_left_open_does_not_hold_the_only_pool_slot_for_the_drain() {
    for driver in DRIVERS {
        let b = Backend::start(Tail::Never);
        let gw = Gateway::start(&config_pool(&b.addr, 1), driver, 1, &["sse"]);
        let sid = gw.initialize();
        // Each answer leaves its stream open for the gateway's 1 s drain: the next call
        // must not wait for that drain to give the pool's one slot back.
        for i in 0..3 {
            let took = call_ok(&gw, &sid, driver);
            assert!(
                took < Duration::from_millis(400),
                "{driver}: call {i} took {took:?} (pool_size 1, the previous stream still draining)"
            );
        }
        // Two at once: the second queues for the slot the first one's drain gives up.
        let t = Instant::now();
        std::thread::scope(|s| {
            let calls: Vec<_> = (0..2)
                .map(|_| s.spawn(|| call_ok(&gw, &sid, driver)))
                .collect();
            for c in calls {
                c.join().unwrap();
            }
        });
        let took = t.elapsed();
        assert!(
            took < Duration::from_millis(600),
            "{driver}: two calls took {took:?}"
        );
        // Every connection carried one call and was closed by its drain's bound.
        let conns = wait_for(&b, Duration::from_secs(5), |c| {
            c.len() == 5 && c.iter().all(|c| c.closed_after.is_some())
        });
        assert_eq!(conns.len(), 5, "{driver}: {conns:?}");
        for c in &conns {
            assert_eq!(c.calls, 1, "{driver}: {conns:?}");
        }
    }
}

#[test]
fn bytes_after_the_end_of_an_answer_never_become_the_next_answer() {
    for driver in DRIVERS {
        for tail in [Tail::JunkAfterEnd, Tail::JsonJunkAfterEnd] {
            let b = Backend::start(tail);
            let gw = Gateway::start(&config_pool(&b.addr, 1), driver, 1, &["sse"]);
            let sid = gw.initialize();
            for i in 0..3 {
                // `call_ok` checks each call got its own answer ("ok"), not the stale one.
                let took = call_ok(&gw, &sid, driver);
                assert!(
                    took < Duration::from_millis(500),
                    "{driver} {tail:?}: call {i} took {took:?}"
                );
            }
            let conns = wait_for(&b, Duration::from_secs(3), |c| {
                c.len() == 3 && c.iter().all(|c| c.closed_after.is_some())
            });
            assert_eq!(conns.len(), 3, "{driver} {tail:?}: {conns:?}");
            for c in &conns {
                assert_eq!(c.calls, 1, "{driver} {tail:?}: never reused: {conns:?}");
                let closed = c.closed_after.expect("closed");
                assert!(
                    closed < Duration::from_millis(500),
                    "{driver} {tail:?}: closed at once: {conns:?}"
                );
            }
        }
    }
}

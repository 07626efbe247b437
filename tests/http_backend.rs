//! Streamable HTTP backends through the gateway, on both drivers: JSON and SSE responses,
//! upstream session expiry, and backends that hang or lie.
//!
//! The well-behaved backend is the built-in demo server over HTTP (a real MCP server). The
//! hanging and lying backends are raw TCP listeners in this file: no real MCP server can be
//! made to misbehave on purpose, so these two are deliberate fakes.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::{http_server, DemoHttp, Gateway, DRIVERS};
use sonic_rs::JsonValueTrait;

#[test]
fn json_and_sse_responses_and_upstream_session_expiry() {
    for driver in DRIVERS {
        let demo = DemoHttp::start("127.0.0.1:0", "web");
        let gw = Gateway::start(&http_server("web", &demo.addr, ""), driver, 2, &["web"]);
        let sid = gw.initialize();
        let r = gw.call(&sid, "web__whoami", "{}");
        assert_eq!(
            r["result"]["content"][0]["text"].as_str(),
            Some("web"),
            "{r:?}"
        );
        // With a progress token the demo server answers on SSE; the gateway relays the
        // progress (with the client's own token) on its own SSE stream, then the response.
        let body = r#"{"jsonrpc":"2.0","id":"sse-1","method":"tools/call","params":{"name":"web__sleep","arguments":{"ms":50},"_meta":{"progressToken":"p1"}}}"#;
        let msgs = gw.post(&[("mcp-session-id", &sid)], body).sse_messages();
        assert_eq!(msgs.len(), 3, "{msgs:?}");
        for m in &msgs[..2] {
            assert_eq!(m["method"].as_str(), Some("notifications/progress"));
            assert_eq!(
                m["params"]["progressToken"].as_str(),
                Some("p1"),
                "client token restored"
            );
        }
        let r = &msgs[2];
        assert_eq!(r["id"].as_str(), Some("sse-1"), "{r:?}");
        assert_eq!(
            r["result"]["content"][0]["text"].as_str(),
            Some("slept 50ms"),
            "{r:?}"
        );
        // Restart the backend on the same port: its sessions are gone (404), so the gateway
        // re-initializes upstream transparently and the client never notices.
        let addr = demo.addr.clone();
        drop(demo);
        let _demo2 = DemoHttp::start(&addr, "web");
        for _ in 0..4 {
            let r = gw.call(&sid, "web__echo", r#"{"message":"again"}"#);
            assert_eq!(
                r["result"]["content"][0]["text"].as_str(),
                Some("again"),
                "{driver}: {r:?}"
            );
        }
    }
}

/// A deliberately broken backend: accepts connections and runs `behave` on each.
fn fake_backend(
    behave: fn(std::net::TcpStream),
) -> (String, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    l.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !s2.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
            match l.accept() {
                Ok((s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    std::thread::spawn(move || behave(s));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    (addr, stop)
}

fn never_answers(mut s: std::net::TcpStream) {
    let mut buf = [0u8; 4096];
    let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            return;
        }
    }
}

fn answers_garbage(mut s: std::net::TcpStream) {
    let mut buf = [0u8; 4096];
    let _ = s.read(&mut buf);
    let _ = s.write_all(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 9\r\n\r\nnot json!",
    );
}

fn closes_mid_response(mut s: std::net::TcpStream) {
    let mut buf = [0u8; 4096];
    let _ = s.read(&mut buf);
    let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{\"jsonrpc\":");
}

#[test]
fn hanging_and_lying_backends_are_down_with_a_reason_and_harm_nobody() {
    for driver in DRIVERS {
        let (hang, s1) = fake_backend(never_answers);
        let (garbage, s2) = fake_backend(answers_garbage);
        let (cut, s3) = fake_backend(closes_mid_response);
        let cfg = format!(
            "{}{}{}{}",
            common::demo_stdio("demo", ""),
            http_server("hang", &hang, "timeout_ms = 400"),
            http_server("garbage", &garbage, ""),
            http_server("cut", &cut, ""),
        );
        let gw = Gateway::start(&cfg, driver, 2, &["demo"]);
        let h = gw.wait_state("hang", "down", Duration::from_secs(10));
        assert!(
            h["reason"]
                .as_str()
                .unwrap()
                .contains("did not answer within 400 ms"),
            "{h:?}"
        );
        let g = gw.wait_state("garbage", "down", Duration::from_secs(10));
        assert!(
            g["reason"].as_str().unwrap().contains("invalid response"),
            "{g:?}"
        );
        let c = gw.wait_state("cut", "down", Duration::from_secs(10));
        assert!(
            c["reason"].as_str().unwrap().contains("mid-response"),
            "{c:?}"
        );
        // The healthy backend keeps full service meanwhile.
        let sid = gw.initialize();
        for i in 0..10 {
            let r = gw.call(&sid, "demo__echo", &format!(r#"{{"message":"ok{i}"}}"#));
            assert_eq!(
                r["result"]["content"][0]["text"].as_str(),
                Some(format!("ok{i}").as_str())
            );
        }
        for s in [s1, s2, s3] {
            s.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Reads SSE `data:` lines (messages, not priming events) from a GET stream until `want` messages arrived or `within` passed.
fn read_stream_messages(s: &mut std::net::TcpStream, want: usize, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    loop {
        let text = String::from_utf8_lossy(&buf).to_string();
        let msgs: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("data: ").map(str::to_string))
            // A priming event (an id, empty data) is not a message.
            .filter(|m| !m.trim().is_empty())
            .collect();
        if msgs.len() >= want || Instant::now() > deadline {
            return msgs;
        }
        if let Ok(n) = s.read(&mut chunk) {
            buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Holds a free port for a backend that is not there yet; returns the socket and
/// `127.0.0.1:PORT`. The socket is bound with `SO_REUSEADDR` but never listens, so:
/// connections to the port are refused (the backend is absent); automatic port choices
/// (another test's server binding port 0, or an outgoing connection) skip a port that has a
/// bound socket, so nobody else can take it; and the real server, which binds with
/// `SO_REUSEADDR` too (Rust's `TcpListener::bind` does), can bind it and listen when it is
/// time. Binding a listener and dropping it instead would free the port for anyone.
fn reserve_port() -> (socket2::Socket, String) {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
    s.set_reuse_address(true).unwrap();
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    s.bind(&SockAddr::from(any)).unwrap();
    let addr = s.local_addr().unwrap().as_socket().unwrap();
    (s, addr.to_string())
}

#[test]
fn get_stream_rules_and_list_changed_when_a_backend_arrives() {
    for driver in DRIVERS {
        // Hold a port for a backend that is not there yet (kept until the backend is up).
        let (reservation, late) = reserve_port();
        let cfg = format!(
            "{}{}",
            common::demo_stdio("demo", ""),
            http_server("late", &late, "")
        );
        let gw = Gateway::start(&cfg, driver, 2, &["demo"]);
        // `late` is known and absent before the stream opens, so its arrival (and the
        // list_changed it causes) can only come after.
        let b = gw.wait_state("late", "down", Duration::from_secs(10));
        assert!(
            b["reason"]
                .as_str()
                .unwrap_or_default()
                .contains("cannot connect"),
            "{driver}: {b:?}"
        );
        let sid = gw.initialize();
        // 406 without Accept, 405 without a session (stateless clients POST only), then a
        // real stream.
        assert_eq!(
            gw.request("GET", "/mcp", &[("mcp-session-id", &sid)], b"")
                .status,
            406
        );
        assert_eq!(
            gw.request("GET", "/mcp", &[("accept", "text/event-stream")], b"")
                .status,
            405
        );
        let mut stream = std::net::TcpStream::connect(&gw.addr).unwrap();
        write!(
            stream,
            "GET /mcp HTTP/1.1\r\nhost: {}\r\naccept: text/event-stream\r\nmcp-session-id: {sid}\r\n\r\n",
            gw.addr
        )
        .unwrap();
        let mut head = [0u8; 512];
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let n = stream.read(&mut head).unwrap();
        let head = String::from_utf8_lossy(&head[..n]).to_string();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("text/event-stream"), "{head}");
        // A second GET stream for the same session replaces the first, which ends; the
        // session's messages go to the second.
        let mut first = stream;
        let mut stream = std::net::TcpStream::connect(&gw.addr).unwrap();
        write!(
            stream,
            "GET /mcp HTTP/1.1\r\nhost: {}\r\naccept: text/event-stream\r\nmcp-session-id: {sid}\r\n\r\n",
            gw.addr
        )
        .unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut head = [0u8; 512];
        let n = stream.read(&mut head).unwrap();
        let head = String::from_utf8_lossy(&head[..n]).to_string();
        assert!(head.starts_with("HTTP/1.1 200"), "{driver}: {head}");
        let mut rest = Vec::new();
        first
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let _ = first.read_to_end(&mut rest);
        assert!(
            rest.windows(5).any(|w| w == b"0\r\n\r\n"),
            "{driver}: the replaced stream ends: {}",
            String::from_utf8_lossy(&rest)
        );
        // The backend arrives: the catalog grows and the session hears about it on its stream.
        let _demo = DemoHttp::start(&late, "late");
        drop(reservation);
        gw.wait_ready(&["late"], Duration::from_secs(20));
        let msgs = read_stream_messages(&mut stream, 1, Duration::from_secs(10));
        assert!(
            msgs.iter()
                .any(|m| m.contains("notifications/tools/list_changed")),
            "{driver}: {msgs:?}"
        );
        let list = gw
            .post(
                &[("mcp-session-id", &sid)],
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            )
            .json();
        assert!(sonic_rs::to_string(&list).unwrap().contains("late__whoami"));
    }
}

//! A 2025-era session's standalone GET stream: a new GET replaces the old one at once,
//! whether the old one's client is gone (the gateway cannot see a closed socket until a write
//! to it fails, 15 s or more later) or still reading (its response ends cleanly).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{demo_stdio, Gateway, DRIVERS};

/// Opens `GET /mcp` for `sid` on a new connection and returns it after the response head.
fn open_get(gw: &Gateway, sid: &str) -> (TcpStream, String) {
    let mut s = TcpStream::connect(&gw.addr).unwrap();
    write!(
        s,
        "GET /mcp HTTP/1.1\r\nhost: {}\r\naccept: text/event-stream\r\nmcp-session-id: {sid}\r\n\r\n",
        gw.addr
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut head = [0u8; 1024];
    let n = s.read(&mut head).unwrap_or(0);
    let head = String::from_utf8_lossy(&head[..n]).to_string();
    (s, head)
}

/// Reads until the chunked body's last chunk (`0\r\n\r\n`) or EOF; false if neither came
/// within `within`.
fn ends_within(s: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while Instant::now() < deadline {
        match s.read(&mut chunk) {
            Ok(0) => return true,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.windows(5).any(|w| w == b"0\r\n\r\n") {
                    return true;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn a_new_get_stream_replaces_the_sessions_earlier_one_at_once() {
    for driver in DRIVERS {
        let gw = Gateway::start(&demo_stdio("demo", ""), driver, 2, &["demo"]);
        let sid = gw.initialize();
        // The client closes its GET stream; its next GET is answered at once with a stream,
        // not 409 until the gateway happens to notice the closed socket.
        let (first, head) = open_get(&gw, &sid);
        assert!(head.starts_with("HTTP/1.1 200"), "{driver}: {head}");
        drop(first);
        let started = Instant::now();
        let (mut second, head) = open_get(&gw, &sid);
        assert!(
            head.starts_with("HTTP/1.1 200"),
            "{driver}: a GET after the client closed its stream: {head}"
        );
        assert!(head.contains("text/event-stream"), "{driver}: {head}");
        assert!(started.elapsed() < Duration::from_secs(3), "{driver}");
        // A third GET while the second is still read: the second ends cleanly, the third
        // is the session's stream now.
        let (mut third, head) = open_get(&gw, &sid);
        assert!(head.starts_with("HTTP/1.1 200"), "{driver}: {head}");
        assert!(
            ends_within(&mut second, Duration::from_secs(3)),
            "{driver}: the replaced stream ends"
        );
        assert!(
            !ends_within(&mut third, Duration::from_millis(500)),
            "{driver}: the new stream stays open"
        );
        // Another client's session id is still refused (the replacement is per session).
        let r = gw.request(
            "GET",
            "/mcp",
            &[
                ("accept", "text/event-stream"),
                ("mcp-session-id", "0123456789abcdef0123456789abcdef"),
            ],
            b"",
        );
        assert_eq!(r.status, 404, "{driver}");
    }
}

//! SSE resumability: a client that loses a POST stream mid-call resumes it with
//! `GET` + `Last-Event-ID` and gets what followed, ending with the response.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{demo_stdio, Gateway, DRIVERS};

fn read_until(s: &mut std::net::TcpStream, needle: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    loop {
        if let Ok(n) = s.read(&mut chunk) {
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let t = String::from_utf8_lossy(&buf).to_string();
        if t.contains(needle) || Instant::now() > deadline {
            return t;
        }
    }
    String::from_utf8_lossy(&buf).to_string()
}

#[test]
fn a_dropped_post_stream_is_resumed_with_last_event_id() {
    for driver in DRIVERS {
        let gw = Gateway::start(&demo_stdio("demo", ""), driver, 2, &["demo"]);
        let sid = gw.initialize();
        let body = r#"{"jsonrpc":"2.0","id":"slow","method":"tools/call","params":{"name":"demo__sleep","arguments":{"ms":600},"_meta":{"progressToken":"t1"}}}"#;
        let mut s = std::net::TcpStream::connect(&gw.addr).unwrap();
        write!(
            s,
            "POST /mcp HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\nmcp-session-id: {sid}\r\ncontent-length: {}\r\n\r\n{body}",
            gw.addr,
            body.len()
        )
        .unwrap();
        // The first progress event arrives with an id; then the client "loses" the stream.
        let seen = read_until(&mut s, "notifications/progress", Duration::from_secs(10));
        assert!(seen.contains("text/event-stream"), "{driver}: {seen}");
        let ids: Vec<&str> = seen
            .lines()
            .filter_map(|l| l.strip_prefix("id: "))
            .collect();
        assert!(
            ids.len() >= 2,
            "{driver}: priming + first event carry ids: {seen}"
        );
        let last = ids.last().unwrap().to_string();
        assert!(!seen.contains("slept 600ms"));
        drop(s);
        // Resume on the stream it belongs to.
        let r = gw.request(
            "GET",
            "/mcp",
            &[
                ("accept", "text/event-stream"),
                ("mcp-session-id", &sid),
                ("last-event-id", &last),
            ],
            b"",
        );
        assert_eq!(r.status, 200, "{driver}: {}", r.text());
        let text = r.text();
        assert!(
            text.contains("slept 600ms"),
            "{driver}: the response was replayed: {text}"
        );
        assert!(text.contains(r#""id":"slow""#), "{driver}: {text}");
        assert!(
            !text.contains(&format!("id: {last}\n")),
            "{driver}: nothing before the id is replayed"
        );
    }
}

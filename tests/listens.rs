//! `subscriptions/listen` streams are bounded: an entry leaves the shard's table as soon as
//! its client goes (even when the catalog never changes), the number open is capped per
//! shard (`server.max_listens`) and per caller (`server.max_listens_per_principal`), and
//! the request id a listen keeps for its life is capped in size.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{demo_stdio, Gateway, Resp, DRIVERS};
use sonic_rs::JsonValueTrait;

const META: &str = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;

/// Opens a listen with request id `id` (JSON text) as `key` (None: anonymous): the open
/// stream once acknowledged, or the refusal.
fn listen(gw: &Gateway, id: &str, key: Option<&str>) -> Result<TcpStream, Resp> {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"subscriptions/listen","params":{{"notifications":{{"toolsListChanged":true}},{META}}}}}"#
    );
    let auth = key.map_or(String::new(), |k| format!("authorization: Bearer {k}\r\n"));
    let mut s = TcpStream::connect(&gw.addr).unwrap();
    write!(s, "POST /mcp HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\nmcp-protocol-version: 2026-07-28\r\nmcp-method: subscriptions/listen\r\nconnection: close\r\n{auth}content-length: {}\r\n\r\n{body}", gw.addr, body.len()).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => return Err(common::parse_response(&buf)),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => {}
        }
        if String::from_utf8_lossy(&buf).contains("notifications/subscriptions/acknowledged") {
            return Ok(s);
        }
        assert!(
            Instant::now() < deadline,
            "no answer to listen {id}: {}",
            String::from_utf8_lossy(&buf)
        );
    }
}

/// Waits for `only1mcp_listeners{shard="0"} <n>` (stats reach the control thread every
/// 500 ms); the last value seen when it does not come.
fn listeners_reach(gw: &Gateway, n: u64, key: Option<&str>) -> Result<(), String> {
    let bearer = key.map(|k| format!("Bearer {k}"));
    let h: Vec<(&str, &str)> = bearer.iter().map(|b| ("authorization", &b[..])).collect();
    let want = format!("only1mcp_listeners{{shard=\"0\"}} {n}");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = String::new();
    while Instant::now() < deadline {
        let text = gw.request("GET", "/metrics", &h, b"").text();
        if text.lines().any(|l| l == want) {
            return Ok(());
        }
        last = text
            .lines()
            .filter(|l| l.starts_with("only1mcp_listeners"))
            .collect::<Vec<_>>()
            .join("; ");
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("wanted {want}, last: {last:?}"))
}

fn assert_refused(r: &Resp, status: u16, id: &str, key: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text());
    assert!(r.header("retry-after").is_some(), "{what}: Retry-After");
    let v = r.json();
    assert_eq!(v["id"].as_str(), Some(id), "{what}: {v:?}");
    assert_eq!(v["error"]["code"].as_i64(), Some(-32000), "{what}: {v:?}");
    let msg = v["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains(key), "{what}: {v:?}");
}

#[test]
fn listens_leave_the_table_when_their_clients_go_on_a_stable_catalog() {
    for driver in DRIVERS {
        let gw = Gateway::start(&demo_stdio("demo", ""), driver, 1, &["demo"]);
        // An id that would be kept for the stream's life is capped in size.
        let long = format!("\"{}\"", "x".repeat(300));
        let r = listen(&gw, &long, None).expect_err("a 300-byte id is refused");
        assert_eq!(r.status, 400, "{driver}: {}", r.text());
        assert_eq!(r.json()["error"]["code"].as_i64(), Some(-32600), "{driver}");
        let at_cap = format!("\"{}\"", "y".repeat(254));
        let kept = listen(&gw, &at_cap, None).expect("a 256-byte id is accepted");
        drop(kept);

        let streams: Vec<TcpStream> = (0..20)
            .map(|i| listen(&gw, &i.to_string(), None).expect("listen opens"))
            .collect();
        listeners_reach(&gw, 20, None).unwrap_or_else(|e| panic!("{driver}: open: {e}"));
        // The clients go; nothing in the catalog changes.
        drop(streams);
        listeners_reach(&gw, 0, None).unwrap_or_else(|e| panic!("{driver}: after close: {e}"));
    }
}

fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn listens_are_capped_per_caller_and_per_shard_and_room_returns_when_one_closes() {
    let (alice, bob) = ("alice-key-0123456789", "bob-key-0123456789");
    let cfg = format!(
        "[server]\nmax_listens = 3\nmax_listens_per_principal = 2\n\n[auth]\nmode = \"api_key\"\n[[auth.api_keys]]\nname = \"alice\"\nsha256 = \"{}\"\n[[auth.api_keys]]\nname = \"bob\"\nsha256 = \"{}\"\n\n{}",
        sha256_hex(alice),
        sha256_hex(bob),
        demo_stdio("demo", "")
    );
    for driver in DRIVERS {
        let gw = Gateway::start(&cfg, driver, 1, &["demo"]);
        let a1 = listen(&gw, "\"a1\"", Some(alice)).expect("alice 1");
        let _a2 = listen(&gw, "\"a2\"", Some(alice)).expect("alice 2");
        let r = listen(&gw, "\"a3\"", Some(alice)).expect_err("alice is at her cap");
        assert_refused(&r, 429, "a3", "max_listens_per_principal", driver);
        // Another caller is not held back by alice's cap...
        let _b1 = listen(&gw, "\"b1\"", Some(bob)).expect("bob 1");
        // ...but by the shard's.
        let r = listen(&gw, "\"b2\"", Some(bob)).expect_err("the shard is full");
        assert_refused(&r, 503, "b2", "max_listens", driver);
        // A listen whose client left frees its place at once.
        drop(a1);
        listeners_reach(&gw, 2, Some(alice)).unwrap_or_else(|e| panic!("{driver}: {e}"));
        let _a3 = listen(&gw, "\"a3\"", Some(alice)).expect("room again for alice");
    }
}

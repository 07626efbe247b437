//! Session caps (`server.max_sessions`, `server.max_sessions_per_principal`): at the cap a
//! new `initialize` evicts the oldest session never used after its handshake, and is
//! refused with `Retry-After` and a JSON-RPC error carrying its id when every session is in
//! use; sessions in use are never evicted.

mod common;

use common::{demo_stdio, Gateway, DRIVERS};
use sonic_rs::JsonValueTrait;
use std::time::{Duration, Instant};

const INIT: &str = r#"{"jsonrpc":"2.0","id":"init-1","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"cap-test","version":"1"}}}"#;

/// initialize + initialized as `key` (None: anonymous); `Err(response)` when refused.
fn open(gw: &Gateway, key: Option<&str>) -> Result<String, common::Resp> {
    let bearer = key.map(|k| format!("Bearer {k}"));
    let mut h: Vec<(&str, &str)> = Vec::new();
    if let Some(b) = &bearer {
        h.push(("authorization", b));
    }
    let r = gw.post(&h, INIT);
    if r.status != 200 {
        return Err(r);
    }
    let sid = r.header("mcp-session-id").unwrap().to_string();
    h.push(("mcp-session-id", &sid));
    let n = gw.post(
        &h,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    );
    assert_eq!(n.status, 202);
    Ok(sid)
}

/// A `ping` in the session (this is what makes a session "used"); its HTTP status.
fn ping(gw: &Gateway, sid: &str, key: Option<&str>) -> u16 {
    let bearer = key.map(|k| format!("Bearer {k}"));
    let mut h = vec![("mcp-session-id", sid)];
    if let Some(b) = &bearer {
        h.push(("authorization", b));
    }
    gw.post(&h, r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#)
        .status
}

fn assert_refused(r: &common::Resp, status: u16, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text());
    assert!(r.header("retry-after").is_some(), "{what}: Retry-After");
    let v = r.json();
    assert_eq!(v["id"].as_str(), Some("init-1"), "{what}: {v:?}");
    assert_eq!(v["error"]["code"].as_i64(), Some(-32000), "{what}: {v:?}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("max_sessions"),
        "{what}: {v:?}"
    );
}

/// Waits for a metrics line (stats reach the control thread every 500 ms).
fn metric(gw: &Gateway, line: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if gw.get("/metrics").text().lines().any(|l| l == line) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn at_max_sessions_unused_sessions_are_evicted_oldest_first_then_initialize_is_refused() {
    for driver in DRIVERS {
        let cfg = format!("[server]\nmax_sessions = 3\n\n{}", demo_stdio("demo", ""));
        let gw = Gateway::start(&cfg, driver, 1, &["demo"]);
        let used1 = open(&gw, None).unwrap();
        assert_eq!(ping(&gw, &used1, None), 200);
        let idle_old = open(&gw, None).unwrap();
        let idle_new = open(&gw, None).unwrap();
        // Full: the oldest never-used session makes room, the newer one stays.
        let s4 = open(&gw, None).expect("evicts an unused session");
        assert_eq!(ping(&gw, &idle_old, None), 404, "{driver}: evicted");
        assert_eq!(ping(&gw, &idle_new, None), 200, "{driver}: kept");
        assert_eq!(ping(&gw, &s4, None), 200, "{driver}");
        // Every session is in use now: refused, nothing evicted.
        let r = open(&gw, None).unwrap_err();
        assert_refused(&r, 503, driver);
        for s in [&used1, &idle_new, &s4] {
            assert_eq!(ping(&gw, s, None), 200, "{driver}: in use, kept");
        }
        // A session that ends frees its place.
        let del = gw.request("DELETE", "/mcp", &[("mcp-session-id", &used1)], b"");
        assert_eq!(del.status, 200);
        open(&gw, None).expect("room again after DELETE");
        assert!(
            metric(&gw, "only1mcp_sessions_evicted_total{shard=\"0\"} 1"),
            "{driver}: {}",
            gw.get("/metrics").text()
        );
        assert!(
            metric(&gw, "only1mcp_sessions_refused_total{shard=\"0\"} 1"),
            "{driver}"
        );
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
fn max_sessions_per_principal_caps_one_caller_without_touching_another() {
    let (alice, bob) = ("alice-key-0123456789", "bob-key-0123456789");
    let cfg = format!(
        "[server]\nmax_sessions = 100\nmax_sessions_per_principal = 2\n\n[auth]\nmode = \"api_key\"\n[[auth.api_keys]]\nname = \"alice\"\nsha256 = \"{}\"\n[[auth.api_keys]]\nname = \"bob\"\nsha256 = \"{}\"\n\n{}",
        sha256_hex(alice),
        sha256_hex(bob),
        demo_stdio("demo", "")
    );
    for driver in DRIVERS {
        let gw = Gateway::start(&cfg, driver, 1, &["demo"]);
        let bob1 = open(&gw, Some(bob)).unwrap();
        let a1 = open(&gw, Some(alice)).unwrap();
        assert_eq!(ping(&gw, &a1, Some(alice)), 200);
        let a2 = open(&gw, Some(alice)).unwrap();
        // Alice is at her cap: her own unused session goes, never Bob's.
        let a3 = open(&gw, Some(alice)).unwrap();
        assert_eq!(ping(&gw, &a2, Some(alice)), 404, "{driver}: evicted");
        assert_eq!(
            ping(&gw, &bob1, Some(bob)),
            200,
            "{driver}: another caller's"
        );
        assert_eq!(ping(&gw, &a3, Some(alice)), 200);
        let r = open(&gw, Some(alice)).unwrap_err();
        assert_refused(&r, 429, driver);
        // Bob is not limited by Alice's sessions.
        open(&gw, Some(bob)).expect("bob has room");
    }
}

//! Replicas of an HTTP backend: round-robin spread, and a dead replica's circuit breaker
//! opening so that calls stop reaching it. Real demo servers over HTTP, both drivers.

mod common;

use std::process::Child;

use common::{Gateway, DRIVERS};
use sonic_rs::JsonValueTrait;

/// A demo server over HTTP on a free port: the child and its `/mcp` URL.
fn demo(name: &str) -> (Child, String) {
    demo_on("127.0.0.1:0", name)
}

/// The same on a given address (a restart on the same port).
fn demo_on(listen: &str, name: &str) -> (Child, String) {
    let (child, addr) = common::spawn_demo_http(listen, name);
    (child, format!("http://{addr}/mcp"))
}

/// `host:port` of a demo URL.
fn authority(url: &str) -> String {
    url.trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string()
}

fn who(gw: &Gateway, sid: &str) -> Result<String, i64> {
    let r = gw.call(sid, "web__whoami", "{}");
    match r["result"]["content"][0]["text"].as_str() {
        Some(t) => Ok(t.to_string()),
        None => Err(r["error"]["code"].as_i64().unwrap_or(0)),
    }
}

#[test]
fn round_robin_spreads_and_a_dead_replica_is_cut_off_by_its_breaker() {
    for driver in DRIVERS {
        let (mut a, url_a) = demo("a");
        let (mut b, url_b) = demo("b");
        let cfg = format!(
            "[[servers]]\nid = \"web\"\ntransport = \"http\"\nurls = [\"{url_a}\", \"{url_b}\"]\nbalance = \"round_robin\"\nbreaker_failures = 2\nbreaker_cooldown_ms = 60000\n"
        );
        let gw = Gateway::start(&cfg, driver, 1, &["web"]);
        let sid = gw.initialize();
        let names: Vec<String> = (0..10).map(|_| who(&gw, &sid).unwrap()).collect();
        assert_eq!(
            names.iter().filter(|n| *n == "a").count(),
            5,
            "{driver}: {names:?}"
        );
        assert_eq!(
            names.iter().filter(|n| *n == "b").count(),
            5,
            "{driver}: {names:?}"
        );
        // Replica b dies: at most `breaker_failures` calls fail, then b is skipped.
        let _ = b.kill();
        let _ = b.wait();
        let outcomes: Vec<Result<String, i64>> = (0..12).map(|_| who(&gw, &sid)).collect();
        let failures = outcomes.iter().filter(|o| o.is_err()).count();
        assert!(failures <= 2, "{driver}: {outcomes:?}");
        assert!(
            outcomes
                .iter()
                .filter_map(|o| o.as_ref().err())
                .all(|c| *c == -32000),
            "{driver}: {outcomes:?}"
        );
        assert!(
            outcomes[6..].iter().all(|o| o.as_deref() == Ok("a")),
            "{driver}: {outcomes:?}"
        );
        drop(gw);
        let _ = a.kill();
        let _ = a.wait();
    }
}

#[test]
fn health_checks_take_a_dead_replica_out_before_any_call_fails_and_bring_it_back() {
    for driver in DRIVERS {
        let (mut a, url_a) = demo("a");
        let (mut b, url_b) = demo("b");
        let listen_b = authority(&url_b);
        let cfg = format!(
            "[[servers]]\nid = \"web\"\ntransport = \"http\"\nurls = [\"{url_a}\", \"{url_b}\"]\nhealth_interval_ms = 100\nhealthy_threshold = 1\nunhealthy_threshold = 1\nbreaker_failures = 1000\n"
        );
        let gw = Gateway::start(&cfg, driver, 1, &["web"]);
        let sid = gw.initialize();
        let _ = b.kill();
        let _ = b.wait();
        std::thread::sleep(std::time::Duration::from_millis(600));
        // The probe saw b die: no call reaches it, so none fails.
        let outcomes: Vec<Result<String, i64>> = (0..10).map(|_| who(&gw, &sid)).collect();
        assert!(
            outcomes.iter().all(|o| o.as_deref() == Ok("a")),
            "{driver}: {outcomes:?}"
        );
        assert!(gw.log().contains("out of rotation"), "{driver}: not logged");
        // b comes back on the same address: back in rotation.
        let (mut b2, _) = demo_on(&listen_b, "b");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let names: Vec<String> = (0..4).filter_map(|_| who(&gw, &sid).ok()).collect();
            if names.iter().any(|n| n == "b") {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{driver}: b never rejoined"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        drop(gw);
        for c in [&mut a, &mut b2] {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn a_replica_back_before_its_health_check_says_so_still_gets_calls() {
    // One replica; the health checks take it out at its first failed probe and would need
    // a million good probes to bring it back. Only panic routing (all replicas out: route
    // by breakers alone) can make the restarted server answer within this test.
    for driver in DRIVERS {
        let (mut a, url_a) = demo("a");
        let listen_a = authority(&url_a);
        let cfg = format!(
            "[[servers]]\nid = \"web\"\ntransport = \"http\"\nurl = \"{url_a}\"\nhealth_interval_ms = 100\nhealthy_threshold = 1000000\nunhealthy_threshold = 1\nbreaker_failures = 1\nbreaker_cooldown_ms = 100\n"
        );
        let gw = Gateway::start(&cfg, driver, 1, &["web"]);
        let sid = gw.initialize();
        assert_eq!(who(&gw, &sid), Ok("a".to_string()), "{driver}");
        let _ = a.kill();
        let _ = a.wait();
        std::thread::sleep(std::time::Duration::from_millis(500));
        assert!(gw.log().contains("out of rotation"), "{driver}: not logged");
        assert!(who(&gw, &sid).is_err(), "{driver}: a dead replica answered");
        let (mut a2, _) = demo_on(&listen_a, "a");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while who(&gw, &sid).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "{driver}: the restarted replica got no call while out of rotation"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        drop(gw);
        let _ = a2.kill();
        let _ = a2.wait();
    }
}

#[test]
fn safe_calls_are_retried_on_another_replica_and_unsafe_ones_are_not() {
    for driver in DRIVERS {
        let (mut a, url_a) = demo("a");
        let (mut b, url_b) = demo("b");
        // No health checks and a breaker that never opens: only retries can hide b's death.
        let cfg = format!(
            "[[servers]]\nid = \"web\"\ntransport = \"http\"\nurls = [\"{url_a}\", \"{url_b}\"]\nhealth_interval_ms = 0\nbreaker_failures = 1000\n"
        );
        let gw = Gateway::start(&cfg, driver, 1, &["web"]);
        let sid = gw.initialize();
        let _ = b.kill();
        let _ = b.wait();
        // whoami is annotated idempotent: every call ends on a.
        let safe: Vec<Result<String, i64>> = (0..8).map(|_| who(&gw, &sid)).collect();
        assert!(
            safe.iter().all(|o| o.as_deref() == Ok("a")),
            "{driver}: {safe:?}"
        );
        // now is not: the calls that go to b fail, naming the backend.
        let unsafe_failures = (0..8)
            .filter(|_| gw.call(&sid, "web__now", "{}")["error"]["code"].as_i64() == Some(-32000))
            .count();
        assert!(
            unsafe_failures >= 2,
            "{driver}: non-idempotent calls were retried ({unsafe_failures} failures)"
        );
        drop(gw);
        let _ = a.kill();
        let _ = a.wait();
    }
}

/// `whoami` through `web` in `sid` with extra request headers.
fn who_with(gw: &Gateway, sid: &str, extra: &[(&str, &str)]) -> String {
    let mut h = vec![
        ("mcp-session-id", sid),
        ("mcp-protocol-version", "2025-11-25"),
    ];
    h.extend_from_slice(extra);
    let r = gw.post(
        &h,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"web__whoami","arguments":{}}}"#,
    );
    let v = r.answer();
    v["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("whoami failed: {}", r.text()))
        .to_string()
}

/// A JWT-shaped bearer token with `sub` (unsigned: the balance key does not verify it, and
/// no auth is configured in this test).
fn bearer(sub: &str) -> String {
    use base64::Engine;
    let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    format!(
        "Bearer {}.{}.{}",
        enc(r#"{"alg":"HS256","typ":"JWT"}"#),
        enc(&format!(r#"{{"sub":"{sub}","iat":1}}"#)),
        enc("not-checked")
    )
}

#[test]
fn consistent_hash_keys_on_a_configured_header_or_token_claim_across_sessions() {
    for driver in DRIVERS {
        let demos: Vec<(Child, String)> = ["a", "b", "c", "d"].iter().map(|n| demo(n)).collect();
        let urls: Vec<String> = demos.iter().map(|(_, u)| format!("\"{u}\"")).collect();
        let urls = urls.join(", ");
        let cfg = format!(
            "[[servers]]\nid = \"web\"\ntransport = \"http\"\nurls = [{urls}]\nbalance = \"consistent_hash\"\nbalance_key = \"header:X-Tenant\"\n\n\
             [[servers]]\nid = \"web2\"\ntransport = \"http\"\nurls = [{urls}]\nbalance = \"consistent_hash\"\nbalance_key = \"claim:sub\"\n"
        );
        let gw = Gateway::start(&cfg, driver, 2, &["web", "web2"]);
        let sessions: Vec<String> = (0..3).map(|_| gw.initialize()).collect();
        let mut seen = std::collections::BTreeSet::new();
        for t in 0..8 {
            let tenant = format!("tenant-{t}");
            let picks: Vec<String> = sessions
                .iter()
                .map(|sid| who_with(&gw, sid, &[("x-tenant", &tenant)]))
                .collect();
            assert!(
                picks.iter().all(|p| *p == picks[0]),
                "{driver}: one tenant reached several replicas: {picks:?}"
            );
            seen.insert(picks[0].clone());
        }
        assert!(
            seen.len() >= 2,
            "{driver}: 8 tenants all on one replica: {seen:?}"
        );
        // The claim key: the same `sub` sticks across sessions, whatever the rest of the token.
        let web2 = |sid: &str, auth: &str| {
            let r = gw.post(
                &[
                    ("mcp-session-id", sid),
                    ("mcp-protocol-version", "2025-11-25"),
                    ("authorization", auth),
                ],
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"web2__whoami","arguments":{}}}"#,
            );
            r.answer()["result"]["content"][0]["text"]
                .as_str()
                .unwrap_or_else(|| panic!("{}", r.text()))
                .to_string()
        };
        let mut users = std::collections::BTreeSet::new();
        for u in 0..8 {
            let token = bearer(&format!("user-{u}"));
            let picks: Vec<String> = sessions.iter().map(|sid| web2(sid, &token)).collect();
            assert!(
                picks.iter().all(|p| *p == picks[0]),
                "{driver}: one user reached several replicas: {picks:?}"
            );
            users.insert(picks[0].clone());
        }
        assert!(users.len() >= 2, "{driver}: {users:?}");
        // Without the header, the session is the key: each session sticks to one replica.
        for sid in &sessions {
            let a = who_with(&gw, sid, &[]);
            assert!((0..4).all(|_| who_with(&gw, sid, &[]) == a), "{driver}");
        }
        drop(gw);
        for (mut c, _) in demos {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

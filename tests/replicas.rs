//! Replicas of an HTTP backend: round-robin spread, and a dead replica's circuit breaker
//! opening so that calls stop reaching it. Real demo servers over HTTP, both drivers.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::{Gateway, DRIVERS};
use sonic_rs::JsonValueTrait;

fn demo(name: &str) -> (Child, String) {
    let mut child = Command::new(common::bin())
        .args(["demo-server", "--http", "127.0.0.1:0", "--name", name])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.split_whitespace().last().unwrap().to_string();
    (child, url)
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

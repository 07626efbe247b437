//! Overload is refused at once, never queued: a backend's `max_inflight` and a shard's
//! `max_connections_per_shard`. Both drivers.

mod common;

use std::time::{Duration, Instant};

use common::{demo_stdio, Gateway, DRIVERS};
use sonic_rs::JsonValueTrait;

#[test]
fn a_busy_backend_fails_fast_and_recovers() {
    for driver in DRIVERS {
        let gw = Gateway::start(
            &demo_stdio("demo", "max_inflight = 1"),
            driver,
            1,
            &["demo"],
        );
        let sid = gw.initialize();
        std::thread::scope(|s| {
            let slow = s.spawn(|| gw.call(&sid, "demo__sleep", r#"{"ms":800}"#));
            std::thread::sleep(Duration::from_millis(200));
            let started = Instant::now();
            let busy = gw.call(&sid, "demo__echo", r#"{"message":"x"}"#);
            assert!(
                started.elapsed() < Duration::from_millis(500),
                "{driver}: busy answer took {:?}",
                started.elapsed()
            );
            assert_eq!(
                busy["error"]["code"].as_i64(),
                Some(-32000),
                "{driver}: {busy:?}"
            );
            assert!(
                busy["error"]["message"].as_str().unwrap().contains("busy"),
                "{busy:?}"
            );
            let done = slow.join().unwrap();
            assert_eq!(
                done["result"]["content"][0]["text"].as_str(),
                Some("slept 800ms"),
                "{done:?}"
            );
        });
        let ok = gw.call(&sid, "demo__echo", r#"{"message":"again"}"#);
        assert_eq!(
            ok["result"]["content"][0]["text"].as_str(),
            Some("again"),
            "{driver}"
        );
    }
}

#[test]
fn connections_over_the_shard_limit_get_503_with_retry_after() {
    for driver in DRIVERS {
        let cfg = format!(
            "[server]\nmax_connections_per_shard = 2\n\n{}",
            demo_stdio("demo", "")
        );
        let gw = Gateway::start(&cfg, driver, 1, &["demo"]);
        // Two idle keep-alive connections fill the shard.
        let held: Vec<std::net::TcpStream> = (0..2)
            .map(|_| std::net::TcpStream::connect(&gw.addr).unwrap())
            .collect();
        std::thread::sleep(Duration::from_millis(200));
        let r = gw.get("/health");
        assert_eq!(r.status, 503, "{driver}: {}", r.text());
        assert_eq!(r.header("retry-after"), Some("1"));
        drop(held);
        let deadline = Instant::now() + Duration::from_secs(5);
        while gw.get("/health").status != 200 {
            assert!(
                Instant::now() < deadline,
                "{driver}: capacity never came back"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

//! The shard runtime's io_uring setup flags (`server.uring_setup`), end to end: with each set
//! the gateway must serve calls, fire its timers (a backend call's timeout) and stop cleanly,
//! on both drivers (epoll ignores the flags).

mod common;

use std::time::{Duration, Instant};

use common::{Gateway, DRIVERS};
use sonic_rs::JsonValueTrait;

/// A gateway with `server_lines`, a demo backend whose calls time out after 300 ms.
fn gateway(server_lines: &str, driver: &str) -> Gateway {
    let cfg = format!(
        "[server]\nhost = \"127.0.0.1\"\n{server_lines}\n[metrics]\nsocket_enabled = false\n{}",
        common::demo_stdio("demo", "timeout_ms = 300")
    );
    Gateway::start(&cfg, driver, 2, &["demo"])
}

/// Calls, then a call that outlives its 300 ms timeout: the answer is the timeout error, in
/// time (a timer that did not fire would leave the call to the 5 s sleep).
fn serves_and_times_out(gw: &Gateway) {
    let sid = gw.initialize();
    for i in 0..50 {
        let r = gw.call(&sid, "demo__echo", &format!(r#"{{"message":"t{i}"}}"#));
        let text = r["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_default();
        assert!(text.contains(&format!("t{i}")), "call {i}: {r:?}");
    }
    let t0 = Instant::now();
    let r = gw.call(&sid, "demo__sleep", r#"{"ms":5000}"#);
    let took = t0.elapsed();
    assert!(r.get("error").is_some(), "a timeout error: {r:?}");
    let msg = r["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("did not answer within 300 ms"), "{msg}");
    assert!(
        took < Duration::from_secs(3),
        "the timeout fired late: {took:?}"
    );
}

/// The running kernel's (major, minor) version.
fn kernel() -> (u32, u32) {
    let r = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut it = r.trim().split(|c: char| !c.is_ascii_digit());
    let major = it.next().and_then(|x| x.parse().ok()).unwrap_or(0);
    let minor = it.next().and_then(|x| x.parse().ok()).unwrap_or(0);
    (major, minor)
}

/// Checks the start log against `asked` (oldest flag first): the flags this kernel knows are
/// logged as kept, and each newer one as refused by name (`rt/uring_setup.rs`).
fn assert_flags_logged(log: &str, asked: &[&str]) {
    let since = |f: &str| match f {
        "coop_taskrun" | "taskrun_flag" => (5, 19),
        "single_issuer" => (6, 0),
        _ => (6, 1),
    };
    let k = kernel();
    let kept: Vec<&str> = asked.iter().copied().filter(|f| k >= since(f)).collect();
    let want = if kept.is_empty() {
        "none".to_string()
    } else {
        kept.join(",")
    };
    assert!(
        log.contains(&format!("uring_setup={want}")),
        "kernel {k:?}: kept {want} logged: {log}"
    );
    for f in asked.iter().filter(|f| k < since(f)) {
        assert!(
            log.contains("refused an io_uring setup flag") && log.contains(f),
            "kernel {k:?}: {f} refused by name: {log}"
        );
    }
}

#[test]
fn every_io_uring_setup_flag_serves_calls_and_fires_timers() {
    for driver in DRIVERS {
        let mut gw = gateway(
            r#"uring_setup = ["coop_taskrun", "taskrun_flag", "single_issuer", "defer_taskrun"]"#,
            driver,
        );
        serves_and_times_out(&gw);
        if *driver == "uring" {
            assert_flags_logged(
                &gw.log(),
                &[
                    "coop_taskrun",
                    "taskrun_flag",
                    "single_issuer",
                    "defer_taskrun",
                ],
            );
        }
        assert!(gw.stop().success(), "{driver}: clean stop");
    }
}

#[test]
fn the_default_ring_is_cooperative_and_single_issuer() {
    let mut gw = gateway("", "uring");
    serves_and_times_out(&gw);
    assert_flags_logged(
        &gw.log(),
        &["coop_taskrun", "taskrun_flag", "single_issuer"],
    );
    assert!(gw.stop().success());
}

#[test]
fn no_io_uring_setup_flag_is_the_old_ring() {
    let mut gw = gateway("uring_setup = []", "uring");
    serves_and_times_out(&gw);
    assert!(gw.log().contains("uring_setup=none"), "{}", gw.log());
    assert!(gw.stop().success());
}

//! stdio supervision: a server that keeps dying is parked, and says so.

mod common;

use std::time::Duration;

use common::{Gateway, DRIVERS};
use sonic_rs::JsonValueTrait;

#[test]
fn a_crash_looping_stdio_server_is_parked_with_a_reason() {
    for driver in DRIVERS {
        let cfg = format!(
            "{}[[servers]]\nid = \"dies\"\ntransport = \"stdio\"\ncommand = \"sh\"\nargs = [\"-c\", \"exit 3\"]\n",
            common::demo_stdio("demo", "")
        );
        let gw = Gateway::start(&cfg, driver, 1, &["demo"]);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let b = gw.wait_state("dies", "down", Duration::from_secs(5));
            let reason = b["reason"].as_str().unwrap_or_default().to_string();
            if reason.contains("crash loop") {
                assert!(reason.contains("parked"), "{driver}: {reason}");
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{driver}: never parked; last reason {reason}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        // The healthy backend is unaffected.
        let sid = gw.initialize();
        let r = gw.call(&sid, "demo__echo", r#"{"message":"fine"}"#);
        assert_eq!(r["result"]["content"][0]["text"].as_str(), Some("fine"));
    }
}

#[test]
fn instances_spread_a_stateless_stdio_server_over_processes() {
    for driver in DRIVERS {
        let mut gw = Gateway::start(
            &common::demo_stdio("pool", "instances = 3"),
            driver,
            2,
            &["pool"],
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let kids = loop {
            let kids: Vec<u32> = common::descendants(gw.pid())
                .into_iter()
                .filter(|p| {
                    std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                        .is_ok_and(|c| c.contains("demo-server"))
                })
                .collect();
            if kids.len() == 3 || std::time::Instant::now() > deadline {
                break kids;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(kids.len(), 3, "{driver}: {kids:?}");
        let sid = gw.initialize();
        for i in 0..12 {
            let r = gw.call(&sid, "pool__echo", &format!(r#"{{"message":"m{i}"}}"#));
            assert_eq!(
                r["result"]["content"][0]["text"].as_str(),
                Some(format!("m{i}").as_str()),
                "{driver}: {r:?}"
            );
        }
        assert!(gw.stop().success());
        for k in kids {
            assert!(!common::alive(k), "{driver}: instance {k} left behind");
        }
    }
}

#[test]
fn a_stdio_server_that_stops_answering_ping_is_killed_and_restarted() {
    // SIGSTOP makes the real demo server exactly what the ping check is for: alive, pipes
    // open, answering nothing.
    for driver in DRIVERS {
        let gw = Gateway::start(
            &common::demo_stdio(
                "demo",
                "health_interval_ms = 200\nhealth_timeout_ms = 200\nunhealthy_threshold = 2",
            ),
            driver,
            1,
            &["demo"],
        );
        let sid = gw.initialize();
        let who = |gw: &Gateway| {
            let r = gw.call(&sid, "demo__whoami", "{}");
            r["result"]["content"][0]["text"]
                .as_str()
                .map(str::to_string)
        };
        assert!(who(&gw).is_some(), "{driver}: not serving");
        let old = common::descendants(gw.pid());
        assert_eq!(old.len(), 1, "{driver}: {old:?}");
        // SAFETY: plain syscall on our own grandchild's pid.
        unsafe { libc::kill(old[0] as i32, libc::SIGSTOP) };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let now = common::descendants(gw.pid());
            if !now.is_empty() && !now.contains(&old[0]) && who(&gw).is_some() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{driver}: the frozen server was never replaced: {now:?}\n{}",
                gw.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(
            gw.log()
                .contains("health checks in a row (did not answer ping)"),
            "{driver}: not logged"
        );
        // The old process is gone, not a zombie.
        assert!(
            !std::path::Path::new(&format!("/proc/{}", old[0])).exists(),
            "{driver}: old process not reaped"
        );
    }
}

#[test]
fn a_stdio_server_whose_canary_tool_fails_is_restarted_and_a_passing_one_is_left_alone() {
    // The real demo server: `fail` always answers isError (a process that answers ping but
    // cannot do its work), `echo` always succeeds.
    for driver in DRIVERS {
        let checks = "health_interval_ms = 150\nhealth_timeout_ms = 500\nunhealthy_threshold = 2";
        let cfg = format!(
            "{}{}",
            common::demo_stdio(
                "sick",
                &format!("{checks}\nhealth_canary = {{ tool = \"fail\" }}")
            ),
            common::demo_stdio(
                "well",
                &format!(
                    "{checks}\nhealth_canary = {{ tool = \"echo\", arguments = {{ message = \"ok\" }} }}"
                )
            ),
        );
        let gw = Gateway::start(&cfg, driver, 1, &["sick", "well"]);
        let demo_pids = |gw: &Gateway, name: &str| -> Vec<u32> {
            common::descendants(gw.pid())
                .into_iter()
                .filter(|p| {
                    std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                        .is_ok_and(|c| c.split('\0').any(|a| a == name))
                })
                .collect()
        };
        let well = demo_pids(&gw, "well");
        assert_eq!(well.len(), 1, "{driver}: {well:?}");
        let sick = demo_pids(&gw, "sick");
        assert_eq!(sick.len(), 1, "{driver}: {sick:?}");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !gw.log().contains("canary tool `fail` answered isError") {
            assert!(
                std::time::Instant::now() < deadline,
                "{driver}: the failing canary was never acted on\n{}",
                gw.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        loop {
            let now = demo_pids(&gw, "sick");
            if !now.is_empty() && !now.contains(&sick[0]) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{driver}: the sick server was never restarted: {now:?}\n{}",
                gw.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // By now `well` has passed many canary calls and is still the same process.
        assert_eq!(demo_pids(&gw, "well"), well, "{driver}\n{}", gw.log());
        assert!(
            !gw.log().contains("canary tool `echo`"),
            "{driver}\n{}",
            gw.log()
        );
    }
}

/// Servers whose start writes `start` and, 300 ms later, `end` to `log`, then becomes the
/// real demo server (so its start is only over once it has answered and listed).
fn slow_starters(log: &std::path::Path, n: usize) -> String {
    let bin = common::bin();
    (0..n)
        .map(|i| {
            format!(
                "[[servers]]\nid = \"s{i}\"\ntransport = \"stdio\"\ncommand = \"sh\"\nargs = [\"-c\", \"echo start >> {log}; sleep 0.3; echo end >> {log}; exec {bin} demo-server --stdio --name s{i}\"]\n",
                log = log.display(),
                bin = bin.display()
            )
        })
        .collect()
}

#[test]
fn stdio_starts_are_capped_across_shards() {
    for driver in DRIVERS {
        for (cap, serial) in [(1, true), (8, false)] {
            let log = common::scratch("spawn-cap").join(format!("{driver}-{cap}.log"));
            let _ = std::fs::remove_file(&log);
            let cfg = format!(
                "[proxy]\nmax_concurrent_spawns = {cap}\n{}",
                slow_starters(&log, 4)
            );
            let gw = Gateway::start(&cfg, driver, 2, &["s0", "s1", "s2", "s3"]);
            let lines = std::fs::read_to_string(&log).unwrap();
            let lines: Vec<&str> = lines.lines().collect();
            assert_eq!(lines.len(), 8, "{driver} cap {cap}: {lines:?}");
            let alternating = lines.chunks(2).all(|pair| pair == ["start", "end"]);
            // With a cap of 1 no start begins before the previous one is over; with 8 the
            // four (on two shards) overlap, which shows this test can tell the difference.
            assert_eq!(alternating, serial, "{driver} cap {cap}: {lines:?}");
            if serial {
                assert!(
                    gw.log().contains("waiting for a start slot"),
                    "{driver}: {}",
                    gw.log()
                );
            }
        }
    }
}

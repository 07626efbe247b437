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
            gw.log().contains("stopped answering ping"),
            "{driver}: not logged"
        );
        // The old process is gone, not a zombie.
        assert!(
            !std::path::Path::new(&format!("/proc/{}", old[0])).exists(),
            "{driver}: old process not reaped"
        );
    }
}

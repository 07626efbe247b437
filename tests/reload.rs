//! Hot reload under load, on both drivers: while a client keeps calling a server the
//! reloads never touch, the config file is rewritten many times (a server added, removed,
//! changed; broken files; a change that needs a restart; SIGHUP). No call to the untouched
//! server fails, its process is never restarted, broken files change nothing, removed
//! servers' processes are gone, and the reload counters in `/metrics` add up.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Gateway, DRIVERS};
use sonic_rs::JsonValueTrait;

fn demo(id: &str, extra: &str) -> String {
    common::demo_stdio(id, extra)
}

/// Live (non-zombie) demo processes of server `id`.
fn pids(gw: &Gateway, id: &str) -> Vec<u32> {
    common::descendants(gw.pid())
        .into_iter()
        .filter(|p| {
            let cmd = std::fs::read_to_string(format!("/proc/{p}/cmdline")).unwrap_or_default();
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            cmd.split('\0').any(|a| a == id) && !stat.contains(") Z ")
        })
        .collect()
}

/// Waits until the log holds `n` lines containing `needle`.
fn wait_log(gw: &Gateway, needle: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while gw.log().matches(needle).count() < n {
        assert!(
            Instant::now() < deadline,
            "never saw {n}× {needle:?}\n{}",
            gw.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn backend_ids(gw: &Gateway) -> Vec<String> {
    use sonic_rs::JsonContainerTrait;
    let h = gw.get("/health").json();
    h["backends"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|b| b["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn wait_until(what: &str, gw: &Gateway, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !ok() {
        assert!(Instant::now() < deadline, "{what}\n{}", gw.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn metric(gw: &Gateway, name: &str) -> u64 {
    let text = gw.get("/metrics").text();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[test]
fn reloads_under_load_touch_only_what_changed() {
    for driver in DRIVERS {
        let base = demo("keep", "");
        let v1 = format!(
            "{base}{}{}",
            demo("gone", ""),
            demo("tweak", "timeout_ms = 5000")
        );
        let gw = Gateway::start(&v1, driver, 2, &["keep", "gone", "tweak"]);
        let keep_pid = pids(&gw, "keep");
        assert_eq!(keep_pid.len(), 1, "{driver}");

        // The load: one session calling keep__echo until told to stop (bounded).
        let stop = Arc::new(AtomicBool::new(false));
        let (calls, failures) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let load = {
            let (client, stop, calls, failures) =
                (gw.client(), stop.clone(), calls.clone(), failures.clone());
            std::thread::spawn(move || {
                let sid = client.initialize();
                let until = Instant::now() + Duration::from_secs(90);
                let mut first_failure = None;
                while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                    let n = calls.fetch_add(1, Ordering::Relaxed);
                    let args = format!(r#"{{"message":"m{n}"}}"#);
                    let at = Instant::now();
                    let r = std::panic::catch_unwind(|| client.call(&sid, "keep__echo", &args));
                    let ok = r.as_ref().is_ok_and(|r| {
                        r["result"]["content"][0]["text"].as_str() == Some(&format!("m{n}"))
                    });
                    if !ok {
                        failures.fetch_add(1, Ordering::Relaxed);
                        first_failure
                            .get_or_insert(format!("call {n} after {:?}: {r:?}", at.elapsed()));
                    }
                }
                first_failure
            })
        };

        let mut applied = 0;
        let mut rejected = 0;
        for round in 0..2 {
            // Add `extra`, drop `gone`, change `tweak`.
            let v2 = format!(
                "{base}{}{}",
                demo("tweak", &format!("timeout_ms = {}", 6000 + round)),
                demo("extra", "")
            );
            let tweak_before = pids(&gw, "tweak");
            std::fs::write(&gw.cfg, &v2).unwrap();
            applied += 1;
            wait_log(&gw, "config reloaded", applied);
            gw.wait_ready(&["extra"], Duration::from_secs(15));
            wait_until("gone still listed", &gw, || {
                !backend_ids(&gw).contains(&"gone".to_string())
            });
            wait_until("gone's process still running", &gw, || {
                pids(&gw, "gone").is_empty()
            });
            wait_until("tweak was not restarted", &gw, || {
                let now = pids(&gw, "tweak");
                now.len() == 1 && !tweak_before.contains(&now[0])
            });
            let sid = gw.initialize();
            let r = gw.call(&sid, "extra__whoami", "{}");
            assert_eq!(r["result"]["content"][0]["text"].as_str(), Some("extra"));
            let r = gw.call(&sid, "gone__echo", r#"{"message":"x"}"#);
            assert!(
                r["error"].is_object(),
                "{driver}: removed server answered: {r:?}"
            );

            // Broken files change nothing: a syntax error, then a bad value.
            for broken in [
                format!("{v2}[[servers]\n"),
                v2.replace("timeout_ms = 600", "timeout_ms = 0 #"),
            ] {
                std::fs::write(&gw.cfg, broken).unwrap();
                rejected += 1;
                wait_log(&gw, "config reload rejected", rejected);
            }
            assert!(backend_ids(&gw).contains(&"extra".to_string()));

            // Back to v1: `extra` goes, `gone` comes back.
            std::fs::write(&gw.cfg, &v1).unwrap();
            applied += 1;
            wait_log(&gw, "config reloaded", applied);
            gw.wait_ready(&["gone"], Duration::from_secs(15));
            wait_until("extra's process still running", &gw, || {
                pids(&gw, "extra").is_empty()
            });
        }
        // A change that needs a restart is refused and says why.
        // (The command line's --port and --cores win over the file, as at startup.)
        std::fs::write(&gw.cfg, format!("[server]\nhost = \"0.0.0.0\"\n{v1}")).unwrap();
        rejected += 1;
        wait_log(&gw, "config reload rejected", rejected);
        assert!(gw
            .log()
            .contains(r#"server.host ("127.0.0.1" → "0.0.0.0") can only change with a restart"#));
        // SIGHUP reloads the (restored) file on demand.
        std::fs::write(&gw.cfg, &v1).unwrap();
        applied += 1;
        wait_log(&gw, "config reloaded", applied);
        // SAFETY: plain syscall on our own child.
        unsafe { libc::kill(gw.pid() as i32, libc::SIGHUP) };
        applied += 1;
        wait_log(&gw, "config reloaded", applied);
        assert!(gw.log().contains("SIGHUP: reloading the config"));

        stop.store(true, Ordering::Relaxed);
        let first_failure = load.join().unwrap();
        let (n, failed) = (
            calls.load(Ordering::Relaxed),
            failures.load(Ordering::Relaxed),
        );
        eprintln!("{driver}: {n} calls to the untouched server during {applied} reloads and {rejected} rejected files, {failed} failed");
        assert_eq!(failed, 0, "{driver}: {first_failure:?}");
        assert!(n > 20, "{driver}: the load barely ran ({n} calls)");
        assert_eq!(pids(&gw, "keep"), keep_pid, "{driver}: keep was restarted");
        wait_until("reload counters", &gw, || {
            metric(&gw, "only1mcp_config_reloads_total") == applied as u64
                && metric(&gw, "only1mcp_config_reload_errors_total") == rejected as u64
        });
    }
}

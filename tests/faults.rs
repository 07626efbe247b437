//! Fault injection under load, on both drivers.
//!
//! Two background threads keep calling a healthy stdio backend (`steady__echo`, one
//! connection per call) while faults are injected one after another into other backends:
//!
//! 1. `web`: an HTTP demo server is killed with SIGKILL, then restarted on the same address;
//!    it must rejoin.
//! 2. `crashy`: a stdio demo server's `crash` tool makes the process exit; the gateway
//!    restarts it and `crashy__whoami` works again.
//! 3. `slow`: a stdio demo server with `timeout_ms = 300` is asked to sleep 5 s; the call must
//!    fail within ~1.5 s, never hang.
//! 4. `hang`: an HTTP backend that accepts connections and never answers (`timeout_ms = 400`).
//!
//! Asserted: zero failures on the steady backend; failures only on the faulty backend; no
//! call longer than its timeout + 1 s; rejoin after recovery; after a clean stop, no leaked
//! process, no zombie, and no growth of the gateway's open file descriptors beyond a small
//! slack. A markdown table (one row per fault per driver) is printed and written to
//! `target/reliability-table.md` (see docs/reliability.md).

mod common;
#[path = "faults/peers.rs"]
mod peers;

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{http_server, DemoHttp, Gateway, DRIVERS};
use peers::{fd_count, pids_with, proc_state, Hang};
use sonic_rs::JsonValueTrait;

const TABLE_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/reliability-table.md");

/// Upper bound on the background load, whatever happens.
const LOAD_MAX: Duration = Duration::from_secs(8);

// Per-backend timeouts (ms), written into the config and used for the latency bounds.
const STEADY_TIMEOUT: u64 = 2000;
const WEB_TIMEOUT: u64 = 1000;
const CRASHY_TIMEOUT: u64 = 2000;
const SLOW_TIMEOUT: u64 = 300;
const HANG_TIMEOUT: u64 = 400;

/// Sets the flag when dropped, so the load threads stop even if an assertion fails.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// One tools/call that never panics: ok means a 200 with a `result` that is not `isError`.
struct Outcome {
    ok: bool,
    ms: u128,
    detail: String,
}

fn try_call(gw: &Gateway, sid: &str, tool: &str, args: &str) -> Outcome {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":"f1","method":"tools/call","params":{{"name":"{tool}","arguments":{args}}}}}"#
    );
    let started = Instant::now();
    let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let r = gw.post(
            &[
                ("mcp-session-id", sid),
                ("mcp-protocol-version", "2025-11-25"),
            ],
            &body,
        );
        if r.status != 200 {
            return (false, format!("HTTP {}: {}", r.status, r.text()));
        }
        let v = r.answer();
        let ok = !v["result"].is_null() && v["result"]["isError"].as_bool() != Some(true);
        let detail = if ok {
            v["result"]["content"][0]["text"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        } else if !v["error"].is_null() {
            v["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        } else {
            v["result"]["content"][0]["text"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        };
        (ok, detail)
    }));
    let ms = started.elapsed().as_millis();
    match r {
        Ok((ok, detail)) => Outcome { ok, ms, detail },
        Err(_) => Outcome {
            ok: false,
            ms,
            detail: "transport error (no parsable answer)".into(),
        },
    }
}

/// One row of the report.
struct Row {
    driver: &'static str,
    fault: &'static str,
    sent: u32,
    failed: u32,
    max_ms: u128,
    recovery_ms: Option<u128>,
    note: String,
}

/// Counts calls to the faulty backend and checks each against its latency bound.
struct Tally {
    sent: u32,
    failed: u32,
    max_ms: u128,
    bound_ms: u128,
    what: String,
}

impl Tally {
    fn new(what: String, timeout_ms: u64) -> Tally {
        Tally {
            sent: 0,
            failed: 0,
            max_ms: 0,
            bound_ms: timeout_ms as u128 + 1000,
            what,
        }
    }

    fn call(&mut self, gw: &Gateway, sid: &str, tool: &str, args: &str) -> Outcome {
        let o = try_call(gw, sid, tool, args);
        self.sent += 1;
        if !o.ok {
            self.failed += 1;
        }
        self.max_ms = self.max_ms.max(o.ms);
        assert!(
            o.ms <= self.bound_ms,
            "{}: {tool} took {} ms (> timeout + 1 s = {} ms): {}",
            self.what,
            o.ms,
            self.bound_ms,
            o.detail
        );
        o
    }

    /// Calls `tool` every 50 ms until it succeeds (bounded by `within`); returns when it did.
    fn until_ok(
        &mut self,
        gw: &Gateway,
        sid: &str,
        tool: &str,
        within: Duration,
    ) -> Option<Instant> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.call(gw, sid, tool, "{}").ok {
                return Some(Instant::now());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    fn row(
        self,
        driver: &'static str,
        fault: &'static str,
        rec: Option<u128>,
        note: String,
    ) -> Row {
        Row {
            driver,
            fault,
            sent: self.sent,
            failed: self.failed,
            max_ms: self.max_ms,
            recovery_ms: rec,
            note,
        }
    }
}

/// The backends that are not under fault answer normally ("failures only for the faulty
/// backend").
fn others_fine(gw: &Gateway, sid: &str, faulty: &str, driver: &str) {
    for id in ["steady", "web", "crashy", "slow"] {
        if id == faulty {
            continue;
        }
        let o = try_call(gw, sid, &format!("{id}__whoami"), "{}");
        assert!(
            o.ok && o.detail == id,
            "{driver}: during the {faulty} fault, {id}__whoami failed: {}",
            o.detail
        );
    }
}

/// Per-driver summary, after the gateway stopped.
struct Summary {
    driver: &'static str,
    load_ok: u64,
    load_failed: u64,
    load_max_ms: u128,
    load_secs: f64,
    fds_ready: usize,
    fds_before_stop: usize,
    children: usize,
    leaked: usize,
    zombies: usize,
    stop_ms: u128,
}

fn run_driver(driver: &'static str, rows: &mut Vec<Row>) -> Summary {
    let mut web = DemoHttp::start("127.0.0.1:0", "web");
    let web_addr = web.addr.clone();
    let hang = Hang::start();
    // A short breaker cooldown and health interval for `web`, so that its rejoin after the
    // restart is measured in hundreds of ms rather than the 10 s defaults.
    let cfg = format!(
        "{}{}{}{}{}",
        common::demo_stdio("steady", &format!("timeout_ms = {STEADY_TIMEOUT}")),
        http_server(
            "web",
            &web_addr,
            &format!(
                "timeout_ms = {WEB_TIMEOUT}\nhealth_interval_ms = 500\nhealth_timeout_ms = 500\nbreaker_cooldown_ms = 500"
            )
        ),
        common::demo_stdio("crashy", &format!("timeout_ms = {CRASHY_TIMEOUT}")),
        common::demo_stdio("slow", &format!("timeout_ms = {SLOW_TIMEOUT}")),
        http_server(
            "hang",
            &hang.addr,
            &format!("timeout_ms = {HANG_TIMEOUT}\nhealth_interval_ms = 0")
        ),
    );
    let mut gw = Gateway::start(&cfg, driver, 2, &["steady", "web", "crashy", "slow"]);
    let gw_pid = gw.pid();
    let fds_ready = fd_count(gw_pid);
    let sid = gw.initialize();

    let stop = AtomicBool::new(false);
    let load_started = Instant::now();
    let (load, fds_before_stop, children) = std::thread::scope(|s| {
        let _guard = StopOnDrop(&stop);
        let loads: Vec<_> = (0..2)
            .map(|t| {
                let (gw, stop) = (&gw, &stop);
                s.spawn(move || {
                    let sid = gw.initialize();
                    let (mut ok, mut failed, mut max_ms) = (0u64, 0u64, 0u128);
                    let mut first_failure = String::new();
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) && load_started.elapsed() < LOAD_MAX {
                        i += 1;
                        let msg = format!("t{t}-{i}");
                        let started = Instant::now();
                        let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
                            gw.call(&sid, "steady__echo", &format!(r#"{{"message":"{msg}"}}"#))
                        }));
                        max_ms = max_ms.max(started.elapsed().as_millis());
                        match r {
                            Ok(v) if v["result"]["content"][0]["text"].as_str() == Some(&msg) => {
                                ok += 1
                            }
                            other => {
                                failed += 1;
                                if first_failure.is_empty() {
                                    first_failure = match other {
                                        Ok(v) => format!("{v:?}"),
                                        Err(_) => "transport error".into(),
                                    };
                                }
                            }
                        }
                    }
                    (ok, failed, max_ms, first_failure)
                })
            })
            .collect();

        // 1. web: SIGKILL, ~1 s down, restart on the same address, rejoin.
        let mut t = Tally::new(format!("{driver}/web-kill"), WEB_TIMEOUT);
        let o = t.call(&gw, &sid, "web__whoami", "{}");
        assert!(
            o.ok && o.detail == "web",
            "{driver}: web before the fault: {}",
            o.detail
        );
        let (sent0, failed0) = (t.sent, t.failed);
        let injected = Instant::now();
        web.kill9();
        let down_until = injected + Duration::from_millis(1000);
        while Instant::now() < down_until {
            t.call(&gw, &sid, "web__echo", r#"{"message":"down?"}"#);
            std::thread::sleep(Duration::from_millis(100));
        }
        let down_failed = t.failed - failed0;
        let down_sent = t.sent - sent0;
        others_fine(&gw, &sid, "web", driver);
        let restarted = Instant::now();
        web = DemoHttp::start(&web_addr, "web");
        let back = t.until_ok(&gw, &sid, "web__whoami", Duration::from_secs(10));
        let back = back.unwrap_or_else(|| {
            panic!(
                "{driver}: web never rejoined after its restart\n{}",
                gw.log()
            )
        });
        let rec = back.duration_since(injected).as_millis();
        let note = format!(
            "SIGKILL, {down_failed}/{down_sent} calls failed while down; restarted on the same \
             address after {} ms; first success {} ms after restart",
            restarted.duration_since(injected).as_millis(),
            back.duration_since(restarted).as_millis()
        );
        rows.push(t.row(
            driver,
            "web: HTTP backend killed -9, restarted",
            Some(rec),
            note,
        ));

        // 2. crashy: the `crash` tool exits the process; the gateway restarts it.
        let mut t = Tally::new(format!("{driver}/crashy"), CRASHY_TIMEOUT);
        let old = pids_with(gw_pid, "crashy");
        assert_eq!(old.len(), 1, "{driver}: crashy processes {old:?}");
        let injected = Instant::now();
        let o = t.call(&gw, &sid, "crashy__crash", "{}");
        assert!(!o.ok, "{driver}: crash call answered success: {}", o.detail);
        let crash_err = o.detail.clone();
        others_fine(&gw, &sid, "crashy", driver);
        let back = t
            .until_ok(&gw, &sid, "crashy__whoami", Duration::from_secs(10))
            .unwrap_or_else(|| panic!("{driver}: crashy never came back\n{}", gw.log()));
        let rec = back.duration_since(injected).as_millis();
        let new = pids_with(gw_pid, "crashy");
        assert!(
            new.len() == 1 && new != old,
            "{driver}: crashy not restarted: {old:?} -> {new:?}"
        );
        // The crashed process was reaped by the gateway (not left as a zombie).
        let reap_deadline = Instant::now() + Duration::from_secs(2);
        while common::alive(old[0]) && Instant::now() < reap_deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            !common::alive(old[0]),
            "{driver}: crashed pid {} not reaped (state {:?})",
            old[0],
            proc_state(old[0])
        );
        let note = format!(
            "crash answered \"{}\"; new pid {} (old {} reaped)",
            crash_err.chars().take(100).collect::<String>(),
            new[0],
            old[0]
        );
        rows.push(t.row(driver, "crashy: stdio process exits", Some(rec), note));

        // 3. slow: a 5 s sleep against a 300 ms timeout fails fast; the process keeps serving.
        let mut t = Tally::new(format!("{driver}/slow"), SLOW_TIMEOUT);
        let injected = Instant::now();
        let o = t.call(&gw, &sid, "slow__sleep", r#"{"ms":5000}"#);
        assert!(
            !o.ok,
            "{driver}: a 5 s sleep succeeded under a 300 ms timeout"
        );
        assert!(
            o.ms <= 1500,
            "{driver}: slow__sleep failed only after {} ms",
            o.ms
        );
        let timeout_err = o.detail.clone();
        others_fine(&gw, &sid, "slow", driver);
        let back = t
            .until_ok(&gw, &sid, "slow__whoami", Duration::from_secs(10))
            .unwrap_or_else(|| panic!("{driver}: slow never answered again\n{}", gw.log()));
        let rec = back.duration_since(injected).as_millis();
        rows.push(t.row(
            driver,
            "slow: call exceeds timeout_ms=300",
            Some(rec),
            format!(
                "sleep 5000 ms failed after {} ms: \"{}\"",
                o.ms,
                timeout_err.chars().take(100).collect::<String>()
            ),
        ));

        // 4. hang: a backend that never answers; every call fails, none hangs.
        let mut t = Tally::new(format!("{driver}/hang"), HANG_TIMEOUT);
        let mut last = String::new();
        for _ in 0..3 {
            let o = t.call(&gw, &sid, "hang__echo", r#"{"message":"x"}"#);
            assert!(
                !o.ok,
                "{driver}: the hanging backend answered: {}",
                o.detail
            );
            last = o.detail;
        }
        assert_eq!(
            last.matches("`hang`").count(),
            1,
            "{driver}: the error should name the backend once: {last}"
        );
        others_fine(&gw, &sid, "hang", driver);
        rows.push(t.row(
            driver,
            "hang: HTTP backend never answers",
            None,
            format!(
                "no recovery expected (fake); error \"{}\"",
                last.chars().take(100).collect::<String>()
            ),
        ));

        // Everything recovered: file descriptors and children, right before stop.
        let fds = fd_count(gw_pid);
        let children = common::descendants(gw_pid);
        stop.store(true, Ordering::Relaxed);
        let mut total = (0, 0, 0, String::new());
        for l in loads {
            let (ok, failed, max_ms, first) = l.join().expect("load thread");
            total.0 += ok;
            total.1 += failed;
            total.2 = total.2.max(max_ms);
            if total.3.is_empty() {
                total.3 = first;
            }
        }
        (total, fds, children)
    });
    let load_secs = load_started.elapsed().as_secs_f64();

    // Zombies among the gateway's children while it runs (the crashed one was checked above).
    let zombies = children
        .iter()
        .filter(|p| proc_state(**p) == Some('Z'))
        .count();
    let stop_started = Instant::now();
    let status = gw.stop();
    let stop_ms = stop_started.elapsed().as_millis();
    assert!(
        status.success(),
        "{driver}: gateway exit {status}\n{}",
        gw.log()
    );
    let leaked: Vec<u32> = children
        .iter()
        .copied()
        .filter(|p| common::alive(*p))
        .collect();
    drop(web);
    drop(hang);

    let (load_ok, load_failed, load_max_ms, first_failure) = load;
    assert_eq!(
        load_failed, 0,
        "{driver}: steady backend failed under faults: {first_failure}"
    );
    assert!(load_ok > 0, "{driver}: the load made no calls");
    assert!(
        load_max_ms <= STEADY_TIMEOUT as u128 + 1000,
        "{driver}: a steady call took {load_max_ms} ms"
    );
    assert!(
        leaked.is_empty(),
        "{driver}: processes left after stop: {leaked:?}"
    );
    assert_eq!(zombies, 0, "{driver}: zombie children before stop");
    assert!(
        fds_before_stop <= fds_ready + 8,
        "{driver}: fds grew from {fds_ready} to {fds_before_stop}"
    );
    Summary {
        driver,
        load_ok,
        load_failed,
        load_max_ms,
        load_secs,
        fds_ready,
        fds_before_stop,
        children: children.len(),
        leaked: leaked.len(),
        zombies,
        stop_ms,
    }
}

fn table(rows: &[Row], sums: &[Summary]) -> String {
    let mut out = String::from(
        "| driver | fault | requests to faulty backend | failed | max latency ms | recovery ms | notes |\n\
         |---|---|---:|---:|---:|---:|---|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            r.driver,
            r.fault,
            r.sent,
            r.failed,
            r.max_ms,
            r.recovery_ms.map_or("n/a".to_string(), |m| m.to_string()),
            r.note.replace('|', "\\|"),
        ));
    }
    out.push_str(
        "\n| driver | steady calls ok | steady failed | steady max ms | load s | fds at ready | fds before stop | children | leaked after stop | zombies | stop ms |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for s in sums {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {:.1} | {} | {} | {} | {} | {} | {} |\n",
            s.driver,
            s.load_ok,
            s.load_failed,
            s.load_max_ms,
            s.load_secs,
            s.fds_ready,
            s.fds_before_stop,
            s.children,
            s.leaked,
            s.zombies,
            s.stop_ms
        ));
    }
    out
}

#[test]
fn faults_under_load_hurt_only_the_faulty_backend_and_recover() {
    let started = Instant::now();
    let mut rows = Vec::new();
    let mut sums = Vec::new();
    for driver in DRIVERS {
        sums.push(run_driver(driver, &mut rows));
    }
    let t = table(&rows, &sums);
    println!("\n{t}\n(total {:.1} s)", started.elapsed().as_secs_f64());
    let _ = std::fs::write(TABLE_PATH, &t);
}

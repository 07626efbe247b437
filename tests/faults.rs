//! Fault injection under load, on both drivers.
//!
//! Two background threads keep calling a healthy stdio backend (`steady__echo`, one
//! connection per call) while faults are injected one after another into other backends:
//!
//! 1. `web`: an HTTP demo server is killed with SIGKILL, then restarted on the same address;
//!    it must rejoin.
//! 2. `crashy`: a stdio demo server's `crash` tool makes the process exit; the gateway
//!    restarts it and `crashy__whoami` works again.
//! 3. `victim`: a stdio demo server is killed with SIGKILL from outside while a call is in
//!    flight; that call fails at once, the dead process is reaped, a new one rejoins.
//! 4. `slow`: a stdio demo server with `timeout_ms = 300` is asked to sleep 5 s; the call must
//!    fail within ~1.5 s, never hang.
//! 5. `hang`: an HTTP backend that accepts connections and never answers (`timeout_ms = 400`).
//! 6. `garbage`, 7. `cut`: HTTP backends that pass discovery, then answer `tools/call` with a
//!    non-JSON 200, or with headers promising 1000 bytes and a cut body; later they heal.
//!
//! `hang`, `garbage` and `cut` are deliberate fakes (`faults/peers.rs`); every other backend is
//! the real demo server. Asserted: zero failures on the steady backend; failures only on the
//! faulty backend; no call longer than its timeout + 1 s; rejoin after recovery; after a
//! clean stop, no leaked process, no zombie, every replaced pid reaped, and no growth of the
//! gateway's open file descriptors beyond a small slack. A markdown table (one row per fault
//! per driver) is printed and written to `target/reliability-table.md` (see
//! docs/reliability.md).

mod common;
#[path = "faults/http.rs"]
mod http_faults;
#[path = "faults/peers.rs"]
mod peers;
#[path = "faults/procs.rs"]
mod procs;
#[path = "faults/stdio.rs"]
mod stdio_faults;
#[path = "faults/tally.rs"]
mod tally;

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{http_server, DemoHttp, Gateway, DRIVERS};
use peers::{Bad, Hang, Scripted};
use procs::{fd_count, proc_state};
use sonic_rs::JsonValueTrait;
use tally::{table, Ctx, Row, Summary};

const TABLE_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/reliability-table.md");

/// Upper bound on the background load, whatever happens.
const LOAD_MAX: Duration = Duration::from_secs(12);

// Per-backend timeouts (ms), written into the config and used for the latency bounds.
const STEADY_TIMEOUT: u64 = 2000;
const WEB_TIMEOUT: u64 = 1000;
const CRASHY_TIMEOUT: u64 = 2000;
const VICTIM_TIMEOUT: u64 = 5000;
const SLOW_TIMEOUT: u64 = 300;
const HANG_TIMEOUT: u64 = 400;
const BAD_TIMEOUT: u64 = 1000;

/// Sets the flag when dropped, so the load threads stop even if an assertion fails.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// What the background load saw: ok, failed, max latency, the first failure.
type Load = (u64, u64, u128, String);

/// Sequential `steady__echo` calls (one connection each) until `stop` or [`LOAD_MAX`].
fn load(gw: &Gateway, stop: &AtomicBool, t: usize, started: Instant) -> Load {
    let sid = gw.initialize();
    let (mut ok, mut failed, mut max_ms) = (0u64, 0u64, 0u128);
    let mut first_failure = String::new();
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) && started.elapsed() < LOAD_MAX {
        i += 1;
        let msg = format!("t{t}-{i}");
        let call_started = Instant::now();
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
            gw.call(&sid, "steady__echo", &format!(r#"{{"message":"{msg}"}}"#))
        }));
        max_ms = max_ms.max(call_started.elapsed().as_millis());
        match r {
            Ok(v) if v["result"]["content"][0]["text"].as_str() == Some(&msg) => ok += 1,
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
}

fn config(web: &str, hang: &str, garbage: &str, cut: &str) -> String {
    // A short breaker cooldown and health interval for `web`, so that its rejoin after the
    // restart is measured in hundreds of ms rather than the 10 s defaults; a short breaker
    // cooldown for the scripted fakes too, for their recovery once healed. Health checks are
    // off for the fakes: only the call path is under test there.
    let fake =
        format!("timeout_ms = {BAD_TIMEOUT}\nhealth_interval_ms = 0\nbreaker_cooldown_ms = 500");
    [
        common::demo_stdio("steady", &format!("timeout_ms = {STEADY_TIMEOUT}")),
        http_server(
            "web",
            web,
            &format!(
                "timeout_ms = {WEB_TIMEOUT}\nhealth_interval_ms = 500\nhealth_timeout_ms = 500\nbreaker_cooldown_ms = 500"
            ),
        ),
        common::demo_stdio("crashy", &format!("timeout_ms = {CRASHY_TIMEOUT}")),
        common::demo_stdio("victim", &format!("timeout_ms = {VICTIM_TIMEOUT}")),
        common::demo_stdio("slow", &format!("timeout_ms = {SLOW_TIMEOUT}")),
        http_server(
            "hang",
            hang,
            &format!("timeout_ms = {HANG_TIMEOUT}\nhealth_interval_ms = 0"),
        ),
        http_server("garbage", garbage, &fake),
        http_server("cut", cut, &fake),
    ]
    .concat()
}

fn run_driver(driver: &'static str, rows: &mut Vec<Row>) -> Summary {
    let mut web = DemoHttp::start("127.0.0.1:0", "web");
    let hang = Hang::start();
    let garbage = Scripted::start(Bad::Garbage);
    let cut = Scripted::start(Bad::Cut);
    let cfg = config(&web.addr, &hang.addr, &garbage.addr, &cut.addr);
    let mut ready = tally::REAL.to_vec();
    ready.extend(["garbage", "cut"]);
    let mut gw = Gateway::start(&cfg, driver, 2, &ready);
    let gw_pid = gw.pid();
    let fds_ready = fd_count(gw_pid);
    let sid = gw.initialize();

    let stop = AtomicBool::new(false);
    let load_started = Instant::now();
    let (load, fds_before_stop, children, replaced) = std::thread::scope(|s| {
        let _guard = StopOnDrop(&stop);
        let loads: Vec<_> = (0..2)
            .map(|t| {
                let (gw, stop) = (&gw, &stop);
                s.spawn(move || load(gw, stop, t, load_started))
            })
            .collect();
        let cx = Ctx {
            gw: &gw,
            sid: &sid,
            driver,
            gw_pid,
        };
        rows.push(http_faults::web_kill9(&cx, &mut web));
        let (row, crashy_old) = stdio_faults::crashy(&cx);
        rows.push(row);
        let (row, victim_old) = stdio_faults::victim_kill9(&cx);
        rows.push(row);
        rows.push(stdio_faults::slow(&cx));
        rows.push(http_faults::hang(&cx));
        rows.push(http_faults::bad_on_call(
            &cx,
            "garbage",
            &garbage,
            "invalid response",
            "garbage: HTTP 200 with a non-JSON body on tools/call",
        ));
        rows.push(http_faults::bad_on_call(
            &cx,
            "cut",
            &cut,
            "mid-response",
            "cut: Content-Length 1000, 19 bytes, close on tools/call",
        ));

        // Everything recovered: file descriptors and children, right before stop.
        let fds = fd_count(gw_pid);
        let children = common::descendants(gw_pid);
        stop.store(true, Ordering::Relaxed);
        let mut total: Load = (0, 0, 0, String::new());
        for l in loads {
            let (ok, failed, max_ms, first) = l.join().expect("load thread");
            total.0 += ok;
            total.1 += failed;
            total.2 = total.2.max(max_ms);
            if total.3.is_empty() {
                total.3 = first;
            }
        }
        (total, fds, children, [crashy_old, victim_old])
    });
    let load_secs = load_started.elapsed().as_secs_f64();

    // Zombies among the gateway's children while it runs (the replaced ones were checked
    // as they were replaced; they must still be gone).
    let zombies = children
        .iter()
        .filter(|p| proc_state(**p) == Some('Z'))
        .count();
    let reaped = replaced.iter().filter(|p| !common::alive(**p)).count();
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
    drop((web, hang, garbage, cut));

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
    assert_eq!(
        reaped,
        replaced.len(),
        "{driver}: replaced stdio pids {replaced:?} not all reaped"
    );
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
        reaped,
        leaked: leaked.len(),
        zombies,
        stop_ms,
    }
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

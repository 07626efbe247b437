//! The stdio faults: a server that exits by itself (`crashy`), a server killed with SIGKILL
//! from outside in the middle of a call (`victim`), and a call past its timeout (`slow`).
//! All three backends are the built-in demo server over stdio.

use std::time::{Duration, Instant};

use crate::procs::{assert_reaped, pids_with, wait_replaced};
use crate::tally::{others_fine, short, Ctx, Row, Streamed, Tally};
use crate::{CRASHY_TIMEOUT, SLOW_TIMEOUT, VICTIM_TIMEOUT};

/// `crashy`: the `crash` tool exits the process; the gateway reaps and restarts it. Returns
/// the row and the old (reaped) pid.
pub fn crashy(cx: &Ctx) -> (Row, u32) {
    let (gw, sid, driver) = (cx.gw, cx.sid, cx.driver);
    let mut t = Tally::new(format!("{driver}/crashy"), CRASHY_TIMEOUT);
    let old = pids_with(cx.gw_pid, "crashy");
    assert_eq!(old.len(), 1, "{driver}: crashy processes {old:?}");
    let injected = Instant::now();
    let o = t.call(gw, sid, "crashy__crash", "{}");
    assert!(!o.ok, "{driver}: crash call answered success: {}", o.detail);
    let crash_err = o.detail.clone();
    others_fine(cx, "crashy");
    let back = t
        .until_ok(gw, sid, "crashy__whoami", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{driver}: crashy never came back\n{}", gw.log()));
    let rec = back.duration_since(injected).as_millis();
    let new = wait_replaced(cx.gw_pid, "crashy", old[0], Duration::from_secs(2));
    assert!(
        new.len() == 1 && new != old,
        "{driver}: crashy not restarted: {old:?} -> {new:?}"
    );
    // The crashed process was reaped by the gateway (not left as a zombie).
    assert_reaped(old[0], Duration::from_secs(2), &format!("{driver}: crashy"));
    let note = format!(
        "crash answered \"{}\"; new pid {} (old {} reaped)",
        short(&crash_err),
        new[0],
        old[0]
    );
    let row = t.row(driver, "crashy: stdio process exits", Some(rec), note);
    (row, old[0])
}

/// `victim`: SIGKILL from outside while a call is in flight. The call in flight fails at once
/// (not at its timeout), calls while it is down fail fast, the gateway reaps the dead
/// process, starts a new one (new pid) and the backend rejoins. Returns the row and the old
/// (reaped) pid.
pub fn victim_kill9(cx: &Ctx) -> (Row, u32) {
    let (gw, sid, driver) = (cx.gw, cx.sid, cx.driver);
    let mut t = Tally::new(format!("{driver}/victim-kill"), VICTIM_TIMEOUT);
    let o = t.call(gw, sid, "victim__whoami", "{}");
    assert!(
        o.ok && o.detail == "victim",
        "{driver}: victim before the fault: {}",
        o.detail
    );
    let old = pids_with(cx.gw_pid, "victim");
    assert_eq!(old.len(), 1, "{driver}: victim processes {old:?}");
    // A call the process is provably working on: a 60 s sleep (far past the timeout) whose
    // first progress notification has reached the client.
    let mut inflight = Streamed::start(gw, sid, "victim__sleep", r#"{"ms":60000}"#);
    assert!(
        inflight.wait_progress(Duration::from_secs(10)),
        "{driver}: victim__sleep never reported progress\n{}",
        gw.log()
    );
    let injected = Instant::now();
    // SAFETY: plain kill(2) on a pid we just read as the gateway's child.
    let rc = unsafe { libc::kill(old[0] as i32, libc::SIGKILL) };
    assert_eq!(rc, 0, "{driver}: kill -9 {}", old[0]);
    let o = inflight.finish(Duration::from_secs(10));
    let inflight_ms = injected.elapsed().as_millis();
    t.record("victim__sleep (in flight)", &o);
    assert!(!o.ok, "{driver}: the killed call succeeded: {}", o.detail);
    assert!(
        o.code.is_some() && o.detail.contains("`victim`") && o.detail.contains("exited"),
        "{driver}: the call in flight should fail with a JSON-RPC error saying the process \
         exited: {}",
        o.detail
    );
    assert!(
        inflight_ms < VICTIM_TIMEOUT as u128,
        "{driver}: the call in flight failed only {inflight_ms} ms after the kill (the \
         timeout is {VICTIM_TIMEOUT} ms): it waited instead of failing fast"
    );
    let inflight_err = o.detail;
    // While it is down: calls fail fast (the Tally bound), the others keep full service.
    let (sent0, failed0) = (t.sent, t.failed);
    let first = t.call(gw, sid, "victim__echo", r#"{"message":"down?"}"#);
    others_fine(cx, "victim");
    let back = t
        .until_ok(gw, sid, "victim__whoami", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{driver}: victim never came back\n{}", gw.log()));
    let rec = back.duration_since(injected).as_millis();
    let new = wait_replaced(cx.gw_pid, "victim", old[0], Duration::from_secs(2));
    assert!(
        new.len() == 1 && new != old,
        "{driver}: victim not restarted: {old:?} -> {new:?}"
    );
    assert_reaped(old[0], Duration::from_secs(2), &format!("{driver}: victim"));
    let note = format!(
        "SIGKILL during a 60 s sleep: that call failed {inflight_ms} ms after the kill with \
         \"{}\"; then {} of {} calls failed fast (first: \"{}\") until new pid {} answered \
         (old {} reaped)",
        short(&inflight_err),
        t.failed - failed0,
        t.sent - sent0,
        short(if first.ok { "ok" } else { &first.detail }),
        new[0],
        old[0]
    );
    let row = t.row(driver, "victim: stdio process killed -9", Some(rec), note);
    (row, old[0])
}

/// `slow`: a 5 s sleep against a 300 ms timeout fails fast; the process keeps serving.
pub fn slow(cx: &Ctx) -> Row {
    let (gw, sid, driver) = (cx.gw, cx.sid, cx.driver);
    let mut t = Tally::new(format!("{driver}/slow"), SLOW_TIMEOUT);
    let injected = Instant::now();
    let o = t.call(gw, sid, "slow__sleep", r#"{"ms":5000}"#);
    assert!(
        !o.ok,
        "{driver}: a 5 s sleep succeeded under a 300 ms timeout"
    );
    assert!(
        o.ms <= 1500,
        "{driver}: slow__sleep failed only after {} ms",
        o.ms
    );
    others_fine(cx, "slow");
    let back = t
        .until_ok(gw, sid, "slow__whoami", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{driver}: slow never answered again\n{}", gw.log()));
    let rec = back.duration_since(injected).as_millis();
    let note = format!(
        "sleep 5000 ms failed after {} ms: \"{}\"",
        o.ms,
        short(&o.detail)
    );
    t.row(driver, "slow: call exceeds timeout_ms=300", Some(rec), note)
}

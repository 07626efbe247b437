//! The HTTP faults: the real demo server killed with SIGKILL and restarted (`web`), and the
//! deliberate fakes of `peers.rs`: one that never answers (`hang`), and two that answer the
//! handshake correctly and then answer `tools/call` with garbage (`garbage`) or cut the
//! response short (`cut`).

use std::time::{Duration, Instant};

use crate::common::DemoHttp;
use crate::peers::Scripted;
use crate::tally::{others_fine, short, Ctx, Row, Tally};
use crate::{BAD_TIMEOUT, HANG_TIMEOUT, WEB_TIMEOUT};

/// `web`: SIGKILL, ~1 s down, restart on the same address, rejoin.
pub fn web_kill9(cx: &Ctx, web: &mut DemoHttp) -> Row {
    let (gw, sid, driver) = (cx.gw, cx.sid, cx.driver);
    let web_addr = web.addr.clone();
    let mut t = Tally::new(format!("{driver}/web-kill"), WEB_TIMEOUT);
    let o = t.call(gw, sid, "web__whoami", "{}");
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
        t.call(gw, sid, "web__echo", r#"{"message":"down?"}"#);
        std::thread::sleep(Duration::from_millis(100));
    }
    let down_failed = t.failed - failed0;
    let down_sent = t.sent - sent0;
    others_fine(cx, "web");
    let restarted = Instant::now();
    *web = DemoHttp::start(&web_addr, "web");
    let back = t
        .until_ok(gw, sid, "web__whoami", Duration::from_secs(10))
        .unwrap_or_else(|| {
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
    t.row(
        driver,
        "web: HTTP backend killed -9, restarted",
        Some(rec),
        note,
    )
}

/// `hang`: a backend that never answers; every call fails, none hangs.
pub fn hang(cx: &Ctx) -> Row {
    let (gw, sid, driver) = (cx.gw, cx.sid, cx.driver);
    let mut t = Tally::new(format!("{driver}/hang"), HANG_TIMEOUT);
    let mut last = String::new();
    for _ in 0..3 {
        let o = t.call(gw, sid, "hang__echo", r#"{"message":"x"}"#);
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
    others_fine(cx, "hang");
    t.row(
        driver,
        "hang: HTTP backend never answers",
        None,
        format!("no recovery expected (fake); error \"{}\"", short(&last)),
    )
}

/// Bad calls made to each scripted fake before it heals (the default `breaker_failures`
/// is 5, so the last ones may already be refused by the open breaker).
const BAD_CALLS: u32 = 6;

/// `garbage` / `cut`: a fake that passed discovery answers `tools/call` badly. Each call
/// fails quickly with a JSON-RPC error naming the backend and saying what was wrong
/// (`expect`); no call is sent twice; the others keep full service. Then the fake heals and
/// the time until a call succeeds again is measured (breaker cooldown 500 ms).
pub fn bad_on_call(cx: &Ctx, id: &str, fake: &Scripted, expect: &str, fault: &'static str) -> Row {
    let (gw, sid, driver) = (cx.gw, cx.sid, cx.driver);
    let mut t = Tally::new(format!("{driver}/{id}"), BAD_TIMEOUT);
    let tool = format!("{id}__echo");
    let seen0 = fake.calls();
    let injected = Instant::now();
    let (mut first, mut last) = (String::new(), String::new());
    for _ in 0..BAD_CALLS {
        let o = t.call(gw, sid, &tool, r#"{"message":"x"}"#);
        assert!(!o.ok, "{driver}: {tool} answered success: {}", o.detail);
        assert!(
            o.code.is_some(),
            "{driver}: {tool} should fail with a JSON-RPC error, got: {}",
            o.detail
        );
        assert_eq!(
            o.detail.matches(&format!("`{id}`")).count(),
            1,
            "{driver}: the error should name the backend once: {}",
            o.detail
        );
        if first.is_empty() {
            first = o.detail.clone();
        }
        last = o.detail;
    }
    let reached = fake.calls() - seen0;
    // The call path was exercised (the fake saw tools/call), and no call was sent twice: a
    // tools/call is not idempotent, the gateway must not retry it on a broken answer.
    assert!(
        (1..=BAD_CALLS).contains(&reached),
        "{driver}: {reached} tools/call reached {id} for {BAD_CALLS} calls"
    );
    assert!(
        first.contains(expect),
        "{driver}: the first {tool} error should say \"{expect}\": {first}"
    );
    others_fine(cx, id);
    fake.heal();
    let healed = Instant::now();
    let back = t
        .until_ok(gw, sid, &tool, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{driver}: {id} never recovered\n{}", gw.log()));
    let rec = back.duration_since(injected).as_millis();
    let note = format!(
        "{reached}/{BAD_CALLS} bad calls reached the fake (discovery passed); first error \
         \"{}\"; last \"{}\"; healed, first success {} ms later",
        short(&first),
        short(&last),
        back.duration_since(healed).as_millis()
    );
    t.row(driver, fault, Some(rec), note)
}

//! Key handling and state updates of the TUI, without a terminal.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::*;
use crate::observe::snapshot::{BreakerState, ReplicaStats, ServerStats};

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn ch(c: char) -> KeyEvent {
    key(KeyCode::Char(c))
}

fn app() -> App {
    App::new("/tmp/test.sock".into())
}

fn snapshot(ts_ms: u64, uptime_s: f64, rps: f64) -> MetricsSnapshot {
    let mut s = MetricsSnapshot::initial(2, "epoll");
    s.ts_ms = ts_ms;
    s.uptime_s = uptime_s;
    s.totals.req_per_s = rps;
    s
}

fn log(seq: u64, msg: &str) -> ClientEvent {
    ClientEvent::Line(Box::new(SocketLine::Log(LogLine {
        seq,
        ts_ms: 0,
        level: "INFO".into(),
        target: "t".into(),
        message: msg.into(),
    })))
}

fn snap(s: MetricsSnapshot) -> ClientEvent {
    ClientEvent::Line(Box::new(SocketLine::Snapshot(s)))
}

fn messages(a: &App) -> Vec<&str> {
    a.visible_logs()
        .iter()
        .map(|l| l.message.as_str())
        .collect()
}

#[test]
fn number_keys_and_tab_switch_tabs() {
    let mut a = app();
    for (c, t) in ['1', '2', '3', '4', '5'].iter().zip(Tab::ALL) {
        assert_eq!(a.on_key(ch(*c)), Action::None);
        assert_eq!(a.tab, t);
    }
    assert_eq!(a.tab, Tab::Logs);
    a.on_key(key(KeyCode::Tab));
    assert_eq!(a.tab, Tab::Overview, "Tab wraps around");
    a.on_key(key(KeyCode::BackTab));
    assert_eq!(a.tab, Tab::Logs, "Shift+Tab wraps back");
    a.on_key(key(KeyCode::BackTab));
    assert_eq!(a.tab, Tab::Cache);
    a.on_key(ch('6'));
    assert_eq!(a.tab, Tab::Cache, "no sixth tab");
}

#[test]
fn quit_and_reconnect_keys() {
    let mut a = app();
    assert_eq!(a.on_key(ch('q')), Action::Quit);
    assert_eq!(a.on_key(ch('r')), Action::Reconnect);
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert_eq!(a.on_key(ctrl_c), Action::Quit);
    // Ctrl+C quits even while typing a filter; `q` there is just a letter.
    a.on_key(ch('/'));
    assert_eq!(a.on_key(ch('q')), Action::None);
    assert_eq!(a.editing.as_deref(), Some("q"));
    assert_eq!(a.on_key(ctrl_c), Action::Quit);
}

#[test]
fn slash_filters_logs_enter_applies_esc_cancels() {
    let mut a = app();
    a.on_client(ClientEvent::Connected);
    a.on_client(log(1, "backend demo ready"));
    a.on_client(log(2, "catalog updated"));
    a.on_client(log(3, "backend other down"));
    a.on_key(ch('2'));
    a.on_key(ch('/'));
    assert_eq!(a.tab, Tab::Logs, "`/` goes to the Logs tab");
    for c in "BACKENDx".chars() {
        a.on_key(ch(c));
    }
    a.on_key(key(KeyCode::Backspace));
    assert_eq!(a.editing.as_deref(), Some("BACKEND"));
    assert_eq!(messages(&a).len(), 3, "nothing applied while typing");
    a.on_key(key(KeyCode::Enter));
    assert_eq!(a.editing, None);
    assert_eq!(a.filter.as_deref(), Some("BACKEND"));
    assert_eq!(
        messages(&a),
        ["backend demo ready", "backend other down"],
        "case-insensitive"
    );
    // Esc while typing keeps the applied filter.
    a.on_key(ch('/'));
    a.on_key(ch('z'));
    a.on_key(key(KeyCode::Esc));
    assert_eq!(a.filter.as_deref(), Some("BACKEND"));
    // Esc on the Logs tab clears it; an empty filter applies as none.
    a.on_key(key(KeyCode::Esc));
    assert_eq!(a.filter, None);
    a.on_key(ch('/'));
    a.on_key(key(KeyCode::Enter));
    assert_eq!(a.filter, None);
    assert_eq!(messages(&a).len(), 3);
}

#[test]
fn scrolling_is_clamped_per_tab() {
    let mut a = app();
    let mut s = snapshot(1, 1.0, 0.0);
    s.servers.push(ServerStats {
        id: "demo".into(),
        transport: "stdio".into(),
        parked: false,
        replicas: (0..3)
            .map(|i| ReplicaStats {
                name: format!("demo/{i}"),
                healthy: true,
                breaker: BreakerState::Closed,
                inflight: 0,
                p99_ms: 0.0,
                restarts: 0,
                requests: 0,
                errors: 0,
            })
            .collect(),
    });
    s.servers.push(ServerStats {
        id: "parked".into(),
        transport: "http".into(),
        parked: true,
        replicas: vec![],
    });
    a.on_client(snap(s));
    assert_eq!(a.server_rows(), 4);
    a.on_key(ch('2'));
    a.on_key(key(KeyCode::Down));
    assert_eq!(a.scroll[1], 1);
    a.on_key(key(KeyCode::PageDown));
    assert_eq!(a.scroll[1], 3, "clamped to the last row");
    a.on_key(key(KeyCode::Up));
    assert_eq!(a.scroll[1], 2);
    a.on_key(key(KeyCode::PageUp));
    assert_eq!(a.scroll[1], 0);
    // Overview does not scroll.
    a.on_key(ch('1'));
    a.on_key(key(KeyCode::Down));
    assert_eq!(a.scroll, [0; 5]);

    // Logs scroll up from the newest line, and stay put while new lines arrive.
    for i in 1..=20 {
        a.on_client(log(i, &format!("line {i}")));
    }
    a.on_key(ch('5'));
    a.on_key(key(KeyCode::Up));
    a.on_key(key(KeyCode::Up));
    assert_eq!(a.scroll[4], 2);
    a.on_client(log(21, "line 21"));
    assert_eq!(a.scroll[4], 3, "view pinned while scrolled up");
    a.on_key(key(KeyCode::PageDown));
    assert_eq!(a.scroll[4], 0, "back to following the tail");
    a.on_key(key(KeyCode::PageUp));
    a.on_key(key(KeyCode::PageUp));
    a.on_key(key(KeyCode::PageUp));
    assert_eq!(a.scroll[4], 20, "clamped to the oldest line");
}

#[test]
fn sparkline_keeps_the_last_samples_and_skips_repeats() {
    let mut a = app();
    a.on_client(ClientEvent::Connected);
    for i in 0..200u64 {
        a.on_client(snap(snapshot(1000 + i, i as f64, i as f64)));
        a.on_client(snap(snapshot(1000 + i, i as f64, i as f64))); // same ts: same sample
    }
    assert_eq!(a.rps.len(), RPS_SAMPLES);
    assert_eq!(a.rps.front(), Some(&80.0));
    assert_eq!(a.rps.back(), Some(&199.0));
}

#[test]
fn c_clears_logs_and_sparkline_but_not_the_figures() {
    let mut a = app();
    a.on_client(ClientEvent::Connected);
    a.on_client(snap(snapshot(1, 1.0, 5.0)));
    a.on_client(log(1, "x"));
    a.on_key(ch('c'));
    assert!(a.logs.is_empty() && a.rps.is_empty());
    assert!(a.snapshot.is_some());
    a.on_client(log(1, "x"));
    assert!(a.logs.is_empty(), "a cleared line does not come back");
}

#[test]
fn reconnect_dedupes_the_backlog_and_detects_a_restart() {
    let mut a = app();
    a.on_client(ClientEvent::Down {
        attempt: 1,
        reason: "refused".into(),
    });
    a.on_client(ClientEvent::Connected);
    assert_eq!((a.conn.clone(), a.reconnects), (Conn::Connected, 0));
    a.on_client(snap(snapshot(100_000, 10.0, 0.0)));
    a.on_client(log(1, "a"));
    a.on_client(log(2, "b"));

    // Same gateway (same start time): the backlog it sends again is not duplicated.
    a.on_client(ClientEvent::Down {
        attempt: 1,
        reason: "eof".into(),
    });
    assert!(matches!(a.conn, Conn::Down { attempt: 1, .. }));
    a.on_client(ClientEvent::Connected);
    a.on_client(snap(snapshot(101_000, 11.0, 0.0)));
    a.on_client(log(1, "a"));
    a.on_client(log(2, "b"));
    a.on_client(log(3, "c"));
    assert_eq!(messages(&a), ["a", "b", "c"]);
    assert_eq!((a.reconnects, a.restarted), (1, false));

    // A new gateway process: seqs start over and are all new.
    a.on_client(ClientEvent::Down {
        attempt: 2,
        reason: "eof".into(),
    });
    a.on_client(ClientEvent::Connected);
    a.on_client(snap(snapshot(200_000, 1.0, 0.0)));
    a.on_client(log(1, "new a"));
    assert_eq!(messages(&a), ["a", "b", "c", "new a"]);
    assert_eq!((a.reconnects, a.restarted), (2, true));

    // A gateway that died within a second of starting and came back just as fast: the start
    // times are close, but the uptime went down.
    // (This one started at 199 s and dies at 199.5 s; the next starts at 199.7 s.)
    a.on_client(snap(snapshot(199_500, 0.5, 0.0)));
    a.on_client(ClientEvent::Down {
        attempt: 1,
        reason: "eof".into(),
    });
    a.on_client(ClientEvent::Connected);
    a.on_client(snap(snapshot(200_100, 0.4, 0.0)));
    a.on_client(log(1, "newer a"));
    assert_eq!((a.reconnects, a.restarted), (3, true));
    assert_eq!(messages(&a).last(), Some(&"newer a"));
}

#[test]
fn malformed_lines_are_counted() {
    let mut a = app();
    a.on_client(ClientEvent::Malformed("nope".into()));
    assert_eq!(a.malformed, 1);
}

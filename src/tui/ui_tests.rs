//! Render tests: each tab drawn on a ratatui `TestBackend`, asserted on the screen text.

use ratatui::backend::TestBackend;
use ratatui::Terminal;

use super::*;
use crate::observe::snapshot::{
    BreakerState, CacheStats, MethodStats, ReadinessState, ReplicaStats, ServerStats,
};
use crate::observe::SocketLine;
use crate::tui::app::ClientEvent;

/// The screen as text, one line per row.
fn screen(app: &App) -> String {
    let mut t = Terminal::new(TestBackend::new(120, 30)).unwrap();
    t.draw(|f| render(f, app)).unwrap();
    let buf = t.backend().buffer();
    (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol())
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn live_app() -> App {
    let mut s = MetricsSnapshot::initial(2, "uring");
    s.ts_ms = 1_700_000_000_000;
    s.uptime_s = 3723.0;
    s.totals.requests = 1234;
    s.totals.errors = 5;
    s.totals.req_per_s = 12.5;
    s.totals.error_rate = 0.004;
    s.totals.p50_ms = 1.25;
    s.totals.p99_ms = 9.75;
    s.servers = vec![ServerStats {
        id: "demo".into(),
        transport: "stdio".into(),
        parked: false,
        replicas: vec![ReplicaStats {
            name: "demo/0".into(),
            healthy: true,
            breaker: BreakerState::HalfOpen,
            inflight: 2,
            p99_ms: 4.5,
            restarts: 1,
            requests: 1200,
            errors: 4,
        }],
    }];
    s.methods = vec![
        MethodStats {
            method: "initialize".into(),
            tool: None,
            requests: 3,
            errors: 0,
            p50_ms: 0.5,
            p99_ms: 0.75,
        },
        MethodStats {
            method: "tools/call".into(),
            tool: Some("demo__echo".into()),
            requests: 1200,
            errors: 4,
            p50_ms: 1.5,
            p99_ms: 8.25,
        },
    ];
    let mut app = App::new("/run/test.sock".into());
    app.on_client(ClientEvent::Connected);
    app.on_client(ClientEvent::Line(Box::new(SocketLine::Snapshot(s))));
    for (seq, msg) in [(1, "backend demo ready"), (2, "catalog updated tools=9")] {
        app.on_client(ClientEvent::Line(Box::new(SocketLine::Log(LogLine {
            seq,
            ts_ms: 1_700_000_000_000 + seq * 1000,
            level: "INFO".into(),
            target: "only1mcp_uring::control".into(),
            message: msg.into(),
        }))));
    }
    app
}

#[test]
fn overview_shows_totals_uptime_and_the_sparkline() {
    let app = live_app();
    let s = screen(&app);
    for want in [
        "1 Overview",
        "5 Logs",
        "connected to /run/test.sock",
        "1234",
        "12.5",
        "0.40 %",
        "1.25 ms",
        "9.75 ms",
        "1h 02m 03s",
        "2 (uring)",
        "req/s, last 1 samples (peak 12.5)",
        "q quit",
    ] {
        assert!(s.contains(want), "missing {want:?} in:\n{s}");
    }
}

#[test]
fn the_header_shows_the_drain_state() {
    let mut app = live_app();
    let header = |app: &App| screen(app).lines().next().unwrap_or("").to_string();
    assert!(
        header(&app).contains("only1mcp-uring · starting"),
        "{}",
        header(&app)
    );
    for (state, name) in [
        (ReadinessState::Draining, "draining"),
        (ReadinessState::Stopping, "stopping"),
        (ReadinessState::Ready, "ready"),
    ] {
        if let Some(s) = app.snapshot.as_mut() {
            s.readiness = state;
        }
        let h = header(&app);
        assert!(h.contains(&format!("only1mcp-uring · {name}")), "{h}");
    }
    // A gateway that predates /ready sends none: the title says nothing about it.
    if let Some(s) = app.snapshot.as_mut() {
        s.readiness = ReadinessState::Unknown;
    }
    let h = header(&app);
    assert!(h.contains(" only1mcp-uring ") && !h.contains('·'), "{h}");
}

#[test]
fn the_header_names_the_node_and_the_totals_show_refused_ids_and_the_limit_store() {
    let mut app = live_app();
    if let Some(s) = app.snapshot.as_mut() {
        s.node = "g2".into();
        s.readiness = ReadinessState::Draining;
        s.totals.session_ids_foreign = 7;
        s.totals.session_ids_forged = 3;
        s.totals.rate_store = "redis".into();
        s.totals.rate_store_up = false;
        s.totals.rate_store_errors = 12;
    }
    let text = screen(&app);
    let header = text.lines().next().unwrap_or("");
    assert!(header.contains("only1mcp-uring g2 · draining"), "{header}");
    assert!(
        text.contains("foreign ids") && text.contains(" 7"),
        "{text}"
    );
    assert!(text.contains("forged ids") && text.contains(" 3"), "{text}");
    assert!(
        text.contains("redis DOWN") && text.contains(" 12"),
        "{text}"
    );
}

#[test]
fn servers_tab_lists_each_replica() {
    let mut app = live_app();
    app.tab = Tab::Servers;
    let s = screen(&app);
    let row = s.lines().find(|l| l.contains("demo/0")).expect(&s);
    for want in ["demo", "stdio", "healthy", "half_open", "4.50", "1200"] {
        assert!(row.contains(want), "missing {want:?} in {row:?}");
    }
}

#[test]
fn requests_tab_sorts_busiest_first() {
    let mut app = live_app();
    app.tab = Tab::Requests;
    let s = screen(&app);
    let call = s.find("tools/call").expect(&s);
    let init = s.find("initialize").expect(&s);
    assert!(call < init, "busiest first:\n{s}");
    let row = s.lines().find(|l| l.contains("tools/call")).unwrap();
    assert!(row.contains("demo__echo") && row.contains("8.25"), "{row}");
}

#[test]
fn cache_tab_is_honest_without_a_cache_and_shows_figures_with_one() {
    let mut app = live_app();
    app.tab = Tab::Cache;
    assert!(screen(&app).contains("no cache configured on this gateway"));
    let mut snap = app.snapshot.clone().unwrap();
    snap.ts_ms += 500;
    snap.cache = Some(CacheStats {
        hits: 875,
        misses: 125,
        hit_rate: 0.875,
        entries: 40,
        evictions: 7,
    });
    app.on_client(ClientEvent::Line(Box::new(SocketLine::Snapshot(snap))));
    let s = screen(&app);
    for want in ["87.5 %", "hits       875", "entries    40", "evictions  7"] {
        assert!(s.contains(want), "missing {want:?} in:\n{s}");
    }
    assert!(!s.contains("no cache configured"));
}

#[test]
fn logs_tab_shows_lines_and_the_filter() {
    let mut app = live_app();
    app.tab = Tab::Logs;
    let s = screen(&app);
    assert!(
        s.contains("22:13:21 INFO  only1mcp_uring::control: backend demo ready"),
        "{s}"
    );
    assert!(s.contains("catalog updated tools=9"));
    assert!(s.contains("logs: 2 of 2 lines"));
    app.filter = Some("catalog".into());
    let s = screen(&app);
    assert!(!s.contains("backend demo ready"), "{s}");
    assert!(s.contains("logs: 1 of 2 lines") && s.contains("filter: \"catalog\""));
    app.editing = Some("cat".into());
    assert!(screen(&app).contains("filter: /cat█"));
}

#[test]
fn status_line_says_when_down_and_when_back() {
    let mut app = live_app();
    app.on_client(ClientEvent::Down {
        attempt: 3,
        reason: "Connection refused".into(),
    });
    let s = screen(&app);
    assert!(
        s.contains("disconnected — reconnecting to /run/test.sock (attempt 3)"),
        "{s}"
    );
    assert!(s.contains("1234"), "the last figures stay on screen");
    app.on_client(ClientEvent::Connected);
    assert!(screen(&app).contains("reconnected to /run/test.sock"));
}

#[test]
fn a_figure_the_gateway_could_not_compute_shows_as_a_dash() {
    let mut app = live_app();
    let mut snap = app.snapshot.clone().unwrap();
    snap.totals.p99_ms = f64::NAN;
    snap.cache = Some(CacheStats {
        hit_rate: f64::NAN,
        ..CacheStats::default()
    });
    app.on_client(ClientEvent::Line(Box::new(SocketLine::Snapshot(snap))));
    let s = screen(&app);
    let row = s.lines().find(|l| l.contains("p50")).expect(&s);
    let words: Vec<&str> = row.trim_matches('│').split_whitespace().collect();
    assert_eq!(words, ["p50", "1.25", "ms", "p99", "-"], "{row:?}");
    app.tab = Tab::Cache;
    assert!(!screen(&app).contains("NaN"));
}

#[test]
fn before_the_first_snapshot_the_body_says_so() {
    let app = App::new("/x.sock".into());
    let s = screen(&app);
    assert!(s.contains("connecting to /x.sock"));
    assert!(s.contains("waiting for the first snapshot from /x.sock"));
}

//! Drawing the TUI with ratatui: the tab bar, the connection line, one body per tab and the
//! key help. Reads [`App`] and nothing else, so a `TestBackend` render shows exactly what a
//! terminal would.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Gauge, Paragraph, Row, Sparkline, Table, Tabs};
use ratatui::Frame;

use super::app::{App, Conn, Tab};
use crate::observe::snapshot::{BreakerState, ReadinessState};
use crate::observe::{LogLine, MetricsSnapshot};

const KEYS: &str =
    " q quit · Tab/1-5 tabs · ↑↓ PgUp/PgDn scroll · / filter logs · r reconnect · c clear";

/// Draws the whole screen.
pub fn render(f: &mut Frame<'_>, app: &App) {
    let [tabs, status, body, help] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(f.area());
    let titles = Tab::ALL
        .iter()
        .enumerate()
        .map(|(i, t)| format!("{} {}", i + 1, t.title()));
    f.render_widget(
        Tabs::new(titles)
            .select(app.tab.index())
            .block(Block::default().borders(Borders::ALL).title(title(app)))
            .highlight_style(Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)),
        tabs,
    );
    f.render_widget(status_line(app), status);
    match (app.tab, &app.snapshot) {
        // The logs stay readable before the first snapshot and while down.
        (Tab::Logs, _) => logs(f, app, body),
        (_, None) => f.render_widget(
            Paragraph::new(format!(
                "waiting for the first snapshot from {}",
                app.socket.display()
            ))
            .block(Block::default().borders(Borders::ALL)),
            body,
        ),
        (Tab::Overview, Some(s)) => overview(f, app, s, body),
        (Tab::Servers, Some(s)) => servers(f, app, s, body),
        (Tab::Requests, Some(s)) => requests(f, app, s, body),
        (Tab::Cache, Some(s)) => cache(f, s, body),
    }
    f.render_widget(
        Paragraph::new(KEYS).style(Style::new().fg(Color::DarkGray)),
        help,
    );
}

/// The header's title: the gateway, and what its `/ready` says (coloured unless ready).
fn title(app: &App) -> Line<'static> {
    let mut spans = vec![Span::raw(" only1mcp-uring ")];
    if let Some(node) = app
        .snapshot
        .as_ref()
        .map(|s| &s.node)
        .filter(|n| !n.is_empty())
    {
        spans.push(Span::styled(
            format!("{node} "),
            Style::new().add_modifier(Modifier::BOLD),
        ));
    }
    let state = app.snapshot.as_ref().map(|s| s.readiness);
    if let Some(state) = state.filter(|s| *s != ReadinessState::Unknown) {
        let color = match state {
            ReadinessState::Ready => Color::Green,
            ReadinessState::Draining | ReadinessState::Starting => Color::Yellow,
            _ => Color::Red,
        };
        spans.push(Span::raw("· "));
        spans.push(Span::styled(
            state.as_str(),
            Style::new().fg(color).add_modifier(Modifier::BOLD),
        ));
        spans.push(Span::raw(" "));
    }
    Line::from(spans)
}

fn status_line(app: &App) -> Paragraph<'static> {
    let path = app.socket.display();
    let (text, color) = match &app.conn {
        Conn::Connecting => (format!("connecting to {path} …"), Color::Yellow),
        Conn::Down { attempt, reason } => (
            format!("disconnected — reconnecting to {path} (attempt {attempt}): {reason}"),
            Color::Red,
        ),
        Conn::Connected if app.reconnects == 0 => (format!("connected to {path}"), Color::Green),
        Conn::Connected => {
            let why = if app.restarted {
                " (the gateway restarted)"
            } else {
                ""
            };
            (format!("reconnected to {path}{why}"), Color::Green)
        }
    };
    let mut spans = vec![Span::styled(
        format!(" {text}"),
        Style::new().fg(color).add_modifier(Modifier::BOLD),
    )];
    if app.malformed > 0 {
        spans.push(Span::styled(
            format!("  ({} unreadable lines)", app.malformed),
            Style::new().fg(Color::Yellow),
        ));
    }
    Paragraph::new(Line::from(spans))
}

/// A figure with `decimals` and a unit, or `-` when the gateway sent none (null/NaN).
fn fig(x: f64, decimals: usize, unit: &str) -> String {
    if x.is_finite() {
        format!("{x:.decimals$}{unit}")
    } else {
        "-".into()
    }
}

/// `1h 02m 03s`, `4m 05s` or `6s`.
pub fn uptime(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s:02}s"),
        _ => format!("{h}h {m:02}m {s:02}s"),
    }
}

fn overview(f: &mut Frame<'_>, app: &App, s: &MetricsSnapshot, area: Rect) {
    let [facts, spark] = Layout::vertical([Constraint::Length(10), Constraint::Min(4)]).areas(area);
    let t = &s.totals;
    let row = |a: &str, b: String, c: &str, d: String| {
        Row::new(vec![
            Cell::from(a.to_string()).style(Style::new().fg(Color::Cyan)),
            Cell::from(b),
            Cell::from(c.to_string()).style(Style::new().fg(Color::Cyan)),
            Cell::from(d),
        ])
    };
    let rows = vec![
        row(
            "requests",
            t.requests.to_string(),
            "errors",
            t.errors.to_string(),
        ),
        row(
            "req/s",
            fig(t.req_per_s, 1, ""),
            "error rate",
            fig(t.error_rate * 100.0, 2, " %"),
        ),
        row(
            "p50",
            fig(t.p50_ms, 2, " ms"),
            "p99",
            fig(t.p99_ms, 2, " ms"),
        ),
        row(
            "sessions",
            t.sessions.to_string(),
            "in flight",
            t.inflight.to_string(),
        ),
        row(
            "foreign ids",
            t.session_ids_foreign.to_string(),
            "forged ids",
            t.session_ids_forged.to_string(),
        ),
        row(
            "limit store",
            match (t.rate_store.as_str(), t.rate_store_up) {
                ("", _) => "-".to_string(),
                (s, true) => format!("{s} up"),
                (s, false) => format!("{s} DOWN"),
            },
            "store errors",
            t.rate_store_errors.to_string(),
        ),
        row(
            "uptime",
            uptime(s.uptime_s),
            "reloads",
            format!("{} ok, {} failed", s.reloads.ok, s.reloads.errors),
        ),
        row(
            "gateway",
            format!("v{}", s.version),
            "shards",
            format!("{} ({})", s.cores, s.driver),
        ),
    ];
    let widths = [
        Constraint::Length(12),
        Constraint::Length(20),
        Constraint::Length(12),
        Constraint::Min(10),
    ];
    let mut block = Block::default().borders(Borders::ALL).title(" totals ");
    if let Some(e) = &s.reloads.last_error {
        block = block.title_bottom(format!(" last reload error: {e} "));
    }
    f.render_widget(Table::new(rows, widths).block(block), facts);
    // Sparkline bars are integers: hundredths of a request per second keep low rates visible.
    let data: Vec<u64> = app
        .rps
        .iter()
        .map(|r| (r.max(0.0) * 100.0).round() as u64)
        .collect();
    let peak = app.rps.iter().copied().fold(0.0f64, f64::max);
    f.render_widget(
        Sparkline::default()
            .block(Block::default().borders(Borders::ALL).title(format!(
                " req/s, last {} samples (peak {peak:.1}) ",
                app.rps.len()
            )))
            .data(data)
            .style(Style::new().fg(Color::Green)),
        spark,
    );
}

fn table_block(title: String) -> Block<'static> {
    Block::default().borders(Borders::ALL).title(title)
}

fn servers(f: &mut Frame<'_>, app: &App, s: &MetricsSnapshot, area: Rect) {
    let header = Row::new([
        "server",
        "transport",
        "replica",
        "health",
        "breaker",
        "in-flight",
        "p99 ms",
        "restarts",
        "requests",
        "errors",
    ])
    .style(Style::new().add_modifier(Modifier::BOLD));
    let mut rows = Vec::new();
    for srv in &s.servers {
        if srv.replicas.is_empty() {
            let state = if srv.parked { "parked" } else { "no replicas" };
            rows.push(Row::new(vec![
                Cell::from(srv.id.clone()),
                Cell::from(srv.transport.clone()),
                Cell::from("-"),
                Cell::from(state).style(Style::new().fg(Color::DarkGray)),
            ]));
        }
        for r in &srv.replicas {
            let (health, color) = match (srv.parked, r.healthy) {
                (true, _) => ("parked", Color::DarkGray),
                (false, true) => ("healthy", Color::Green),
                (false, false) => ("unhealthy", Color::Red),
            };
            let breaker_color = match r.breaker {
                BreakerState::Closed | BreakerState::None => Color::Reset,
                BreakerState::HalfOpen => Color::Yellow,
                BreakerState::Open => Color::Red,
            };
            rows.push(Row::new(vec![
                Cell::from(srv.id.clone()),
                Cell::from(srv.transport.clone()),
                Cell::from(r.name.clone()),
                Cell::from(health).style(Style::new().fg(color)),
                Cell::from(r.breaker.as_str()).style(Style::new().fg(breaker_color)),
                Cell::from(r.inflight.to_string()),
                Cell::from(fig(r.p99_ms, 2, "")),
                Cell::from(r.restarts.to_string()),
                Cell::from(r.requests.to_string()),
                Cell::from(r.errors.to_string()),
            ]));
        }
    }
    let total = rows.len();
    let first = app.scroll[Tab::Servers.index()].min(total.saturating_sub(1));
    let widths = [
        Constraint::Min(10),
        Constraint::Length(9),
        Constraint::Min(14),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(9),
        Constraint::Length(7),
    ];
    let title = format!(" servers: {} · replicas: {total} ", s.servers.len());
    f.render_widget(
        Table::new(rows.into_iter().skip(first), widths)
            .header(header)
            .block(table_block(title)),
        area,
    );
}

fn requests(f: &mut Frame<'_>, app: &App, s: &MetricsSnapshot, area: Rect) {
    let mut methods: Vec<_> = s.methods.iter().collect();
    // Busiest first; ties by name so rows do not jump between snapshots.
    methods.sort_by(|a, b| {
        b.requests
            .cmp(&a.requests)
            .then_with(|| (&a.method, &a.tool).cmp(&(&b.method, &b.tool)))
    });
    let first = app.scroll[Tab::Requests.index()].min(methods.len().saturating_sub(1));
    let header = Row::new(["method", "tool", "requests", "errors", "p50 ms", "p99 ms"])
        .style(Style::new().add_modifier(Modifier::BOLD));
    let rows = methods.iter().skip(first).map(|m| {
        let err_style = if m.errors > 0 {
            Style::new().fg(Color::Red)
        } else {
            Style::new()
        };
        Row::new(vec![
            Cell::from(m.method.clone()),
            Cell::from(m.tool.clone().unwrap_or_else(|| "-".into())),
            Cell::from(m.requests.to_string()),
            Cell::from(m.errors.to_string()).style(err_style),
            Cell::from(fig(m.p50_ms, 2, "")),
            Cell::from(fig(m.p99_ms, 2, "")),
        ])
    });
    let widths = [
        Constraint::Min(22),
        Constraint::Min(24),
        Constraint::Length(10),
        Constraint::Length(8),
        Constraint::Length(9),
        Constraint::Length(9),
    ];
    let title = format!(" requests by method and tool: {} rows ", methods.len());
    f.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(table_block(title)),
        area,
    );
}

fn cache(f: &mut Frame<'_>, s: &MetricsSnapshot, area: Rect) {
    let block = Block::default().borders(Borders::ALL).title(" cache ");
    let Some(c) = &s.cache else {
        f.render_widget(
            Paragraph::new("no cache configured on this gateway").block(block),
            area,
        );
        return;
    };
    let inner = block.inner(area);
    f.render_widget(block, area);
    let [gauge, facts] = Layout::vertical([Constraint::Length(3), Constraint::Min(1)]).areas(inner);
    // A hit rate that could not be computed (null on the wire) shows as `-`, not 0 %.
    let ratio = if c.hit_rate.is_finite() {
        c.hit_rate.clamp(0.0, 1.0)
    } else {
        0.0
    };
    f.render_widget(
        Gauge::default()
            .block(Block::default().borders(Borders::ALL).title(" hit rate "))
            .gauge_style(Style::new().fg(Color::Green))
            .ratio(ratio)
            .label(fig(c.hit_rate * 100.0, 1, " %")),
        gauge,
    );
    let text = vec![
        Line::from(format!(" hits       {}", c.hits)),
        Line::from(format!(" misses     {}", c.misses)),
        Line::from(format!(" entries    {}", c.entries)),
        Line::from(format!(" evictions  {}", c.evictions)),
    ];
    f.render_widget(Paragraph::new(text), facts);
}

/// `HH:MM:SS` (UTC) of a millisecond timestamp.
fn clock(ts_ms: u64) -> String {
    let s = ts_ms / 1000 % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn log_row(l: &LogLine) -> Line<'static> {
    let color = match l.level.as_str() {
        "ERROR" => Color::Red,
        "WARN" => Color::Yellow,
        "INFO" => Color::Green,
        _ => Color::DarkGray,
    };
    Line::from(vec![
        Span::styled(clock(l.ts_ms), Style::new().fg(Color::DarkGray)),
        Span::styled(format!(" {:<5} ", l.level), Style::new().fg(color)),
        Span::styled(format!("{}: ", l.target), Style::new().fg(Color::DarkGray)),
        Span::raw(l.message.clone()),
    ])
}

fn logs(f: &mut Frame<'_>, app: &App, area: Rect) {
    let lines = app.visible_logs();
    let filter = match (&app.editing, &app.filter) {
        (Some(typing), _) => format!(" · filter: /{typing}█ (Enter applies, Esc cancels)"),
        (None, Some(fl)) => format!(" · filter: \"{fl}\" (Esc clears)"),
        (None, None) => String::new(),
    };
    let up = app.scroll[Tab::Logs.index()];
    let follow = if up == 0 {
        " · following".to_string()
    } else {
        format!(" · {up} lines up")
    };
    let title = format!(
        " logs: {} of {} lines (times UTC){filter}{follow} ",
        lines.len(),
        app.logs.len()
    );
    let block = Block::default().borders(Borders::ALL).title(title);
    let height = block.inner(area).height as usize;
    let end = lines.len().saturating_sub(up);
    let start = end.saturating_sub(height);
    let text: Vec<Line<'static>> = lines[start..end].iter().map(|l| log_row(l)).collect();
    f.render_widget(Paragraph::new(text).block(block), area);
}

#[cfg(test)]
#[path = "ui_tests.rs"]
mod tests;

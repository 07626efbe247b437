//! The TUI's state and how keys and socket lines change it.
//!
//! Pure: no terminal and no socket. [`App::on_client`] takes what the reader thread saw
//! ([`ClientEvent`]) and [`App::on_key`] takes a key and says what the caller must do
//! ([`Action`]), so both are unit-tested without a screen. Rendering reads this state in
//! `ui.rs`.

use std::collections::VecDeque;
use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::observe::{LogLine, MetricsSnapshot, SocketLine};

/// req/s samples kept for the Overview sparkline (one per snapshot: 60 s at 500 ms).
pub const RPS_SAMPLES: usize = 120;

/// Log lines the TUI keeps (the gateway keeps fewer; this spans reconnects).
pub const LOG_LINES: usize = 5000;

/// Rows a PgUp/PgDn moves.
const PAGE: usize = 10;

/// The five tabs, in key order (1-5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Overview,
    Servers,
    Requests,
    Cache,
    Logs,
}

impl Tab {
    /// Every tab in order.
    pub const ALL: [Tab; 5] = [
        Tab::Overview,
        Tab::Servers,
        Tab::Requests,
        Tab::Cache,
        Tab::Logs,
    ];

    /// The tab's title on the tab bar.
    pub fn title(self) -> &'static str {
        match self {
            Tab::Overview => "Overview",
            Tab::Servers => "Servers",
            Tab::Requests => "Requests",
            Tab::Cache => "Cache",
            Tab::Logs => "Logs",
        }
    }

    /// Position, 0-based.
    pub fn index(self) -> usize {
        Tab::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }
}

/// What the socket reader thread reports.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// Connected to the socket.
    Connected,
    /// One parsed line (boxed: a snapshot is large, the other events are small).
    Line(Box<SocketLine>),
    /// A line that is not schema v1 JSON (counted, shown in the status line).
    Malformed(String),
    /// The connection is gone (or never came up); `attempt` is the next try's number.
    Down { attempt: u32, reason: String },
}

/// The connection as the status line shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conn {
    /// Before the first connect attempt finished.
    Connecting,
    /// Streaming.
    Connected,
    /// Down, retrying with backoff; `attempt` is the next try's number.
    Down { attempt: u32, reason: String },
}

/// What the event loop must do after a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing beyond redrawing.
    None,
    /// Leave the TUI.
    Quit,
    /// Drop the connection and connect again now.
    Reconnect,
}

/// Everything the screen shows.
#[derive(Debug)]
pub struct App {
    /// The socket watched.
    pub socket: PathBuf,
    /// The tab shown.
    pub tab: Tab,
    /// Connection state.
    pub conn: Conn,
    /// Times the connection came back after being up once.
    pub reconnects: u32,
    /// `true` when the gateway answering after the last reconnect is a new process.
    pub restarted: bool,
    /// The latest snapshot (kept while disconnected, so the last figures stay readable).
    pub snapshot: Option<MetricsSnapshot>,
    /// req/s, one sample per distinct snapshot, oldest first.
    pub rps: VecDeque<f64>,
    /// Log lines, oldest first.
    pub logs: VecDeque<LogLine>,
    /// The applied log filter (case-insensitive substring).
    pub filter: Option<String>,
    /// The filter being typed after `/`, until Enter or Esc.
    pub editing: Option<String>,
    /// Per tab: first row shown (Servers, Requests) or lines up from the newest (Logs).
    pub scroll: [usize; 5],
    /// Lines that failed to parse.
    pub malformed: u64,
    /// `true` once connected at least once.
    connected_once: bool,
    /// `ts_ms` of the last snapshot sampled (a repeated snapshot is not a new sample).
    last_ts: u64,
    /// Newest log `seq` taken; lower ones from a reconnect's backlog are duplicates.
    last_seq: u64,
    /// The gateway process's start time and last uptime, to tell a restart from a
    /// reconnect.
    started_ms: Option<u64>,
    last_uptime_s: f64,
    /// Set on connect: the first snapshot after it checks whether the gateway restarted.
    fresh: bool,
}

impl App {
    /// A disconnected app for `socket`.
    pub fn new(socket: PathBuf) -> Self {
        Self {
            socket,
            tab: Tab::Overview,
            conn: Conn::Connecting,
            reconnects: 0,
            restarted: false,
            snapshot: None,
            rps: VecDeque::with_capacity(RPS_SAMPLES),
            logs: VecDeque::new(),
            filter: None,
            editing: None,
            scroll: [0; 5],
            malformed: 0,
            connected_once: false,
            last_ts: 0,
            last_seq: 0,
            started_ms: None,
            last_uptime_s: 0.0,
            fresh: false,
        }
    }

    /// Applies what the reader thread saw.
    pub fn on_client(&mut self, ev: ClientEvent) {
        match ev {
            ClientEvent::Connected => {
                if self.connected_once {
                    self.reconnects += 1;
                }
                self.connected_once = true;
                self.conn = Conn::Connected;
                self.fresh = true;
            }
            ClientEvent::Down { attempt, reason } => self.conn = Conn::Down { attempt, reason },
            ClientEvent::Malformed(_) => self.malformed += 1,
            ClientEvent::Line(line) => match *line {
                SocketLine::Snapshot(s) => self.on_snapshot(s),
                SocketLine::Log(l) => self.on_log(l),
            },
        }
    }

    fn on_snapshot(&mut self, s: MetricsSnapshot) {
        let started = s.started_ms();
        if self.fresh {
            self.fresh = false;
            // Another process (start times more than a second apart, or an uptime that went
            // down): its log seqs start over at 1, so none of them is a duplicate.
            if let Some(prev) = self.started_ms {
                self.restarted = prev.abs_diff(started) > 1000 || s.uptime_s < self.last_uptime_s;
                if self.restarted {
                    self.last_seq = 0;
                }
            }
        }
        self.started_ms = Some(started);
        if s.uptime_s.is_finite() {
            self.last_uptime_s = s.uptime_s;
        }
        if s.ts_ms != self.last_ts {
            self.last_ts = s.ts_ms;
            if self.rps.len() == RPS_SAMPLES {
                self.rps.pop_front();
            }
            self.rps.push_back(s.totals.req_per_s);
        }
        self.snapshot = Some(s);
        self.clamp_scroll();
    }

    fn on_log(&mut self, l: LogLine) {
        if l.seq != 0 && l.seq <= self.last_seq {
            return; // already shown (the backlog a reconnect sends again)
        }
        self.last_seq = self.last_seq.max(l.seq);
        if self.logs.len() == LOG_LINES {
            self.logs.pop_front();
        }
        // Keep the view still while scrolled up: the new line pushes it one further.
        if self.scroll[Tab::Logs.index()] > 0 && self.log_matches(&l) {
            self.scroll[Tab::Logs.index()] += 1;
        }
        self.logs.push_back(l);
        self.clamp_scroll();
    }

    fn log_matches(&self, l: &LogLine) -> bool {
        match &self.filter {
            None => true,
            Some(f) => {
                let f = f.to_lowercase();
                [&l.level, &l.target, &l.message]
                    .iter()
                    .any(|s| s.to_lowercase().contains(&f))
            }
        }
    }

    /// The log lines the filter lets through, oldest first.
    pub fn visible_logs(&self) -> Vec<&LogLine> {
        self.logs.iter().filter(|l| self.log_matches(l)).collect()
    }

    /// Rows of the Servers table: one per replica, one for a server without replicas.
    pub fn server_rows(&self) -> usize {
        self.snapshot.as_ref().map_or(0, |s| {
            s.servers.iter().map(|s| s.replicas.len().max(1)).sum()
        })
    }

    /// How many rows `tab` can scroll over.
    fn rows(&self, tab: Tab) -> usize {
        match tab {
            Tab::Servers => self.server_rows(),
            Tab::Requests => self.snapshot.as_ref().map_or(0, |s| s.methods.len()),
            Tab::Logs => self.visible_logs().len(),
            Tab::Overview | Tab::Cache => 0,
        }
    }

    fn clamp_scroll(&mut self) {
        for tab in [Tab::Servers, Tab::Requests, Tab::Logs] {
            let max = self.rows(tab).saturating_sub(1);
            let s = &mut self.scroll[tab.index()];
            *s = (*s).min(max);
        }
    }

    /// Scrolls the current tab `down` (towards later rows / newer lines) by `n`.
    fn scroll_by(&mut self, n: usize, down: bool) {
        let tab = self.tab;
        if !matches!(tab, Tab::Servers | Tab::Requests | Tab::Logs) {
            return;
        }
        // Logs count from the newest line up, the tables from the first row down.
        let forward = down != (tab == Tab::Logs);
        let s = &mut self.scroll[tab.index()];
        *s = if forward {
            s.saturating_add(n)
        } else {
            s.saturating_sub(n)
        };
        self.clamp_scroll();
    }

    /// Handles one key press.
    pub fn on_key(&mut self, key: KeyEvent) -> Action {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(key.code, KeyCode::Char('c') | KeyCode::Char('C')) {
            return Action::Quit;
        }
        if let Some(input) = self.editing.as_mut() {
            match key.code {
                KeyCode::Enter => {
                    let f = input.trim().to_string();
                    self.filter = (!f.is_empty()).then_some(f);
                    self.editing = None;
                    self.scroll[Tab::Logs.index()] = 0;
                }
                KeyCode::Esc => self.editing = None,
                KeyCode::Backspace => {
                    input.pop();
                }
                KeyCode::Char(c) if !ctrl => input.push(c),
                _ => {}
            }
            return Action::None;
        }
        match key.code {
            KeyCode::Char('q') => return Action::Quit,
            KeyCode::Char('r') => return Action::Reconnect,
            KeyCode::Tab => self.tab = Tab::ALL[(self.tab.index() + 1) % Tab::ALL.len()],
            KeyCode::BackTab => {
                self.tab = Tab::ALL[(self.tab.index() + Tab::ALL.len() - 1) % Tab::ALL.len()]
            }
            KeyCode::Char(c @ '1'..='5') => self.tab = Tab::ALL[c as usize - '1' as usize],
            KeyCode::Up => self.scroll_by(1, false),
            KeyCode::Down => self.scroll_by(1, true),
            KeyCode::PageUp => self.scroll_by(PAGE, false),
            KeyCode::PageDown => self.scroll_by(PAGE, true),
            KeyCode::Char('/') => {
                // The filter belongs to the Logs tab; `/` anywhere takes you there.
                self.tab = Tab::Logs;
                self.editing = Some(self.filter.clone().unwrap_or_default());
            }
            KeyCode::Esc if self.tab == Tab::Logs => {
                self.filter = None;
                self.scroll[Tab::Logs.index()] = 0;
            }
            KeyCode::Char('c') => {
                self.logs.clear();
                self.rps.clear();
                self.scroll[Tab::Logs.index()] = 0;
            }
            _ => {}
        }
        Action::None
    }
}

#[cfg(test)]
#[path = "app_tests.rs"]
mod tests;

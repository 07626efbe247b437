//! `only1mcp-uring tui`: a live terminal view of a running gateway, read from its metrics
//! socket.
//!
//! # Key components
//!
//! - `client`: the background thread that connects to the socket, reads JSON lines and
//!   reconnects with backoff when the gateway goes away.
//! - `app`: the state (latest snapshot, req/s history, logs, tab, scroll, filter) and the
//!   key bindings; pure, unit-tested.
//! - `ui`: the ratatui drawing of the five tabs.
//!
//! This module owns the terminal: raw mode and the alternate screen are entered by
//! [`run`] and always restored, on error and on panic too (ratatui's `init` installs the
//! panic hook). Nothing here logs through `tracing`, whose stderr output would tear the
//! screen.

mod app;
mod client;
mod ui;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use crossterm::event::{self, Event, KeyEventKind};

use app::{Action, App};

/// How long the UI waits for a key before drawing what the socket brought.
const FRAME: Duration = Duration::from_millis(100);

/// Runs the TUI against `socket` (default: [`crate::observe::default_socket_path`]) until
/// `q` or Ctrl+C.
pub fn run(socket: Option<PathBuf>) -> anyhow::Result<()> {
    let path = socket.unwrap_or_else(crate::observe::default_socket_path);
    let client = client::Client::spawn(path.clone()).context("cannot start the socket reader")?;
    let mut app = App::new(path);
    let mut terminal = match ratatui::try_init() {
        Ok(t) => t,
        Err(e) => {
            ratatui::restore(); // raw mode may be on even though the rest failed
            return Err(e).context("cannot set up the terminal (is stdout a terminal?)");
        }
    };
    let result = event_loop(&mut terminal, &mut app, &client);
    ratatui::restore();
    result
}

fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    client: &client::Client,
) -> anyhow::Result<()> {
    loop {
        // Take what arrived, but not forever: a flood must not starve the keyboard.
        for ev in client.events().try_iter().take(10_000) {
            app.on_client(ev);
        }
        terminal
            .draw(|f| ui::render(f, app))
            .context("cannot draw")?;
        if !event::poll(FRAME).context("cannot read the terminal")? {
            continue;
        }
        // Handle every key already typed before drawing again.
        loop {
            if let Event::Key(k) = event::read().context("cannot read the terminal")? {
                if k.kind != KeyEventKind::Release {
                    match app.on_key(k) {
                        Action::Quit => return Ok(()),
                        Action::Reconnect => client.reconnect(),
                        Action::None => {}
                    }
                }
            }
            if !event::poll(Duration::ZERO).context("cannot read the terminal")? {
                break;
            }
        }
    }
}

//! only1mcp-uring: one MCP endpoint in front of many MCP servers, thread-per-core on io_uring.
//!
//! This binary owns the command line, startup and the control thread; the per-core data
//! plane lives in the `only1mcp-shards` crate. `anyhow` is used here (startup, config, CLI)
//! and nowhere on the data plane.

mod audit;
mod cli;
mod context_report;
mod control;
mod health;
mod jwks;
mod listen;
mod metrics;
mod observe;
mod preflight;
mod rate_store;
mod telemetry;
mod templates;
mod tls;
mod tokens;
mod tui;

use std::process::ExitCode;

use clap::Parser;

fn init_tracing() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("ONLY1MCP_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Logs always go to stderr: stdout may be an MCP stdio channel. The same events also
    // feed the metrics socket's log ring (`observe::log_ring`).
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    tracing_subscriber::registry()
        .with(filter)
        .with(stderr)
        .with(observe::log_layer())
        .init();
}

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    init_tracing();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::from(1)
        }
    }
}

/// Renders an error chain as one line: `outer: inner: root`.
fn one_line(e: &anyhow::Error) -> String {
    let mut s = String::new();
    for (i, cause) in e.chain().enumerate() {
        if i > 0 {
            s.push_str(": ");
        }
        s.push_str(&cause.to_string().replace('\n', " "));
    }
    s
}

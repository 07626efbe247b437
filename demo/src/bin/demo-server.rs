//! `demo-server`: the demo MCP server on its own, without the gateway binary.
//!
//! The same server and the same flags as `only1mcp-uring demo-server` (both parse
//! [`only1mcp_demo::Args`]): `[--stdio | --http ADDR|unix:PATH] [--name NAME]`. An error is printed
//! as one line, `error: outer: inner: root`, with exit status 1, as the product does.

use std::process::ExitCode;

use clap::Parser;

/// The command line; its about line is the package description (demo/Cargo.toml).
#[derive(Debug, Parser)]
#[command(name = "demo-server", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    args: only1mcp_demo::Args,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.args.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` joins anyhow's chain with ": "; one line even if a cause spans several.
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::from(1)
        }
    }
}

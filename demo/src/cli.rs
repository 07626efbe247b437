//! The command line of the demo server, one definition for both ways to start it: the
//! `demo-server` binary of this crate and the product's `only1mcp-uring demo-server`
//! subcommand (which flattens these [`Args`] into its own parser), so the two cannot drift.

use crate::{run_http, run_stdio, DemoOptions};

/// What to serve: stdio (the default) or Streamable HTTP on an address, under a name.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Serve MCP over stdin/stdout (default).
    #[arg(long, conflicts_with = "http")]
    pub stdio: bool,
    /// Serve Streamable HTTP on this address (e.g. 127.0.0.1:0), or on a unix socket with
    /// `unix:PATH` (e.g. unix:/run/mcp/demo.sock).
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
    /// Server name reported in serverInfo and by the `whoami` tool.
    #[arg(long, default_value = "demo")]
    pub name: String,
}

impl Args {
    /// Runs the server these arguments ask for: [`run_http`] with `--http`, else
    /// [`run_stdio`].
    pub fn run(self) -> anyhow::Result<()> {
        let opts = DemoOptions { name: self.name };
        match self.http {
            Some(addr) => run_http(&addr, opts),
            None => run_stdio(opts),
        }
    }
}

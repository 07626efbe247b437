//! Built-in MCP demo server.
//!
//! A small, dependency-light MCP server (legacy/handshake era: protocol
//! versions `2025-03-26`, `2025-06-18`, `2025-11-25`) used by the README demo
//! config, the integration tests and the benchmarks as a backend for the
//! gateway. It speaks both transports the gateway talks to:
//!
//! * **stdio** ([`run_stdio`]): one JSON-RPC message per line on stdin/stdout,
//!   logs on stderr, every request handled on its own thread.
//! * **Streamable HTTP** ([`run_http`]): a single `/mcp` endpoint with
//!   `Mcp-Session-Id` sessions, JSON responses, and an SSE response for
//!   `sleep` calls that ask for progress.
//!
//! The tools are deliberately test-oriented: besides plain `echo`/`add`, there
//! are tools that return every content type (`image`), emit progress
//! (`sleep`), produce huge messages (`big`), corrupt the stdio stream
//! (`garbage`), kill the process (`crash`) and report the server's name
//! (`whoami`, to tell replicas apart). `tools.rs` has the full list.
//!
//! Blocking `std` I/O with a thread per request/connection is a deliberate
//! choice: this server is a test fixture, not the gateway's data plane, so
//! simplicity and obvious behaviour beat throughput here.
//!
//! File layout (each file owns one concern):
//! * `mod.rs`: this public API and its docs.
//! * `protocol.rs`: JSON-RPC parsing and MCP method dispatch, shared by both
//!   transports so they cannot drift apart.
//! * `tools.rs`: tool definitions (schemas) and implementations.
//! * `stdio.rs`: the line-based stdio transport.
//! * `http.rs`: the Streamable HTTP transport (routing, sessions, JSON vs SSE).
//! * `http1.rs`: minimal HTTP/1.1 framing (request parsing, chunked bodies,
//!   response and SSE writing) used by `http.rs`.
//! * `tests.rs`: unit tests of the dispatch and tools (test builds only).

mod http;
mod http1;
mod protocol;
mod stdio;
#[cfg(test)]
mod tests;
mod tools;

/// Options shared by both transports.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Server name reported in `serverInfo.name` and by the `whoami` tool.
    pub name: String,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            name: "demo".to_string(),
        }
    }
}

/// Serve MCP over stdin/stdout until stdin reaches EOF.
///
/// Logs `demo-server <name> ready on stdio` to stderr at startup. Requests are
/// handled concurrently (one thread each); on EOF the requests still in
/// flight are allowed to finish, then this returns `Ok(())`. The `crash` tool
/// exits the process with status 3 without answering.
pub fn run_stdio(opts: DemoOptions) -> anyhow::Result<()> {
    stdio::run(opts)
}

/// Serve MCP over Streamable HTTP on `addr` (e.g. `"127.0.0.1:0"`), forever.
///
/// Prints exactly one line to stdout once bound,
/// `demo-server listening on http://IP:PORT/mcp`, with the real port. Returns
/// only if binding fails (accept errors are logged and retried). Set
/// `DEMO_VERBOSE` to log each request line to stderr.
pub fn run_http(addr: &str, opts: DemoOptions) -> anyhow::Result<()> {
    http::run(addr, opts)
}

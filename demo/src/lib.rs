//! only1mcp-demo: the demo and conformance-fixture MCP server, a test peer of the gateway.
//!
//! This crate owns the whole server: both eras of the protocol, both transports, the demo
//! tools, the conformance fixture, their unit tests, and the `demo-server` binary. It is a
//! crate of its own because it is not the product: it is the peer the gateway is
//! demonstrated, tested and benchmarked against. Nothing of the gateway (`only1mcp-shards`,
//! the `only1mcp-uring` binary) is linked into it, so it cannot lean on the code it is there
//! to check, and the product's code stays the product's. The product binary only re-exposes
//! it as the `only1mcp-uring demo-server` subcommand ([`Args`], the same flags as
//! `demo-server`), so that configs can start it as `$self` without a second binary on
//! `PATH`. monoio keeps its examples in their own package (`monoio-examples`) in the same
//! spirit.
//!
//! The server is small, dependency-light and **dual-era**; the README demo
//! config, the integration tests and the benchmarks use it as a backend for
//! the gateway:
//!
//! * **Legacy era** (handshake and sessions: protocol versions
//!   `2025-03-26`, `2025-06-18`, `2025-11-25`): `initialize`, then requests
//!   in a session.
//! * **Modern era** (`2026-07-28`, stateless): every request carries its
//!   protocol version and client capabilities in `params._meta`;
//!   `server/discover`, `resultType` and cache hints on results, MRTR
//!   (`InputRequiredResult`) instead of server→client requests, logs only
//!   at the request's `_meta` logLevel, and `subscriptions/listen` for
//!   list changes. `modern.rs` documents the classification and checks.
//!
//! It speaks both transports the gateway talks to, each serving both eras:
//!
//! * **stdio** ([`run_stdio`]): one JSON-RPC message per line on stdin/stdout,
//!   logs on stderr, every message handled on its own thread.
//! * **Streamable HTTP** ([`run_http`]): a single `/mcp` endpoint with
//!   `Mcp-Session-Id` sessions, JSON responses that turn into SSE as soon as
//!   a request emits a related message (progress, log, request to the
//!   client), a standalone GET stream, DELETE, and Host/Origin checks; and
//!   the POST-only 2026 shape with its header checks (`Mcp-Method`,
//!   `Mcp-Name`, `Mcp-Param-*`).
//!
//! The tools are deliberately test-oriented: besides plain `echo`/`add`, there
//! are tools that return every content type (`image`), emit progress
//! (`sleep`), produce huge messages (`big`), corrupt the stdio stream
//! (`garbage`), kill the process (`crash`) and report the server's name
//! (`whoami`, to tell replicas apart) and report the HTTP headers a call
//! arrived with (`headers`, to see what a gateway forwards). `tools.rs` has
//! the full list.
//!
//! **Conformance fixture.** With `DEMO_CONFORMANCE=1` in the environment the
//! server also implements what `npx @modelcontextprotocol/conformance server`
//! expects of the tested server: the `test_*` tools (including sampling and
//! elicitation requests to the client, on both transports), resources,
//! prompts, completions, `logging/setLevel`, and list_changed /
//! resources/updated notifications, advertising exactly those capabilities.
//! On the 2026 path it adds the 2026 suite's fixture (`fixture2026.rs`:
//! `test_input_required_result_*`, `test_missing_capability`,
//! `test_streaming_elicitation`, `test_logging_tool`, `test_trigger_*`).
//! It also runs the suite's task tools (`greet`, `slow_compute`,
//! `failing_job`, `protocol_error_job`, `confirm_delete`, `multi_input`, and
//! on the 2026 path `test_tool_with_task`) as tasks in both eras: the 2026
//! extension `io.modelcontextprotocol/tasks` (`tasks/get`, `tasks/update`,
//! `tasks/cancel`) and 2025-11-25 experimental tasks (`tasks/get`,
//! `tasks/result`, `tasks/cancel`, `tasks/list`, status notifications).
//! Without it the server is unchanged: eleven tools, `tools` capability only.
//! `tests/conformance/run.sh` runs the suite.
//!
//! Environment knobs (read at start):
//! * `DEMO_CONFORMANCE=1`: enable the conformance fixture (default off).
//! * `DEMO_PAGE_SIZE=N`: `tools/list` page size (default 3, so pagination is
//!   exercised; the conformance suite reads only the first page, so use a
//!   large value such as 100 when running it against this server directly).
//! * `DEMO_MODERN=0`: serve the legacy era only, exactly as before the 2026
//!   path existed (`server/discover` is then an unknown method, and a peer
//!   that probes for 2026-07-28, like the gateway, falls back to
//!   `initialize`). Default: both eras.
//! * `DEMO_LEGACY=0`: serve 2026-07-28 only: every request without the
//!   modern signal (`initialize` first) is refused with -32022 naming the
//!   supported version (HTTP 400), as a modern-only server answers a legacy
//!   client; the gateway then speaks to it statelessly only. Default: both.
//! * `DEMO_EXTRA_TOOLS=N`: N more tools `t0` .. `t{N-1}` after the others,
//!   each behaving like `echo` (default 0; `perf/compare.sh` uses 39 for a
//!   50-tool backend). Read once per process.
//! * `DEMO_IDLE_TIMEOUT_MS=N`: HTTP only, close keep-alive connections idle
//!   for N ms (default 300 s), as real servers do (uvicorn: 5 s); tests use it
//!   to leave a client's pooled connections closed behind its back.
//! * `DEMO_VERBOSE`: HTTP only, log each request line to stderr, and for
//!   each JSON-RPC request `demo-server: request <method> <params.name|->`
//!   (tests count the calls that reached the backend with it).
//!
//! Blocking `std` I/O with a thread per request/connection is a deliberate
//! choice: this server is a test fixture, not the gateway's data plane, so
//! simplicity and obvious behaviour beat throughput here.
//!
//! File layout (each file owns one concern):
//! * `lib.rs`: this public API, its docs and the environment knobs.
//! * `cli.rs`: the command line ([`Args`]), shared by the `demo-server` binary
//!   (`bin/demo-server.rs`) and `only1mcp-uring demo-server`.
//! * `protocol.rs`: JSON-RPC parsing and message serialization.
//! * `server.rs`: legacy-era MCP method dispatch, shared by both transports
//!   so they cannot drift apart.
//! * `modern.rs`: the 2026-07-28 path (era classification, `_meta` and
//!   version checks, method table, result stamping), shared likewise;
//!   `modern_calls.rs`: its `tools/call` and `prompts/get` (MRTR outcomes).
//! * `session.rs`: per-session state, server→client requests and
//!   notifications, the fixture's timer.
//! * `mrtr.rs`: MRTR building blocks (input requests, answer checks, the
//!   bridge that runs legacy tools' client requests as MRTR, sealed
//!   `requestState`).
//! * `subscriptions.rs`: `subscriptions/listen` streams and their hub.
//! * `tools.rs`: the demo tools (schemas and implementations), pagination;
//!   `tool_headers.rs`: the `headers` tool.
//! * `fixture.rs`: the conformance fixture's `test_*` tools.
//! * `fixture2026.rs`: the fixture's 2026-only tools and MRTR prompt.
//! * `resources.rs`, `prompts.rs`: the fixture's resources, prompts and
//!   completions.
//! * `tasks.rs`: the fixture's task store and the jobs behind its tasks;
//!   `tasks_wire.rs`: their wire shapes per era and the task tools;
//!   `tasks_methods.rs`: the task tools' calls and the `tasks/*` methods.
//! * `stdio.rs`: the line-based stdio transport.
//! * `http.rs`: the Streamable HTTP transport (routing, validation, sessions).
//! * `http_modern.rs`: its 2026-07-28 POSTs and listen streams.
//! * `headers.rs`: the 2026 request headers that mirror the body.
//! * `http_stream.rs`: its SSE streams (POST responses, the standalone GET
//!   stream, resumption after a deliberate disconnect).
//! * `http1.rs`: minimal HTTP/1.1 framing used by the two above.
//! * `tests.rs`, `tests_fixture.rs`, `tests_catalog.rs`, `tests_modern.rs`,
//!   `tests_mrtr.rs`, `tests_tasks.rs`: unit tests of the dispatch and demo
//!   tools, the fixture's tools, the fixture's resources/prompts/timers, the
//!   2026 path, its MRTR and listen streams, and the task store (test builds
//!   only).

mod cli;
mod conn;
mod fixture;
mod fixture2026;
mod headers;
mod http;
mod http1;
mod http_modern;
mod http_stream;
mod modern;
mod modern_calls;
mod mrtr;
mod prompts;
mod protocol;
mod resources;
mod server;
mod session;
mod stdio;
mod subscriptions;
mod tasks;
mod tasks_methods;
mod tasks_wire;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_catalog;
#[cfg(test)]
mod tests_fixture;
#[cfg(test)]
mod tests_modern;
#[cfg(test)]
mod tests_mrtr;
#[cfg(test)]
mod tests_tasks;
mod tool_headers;
mod tools;
mod tools_paging;

pub use cli::Args;

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

/// Settings read from the environment (see the module docs).
#[derive(Debug, Clone, Copy)]
struct Config {
    /// `DEMO_CONFORMANCE=1`: serve the conformance fixture too.
    conformance: bool,
    /// `DEMO_PAGE_SIZE`: `tools/list` page size, at least 1.
    page_size: usize,
    /// `DEMO_MODERN=0` clears it: serve the legacy era only.
    modern: bool,
    /// `DEMO_LEGACY=0` clears it: serve 2026-07-28 only.
    legacy: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            conformance: false,
            page_size: 3,
            modern: true,
            legacy: true,
        }
    }
}

impl Config {
    fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let default = Self::default();
        let page_size = match var("DEMO_PAGE_SIZE").map(|v| v.parse::<usize>()) {
            None => default.page_size,
            Some(Ok(n)) if n > 0 => n,
            Some(_) => {
                eprintln!("demo-server: ignoring DEMO_PAGE_SIZE (not a positive integer)");
                default.page_size
            }
        };
        let modern = var("DEMO_MODERN").is_none_or(|v| v != "0");
        let mut legacy = var("DEMO_LEGACY").is_none_or(|v| v != "0");
        if !modern && !legacy {
            eprintln!("demo-server: ignoring DEMO_LEGACY=0 (DEMO_MODERN=0 too: no era left)");
            legacy = true;
        }
        Self {
            conformance: var("DEMO_CONFORMANCE").is_some_and(|v| v != "0"),
            page_size,
            modern,
            legacy,
        }
    }
}

/// Serve MCP over stdin/stdout until stdin reaches EOF.
///
/// Logs `demo-server <name> ready on stdio` to stderr at startup. Messages
/// are handled concurrently (one thread each); on EOF the requests still in
/// flight are allowed to finish, then this returns `Ok(())`. The `crash` tool
/// exits the process with status 3 without answering.
pub fn run_stdio(opts: DemoOptions) -> anyhow::Result<()> {
    stdio::run(opts, Config::from_env())
}

/// Serve MCP over Streamable HTTP on `addr` (e.g. `"127.0.0.1:0"`, or `"unix:/PATH"` for a
/// unix socket), forever.
///
/// Prints exactly one line to stdout once bound,
/// `demo-server listening on http://IP:PORT/mcp` with the real port (for a unix socket
/// `demo-server listening on unix:/PATH:/mcp`, the gateway's URL form). Returns
/// only if binding fails (accept errors are logged and retried).
pub fn run_http(addr: &str, opts: DemoOptions) -> anyhow::Result<()> {
    http::run(addr, opts, Config::from_env())
}

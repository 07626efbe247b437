//! The config model: the TOML shape users write (`[server]`, `[proxy]`, `[[servers]]`).
//!
//! Owned here so the control thread (parse, validate, reload) and the shards (read-only
//! snapshots) share one definition. Every struct denies unknown keys so a typo is an error
//! that names the key, never a silently ignored setting. Fields that validation may need to
//! point at (ids, urls, commands) keep their source span so errors can name file and line.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// The whole config file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listener, cores and driver.
    #[serde(default)]
    pub server: ServerSection,
    /// Routing behaviour shared by every backend.
    #[serde(default)]
    pub proxy: ProxySection,
    /// The metrics socket.
    #[serde(default)]
    pub metrics: MetricsSection,
    /// Who may call, as whom, with which roles.
    #[serde(default)]
    pub auth: super::auth::AuthSection,
    /// Per-principal and per-tool rate limits.
    #[serde(default)]
    pub rate_limit: super::auth::RateLimitSection,
    /// The audit log.
    #[serde(default)]
    pub audit: super::auth::AuditSection,
    /// The response cache and the single-flight batcher.
    #[serde(default)]
    pub cache: super::cache::CacheSection,
    /// The MCP servers behind the gateway.
    #[serde(default)]
    pub servers: Vec<BackendConfig>,
    /// This node's place in a fleet (`docs/fleet.md`); absent: a gateway on its own.
    #[serde(default)]
    pub cluster: Option<ClusterSection>,
    /// OpenTelemetry traces (`docs/observability.md`); off without `otlp_endpoint`.
    #[serde(default)]
    pub telemetry: TelemetrySection,
}

/// `[telemetry]`: where spans go (OTLP/HTTP protobuf), under which service name, and the
/// share of new traces recorded. Restart-only.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySection {
    /// `http://HOST:PORT` (spans are posted to `/v1/traces`) or a full `http://` URL with
    /// its own path; `None`: tracing off.
    pub otlp_endpoint: Option<String>,
    /// The `service.name` resource attribute.
    pub service_name: String,
    /// Share of new traces (requests without a sampled parent context) recorded, 0.0-1.0.
    pub sample_ratio: f64,
}

impl Default for TelemetrySection {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: "only1mcp-uring".into(),
            sample_ratio: 1.0,
        }
    }
}

/// `[cluster]`: the node id that 2025-era session ids carry, and the key file every node of
/// the fleet shares (session-id MACs, `requestState`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// 1-16 characters of `[a-z0-9-]`, unique in the fleet; the balancer routes on it.
    pub node_id: Spanned<String>,
    /// Lines of `<key_id> <base64 key>`; re-read on every reload.
    pub key_file: Spanned<String>,
}

pub use crate::rt::uring_setup::UringFlag;
pub use crate::rt::DriverChoice;

/// `[server]`: the client-facing listener.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Bind address.
    pub host: String,
    /// Bind port; 0 picks a free port (printed at startup).
    pub port: u16,
    /// Shard count; 0 = every online core.
    pub cores: usize,
    /// I/O driver.
    pub driver: DriverChoice,
    /// io_uring submission queue entries per shard.
    pub uring_entries: u32,
    /// io_uring setup flags per shard ring (`rt::uring_setup`); flags the kernel refuses are
    /// dropped and logged.
    pub uring_setup: Vec<UringFlag>,
    /// Largest accepted request body (413 beyond).
    pub max_body_bytes: usize,
    /// Largest accepted request head (431 beyond).
    pub max_header_bytes: usize,
    /// Deepest JSON nesting accepted from a client or a backend (-32600 beyond).
    pub max_json_depth: usize,
    /// Keep-alive idle timeout between requests.
    pub idle_timeout_ms: u64,
    /// Time allowed to receive one whole request once its first byte arrived (408 beyond).
    pub read_timeout_ms: u64,
    /// Grace period for in-flight requests at shutdown.
    pub shutdown_grace_ms: u64,
    /// At SIGTERM/SIGINT: how long `/ready` answers 503 while everything is still served, so a
    /// load balancer moves new sessions elsewhere before the shutdown starts (0 = at once).
    pub drain_grace_ms: u64,
    /// A 2025-era session with no request for this long ends (and its per-client upstreams).
    pub session_idle_timeout_ms: u64,
    /// Open client connections a shard accepts; beyond, new ones get 503 and `Retry-After`.
    pub max_connections_per_shard: usize,
    /// 2025-era sessions the gateway keeps (each shard holds `ceil(max / shards)`); at the
    /// cap never-used sessions are evicted, else `initialize` gets 503.
    pub max_sessions: usize,
    /// The same per principal (0 = only `max_sessions`); beyond, `initialize` gets 429.
    pub max_sessions_per_principal: usize,
    /// Open `subscriptions/listen` streams the gateway keeps (each shard holds
    /// `ceil(max / shards)`); beyond, a new listen gets 503.
    pub max_listens: usize,
    /// The same per principal (0 = only `max_listens`); beyond, a new listen gets 429.
    pub max_listens_per_principal: usize,
    /// Extra allowed `Origin` values (exact match, e.g. `https://app.example.com`).
    pub allowed_origins: Vec<String>,
    /// Extra allowed `Host` values (host or host:port) for loopback listeners.
    pub allowed_hosts: Vec<String>,
    /// TLS termination on the listener (`[server.tls]`); plain HTTP without it.
    pub tls: Option<TlsConfig>,
    /// Send large list pages gzip to HTTP clients that accept it (compressed once per
    /// catalog version and page, `route/lists_gz.rs`).
    pub compress_lists: bool,
}

/// `[server.tls]`: certificate chain and private key, PEM files (read at startup; a new
/// certificate needs a restart).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain, leaf first.
    pub cert: String,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key: String,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8080,
            cores: 0,
            driver: DriverChoice::Auto,
            uring_entries: 1024,
            // docs/benchmarks.md ("io_uring setup flags"): defer_taskrun measured no better
            // beyond the noise and can delay completions under cross-shard wake-ups
            // (rt/uring_setup.rs), so the default stops short of it.
            uring_setup: vec![
                UringFlag::CoopTaskrun,
                UringFlag::TaskrunFlag,
                UringFlag::SingleIssuer,
            ],
            max_body_bytes: 4 * 1024 * 1024,
            max_header_bytes: 16 * 1024,
            max_json_depth: crate::wire::scan::DEFAULT_MAX_DEPTH,
            idle_timeout_ms: 60_000,
            read_timeout_ms: 10_000,
            shutdown_grace_ms: 5_000,
            drain_grace_ms: 0,
            session_idle_timeout_ms: 3_600_000,
            max_connections_per_shard: 10_000,
            max_sessions: 10_000,
            max_sessions_per_principal: 0,
            max_listens: 10_000,
            max_listens_per_principal: 0,
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            tls: None,
            compress_lists: true,
        }
    }
}

/// `[proxy]`: routing behaviour.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxySection {
    /// Joins server id and tool name in the catalog (`<id><sep><tool>`).
    pub tool_separator: String,
    /// Default per-request timeout toward a backend.
    pub request_timeout_ms: u64,
    /// Timeout for connecting to an HTTP backend or starting a stdio one.
    pub connect_timeout_ms: u64,
    /// Items per page of the merged lists served to clients (0 = all in one page); further
    /// pages are reached with the gateway's own opaque `nextCursor`.
    pub list_page_size: usize,
    /// stdio processes starting at once (fork to tools listed), over the whole gateway;
    /// more wait their turn.
    pub max_concurrent_spawns: usize,
    /// Default schema compaction of every server's tools.
    pub compaction: crate::catalog::curate::Compaction,
    /// Default description budget under compaction (characters).
    pub description_budget: usize,
    /// Default for hiding tools with unusable input schemas.
    pub hide_invalid_schemas: bool,
    /// How clients discover tools: every schema (`full`) or three meta tools (`search`); a
    /// client may choose with the `X-MCP-Discovery` header.
    pub discovery: Discovery,
    /// Most tools a client is shown in `full` mode (0 = no ceiling); beyond it,
    /// `tools_overflow` decides.
    pub max_tools: usize,
    /// What happens past `max_tools`.
    pub tools_overflow: ToolsOverflow,
    /// Hybrid mode: tools always listed in full (globs over exposed names).
    pub hybrid_pinned: Vec<String>,
    /// Hybrid mode: the most used tools listed in full besides the pinned ones.
    pub hybrid_most_used: usize,
    /// Hybrid mode: the eager tools' budget, in tokens (estimated as bytes / 4).
    pub hybrid_token_budget: usize,
}

/// Tool discovery mode (`[proxy] discovery`).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Discovery {
    /// `tools/list` lists every tool with its schema.
    #[default]
    Full,
    /// `tools/list` lists `search_tools`, `get_tool_schema` and `call_tool`; the catalog is
    /// reached through them.
    Search,
    /// The meta tools plus, eagerly, the pinned tools and the most used ones, within
    /// `hybrid_token_budget`.
    Hybrid,
}

/// What a client past `[proxy] max_tools` gets.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum ToolsOverflow {
    /// The `search` meta tools instead of the list (nothing is out of reach).
    #[default]
    Search,
    /// The first `max_tools` tools of the list (sorted by server order); the rest are
    /// still callable by name but not listed.
    Truncate,
}

/// `[metrics]`: the Unix socket the TUI and other watchers attach to (`/metrics` on the
/// gateway's port is always served).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    /// Serve the metrics socket at all.
    pub socket_enabled: bool,
    /// Its path; without it `$XDG_RUNTIME_DIR/only1mcp-uring.sock`, else
    /// `/tmp/only1mcp-uring-<uid>.sock`.
    pub socket: Option<String>,
    /// Count the tokens of what clients are served (lists, calls) with this tokenizer and
    /// export them (`only1mcp_tokens_served_total`); `off` by default: the tokenizer's tables
    /// cost memory (docs/operations.md gives the figure).
    pub tokens: TokenEncoding,
}

/// `[metrics] tokens`: the tokenizer of token accounting.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum TokenEncoding {
    /// No token accounting.
    #[default]
    Off,
    /// `o200k_base` (GPT-4o and later).
    O200k,
    /// `cl100k_base` (GPT-4, GPT-3.5).
    Cl100k,
}

impl TokenEncoding {
    /// The `encoding` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenEncoding::Off => "off",
            TokenEncoding::O200k => "o200k",
            TokenEncoding::Cl100k => "cl100k",
        }
    }
}

impl Default for MetricsSection {
    fn default() -> Self {
        Self {
            socket_enabled: true,
            socket: None,
            tokens: TokenEncoding::Off,
        }
    }
}

impl Default for ProxySection {
    fn default() -> Self {
        Self {
            tool_separator: "__".into(),
            request_timeout_ms: 30_000,
            connect_timeout_ms: 5_000,
            list_page_size: 500,
            max_concurrent_spawns: 8,
            compaction: Default::default(),
            description_budget: 300,
            hide_invalid_schemas: false,
            discovery: Discovery::Full,
            max_tools: 0,
            tools_overflow: ToolsOverflow::Search,
            hybrid_pinned: Vec::new(),
            hybrid_most_used: 10,
            hybrid_token_budget: 4000,
        }
    }
}

/// How clients share upstream sessions of a backend.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum SessionMode {
    /// One upstream session per shard (and replica), multiplexed with id remapping.
    #[default]
    Shared,
    /// One upstream session (HTTP) or process (stdio) per client session.
    PerClient,
}

/// How the gateway reaches a backend.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// A child process speaking newline-delimited JSON-RPC on stdin/stdout.
    Stdio,
    /// A Streamable HTTP endpoint.
    Http,
}

/// One `[[servers]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    /// Unique id; also the catalog namespace.
    pub id: Spanned<String>,
    /// stdio or http.
    pub transport: Spanned<Transport>,
    /// stdio: program to run (looked up on PATH).
    #[serde(default)]
    pub command: Option<Spanned<String>>,
    /// stdio: its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// stdio: extra environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// stdio: working directory.
    #[serde(default)]
    pub cwd: Option<String>,
    /// http: the MCP endpoint URL.
    #[serde(default)]
    pub url: Option<Spanned<String>>,
    /// http: several replica URLs (alternative to `url`).
    #[serde(default)]
    pub urls: Vec<Spanned<String>>,
    /// http: static headers sent to this backend (its own credentials).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Per-request timeout for this backend; defaults to `proxy.request_timeout_ms`.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Namespace this server's tools as `<id><sep><name>` (default) or expose them unchanged.
    #[serde(default = "default_true")]
    pub prefix: bool,
    /// A disabled server stays in the file but is not started.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// In a fleet, a bridged `input_required` retry that lands on a node which does not hold
    /// the parked call replays the call there (the tool runs again up to its input request).
    /// `false` for servers whose tools must not run twice: such a retry is refused instead.
    #[serde(default = "default_true")]
    pub bridge_replay: bool,
    /// Upstream sessions: one per shard shared by every client (`shared`, default), or one
    /// per client session declaring that client's own capabilities (`per_client`: for
    /// stateful servers and servers that call back into the client).
    #[serde(default)]
    pub session: SessionMode,
    /// How calls spread over the replicas (`urls`).
    #[serde(default)]
    pub balance: crate::balance::Strategy,
    /// Per-replica weights for `weighted_random` (one per URL, `url` first; default all 1).
    #[serde(default)]
    pub weights: Vec<u32>,
    /// Per-tool timeouts in ms (by the backend's own tool name); others use `timeout_ms`.
    #[serde(default)]
    pub tool_timeouts: BTreeMap<String, u64>,
    /// Hard cap in ms for a call whose deadline progress notifications keep extending
    /// (default: 10 minutes, or the timeout if larger).
    #[serde(default)]
    pub max_timeout_ms: Option<u64>,
    /// stdio: how many processes to run (spread over the shards; calls rotate over them).
    /// For stateless servers only: a call and its follow-ups may reach different processes.
    #[serde(default = "default_instances")]
    pub instances: u32,
    /// Calls in flight to this backend per shard; beyond, calls fail at once (busy).
    #[serde(default = "default_max_inflight")]
    pub max_inflight: usize,
    /// http: keep-alive connections open to each replica per shard, busy or idle; a call
    /// beyond waits (within its timeout) for one to come back instead of connecting.
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// Active health check period of each HTTP replica (0 = off).
    #[serde(default = "default_health_interval_ms")]
    pub health_interval_ms: u64,
    /// One health probe's time limit.
    #[serde(default = "default_health_timeout_ms")]
    pub health_timeout_ms: u64,
    /// Consecutive good probes that bring a replica back into rotation.
    #[serde(default = "default_one")]
    pub healthy_threshold: u32,
    /// Consecutive failed probes that take a replica out of rotation.
    #[serde(default = "default_two")]
    pub unhealthy_threshold: u32,
    /// Probe with `GET <health_path>` (any 2xx) instead of an MCP `initialize`.
    #[serde(default)]
    pub health_path: Option<String>,
    /// Consecutive failures that open a replica's circuit breaker.
    #[serde(default = "default_breaker_failures")]
    pub breaker_failures: u32,
    /// How long an open breaker refuses calls before letting a trial through.
    #[serde(default = "default_breaker_cooldown_ms")]
    pub breaker_cooldown_ms: u64,
    /// Failure ratio (0 < r <= 1) over the last `breaker_window` calls that also opens a
    /// replica's breaker (unset: only `breaker_failures` in a row do).
    #[serde(default)]
    pub breaker_failure_rate: Option<f64>,
    /// Calls the failure rate is measured over (1 to 64).
    #[serde(default = "default_breaker_window")]
    pub breaker_window: u32,
    /// Trial calls a half-open breaker lets through (the first success closes it).
    #[serde(default = "default_one")]
    pub breaker_trials: u32,
    /// The `consistent_hash` key: `"session"` (default), `"header:<name>"` or
    /// `"claim:<name>"` (a claim of the caller's bearer token); without it, the session.
    #[serde(default)]
    pub balance_key: Option<String>,
    /// Only these tools (the backend's own names, `*`/`?` globs); empty = all.
    #[serde(default)]
    pub tools_allow: Vec<String>,
    /// Never these tools.
    #[serde(default)]
    pub tools_deny: Vec<String>,
    /// Backend tool name → exposed name (before namespacing).
    #[serde(default)]
    pub rename: BTreeMap<String, String>,
    /// Backend tool name → description shown instead of the backend's.
    #[serde(default)]
    pub descriptions: BTreeMap<String, String>,
    /// Hide tools whose `inputSchema` is not an object schema (default `[proxy]`).
    #[serde(default)]
    pub hide_invalid_schemas: Option<bool>,
    /// Schema compaction (default `[proxy] compaction`).
    #[serde(default)]
    pub compaction: Option<crate::catalog::curate::Compaction>,
    /// Characters a tool description keeps under compaction (default `[proxy]`).
    #[serde(default)]
    pub description_budget: Option<usize>,
    /// A tool call every health check also makes; an error or `isError` result counts as a
    /// failed check.
    #[serde(default)]
    pub health_canary: Option<CanaryConfig>,
}

/// `health_canary = { tool = "echo", arguments = { text = "ok" } }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanaryConfig {
    /// The backend's own tool name (not namespaced).
    pub tool: String,
    /// Its arguments.
    #[serde(default)]
    pub arguments: toml::Table,
}

fn default_breaker_window() -> u32 {
    20
}

fn default_health_interval_ms() -> u64 {
    10_000
}

fn default_health_timeout_ms() -> u64 {
    2_000
}

fn default_one() -> u32 {
    1
}

fn default_two() -> u32 {
    2
}

fn default_instances() -> u32 {
    1
}

fn default_max_inflight() -> usize {
    1024
}

fn default_pool_size() -> usize {
    256
}

fn default_breaker_failures() -> u32 {
    5
}

fn default_breaker_cooldown_ms() -> u64 {
    10_000
}

fn default_true() -> bool {
    true
}

impl BackendConfig {
    /// The effective request timeout in milliseconds.
    pub fn timeout_ms(&self, proxy: &ProxySection) -> u64 {
        self.timeout_ms.unwrap_or(proxy.request_timeout_ms)
    }

    /// Every replica URL of an HTTP backend (`url` and `urls` together).
    pub fn replica_urls(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.url.iter().map(|u| u.get_ref().as_str()).collect();
        out.extend(self.urls.iter().map(|u| u.get_ref().as_str()));
        out
    }
}

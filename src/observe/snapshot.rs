//! The lines of the metrics socket (schema v1): one JSON object per line, `type` first.
//!
//! Both sides use these types: the socket server serializes them and the TUI parses them, so
//! the wire format in `docs/metrics-socket.md` has exactly one definition. Every figure here
//! is something the gateway measures; a section the gateway does not have (no cache
//! configured) is `null`, never zeros that look like measurements.
//!
//! Units: times are milliseconds (`*_ms`) or seconds (`*_s`), rates are per second, ratios
//! (`error_rate`, `hit_rate`) are 0.0..=1.0, counters are totals since the gateway started.

use serde::{Deserialize, Serialize};

/// The schema version carried in every snapshot (`"v"`).
pub const SCHEMA_VERSION: u32 = 1;

/// One line of the socket stream.
// A line lives only from its parse to its handling (the TUI's client boxes it at once): the
// size of the snapshot variant costs nothing worth boxing every snapshot for.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SocketLine {
    /// The gateway's figures at one instant (every 500 ms).
    Snapshot(MetricsSnapshot),
    /// One log event, in order of `seq`.
    Log(LogLine),
}

impl SocketLine {
    /// Parses one line (with or without its trailing newline).
    pub fn parse(line: &str) -> Result<SocketLine, sonic_rs::Error> {
        sonic_rs::from_str(line.trim_end())
    }
}

/// The borrowed twin of [`SocketLine`], so the server encodes without cloning.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum LineRef<'a> {
    Snapshot(&'a MetricsSnapshot),
    Log(&'a LogLine),
}

/// `snapshot` as one socket line (JSON + `\n`).
pub fn snapshot_line(snapshot: &MetricsSnapshot) -> String {
    encode(&LineRef::Snapshot(snapshot))
}

/// `log` as one socket line (JSON + `\n`).
pub fn log_line(log: &LogLine) -> String {
    encode(&LineRef::Log(log))
}

fn encode(line: &LineRef<'_>) -> String {
    // Plain structs with string keys: encoding cannot fail on their shape. Should it fail
    // anyway, the reader gets an ERROR log line that says so instead of a broken line.
    let mut s = sonic_rs::to_string(line).unwrap_or_else(|e| {
        let why = LogLine {
            seq: 0,
            ts_ms: now_ms(),
            level: "ERROR".into(),
            target: "only1mcp_uring::observe".into(),
            message: format!("cannot encode a metrics line: {e}"),
        };
        sonic_rs::to_string(&LineRef::Log(&why)).unwrap_or_default()
    });
    s.push('\n');
    s
}

/// `{"type":"snapshot", ...}`: the whole gateway at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsSnapshot {
    /// Schema version ([`SCHEMA_VERSION`]).
    pub v: u32,
    /// When the snapshot was taken, milliseconds since the UNIX epoch.
    pub ts_ms: u64,
    /// Seconds since the gateway started.
    #[serde(deserialize_with = "f64_or_null")]
    pub uptime_s: f64,
    /// The gateway's version (`CARGO_PKG_VERSION`).
    pub version: String,
    /// Number of shards (one per core).
    pub cores: u32,
    /// The I/O driver the shards run on (`uring` or `epoll`).
    pub driver: String,
    /// What `GET /ready` says (`unknown` from a gateway that predates it).
    #[serde(default)]
    pub readiness: ReadinessState,
    /// `[cluster] node_id` (empty outside a cluster).
    #[serde(default)]
    pub node: String,
    /// Figures summed over every shard.
    pub totals: Totals,
    /// One entry per server, ordered by id.
    pub servers: Vec<ServerStats>,
    /// One entry per method (and tool, for `tools/call`).
    pub methods: Vec<MethodStats>,
    /// The response cache; `null` when none is configured.
    pub cache: Option<CacheStats>,
    /// Config reloads.
    pub reloads: ReloadStats,
}

impl MetricsSnapshot {
    /// A snapshot with the static facts only and every counter at zero: what the gateway
    /// publishes before its first measurement.
    pub fn initial(cores: u32, driver: &str) -> Self {
        Self {
            v: SCHEMA_VERSION,
            ts_ms: now_ms(),
            uptime_s: 0.0,
            version: env!("CARGO_PKG_VERSION").to_string(),
            cores,
            driver: driver.to_string(),
            readiness: ReadinessState::Starting,
            node: String::new(),
            totals: Totals::default(),
            servers: Vec::new(),
            methods: Vec::new(),
            cache: None,
            reloads: ReloadStats::default(),
        }
    }

    /// When the gateway that produced this snapshot started (ms since the epoch); two
    /// snapshots with start times more than a second apart come from different processes.
    pub fn started_ms(&self) -> u64 {
        self.ts_ms
            .saturating_sub((self.uptime_s.max(0.0) * 1000.0) as u64)
    }
}

/// `totals`: the whole gateway.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// JSON-RPC requests answered since start.
    pub requests: u64,
    /// Of those, answered with an error (JSON-RPC error or transport failure).
    pub errors: u64,
    /// Requests per second over the recent window.
    #[serde(deserialize_with = "f64_or_null")]
    pub req_per_s: f64,
    /// errors / requests over the recent window (0.0..=1.0).
    #[serde(deserialize_with = "f64_or_null")]
    pub error_rate: f64,
    /// Median request latency, milliseconds.
    #[serde(deserialize_with = "f64_or_null")]
    pub p50_ms: f64,
    /// 99th percentile request latency, milliseconds.
    #[serde(deserialize_with = "f64_or_null")]
    pub p99_ms: f64,
    /// Open 2025-era client sessions.
    pub sessions: u64,
    /// Requests in flight right now.
    pub inflight: u64,
    /// `initialize` requests that arrived while the node was draining or stopping.
    #[serde(default)]
    pub initialize_while_draining: u64,
    /// Requests refused (404) with another node's session id.
    #[serde(default)]
    pub session_ids_foreign: u64,
    /// Requests refused (404) with a session id no cluster key signed, or not an id at all.
    #[serde(default)]
    pub session_ids_forged: u64,
    /// `[rate_limit] store`: `local`, or `redis` (empty from gateways that predate it).
    #[serde(default)]
    pub rate_store: String,
    /// The shared store answers (always true for `local`).
    #[serde(default)]
    pub rate_store_up: bool,
    /// Requests the shared store could not decide (they followed `on_store_error`).
    #[serde(default)]
    pub rate_store_errors: u64,
}

/// `readiness`: what the gateway's `GET /ready` says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadinessState {
    /// No backend is ready yet (503).
    Starting,
    /// Takes new sessions (200).
    Ready,
    /// Drained by an operator (503).
    Draining,
    /// Shutting down after its drain grace (503).
    Stopping,
    /// Not sent (a gateway that predates it) or a state this reader does not know.
    #[default]
    #[serde(other)]
    Unknown,
}

impl ReadinessState {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadinessState::Starting => "starting",
            ReadinessState::Ready => "ready",
            ReadinessState::Draining => "draining",
            ReadinessState::Stopping => "stopping",
            ReadinessState::Unknown => "unknown",
        }
    }
}

impl From<only1mcp_shards::readiness::Readiness> for ReadinessState {
    fn from(r: only1mcp_shards::readiness::Readiness) -> Self {
        use only1mcp_shards::readiness::Readiness as R;
        match r {
            R::Starting => ReadinessState::Starting,
            R::Ready => ReadinessState::Ready,
            R::Draining => ReadinessState::Draining,
            R::Stopping => ReadinessState::Stopping,
        }
    }
}

/// One configured server and its replicas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerStats {
    /// The server's `id` from the config.
    pub id: String,
    /// `stdio`, `http` or `sse`.
    pub transport: String,
    /// `true` when the server is configured but takes no traffic (disabled or parked).
    pub parked: bool,
    /// Each replica (URL or stdio instance).
    pub replicas: Vec<ReplicaStats>,
}

/// One replica of a server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaStats {
    /// The replica's name (its URL, or `<id>/<instance>` for stdio).
    pub name: String,
    /// Passes its health checks.
    pub healthy: bool,
    /// Circuit breaker state.
    pub breaker: BreakerState,
    /// Requests in flight to this replica.
    pub inflight: u64,
    /// 99th percentile latency of this replica, milliseconds.
    #[serde(deserialize_with = "f64_or_null")]
    pub p99_ms: f64,
    /// Times the replica's process was restarted (stdio) since start.
    pub restarts: u64,
    /// Requests sent to this replica since start.
    pub requests: u64,
    /// Of those, failed.
    pub errors: u64,
}

/// A circuit breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Traffic flows.
    Closed,
    /// Traffic is refused until the cooldown ends.
    Open,
    /// A few trial requests decide whether to close again.
    HalfOpen,
    /// The replica has no breaker (stdio: its supervisor restarts it instead).
    None,
}

impl BreakerState {
    /// The wire spelling (`closed`, `open`, `half_open`, `none`).
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
            BreakerState::None => "none",
        }
    }
}

/// Requests by JSON-RPC method (and tool name for `tools/call`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodStats {
    /// JSON-RPC method, e.g. `tools/call`.
    pub method: String,
    /// For a backend call, the tool as `<server id>/<tool>`; `null` on the rows that count
    /// client requests per method.
    pub tool: Option<String>,
    /// Requests since start.
    pub requests: u64,
    /// Of those, answered with an error.
    pub errors: u64,
    /// Median latency, milliseconds.
    #[serde(deserialize_with = "f64_or_null")]
    pub p50_ms: f64,
    /// 99th percentile latency, milliseconds.
    #[serde(deserialize_with = "f64_or_null")]
    pub p99_ms: f64,
}

/// The response cache.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheStats {
    /// Lookups answered from the cache since start.
    pub hits: u64,
    /// Lookups that went to a backend since start.
    pub misses: u64,
    /// hits / (hits + misses), 0.0..=1.0.
    #[serde(deserialize_with = "f64_or_null")]
    pub hit_rate: f64,
    /// Entries held now.
    pub entries: u64,
    /// Entries evicted since start.
    pub evictions: u64,
}

/// Config reloads since start.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReloadStats {
    /// Reloads applied.
    pub ok: u64,
    /// Reloads refused (the old config stayed live).
    pub errors: u64,
    /// Why the last refused reload failed, if any did.
    pub last_error: Option<String>,
}

/// `{"type":"log", ...}`: one log event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Sequence number, from 1, increasing by one per event in this gateway process.
    pub seq: u64,
    /// When it was logged, milliseconds since the UNIX epoch.
    pub ts_ms: u64,
    /// `ERROR`, `WARN`, `INFO`, `DEBUG` or `TRACE`.
    pub level: String,
    /// The module that logged it (e.g. `only1mcp_shards::upstream::stdio`).
    pub target: String,
    /// The message followed by its fields as ` key=value`.
    pub message: String,
}

/// A figure that could not be computed (NaN, infinite) is written as `null`; it reads
/// back as NaN, which the TUI shows as `-`, rather than failing the whole line.
fn f64_or_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Milliseconds since the UNIX epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> MetricsSnapshot {
        let mut s = MetricsSnapshot::initial(2, "uring");
        s.ts_ms = 1_700_000_000_000;
        s.uptime_s = 12.5;
        s.totals.requests = 7;
        s.servers.push(ServerStats {
            id: "demo".into(),
            transport: "stdio".into(),
            parked: false,
            replicas: vec![ReplicaStats {
                name: "demo/0".into(),
                healthy: true,
                breaker: BreakerState::HalfOpen,
                inflight: 1,
                p99_ms: 3.5,
                restarts: 0,
                requests: 7,
                errors: 1,
            }],
        });
        s.methods.push(MethodStats {
            method: "initialize".into(),
            tool: None,
            requests: 1,
            errors: 0,
            p50_ms: 0.5,
            p99_ms: 0.9,
        });
        s
    }

    #[test]
    fn snapshot_round_trips_and_has_the_documented_shape() {
        let line = snapshot_line(&sample());
        assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
        assert!(line.starts_with(r#"{"type":"snapshot","v":1,"#), "{line}");
        // Absent sections are explicit nulls, and the breaker uses snake_case.
        assert!(line.contains(r#""cache":null"#), "{line}");
        assert!(line.contains(r#""tool":null"#), "{line}");
        assert!(line.contains(r#""breaker":"half_open""#), "{line}");
        assert!(line.contains(r#""last_error":null"#), "{line}");
        assert!(line.contains(r#""readiness":"starting""#), "{line}");
        assert_eq!(
            SocketLine::parse(&line).unwrap(),
            SocketLine::Snapshot(sample())
        );
    }

    #[test]
    fn a_snapshot_without_readiness_still_parses() {
        // From a gateway that predates `/ready`: the new fields are simply absent.
        let line = snapshot_line(&sample())
            .replace(r#""readiness":"starting","#, "")
            .replace(r#","initialize_while_draining":0"#, "");
        assert!(
            !line.contains("readiness") && !line.contains("while_draining"),
            "{line}"
        );
        match SocketLine::parse(&line).unwrap() {
            SocketLine::Snapshot(s) => {
                assert_eq!(s.readiness, ReadinessState::Unknown);
                assert_eq!(s.totals.initialize_while_draining, 0);
            }
            other => panic!("{other:?}"),
        }
        // A state this reader does not know yet is unknown, not an unreadable line.
        let line = snapshot_line(&sample()).replace(r#""starting""#, r#""resting""#);
        match SocketLine::parse(&line).unwrap() {
            SocketLine::Snapshot(s) => assert_eq!(s.readiness, ReadinessState::Unknown),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn log_line_round_trips() {
        let l = LogLine {
            seq: 3,
            ts_ms: 5,
            level: "WARN".into(),
            target: "t".into(),
            message: "a \"quoted\"\nmessage".into(),
        };
        let line = log_line(&l);
        assert!(line.starts_with(r#"{"type":"log","seq":3,"#), "{line}");
        assert_eq!(line.matches('\n').count(), 1, "newlines are escaped");
        assert_eq!(SocketLine::parse(&line).unwrap(), SocketLine::Log(l));
    }

    #[test]
    fn unknown_type_and_garbage_are_errors() {
        assert!(SocketLine::parse(r#"{"type":"nope"}"#).is_err());
        assert!(SocketLine::parse("not json").is_err());
    }

    #[test]
    fn a_non_finite_float_still_yields_one_parseable_line() {
        let mut s = sample();
        s.totals.p99_ms = f64::NAN;
        s.uptime_s = f64::INFINITY;
        let line = snapshot_line(&s);
        assert!(line.contains(r#""p99_ms":null"#), "{line}");
        let Ok(SocketLine::Snapshot(back)) = SocketLine::parse(&line) else {
            panic!("{line}")
        };
        assert!(back.totals.p99_ms.is_nan() && back.uptime_s.is_nan());
        assert_eq!(back.totals.requests, 7);
    }

    #[test]
    fn start_time_is_derived_from_uptime() {
        let s = sample();
        assert_eq!(s.started_ms(), 1_700_000_000_000 - 12_500);
    }
}

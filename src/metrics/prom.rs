//! The Prometheus exposition (OpenMetrics text, via prometheus-client) of one [`View`].
//!
//! The figures are already summed when this runs, so they are encoded as constant samples
//! through a `Collector` rather than kept in the crate's own atomic metric types: the data
//! plane never touches a shared counter. Every family, its labels and its meaning are listed
//! in `docs/operations.md`.

use std::fmt::Write;
use std::sync::Arc;

use only1mcp_shards::auth::limit_store::STORE_FAILURES;
use only1mcp_shards::stats::hist::BOUNDS_US;
use only1mcp_shards::stats::report::{RateStoreReport, ShardStats};
use only1mcp_shards::stats::{Counts, Hist, OUTCOMES};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::{Reloads, View};

type Labels = Vec<(&'static str, String)>;

/// What one scrape shows.
#[derive(Debug)]
struct Figures {
    view: Arc<View>,
    shards: Vec<(usize, u64, u64, u64)>,
    /// (shard, sessions evicted, initialize refused), cumulative.
    session_caps: Vec<(usize, u64, u64)>,
    /// (shard, open `subscriptions/listen` streams).
    listeners: Vec<(usize, u64)>,
    breakers: Vec<(String, String, usize, &'static str)>,
    reloads: Reloads,
    /// Panics contained to one connection, summed over shards.
    panics: u64,
    /// Requests cancelled because their client left, summed over shards.
    clients_gone: u64,
    /// gzip list pages (copies compressed, answers sent gzip), summed over shards.
    lists_gzip: [u64; 2],
    /// `[cluster] node_id` ("" outside a cluster).
    node: String,
    /// Token accounting: encoding, (method, server, name, answers, tokens), drops.
    tokens: Option<(&'static str, Vec<TokenRow>, u64)>,
    /// The rate-limit store: failures summed over shards, its state.
    rate_store: RateStoreReport,
    uptime: f64,
}

type TokenRow = (&'static str, String, String, u64, u64);

/// What the side threads that feed `/metrics` count, when they run.
pub struct SideThreads<'a> {
    /// Token accounting (`[metrics] tokens`).
    pub tokens: Option<&'a crate::tokens::TokenAccounting>,
    /// The span exporter (`[telemetry]`).
    pub traces: Option<&'a only1mcp_shards::trace::TraceCounters>,
}

/// Renders the text served at `/metrics`.
pub fn render(
    view: &Arc<View>,
    shards: &[&ShardStats],
    reloads: &Reloads,
    side: SideThreads<'_>,
    drain: super::drain::DrainFigures,
    uptime: f64,
    node: &str,
) -> String {
    let mut breakers = Vec::new();
    for s in shards {
        for r in &s.replicas {
            if r.transport == "http" {
                breakers.push((r.server.clone(), r.replica.clone(), s.shard, r.breaker));
            }
        }
    }
    let figures = Figures {
        view: view.clone(),
        shards: shards
            .iter()
            .map(|s| (s.shard, s.sessions, s.connections, s.inflight))
            .collect(),
        session_caps: shards
            .iter()
            .map(|s| (s.shard, s.sessions_evicted, s.sessions_refused))
            .collect(),
        listeners: shards.iter().map(|s| (s.shard, s.listeners)).collect(),
        breakers,
        reloads: reloads.clone(),
        panics: shards.iter().map(|s| s.panics).sum(),
        clients_gone: shards.iter().map(|s| s.clients_gone).sum(),
        lists_gzip: [0, 1].map(|i| shards.iter().map(|s| s.lists_gzip[i]).sum()),
        node: node.to_string(),
        tokens: side.tokens.map(token_rows),
        rate_store: rate_store(shards),
        uptime,
    };
    let mut registry = Registry::with_prefix("only1mcp");
    registry.register_collector(Box::new(figures));
    registry.register_collector(Box::new(drain));
    registry.register_collector(Box::new(super::cluster::ClusterFigures::of(shards)));
    registry.register_collector(Box::new(super::inputs::InputFigures::of(shards)));
    if let Some(t) = side.traces {
        registry.register_collector(Box::new(super::traces::TraceFigures::of(t)));
    }
    let mut out = String::with_capacity(16 * 1024);
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
        out.clear();
        let _ = writeln!(out, "# metrics encoding failed: {e}");
    }
    out
}

/// The rate-limit store over all shards: failures summed; up only when every shard saw it up
/// (they all read the one flag the store thread sets, so they differ only around a change).
pub(super) fn rate_store(shards: &[&ShardStats]) -> RateStoreReport {
    let mut r = RateStoreReport {
        shared: shards.iter().any(|s| s.rate_store.shared),
        up: shards.iter().all(|s| s.rate_store.up),
        failures: [0; 4],
    };
    for s in shards {
        for (sum, n) in r.failures.iter_mut().zip(s.rate_store.failures) {
            *sum += n;
        }
    }
    r
}

/// The token totals as rows, sorted (stable output).
fn token_rows(acc: &crate::tokens::TokenAccounting) -> (&'static str, Vec<TokenRow>, u64) {
    let t = acc.totals.lock().unwrap_or_else(|p| p.into_inner());
    let mut rows: Vec<TokenRow> = t
        .series
        .iter()
        .map(|((m, s, n), c)| (*m, s.to_string(), n.to_string(), c.responses, c.tokens))
        .collect();
    rows.sort();
    (t.encoding, rows, acc.dropped.dropped())
}

pub(super) fn counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Labels, u64)>,
) -> std::fmt::Result {
    let mut family = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in rows {
        ConstCounter::new(v).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A family with one sample and no labels.
pub(super) fn single(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric: &dyn EncodeMetric,
) -> std::fmt::Result {
    let family = enc.encode_descriptor(name, help, None, metric.metric_type())?;
    metric.encode(family)
}

pub(super) fn gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Labels, i64)>,
) -> std::fmt::Result {
    let mut family = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in rows {
        ConstGauge::new(v).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

fn histogram<'a>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Labels, &'a Hist)>,
) -> std::fmt::Result {
    let mut family = enc.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for (labels, h) in rows {
        let buckets: Vec<(f64, u64)> = h
            .buckets
            .iter()
            .enumerate()
            .map(|(i, n)| (BOUNDS_US.get(i).map_or(f64::MAX, |b| *b as f64 / 1e6), *n))
            .collect();
        family.encode_family(&labels)?.encode_histogram::<Labels>(
            h.sum_us as f64 / 1e6,
            h.count,
            &buckets,
            None,
        )?;
    }
    Ok(())
}

fn by_outcome(base: &Labels, c: &Counts) -> Vec<(Labels, u64)> {
    OUTCOMES
        .iter()
        .zip(&c.by_outcome)
        .filter(|(_, n)| **n > 0)
        .map(|(o, n)| {
            let mut l = base.clone();
            l.push(("outcome", o.as_str().to_string()));
            (l, *n)
        })
        .collect()
}

impl Collector for Figures {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        let v = &self.view;
        counter(
            &mut enc,
            "requests",
            "Client requests by method and outcome.",
            v.requests
                .iter()
                .flat_map(|(m, c)| by_outcome(&vec![("method", m.to_string())], c)),
        )?;
        histogram(
            &mut enc,
            "request_duration_seconds",
            "Client request latency by method (until the answer or the stream starts).",
            v.requests
                .iter()
                .map(|(m, c)| (vec![("method", m.to_string())], &c.latency)),
        )?;
        counter(
            &mut enc,
            "backend_calls",
            "Calls to backends by server, method, tool (tools/call) and outcome.",
            v.calls.iter().flat_map(|((s, m, t), c)| {
                let base = vec![
                    ("server", s.clone()),
                    ("method", m.to_string()),
                    ("tool", t.clone()),
                ];
                by_outcome(&base, c)
            }),
        )?;
        histogram(
            &mut enc,
            "backend_call_duration_seconds",
            "Backend call latency by server, method and tool.",
            v.calls.iter().map(|((s, m, t), c)| {
                let l = vec![
                    ("server", s.clone()),
                    ("method", m.to_string()),
                    ("tool", t.clone()),
                ];
                (l, &c.latency)
            }),
        )?;
        let replica = |s: &String, r: &String| vec![("server", s.clone()), ("replica", r.clone())];
        gauge(
            &mut enc,
            "backend_healthy",
            "1 when the replica is in rotation (health checks pass; stdio: the process is up and answered).",
            v.replicas
                .iter()
                .map(|((s, r), x)| (replica(s, r), i64::from(x.healthy))),
        )?;
        gauge(
            &mut enc,
            "backend_inflight",
            "Calls in flight per replica.",
            v.replicas
                .iter()
                .map(|((s, r), x)| (replica(s, r), x.inflight as i64)),
        )?;
        gauge(
            &mut enc,
            "backend_pool_connections",
            "HTTP keep-alive connections open per replica (idle or in use), summed over shards; at most pool_size per shard.",
            v.replicas
                .iter()
                .filter(|(_, x)| x.transport == "http")
                .map(|((s, r), x)| (replica(s, r), x.pool_open as i64)),
        )?;
        counter(
            &mut enc,
            "backend_pool_waits",
            "HTTP calls that queued for a connection because the replica's pool was at pool_size.",
            v.replicas
                .iter()
                .filter(|(_, x)| x.transport == "http")
                .map(|((s, r), x)| (replica(s, r), x.pool_waits)),
        )?;
        counter(
            &mut enc,
            "backend_replica_calls",
            "Calls per replica.",
            v.replicas
                .iter()
                .map(|((s, r), x)| (replica(s, r), x.calls)),
        )?;
        counter(
            &mut enc,
            "backend_replica_failures",
            "Failed calls per replica (timeout, invalid answer, unreachable).",
            v.replicas
                .iter()
                .map(|((s, r), x)| (replica(s, r), x.failures)),
        )?;
        gauge(
            &mut enc,
            "breaker_state",
            "Circuit breaker per HTTP replica and shard: 0 closed, 1 half-open, 2 open.",
            self.breakers.iter().map(|(s, r, shard, state)| {
                let mut l = replica(s, r);
                l.push(("shard", shard.to_string()));
                let n = match *state {
                    "open" => 2,
                    "half_open" => 1,
                    _ => 0,
                };
                (l, n)
            }),
        )?;
        counter(
            &mut enc,
            "breaker_opened",
            "Times a replica's circuit breaker opened (summed over shards).",
            v.replicas
                .iter()
                .filter(|(_, x)| x.transport == "http")
                .map(|((s, r), x)| (replica(s, r), x.breaker_opened)),
        )?;
        let stdio = || v.replicas.iter().filter(|(_, x)| x.transport == "stdio");
        gauge(
            &mut enc,
            "stdio_process_up",
            "1 while a stdio replica's process is running.",
            stdio().map(|((s, r), x)| (replica(s, r), i64::from(x.pid.is_some()))),
        )?;
        counter(
            &mut enc,
            "stdio_restarts",
            "Restarts of a stdio replica's process.",
            stdio().map(|((s, r), x)| (replica(s, r), x.restarts)),
        )?;
        gauge(
            &mut enc,
            "stdio_parked",
            "1 while a stdio server is parked by crash-loop detection.",
            stdio().map(|((s, r), x)| (replica(s, r), i64::from(x.parked))),
        )?;
        let shard = |i: usize| vec![("shard", i.to_string())];
        gauge(
            &mut enc,
            "sessions",
            "2025-era client sessions owned by each shard.",
            self.shards.iter().map(|&(i, n, _, _)| (shard(i), n as i64)),
        )?;
        counter(
            &mut enc,
            "sessions_evicted",
            "Never-used sessions evicted to make room under server.max_sessions, per shard.",
            self.session_caps.iter().map(|&(i, n, _)| (shard(i), n)),
        )?;
        counter(
            &mut enc,
            "sessions_refused",
            "initialize requests refused at a session cap (503 or 429), per shard.",
            self.session_caps.iter().map(|&(i, _, n)| (shard(i), n)),
        )?;
        gauge(
            &mut enc,
            "connections",
            "Open client connections per shard.",
            self.shards.iter().map(|&(i, _, n, _)| (shard(i), n as i64)),
        )?;
        gauge(
            &mut enc,
            "listeners",
            "Open subscriptions/listen streams per shard (at most its share of server.max_listens).",
            self.listeners.iter().map(|&(i, n)| (shard(i), n as i64)),
        )?;
        gauge(
            &mut enc,
            "inflight_requests",
            "Client requests being served per shard.",
            self.shards.iter().map(|&(i, _, _, n)| (shard(i), n as i64)),
        )?;
        single(
            &mut enc,
            "connection_panics",
            "Gateway faults: panics contained to the one client connection they happened on (closed; the shard served on). Each is logged at error level.",
            &ConstCounter::new(self.panics),
        )?;
        single(
            &mut enc,
            "client_disconnects",
            "Requests cancelled because the client closed its connection before the answer (their backend calls were cancelled and their slots freed).",
            &ConstCounter::new(self.clients_gone),
        )?;
        single(
            &mut enc,
            "list_gzip_builds",
            "gzip copies of large list pages compressed (once per catalog version, page and shard).",
            &ConstCounter::new(self.lists_gzip[0]),
        )?;
        single(
            &mut enc,
            "list_gzip_answers",
            "List answers sent gzip to clients that accept it.",
            &ConstCounter::new(self.lists_gzip[1]),
        )?;
        single(
            &mut enc,
            "config_reloads",
            "Config reloads applied.",
            &ConstCounter::new(self.reloads.ok),
        )?;
        single(
            &mut enc,
            "config_reload_errors",
            "Config reloads rejected (the running config stayed).",
            &ConstCounter::new(self.reloads.errors),
        )?;
        if let Some(c) = &v.cache {
            let kinds = ["resources/read", "tools/call"];
            let per = |arr: [u64; 2]| {
                kinds
                    .iter()
                    .zip(arr)
                    .map(|(m, n)| (vec![("method", m.to_string())], n))
                    .collect::<Vec<_>>()
            };
            counter(
                &mut enc,
                "cache_hits",
                "Requests answered from a shard's response cache.",
                per(c.counters.hits),
            )?;
            counter(
                &mut enc,
                "cache_misses",
                "Cacheable requests not found in the cache (then coalesced or sent on).",
                per(c.counters.misses),
            )?;
            counter(
                &mut enc,
                "coalesced_requests",
                "Requests answered by an identical request's backend call in flight (backend calls saved).",
                per(c.counters.coalesced),
            )?;
            single(
                &mut enc,
                "cache_evictions",
                "Entries evicted to stay within [cache] max_entries / max_bytes.",
                &ConstCounter::new(c.counters.evictions),
            )?;
            single(
                &mut enc,
                "cache_entries",
                "Entries held, all shards.",
                &ConstGauge::new(c.entries as i64),
            )?;
            single(
                &mut enc,
                "cache_bytes",
                "Bytes held, all shards.",
                &ConstGauge::new(c.bytes as i64),
            )?;
        }
        if let Some((encoding, rows, dropped)) = &self.tokens {
            let labels = |(m, s, n, _, _): &TokenRow| {
                vec![
                    ("method", m.to_string()),
                    ("server", s.clone()),
                    ("name", n.clone()),
                    ("encoding", encoding.to_string()),
                ]
            };
            counter(
                &mut enc,
                "tokens_served",
                "Tokens of the results clients were served ([metrics] tokens), by method, server (empty: the gateway's own answer), tool or prompt name.",
                rows.iter().map(|r| (labels(r), r.4)),
            )?;
            counter(
                &mut enc,
                "token_counted_responses",
                "Results whose tokens were counted, with the same labels (tokens / responses = tokens per answer).",
                rows.iter().map(|r| (labels(r), r.3)),
            )?;
            single(
                &mut enc,
                "token_accounting_dropped",
                "Answers not counted because the tokenizer thread was behind.",
                &ConstCounter::new(*dropped),
            )?;
        }
        let rs = &self.rate_store;
        let store = if rs.shared { "redis" } else { "local" };
        gauge(
            &mut enc,
            "rate_limit_store_up",
            "1 while the rate-limit store answers ([rate_limit] store; local: always 1).",
            [(vec![("store", store.to_string())], i64::from(rs.up))],
        )?;
        counter(
            &mut enc,
            "rate_limit_store_errors",
            "Requests the shared rate-limit store could not decide (they followed rate_limit.on_store_error), by cause: queue_full, timeout, unreachable, error.",
            STORE_FAILURES
                .iter()
                .zip(rs.failures)
                .filter(|_| rs.shared)
                .map(|(f, n)| {
                    let l = vec![("store", store.to_string()), ("cause", f.as_str().to_string())];
                    (l, n)
                }),
        )?;
        single(
            &mut enc,
            "uptime_seconds",
            "Seconds since the gateway started.",
            &ConstGauge::new(self.uptime as i64),
        )?;
        let mut info =
            enc.encode_descriptor("build", "The gateway's version.", None, MetricType::Info)?;
        info.encode_info(&vec![
            ("version", env!("CARGO_PKG_VERSION").to_string()),
            ("node", self.node.clone()),
        ])?;
        Ok(())
    }
}

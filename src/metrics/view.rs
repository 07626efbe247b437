//! One sum of every shard's latest report, and the socket snapshot made from two of them.

use std::collections::BTreeMap;

use only1mcp_shards::stats::report::{CacheReport, ReplicaStats, ShardStats};
use only1mcp_shards::stats::{Counts, Hist};

use super::Reloads;
use crate::observe::snapshot as wire;

/// A replica summed over the shards that use it.
#[derive(Debug, Clone, Default)]
pub struct ReplicaSum {
    /// `http` or `stdio`.
    pub transport: &'static str,
    /// Every shard has it in rotation.
    pub healthy: bool,
    /// The worst breaker state over the shards (`open` > `half_open` > `closed`).
    pub breaker: &'static str,
    /// Breaker openings, summed.
    pub breaker_opened: u64,
    /// In-flight calls, summed.
    pub inflight: u64,
    /// Calls, summed.
    pub calls: u64,
    /// Failed calls, summed.
    pub failures: u64,
    /// Latency, merged.
    pub latency: Hist,
    /// stdio restarts.
    pub restarts: u64,
    /// stdio: parked by the crash-loop detector.
    pub parked: bool,
    /// stdio: the running process.
    pub pid: Option<i32>,
    /// http: pooled connections open, summed over shards.
    pub pool_open: u64,
    /// http: calls that queued for a pooled connection, summed.
    pub pool_waits: u64,
}

/// A quantile of the window in ms; NaN (sent as `null`, shown as `-`) when nothing was
/// observed in it, so an idle window never reads as a measured 0 ms.
fn quantile(h: &Hist, q: f64) -> f64 {
    if h.count == 0 {
        f64::NAN
    } else {
        h.quantile_ms(q)
    }
}

fn breaker_rank(s: &str) -> u8 {
    match s {
        "open" => 3,
        "half_open" => 2,
        "closed" => 1,
        _ => 0,
    }
}

/// Every shard's figures added up (ordered maps: stable output for people and diffs).
#[derive(Debug, Clone, Default)]
pub struct View {
    /// Client requests by method.
    pub requests: BTreeMap<&'static str, Counts>,
    /// Backend calls by (server, method, tool).
    pub calls: BTreeMap<(String, &'static str, String), Counts>,
    /// Replicas by (server, replica).
    pub replicas: BTreeMap<(String, String), ReplicaSum>,
    /// Sessions, connections and in-flight requests, summed.
    pub sessions: u64,
    /// Open client connections.
    pub connections: u64,
    /// Requests being served.
    pub inflight: u64,
    /// The response cache, summed (`None`: no shard has one).
    pub cache: Option<CacheReport>,
}

impl View {
    /// Adds up `shards`.
    pub fn sum(shards: &[&ShardStats]) -> View {
        let mut v = View::default();
        for s in shards {
            v.sessions += s.sessions;
            v.connections += s.connections;
            v.inflight += s.inflight;
            for (m, c) in &s.requests {
                v.requests.entry(*m).or_default().merge(c);
            }
            for (k, c) in &s.calls {
                v.calls
                    .entry((k.server.to_string(), k.method, k.tool.to_string()))
                    .or_default()
                    .merge(c);
            }
            for r in &s.replicas {
                v.add_replica(r);
            }
            if let Some(c) = &s.cache {
                let sum = v.cache.get_or_insert_with(CacheReport::default);
                for k in 0..2 {
                    sum.counters.hits[k] += c.counters.hits[k];
                    sum.counters.misses[k] += c.counters.misses[k];
                    sum.counters.coalesced[k] += c.counters.coalesced[k];
                }
                sum.counters.evictions += c.counters.evictions;
                sum.entries += c.entries;
                sum.bytes += c.bytes;
            }
        }
        v
    }

    fn add_replica(&mut self, r: &ReplicaStats) {
        let key = (r.server.clone(), r.replica.clone());
        let first = !self.replicas.contains_key(&key);
        let e = self.replicas.entry(key).or_default();
        e.transport = r.transport;
        e.healthy = if first {
            r.healthy
        } else {
            e.healthy && r.healthy
        };
        if breaker_rank(r.breaker) > breaker_rank(e.breaker) {
            e.breaker = r.breaker;
        }
        e.breaker_opened += r.breaker_opened;
        e.inflight += r.inflight;
        e.calls += r.calls;
        e.failures += r.failures;
        e.latency.merge(&r.latency);
        e.restarts += r.restarts;
        e.parked |= r.parked;
        e.pid = e.pid.or(r.pid);
        e.pool_open += r.pool_open;
        e.pool_waits += r.pool_waits;
    }

    /// All client requests, merged over methods.
    pub fn all_requests(&self) -> Counts {
        let mut all = Counts::default();
        for c in self.requests.values() {
            all.merge(c);
        }
        all
    }

    /// The socket snapshot: totals since start, rates and percentiles over the window from
    /// `earlier` (taken `secs` ago).
    pub fn snapshot(
        &self,
        earlier: &View,
        secs: f64,
        uptime: f64,
        cores: u32,
        driver: &str,
        reloads: &Reloads,
    ) -> wire::MetricsSnapshot {
        let all = self.all_requests();
        let before = earlier.all_requests();
        let window = all.latency.since(&before.latency);
        let (n, errs) = (
            all.total() - before.total().min(all.total()),
            all.errors() - before.errors().min(all.errors()),
        );
        let mut snap = wire::MetricsSnapshot::initial(cores, driver);
        snap.uptime_s = uptime;
        snap.totals = wire::Totals {
            requests: all.total(),
            errors: all.errors(),
            req_per_s: if secs > 0.0 { n as f64 / secs } else { 0.0 },
            error_rate: if n > 0 { errs as f64 / n as f64 } else { 0.0 },
            p50_ms: quantile(&window, 0.5),
            p99_ms: quantile(&window, 0.99),
            sessions: self.sessions,
            inflight: self.inflight,
            // Not view figures: the aggregator sets them from the shards' reports.
            ..Default::default()
        };
        let mut servers: BTreeMap<&str, wire::ServerStats> = BTreeMap::new();
        for ((server, name), r) in &self.replicas {
            let then = earlier
                .replicas
                .get(&(server.clone(), name.clone()))
                .map(|e| e.latency.clone())
                .unwrap_or_default();
            let s = servers
                .entry(server.as_str())
                .or_insert_with(|| wire::ServerStats {
                    id: server.clone(),
                    transport: r.transport.to_string(),
                    parked: false,
                    replicas: Vec::new(),
                });
            s.parked |= r.parked;
            s.replicas.push(wire::ReplicaStats {
                name: name.clone(),
                healthy: r.healthy,
                breaker: match r.breaker {
                    "open" => wire::BreakerState::Open,
                    "half_open" => wire::BreakerState::HalfOpen,
                    "closed" => wire::BreakerState::Closed,
                    _ => wire::BreakerState::None,
                },
                inflight: r.inflight,
                p99_ms: quantile(&r.latency.since(&then), 0.99),
                restarts: r.restarts,
                requests: r.calls,
                errors: r.failures,
            });
        }
        snap.servers = servers.into_values().collect();
        let line = |method: &str, tool: Option<String>, c: &Counts, then: Option<&Counts>| {
            let w = then.map_or(c.latency.clone(), |t| c.latency.since(&t.latency));
            wire::MethodStats {
                method: method.to_string(),
                tool,
                requests: c.total(),
                errors: c.errors(),
                p50_ms: quantile(&w, 0.5),
                p99_ms: quantile(&w, 0.99),
            }
        };
        for (m, c) in &self.requests {
            snap.methods.push(line(m, None, c, earlier.requests.get(m)));
        }
        for ((server, method, tool), c) in &self.calls {
            if !tool.is_empty() {
                let then = earlier.calls.get(&(server.clone(), *method, tool.clone()));
                snap.methods
                    .push(line(method, Some(format!("{server}/{tool}")), c, then));
            }
        }
        snap.cache = self.cache.map(|c| {
            let hits: u64 = c.counters.hits.iter().sum();
            let misses: u64 = c.counters.misses.iter().sum();
            wire::CacheStats {
                hits,
                misses,
                hit_rate: if hits + misses > 0 {
                    hits as f64 / (hits + misses) as f64
                } else {
                    f64::NAN
                },
                entries: c.entries,
                evictions: c.counters.evictions,
            }
        });
        snap.reloads = wire::ReloadStats {
            ok: reloads.ok,
            errors: reloads.errors,
            last_error: reloads.last_error.clone(),
        };
        snap
    }
}

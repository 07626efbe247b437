//! The shard's figures for the control thread: the composition root reads every layer.
//!
//! The report's types live in `stats/report.rs` (the upstream layer fills its replica rows);
//! building one reads the front (connections), the router (sessions, listens, requests,
//! cache) and the upstreams (replicas, owned children), so it lives here, beside the shard.

use std::rc::Rc;

use crate::shard::LocalShard;
use crate::stats::report::{CacheReport, ShardStats};
use crate::upstream::LocalBackend;

/// Builds the shard's report now.
pub fn build(shard: &Rc<LocalShard>) -> ShardStats {
    let mut replicas = Vec::new();
    for backend in shard.upstreams.borrow().values() {
        if let LocalBackend::Http(h) = &**backend {
            h.replica_stats(&mut replicas);
        }
    }
    for (slot, _) in shard.owned_stdio.borrow().iter() {
        replicas.push(slot.stats());
    }
    ShardStats {
        shard: shard.id,
        sessions: shard.sessions.borrow().len() as u64,
        sessions_evicted: shard.sessions.borrow().evicted,
        sessions_refused: shard.sessions.borrow().refused,
        connections: shard.connections.get() as u64,
        listeners: shard.listeners.borrow().len() as u64,
        inflight: shard.inflight.get() as u64,
        panics: shard.panics.get(),
        clients_gone: shard.clients_gone.get(),
        requests: shard.stats.requests_copy(),
        calls: shard.stats.calls_copy(),
        replicas,
        cache: shard.snapshot.load().config.cache.enabled.then(|| {
            let (entries, bytes) = shard.cache.size();
            CacheReport {
                counters: shard.cache.counters(),
                entries: entries as u64,
                bytes: bytes as u64,
            }
        }),
    }
}

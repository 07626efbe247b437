//! The shard's figures for the control thread: the composition root reads every layer.
//!
//! The report's types live in `stats/report.rs` (the upstream layer fills its replica rows);
//! building one reads the front (connections), the router (sessions, listens, requests,
//! cache) and the upstreams (replicas, owned children), so it lives here, beside the shard.

use std::rc::Rc;

use crate::shard::LocalShard;
use crate::stats::report::{CacheReport, RateStoreReport, ShardStats};
use crate::upstream::LocalBackend;

/// Builds the shard's report now.
pub fn build(shard: &Rc<LocalShard>) -> ShardStats {
    let mut replicas = Vec::new();
    for backend in shard.router.upstreams.backends.borrow().values() {
        if let LocalBackend::Http(h) = &**backend {
            h.replica_stats(&mut replicas);
        }
    }
    for (slot, _) in shard.router.upstreams.owned.borrow().iter() {
        replicas.push(slot.stats());
    }
    ShardStats {
        shard: shard.id,
        sessions: shard.router.sessions.borrow().len() as u64,
        sessions_evicted: shard.router.sessions.borrow().evicted,
        sessions_refused: shard.router.sessions.borrow().refused,
        connections: shard.front.connections.get() as u64,
        listeners: shard.router.listeners.borrow().len() as u64,
        client_input: [
            shard.router.calls.s2c.borrow().len() as u64,
            shard.router.calls.inputs.borrow().len() as u64,
            shard.router.parked.borrow().len() as u64,
        ],
        inflight: shard.front.inflight.get() as u64,
        panics: shard.front.panics.get(),
        clients_gone: shard.router.clients_gone.get(),
        lists_gzip: [
            shard.router.gz_pages.built.get(),
            shard.router.gz_pages.served.get(),
        ],
        session_ids_refused: shard.router.session_ids_refused.each_ref().map(|c| c.get()),
        initialize_while_draining: shard.router.stats.initialize_while_draining_count(),
        requests: shard.router.stats.requests_copy(),
        calls: shard.router.stats.calls_copy(),
        replicas,
        rate_store: RateStoreReport {
            shared: shard.router.auth.store().is_shared(),
            up: shard.router.auth.store().is_up(),
            failures: shard.router.auth.store_failures(),
        },
        cache: shard.router.snapshot.load().config.cache.enabled.then(|| {
            let (entries, bytes) = shard.router.cache.size();
            CacheReport {
                counters: shard.router.cache.counters(),
                entries: entries as u64,
                bytes: bytes as u64,
            }
        }),
    }
}

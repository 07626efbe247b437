//! What an HTTP backend reports to the metrics, per replica as this shard sees it: health
//! (from the control thread's checks), breaker state, in-flight calls, calls, failures,
//! latency, and its connection pool (open connections, calls that queued). Plain `Cell`s: each shard has its own `LocalHttpBackend`.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use super::LocalHttpBackend;
use crate::stats::report::ReplicaStats;
use crate::stats::Hist;

/// One replica's call counters on this shard.
#[derive(Debug, Default)]
pub(super) struct LocalReplicaCounters {
    calls: Cell<u64>,
    failures: Cell<u64>,
    latency: RefCell<Hist>,
}

impl LocalReplicaCounters {
    /// One call ended (`failed`: the replica timed out, broke the protocol or was down).
    pub(super) fn record(&self, failed: bool, took: Duration) {
        self.calls.set(self.calls.get() + 1);
        if failed {
            self.failures.set(self.failures.get() + 1);
        }
        self.latency.borrow_mut().observe(took);
    }
}

impl LocalHttpBackend {
    /// Appends one entry per replica.
    pub fn replica_stats(&self, out: &mut Vec<ReplicaStats>) {
        let now = std::time::Instant::now();
        for (i, r) in self.replicas.iter().enumerate() {
            let c = &r.counters;
            out.push(ReplicaStats {
                server: self.spec.id.clone(),
                transport: "http",
                replica: r.url.raw.clone(),
                healthy: self.healthy[i].get(),
                breaker: self.breakers[i].state(now).as_str(),
                breaker_opened: self.breakers[i].opened_total(),
                inflight: u64::from(self.balancer.inflight(i)),
                calls: c.calls.get(),
                failures: c.failures.get(),
                latency: c.latency.borrow().clone(),
                restarts: 0,
                parked: false,
                pid: None,
                pool_open: r.pool.open() as u64,
                pool_waits: r.pool.waits(),
            });
        }
    }
}

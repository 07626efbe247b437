//! What a stdio slot reports to the metrics: its calls, failures, latency and restarts, and
//! the state of its process. Plain `Cell`s: the slot lives on its owner shard only.

use std::cell::{Cell, RefCell};
use std::time::Instant;

use super::LocalStdioSlot;
use crate::error::McpError;
use crate::stats::report::ReplicaStats;
use crate::stats::Hist;
use crate::upstream::BackendReply;

/// The slot's counters.
#[derive(Debug, Default)]
pub(super) struct LocalSlotCounters {
    calls: Cell<u64>,
    failures: Cell<u64>,
    inflight: Cell<u64>,
    restarts: Cell<u64>,
    latency: RefCell<Hist>,
}

impl LocalSlotCounters {
    pub(super) fn start(&self) -> Instant {
        self.inflight.set(self.inflight.get() + 1);
        Instant::now()
    }

    pub(super) fn end(&self, started: Instant, r: &Result<BackendReply, McpError>) {
        self.inflight.set(self.inflight.get().saturating_sub(1));
        self.calls.set(self.calls.get() + 1);
        if matches!(
            r,
            Err(McpError::BackendUnavailable { .. }
                | McpError::BackendTimeout { .. }
                | McpError::BackendProtocol { .. })
        ) {
            self.failures.set(self.failures.get() + 1);
        }
        self.latency.borrow_mut().observe(started.elapsed());
    }

    pub(super) fn restarted(&self) {
        self.restarts.set(self.restarts.get() + 1);
    }
}

impl LocalStdioSlot {
    /// This process slot as a replica of its server.
    pub fn stats(&self) -> ReplicaStats {
        let c = &self.counters;
        let pid = self.current.borrow().as_ref().map(|p| p.pid);
        ReplicaStats {
            server: self.spec.id.clone(),
            transport: "stdio",
            replica: format!("instance {}", self.instance),
            healthy: pid.is_some() && self.started_once.get() && self.ready(),
            breaker: "none",
            breaker_opened: 0,
            inflight: c.inflight.get(),
            calls: c.calls.get(),
            failures: c.failures.get(),
            latency: c.latency.borrow().clone(),
            restarts: c.restarts.get(),
            parked: self.down_reason.borrow().starts_with("crash loop"),
            pid,
            pool_open: 0,
            pool_waits: 0,
        }
    }

    /// Calls under way on this slot.
    pub fn inflight(&self) -> u64 {
        self.counters.inflight.get()
    }

    /// The process answered its handshake since it last (re)started.
    fn ready(&self) -> bool {
        let reason = self.down_reason.borrow();
        reason.is_empty() || *reason == "ready"
    }
}

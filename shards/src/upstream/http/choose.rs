//! Choosing the replica for a call and what happens after: balancer, health and breaker
//! filters (with panic routing when health checks have every replica out), the retry of a
//! safe call on another replica within a retry budget, and recording the outcome in the
//! replica's breaker and counters.

use std::ops::Range;

use super::LocalHttpBackend;
use crate::error::McpError;
use crate::upstream::{BackendReply, CallOpts};

/// Marks a call in flight on a replica for `least_connections`, ended even if the call's
/// future is dropped.
struct InFlight<'a>(&'a crate::balance::LocalBalancer, usize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.ended(self.1);
    }
}

impl LocalHttpBackend {
    /// Calls the backend with `body` (placeholder id at `id`). Related messages the backend
    /// streams before its response go to `opts.events`. On timeout or client cancellation the
    /// backend gets `notifications/cancelled` for our id.
    pub async fn call(
        &self,
        body: &[u8],
        id: Range<usize>,
        opts: CallOpts,
    ) -> Result<BackendReply, McpError> {
        if let Some(pin) = opts.pin {
            // A task's follow-up goes where the task is, whatever the balancer and the
            // breakers would say (another replica does not know the task).
            if pin.replica >= self.replicas.len() {
                return Err(crate::upstream::task_lost(
                    &self.spec.id,
                    "its replica is no longer configured",
                ));
            }
            let started = opts.started.unwrap_or_else(crate::rt::clock::now);
            // Boxed, as the retry below: each inline call would size every call's future.
            let result = Box::pin(self.call_replica(pin.replica, body, id, opts)).await;
            self.record(pin.replica, &result, started);
            return result;
        }
        // The call's start, read by its caller (`route/forward.rs`, `rt/clock.rs`) or here.
        let now = opts.started.unwrap_or_else(crate::rt::clock::now);
        let pick = |by_health: bool| {
            self.balancer.pick(opts.affinity, |i| {
                (!by_health || self.healthy[i].get()) && self.breakers[i].usable(now)
            })
        };
        // Panic routing (Envoy's term): when the health checks have taken out every replica,
        // a call still goes to one whose breaker lets it through. Failing everything until
        // the next probe would turn a blip of the checker, or a replica that just came back,
        // into a full outage; the breakers still keep calls off a replica that is down.
        let Some(replica_idx) = pick(true).or_else(|| pick(false)) else {
            // Name only what took the replicas out: the breakers always did; the health
            // checks too only if they have every replica out.
            let reason = if self.healthy.iter().all(|h| !h.get()) {
                "no replica is in rotation (health checks failing and circuit breakers open)"
            } else {
                "no replica is in rotation (circuit breakers open)"
            };
            return Err(self.unavailable(reason));
        };
        self.breakers[replica_idx].allow(now);
        // Retry budget: each call earns a tenth of a retry (at most 10 banked), so retries
        // stay under ~10% of traffic even when a replica dies.
        self.retry_tokens
            .set((self.retry_tokens.get() + 0.1).min(10.0));
        let retry = (opts.retry_safe && self.replicas.len() > 1).then(|| opts.retry_copy());
        let started = now;
        let result = {
            let _inflight = InFlight(&self.balancer, replica_idx);
            self.balancer.started(replica_idx);
            self.call_replica(replica_idx, body, id.clone(), opts).await
        };
        self.record(replica_idx, &result, started);
        if let (Err(McpError::BackendUnavailable { .. }), Some(retry)) = (&result, retry) {
            let now = crate::rt::clock::now();
            let other = self.balancer.pick(retry.affinity, |i| {
                i != replica_idx && self.healthy[i].get() && self.breakers[i].usable(now)
            });
            if let (Some(j), true) = (other, self.retry_tokens.get() >= 1.0) {
                self.retry_tokens.set(self.retry_tokens.get() - 1.0);
                tracing::debug!(server = %self.spec.id, from = replica_idx, to = j, "retrying a safe call on another replica");
                self.breakers[j].allow(now);
                let started = now;
                let again = {
                    let _inflight = InFlight(&self.balancer, j);
                    self.balancer.started(j);
                    Box::pin(self.call_replica(j, body, id, retry)).await
                };
                self.record(j, &again, started);
                return again;
            }
        }
        result
    }

    fn record(
        &self,
        replica_idx: usize,
        result: &Result<BackendReply, McpError>,
        started: std::time::Instant,
    ) {
        // The answer's one clock reading: the caller's latency and span take it too.
        let answered = crate::rt::clock::now();
        let failed = match result {
            Ok(_) => {
                self.breakers[replica_idx].success();
                false
            }
            Err(McpError::BackendUnavailable { .. })
            | Err(McpError::BackendTimeout { .. })
            | Err(McpError::BackendProtocol { .. }) => {
                self.breakers[replica_idx].failure(answered);
                true
            }
            Err(_) => false,
        };
        self.replicas[replica_idx]
            .counters
            .record(failed, answered.saturating_duration_since(started));
    }
}

//! Whether this node takes new sessions: the state behind `GET /ready`, shared by every shard
//! and the control thread.
//!
//! A load balancer health-checks `/ready` and sends new sessions only to nodes that answer
//! 200. Two things decide it, and they change independently:
//! - **warm-up**, once: the node starts `starting` and becomes ready when its first backend
//!   has listed its tools (at once with no backend). It never goes back: a node whose
//!   backends all fail later stays ready (its `/health` says `degraded`), so a backend shared
//!   by every node cannot take the whole fleet out of the balancer at once.
//! - **the operator's mode**: serving, `draining` (SIGUSR2 or `POST /admin/drain`, undone by
//!   `POST /admin/undrain`) or `stopping` (SIGTERM/SIGINT, never undone).
//!
//! Neither stops any traffic: sessions, calls, streams and even a new `initialize` are served
//! in every state (a balancer may lag behind `/ready`); the shards only count the
//! `initialize` requests that arrive while draining or stopping.
//!
//! It is a runtime flag, not config: one `AtomicU8` read per `/ready` request, written on the
//! rare transitions (compare-and-swap, so concurrent writers cannot lose each other's
//! change). A config reload does not touch it.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

/// The first backend is ready (or there is none): warm-up is over.
const WARM: u8 = 0b001;
/// The operator's mode, in the two bits above [`WARM`].
const MODE: u8 = 0b110;
const SERVING: u8 = 0b000;
const DRAINING: u8 = 0b010;
const STOPPING: u8 = 0b100;

/// What `/ready` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// No backend has listed its tools yet (503).
    Starting,
    /// Takes new sessions (200).
    Ready,
    /// An operator asked the balancer to send new sessions elsewhere; everything else goes on
    /// (503).
    Draining,
    /// Shutdown started: serving on through `server.drain_grace_ms`, then stopping (503).
    Stopping,
}

impl Readiness {
    /// Every state, in the order of the `only1mcp_drain_state` series.
    pub const ALL: [Readiness; 4] = [
        Readiness::Starting,
        Readiness::Ready,
        Readiness::Draining,
        Readiness::Stopping,
    ];

    /// The name used in `/ready`, metrics, the metrics socket and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Readiness::Starting => "starting",
            Readiness::Ready => "ready",
            Readiness::Draining => "draining",
            Readiness::Stopping => "stopping",
        }
    }

    /// A load balancer should send this node new sessions.
    pub fn accepting(self) -> bool {
        self == Readiness::Ready
    }

    /// The node is leaving the balancer on purpose (draining or stopping).
    pub fn leaving(self) -> bool {
        matches!(self, Readiness::Draining | Readiness::Stopping)
    }

    fn of(bits: u8) -> Readiness {
        match (bits & MODE, bits & WARM) {
            (STOPPING, _) => Readiness::Stopping,
            (DRAINING, _) => Readiness::Draining,
            (_, 0) => Readiness::Starting,
            _ => Readiness::Ready,
        }
    }
}

/// A change asked of the state: what it was and what it is now (equal when nothing changed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// Before.
    pub from: Readiness,
    /// After.
    pub to: Readiness,
}

impl Transition {
    /// The state changed.
    pub fn changed(self) -> bool {
        self.from != self.to
    }
}

/// The node's readiness, one per process; clones share it.
#[derive(Debug, Clone, Default)]
pub struct SharedReadiness(Arc<AtomicU8>);

impl SharedReadiness {
    /// A node that is starting and serving (not draining).
    pub fn new() -> Self {
        Self::default()
    }

    /// The state now.
    pub fn state(&self) -> Readiness {
        Readiness::of(self.0.load(Ordering::Acquire))
    }

    /// Warm-up is over (the first backend is ready, or there is none). Idempotent.
    pub fn warm(&self) -> Transition {
        self.update(|bits| bits | WARM)
    }

    /// Stop taking new sessions without stopping (SIGUSR2, `POST /admin/drain`). A stopping
    /// node stays stopping.
    pub fn drain(&self) -> Transition {
        self.update(|bits| match bits & MODE {
            STOPPING => bits,
            _ => (bits & !MODE) | DRAINING,
        })
    }

    /// Take new sessions again (`POST /admin/undrain`): back to ready, or to starting if
    /// warm-up is not over. A stopping node stays stopping.
    pub fn undrain(&self) -> Transition {
        self.update(|bits| match bits & MODE {
            STOPPING => bits,
            _ => (bits & !MODE) | SERVING,
        })
    }

    /// Shutdown started (SIGTERM, SIGINT, or the stdio client left); never undone.
    pub fn stop(&self) -> Transition {
        self.update(|bits| (bits & !MODE) | STOPPING)
    }

    fn update(&self, f: impl Fn(u8) -> u8) -> Transition {
        let prev = match self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| Some(f(b)))
        {
            Ok(b) | Err(b) => b,
        };
        Transition {
            from: Readiness::of(prev),
            to: Readiness::of(f(prev)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_starting_and_warms_once() {
        let r = SharedReadiness::new();
        assert_eq!(r.state(), Readiness::Starting);
        assert!(!r.state().accepting());
        let t = r.warm();
        assert_eq!((t.from, t.to), (Readiness::Starting, Readiness::Ready));
        assert!(r.state().accepting());
        assert!(!r.warm().changed());
        assert_eq!(r.state(), Readiness::Ready);
    }

    #[test]
    fn drain_and_undrain_keep_warm_up() {
        let r = SharedReadiness::new();
        // Drained before the first backend: undrain goes back to starting, not ready.
        assert_eq!(r.drain().to, Readiness::Draining);
        assert_eq!(
            r.warm().to,
            Readiness::Draining,
            "warm-up does not end a drain"
        );
        assert_eq!(r.undrain().to, Readiness::Ready);
        let cold = SharedReadiness::new();
        cold.drain();
        assert_eq!(cold.undrain().to, Readiness::Starting);
        // Draining twice changes nothing the second time.
        assert!(r.drain().changed());
        assert!(!r.drain().changed());
        assert!(r.state().leaving());
    }

    #[test]
    fn stopping_is_final() {
        let r = SharedReadiness::new();
        r.warm();
        r.drain();
        let t = r.stop();
        assert_eq!((t.from, t.to), (Readiness::Draining, Readiness::Stopping));
        assert!(!r.undrain().changed());
        assert!(!r.drain().changed());
        assert!(!r.warm().changed());
        assert_eq!(r.state(), Readiness::Stopping);
        assert!(r.state().leaving() && !r.state().accepting());
        assert!(!r.stop().changed());
    }

    #[test]
    fn clones_share_one_state_across_threads() {
        let r = SharedReadiness::new();
        let seen = r.clone();
        std::thread::spawn(move || {
            seen.warm();
            seen.drain();
        })
        .join()
        .unwrap();
        assert_eq!(r.state(), Readiness::Draining);
    }

    #[test]
    fn names_are_the_documented_ones() {
        let names: Vec<&str> = Readiness::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(names, ["starting", "ready", "draining", "stopping"]);
    }
}

//! Readiness on the control thread: when warm-up ends, and what a signal does to `/ready` and
//! to the control loop.
//!
//! The state itself is [`SharedReadiness`] (shared with every shard, which answers `/ready`
//! and `POST /admin/drain|undrain` from it). Here: warm-up ends when the first backend has
//! listed its tools, or at once with no backend; SIGUSR2 drains; the first SIGTERM or SIGINT
//! flips to `stopping` and, with `server.drain_grace_ms` > 0, lets the control loop serve on
//! for that long before the shutdown of `control::shutdown` starts; a second one (or the
//! stdio client closing stdin) stops at once.

use std::time::{Duration, Instant};

use only1mcp_shards::catalog::BackendState;
use only1mcp_shards::readiness::{Readiness, SharedReadiness};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR2};

use super::world::World;

/// The signals the control thread listens to.
pub const SIGNALS: [i32; 4] = [SIGINT, SIGTERM, SIGHUP, SIGUSR2];

/// What the control loop does after a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Reload the config (SIGHUP).
    Reload,
    /// Serve on (SIGUSR2: drained).
    Serve,
    /// Serve on until then, then shut down (the drain grace).
    StopAt(Instant),
    /// Shut down now.
    StopNow,
}

/// What `signal` does (0: the stdio client closed stdin). `grace` is `server.drain_grace_ms`
/// (zero for the stdio front, which no balancer sits in front of); `stopping_at` is the end
/// of a grace already running.
pub fn on_signal(
    signal: i32,
    readiness: &SharedReadiness,
    grace: Duration,
    stopping_at: Option<Instant>,
    now: Instant,
) -> Step {
    match signal {
        SIGHUP => Step::Reload,
        SIGUSR2 => {
            let t = readiness.drain();
            if t.changed() {
                tracing::info!(
                    from = t.from.as_str(),
                    "SIGUSR2: draining; /ready answers 503, sessions and calls go on (POST /admin/undrain takes new sessions again)"
                );
            } else {
                tracing::info!(state = t.to.as_str(), "SIGUSR2: already {}", t.to.as_str());
            }
            Step::Serve
        }
        SIGTERM | SIGINT if stopping_at.is_some() => {
            tracing::info!(signal, "second shutdown signal: stopping now");
            Step::StopNow
        }
        SIGTERM | SIGINT => {
            readiness.stop();
            if grace.is_zero() {
                tracing::info!(signal, "shutdown requested: draining");
                return Step::StopNow;
            }
            tracing::info!(
                signal,
                grace_ms = grace.as_millis() as u64,
                "shutdown requested: /ready answers 503; serving on for server.drain_grace_ms, then draining (a second signal stops now)"
            );
            Step::StopAt(now + grace)
        }
        _ => {
            readiness.stop();
            Step::StopNow
        }
    }
}

/// Ends warm-up once the first backend is ready, or at once when none is configured.
pub fn warm_if_serving(world: &World, readiness: &SharedReadiness) {
    let serving = world.specs.is_empty()
        || world
            .found
            .iter()
            .any(|(state, _)| *state == BackendState::Ready);
    if serving && readiness.warm().changed() {
        tracing::info!("ready: /ready answers 200");
    }
}

/// systemd's `STATUS=`: what is served, and the readiness when it is not plain ready.
pub fn status(readiness: &SharedReadiness, world: &World) -> String {
    match readiness.state() {
        Readiness::Ready => world.summary(),
        other => format!("{}; {}", other.as_str(), world.summary()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(2);

    fn warm() -> SharedReadiness {
        let r = SharedReadiness::new();
        r.warm();
        r
    }

    fn world(text: &str) -> World {
        let cfg = only1mcp_shards::config::parse_str(text, "t.toml").unwrap();
        let specs = crate::control::backend_specs(&cfg).unwrap();
        World::new(
            std::sync::Arc::new(cfg),
            specs,
            only1mcp_shards::cluster::SharedCluster::solo(),
        )
    }

    #[test]
    fn warm_up_ends_with_the_first_ready_backend_or_at_once_without_one() {
        let r = SharedReadiness::new();
        warm_if_serving(&world(""), &r);
        assert_eq!(r.state(), Readiness::Ready, "no backend: ready once up");

        let two = "[[servers]]\nid = \"a\"\ntransport = \"stdio\"\ncommand = \"x\"\n\
                   [[servers]]\nid = \"b\"\ntransport = \"stdio\"\ncommand = \"y\"\n";
        let mut w = world(two);
        let r = SharedReadiness::new();
        warm_if_serving(&w, &r);
        assert_eq!(r.state(), Readiness::Starting);
        w.found[0].0 = BackendState::Down("no answer".into());
        warm_if_serving(&w, &r);
        assert_eq!(
            r.state(),
            Readiness::Starting,
            "a down backend is not ready"
        );
        w.found[1].0 = BackendState::Ready;
        warm_if_serving(&w, &r);
        assert_eq!(r.state(), Readiness::Ready, "one of two is enough");
        w.found[1].0 = BackendState::Down("gone".into());
        warm_if_serving(&w, &r);
        assert_eq!(r.state(), Readiness::Ready, "warm-up is over for good");
    }

    #[test]
    fn sigterm_with_a_grace_stops_later_and_a_second_one_now() {
        let r = warm();
        let now = Instant::now();
        let step = on_signal(SIGTERM, &r, GRACE, None, now);
        assert_eq!(step, Step::StopAt(now + GRACE));
        assert_eq!(r.state(), Readiness::Stopping, "/ready flips first");
        assert_eq!(
            on_signal(SIGINT, &r, GRACE, Some(now + GRACE), now),
            Step::StopNow
        );
    }

    #[test]
    fn no_grace_or_stdin_closed_stops_now() {
        let r = warm();
        let now = Instant::now();
        assert_eq!(
            on_signal(SIGINT, &r, Duration::ZERO, None, now),
            Step::StopNow
        );
        assert_eq!(r.state(), Readiness::Stopping);
        let r = warm();
        assert_eq!(on_signal(0, &r, GRACE, None, now), Step::StopNow);
        assert_eq!(r.state(), Readiness::Stopping);
    }

    #[test]
    fn sigusr2_drains_without_stopping_and_sighup_reloads() {
        let r = warm();
        let now = Instant::now();
        assert_eq!(on_signal(SIGUSR2, &r, GRACE, None, now), Step::Serve);
        assert_eq!(r.state(), Readiness::Draining);
        assert_eq!(on_signal(SIGUSR2, &r, GRACE, None, now), Step::Serve);
        assert_eq!(r.state(), Readiness::Draining);
        assert_eq!(on_signal(SIGHUP, &r, GRACE, None, now), Step::Reload);
        assert_eq!(r.state(), Readiness::Draining, "a reload keeps the drain");
        // SIGTERM while drained: stopping, with the grace.
        assert_eq!(
            on_signal(SIGTERM, &r, GRACE, None, now),
            Step::StopAt(now + GRACE)
        );
        assert_eq!(on_signal(SIGUSR2, &r, GRACE, Some(now), now), Step::Serve);
        assert_eq!(
            r.state(),
            Readiness::Stopping,
            "a drain never ends a shutdown"
        );
    }
}

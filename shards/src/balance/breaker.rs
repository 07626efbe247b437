//! A per-replica circuit breaker (shard-local).
//!
//! Closed: calls flow. It opens after `failures` consecutive failures, or when at least
//! `rate` of the last `window` calls failed (the rate needs a full window, so two early
//! errors never open it). Open: calls are refused at once (the balancer skips the replica)
//! until `cooldown` passed. Half-open: up to `trials` trial calls are let through; the first
//! success closes it, a failure opens it again for another cool-down.
//!
//! Every transition is logged (server, replica, cause) and counted; the counters and the
//! state are what the metrics report.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// Breaker settings of one backend (from `breaker_*` in its config).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerSpec {
    /// Consecutive failures that open it.
    pub failures: u32,
    /// Failure ratio over the last `window` calls that opens it (`None`: off).
    pub rate: Option<f32>,
    /// Calls the rate is measured over (at most 64).
    pub window: u32,
    /// Open-state cool-down.
    pub cooldown: Duration,
    /// Trial calls let through while half-open.
    pub trials: u32,
}

impl Default for BreakerSpec {
    fn default() -> Self {
        BreakerSpec {
            failures: 5,
            rate: None,
            window: 20,
            cooldown: Duration::from_secs(10),
            trials: 1,
        }
    }
}

/// Breaker state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls flow.
    Closed,
    /// Calls are refused until the cool-down ends.
    Open,
    /// A bounded number of trial calls may pass.
    HalfOpen,
}

impl BreakerState {
    /// The metrics/log name.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// One replica's breaker on one shard.
#[derive(Debug)]
pub struct LocalBreaker {
    spec: BreakerSpec,
    /// `server` and replica, for the logs.
    label: String,
    state: Cell<BreakerState>,
    consecutive: Cell<u32>,
    /// The last `window` outcomes, newest in bit 0 (1 = failure), and how many are valid.
    history: Cell<u64>,
    seen: Cell<u32>,
    opened_at: Cell<Option<Instant>>,
    trials: Cell<u32>,
    opened_total: Cell<u64>,
}

impl LocalBreaker {
    /// A closed breaker; `label` names the server and replica in logs.
    pub fn new(spec: BreakerSpec, label: String) -> Self {
        let spec = BreakerSpec {
            failures: spec.failures.max(1),
            window: spec.window.clamp(1, 64),
            trials: spec.trials.max(1),
            ..spec
        };
        LocalBreaker {
            spec,
            label,
            state: Cell::new(BreakerState::Closed),
            consecutive: Cell::new(0),
            history: Cell::new(0),
            seen: Cell::new(0),
            opened_at: Cell::new(None),
            trials: Cell::new(0),
            opened_total: Cell::new(0),
        }
    }

    /// The state now (an open breaker whose cool-down ended reads as half-open).
    pub fn state(&self, now: Instant) -> BreakerState {
        if self.state.get() == BreakerState::Open
            && self
                .opened_at
                .get()
                .is_some_and(|t| now.duration_since(t) >= self.spec.cooldown)
        {
            self.state.set(BreakerState::HalfOpen);
            self.trials.set(0);
            tracing::info!(replica = %self.label, "circuit breaker half-open: letting {} trial call(s) through", self.spec.trials);
        }
        self.state.get()
    }

    /// How many times it opened since start.
    pub fn opened_total(&self) -> u64 {
        self.opened_total.get()
    }

    /// May a call go to this replica now? (Counts half-open trials.)
    pub fn allow(&self, now: Instant) -> bool {
        match self.state(now) {
            BreakerState::Closed => true,
            BreakerState::Open => false,
            BreakerState::HalfOpen => {
                if self.trials.get() < self.spec.trials {
                    self.trials.set(self.trials.get() + 1);
                    true
                } else {
                    false
                }
            }
        }
    }

    /// Would a call be allowed (without taking a half-open trial)?
    pub fn usable(&self, now: Instant) -> bool {
        match self.state(now) {
            BreakerState::Closed => true,
            BreakerState::Open => false,
            BreakerState::HalfOpen => self.trials.get() < self.spec.trials,
        }
    }

    fn push(&self, failed: bool) {
        let mask = if self.spec.window == 64 {
            u64::MAX
        } else {
            (1u64 << self.spec.window) - 1
        };
        self.history
            .set(((self.history.get() << 1) | failed as u64) & mask);
        self.seen.set((self.seen.get() + 1).min(self.spec.window));
    }

    /// A call succeeded: closes the breaker.
    pub fn success(&self) {
        self.push(false);
        self.consecutive.set(0);
        if self.state.get() != BreakerState::Closed {
            tracing::info!(replica = %self.label, "circuit breaker closed: a trial call succeeded");
            self.state.set(BreakerState::Closed);
            self.history.set(0);
            self.seen.set(0);
        }
    }

    /// A call failed (unavailable, timed out, broke the protocol).
    pub fn failure(&self, now: Instant) {
        self.push(true);
        let f = self.consecutive.get() + 1;
        self.consecutive.set(f);
        let cause = match self.state.get() {
            BreakerState::HalfOpen => Some("a trial call failed".to_string()),
            BreakerState::Open => None,
            BreakerState::Closed if f >= self.spec.failures => {
                Some(format!("{f} consecutive failures"))
            }
            BreakerState::Closed => self.spec.rate.and_then(|rate| {
                let failed = self.history.get().count_ones();
                let seen = self.seen.get();
                (seen >= self.spec.window && failed as f32 >= rate * seen as f32)
                    .then(|| format!("{failed} of the last {seen} calls failed"))
            }),
        };
        if let Some(cause) = cause {
            tracing::warn!(replica = %self.label, cause = %cause, cooldown_ms = self.spec.cooldown.as_millis() as u64, "circuit breaker opened");
            self.state.set(BreakerState::Open);
            self.opened_at.set(Some(now));
            self.opened_total.set(self.opened_total.get() + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(failures: u32, cooldown_ms: u64, trials: u32) -> LocalBreaker {
        LocalBreaker::new(
            BreakerSpec {
                failures,
                cooldown: Duration::from_millis(cooldown_ms),
                trials,
                ..BreakerSpec::default()
            },
            "test".into(),
        )
    }

    #[test]
    fn opens_after_the_threshold_and_recovers_through_half_open() {
        let b = breaker(3, 100, 1);
        let t0 = Instant::now();
        b.failure(t0);
        b.failure(t0);
        assert!(b.allow(t0), "below the threshold");
        b.failure(t0);
        assert_eq!(b.state(t0), BreakerState::Open);
        assert!(
            !b.allow(t0 + Duration::from_millis(50)),
            "open during the cool-down"
        );
        let later = t0 + Duration::from_millis(150);
        assert_eq!(b.state(later), BreakerState::HalfOpen);
        assert!(b.allow(later), "one trial");
        assert!(!b.allow(later), "trials are bounded");
        b.failure(later);
        assert_eq!(b.state(later), BreakerState::Open, "a failed trial reopens");
        let much_later = later + Duration::from_millis(150);
        assert!(b.allow(much_later));
        b.success();
        assert_eq!(b.state(much_later), BreakerState::Closed);
        assert!(b.allow(much_later));
    }

    #[test]
    fn a_success_resets_the_count() {
        let b = breaker(2, 1000, 1);
        let t = Instant::now();
        b.failure(t);
        b.success();
        b.failure(t);
        assert_eq!(b.state(t), BreakerState::Closed);
    }

    #[test]
    fn opens_on_a_failure_rate_only_over_a_full_window() {
        let b = LocalBreaker::new(
            BreakerSpec {
                failures: 100,
                rate: Some(0.5),
                window: 10,
                ..BreakerSpec::default()
            },
            "test".into(),
        );
        let t = Instant::now();
        // Alternating failures never reach 100 in a row, but half of the calls fail.
        for _ in 0..4 {
            b.failure(t);
            b.success();
        }
        assert_eq!(
            b.state(t),
            BreakerState::Closed,
            "window not full yet (8 of 10)"
        );
        b.failure(t);
        assert_eq!(
            b.state(t),
            BreakerState::Closed,
            "4 of 9 failed, window not full"
        );
        b.failure(t);
        assert_eq!(b.state(t), BreakerState::Open, "6 of 10 failed");
        assert_eq!(b.opened_total(), 1);
    }

    #[test]
    fn a_rate_below_the_threshold_keeps_it_closed() {
        let b = LocalBreaker::new(
            BreakerSpec {
                failures: 100,
                rate: Some(0.5),
                window: 10,
                ..BreakerSpec::default()
            },
            "test".into(),
        );
        let t = Instant::now();
        for _ in 0..50 {
            b.failure(t);
            b.success();
            b.success();
        }
        assert_eq!(
            b.state(t),
            BreakerState::Closed,
            "a third failing is under half"
        );
    }

    #[test]
    fn half_open_lets_exactly_the_configured_trials_through() {
        let b = breaker(1, 10, 3);
        let t0 = Instant::now();
        b.failure(t0);
        let later = t0 + Duration::from_millis(20);
        assert_eq!(b.state(later), BreakerState::HalfOpen);
        assert!(b.allow(later) && b.allow(later) && b.allow(later));
        assert!(!b.usable(later), "a fourth is refused");
        assert!(!b.allow(later));
        b.success();
        assert!(b.allow(later), "closed again");
    }
}

//! A per-replica circuit breaker (shard-local).
//!
//! Closed: calls flow; `failure_threshold` consecutive failures open it. Open: calls are
//! refused at once (the balancer skips the replica) until `cooldown` passed. Half-open: up to
//! `trial_limit` trial calls are let through; a success closes it, a failure opens it again.

use std::cell::Cell;
use std::time::{Duration, Instant};

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

/// One replica's breaker on one shard.
#[derive(Debug)]
pub struct LocalBreaker {
    failure_threshold: u32,
    cooldown: Duration,
    trial_limit: u32,
    state: Cell<BreakerState>,
    failures: Cell<u32>,
    opened_at: Cell<Option<Instant>>,
    trials: Cell<u32>,
}

impl LocalBreaker {
    /// A closed breaker.
    pub fn new(failure_threshold: u32, cooldown: Duration, trial_limit: u32) -> Self {
        LocalBreaker {
            failure_threshold: failure_threshold.max(1),
            cooldown,
            trial_limit: trial_limit.max(1),
            state: Cell::new(BreakerState::Closed),
            failures: Cell::new(0),
            opened_at: Cell::new(None),
            trials: Cell::new(0),
        }
    }

    /// The state now (an open breaker whose cool-down ended reads as half-open).
    pub fn state(&self, now: Instant) -> BreakerState {
        if self.state.get() == BreakerState::Open
            && self
                .opened_at
                .get()
                .is_some_and(|t| now.duration_since(t) >= self.cooldown)
        {
            self.state.set(BreakerState::HalfOpen);
            self.trials.set(0);
        }
        self.state.get()
    }

    /// May a call go to this replica now? (Counts half-open trials.)
    pub fn allow(&self, now: Instant) -> bool {
        match self.state(now) {
            BreakerState::Closed => true,
            BreakerState::Open => false,
            BreakerState::HalfOpen => {
                if self.trials.get() < self.trial_limit {
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
            BreakerState::HalfOpen => self.trials.get() < self.trial_limit,
        }
    }

    /// A call succeeded: closes the breaker.
    pub fn success(&self) {
        if self.state.get() != BreakerState::Closed {
            tracing::info!("circuit breaker closed");
        }
        self.state.set(BreakerState::Closed);
        self.failures.set(0);
    }

    /// A call failed (unavailable, timed out, broke the protocol).
    pub fn failure(&self, now: Instant) {
        let f = self.failures.get() + 1;
        self.failures.set(f);
        let reopen = self.state.get() == BreakerState::HalfOpen;
        if reopen || (self.state.get() == BreakerState::Closed && f >= self.failure_threshold) {
            tracing::warn!(failures = f, "circuit breaker opened");
            self.state.set(BreakerState::Open);
            self.opened_at.set(Some(now));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_and_recovers_through_half_open() {
        let b = LocalBreaker::new(3, Duration::from_millis(100), 1);
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
        let b = LocalBreaker::new(2, Duration::from_secs(1), 1);
        let t = Instant::now();
        b.failure(t);
        b.success();
        b.failure(t);
        assert_eq!(b.state(t), BreakerState::Closed);
    }
}

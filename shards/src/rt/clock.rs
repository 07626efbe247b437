//! The shard's clock: one reading of the OS clock per event a request needs the time at,
//! shared by everything that follows it on the same thread.
//!
//! A proxied call used to read the clock about seventeen times on its shard (its deadline,
//! its cap, the balancer's breaker check, three latency starts and three ends, the session
//! touch, and one inside every runtime timer made with a duration). Each read is a vDSO call
//! of 20-50 ns, more on a VM whose clock source is not vDSO-capable. nginx keeps one cached
//! time per event-loop turn for the same reason. Here a proxied call reads it at six events,
//! each of which may follow a wait of any length with no other reading on the shard:
//!
//! 1. the request's head has arrived (`http/request.rs`: its read deadline, the watch);
//! 2. its backend call starts (`route/forward.rs`: deadline and cap; forward also runs in
//!    tasks woken by timers, so it cannot take the arrival's);
//! 3. the backend has answered (`upstream/http/choose.rs`, the stdio arms of
//!    `upstream/mod.rs`: latency, breaker);
//! 4. the request is done (`route/observe.rs`: the request's latency);
//! 5. its answer is about to be written (`front/http.rs`: the write's stall);
//! 6. the connection parks for the next request (`http/request.rs`: the idle timeout).
//!
//! Everything between two of them takes the latest reading, and timers are set at an instant
//! (a monoio timer made with a duration reads the clock itself):
//!
//! - [`now`] reads the OS clock and remembers the reading.
//! - [`recent`] is the latest reading on this thread, without a read: never later than the
//!   real time, so a deadline or an "already past" check computed from it errs late, never
//!   early, only as long as the reading is one of the request's own events above.
//! - [`since`] measures from a start taken on this thread: with the latest reading when
//!   something read the clock after the start, with a fresh read otherwise. Used right after
//!   an event that read the clock (a backend call's end), where the latest reading is it.
//!
//! The readings are per thread (`thread_local!`, a `Cell`): shards never share them, and a
//! thread that never called [`now`] reads the OS clock on its first [`recent`]. A message
//! from another shard is an event of its own (`shard/mod.rs` reads on each).

use std::cell::Cell;
use std::time::{Duration, Instant};

thread_local! {
    static LATEST: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Reads the OS clock and makes the reading this thread's latest.
#[inline]
pub fn now() -> Instant {
    let t = Instant::now();
    LATEST.with(|l| l.set(Some(t)));
    t
}

/// This thread's latest reading (see the module docs for when it may be used); reads the
/// clock when there was none yet.
#[inline]
pub fn recent() -> Instant {
    LATEST.with(|l| l.get()).unwrap_or_else(now)
}

/// Time since `start` (a reading of this thread): the latest reading when it is later than
/// `start`, else a fresh one.
#[inline]
pub fn since(start: Instant) -> Duration {
    let r = recent();
    if r > start {
        r - start
    } else {
        now().saturating_duration_since(start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_is_the_latest_reading_and_never_goes_back() {
        let a = now();
        assert_eq!(recent(), a, "no read: the latest reading");
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(recent(), a, "still no read");
        let b = now();
        assert!(b > a);
        assert_eq!(recent(), b);
    }

    #[test]
    fn since_reads_only_when_nothing_was_read_after_the_start() {
        let start = now();
        std::thread::sleep(Duration::from_millis(3));
        // Nothing read since the start: a fresh read, so the duration is true, not zero.
        let d = since(start);
        assert!(d >= Duration::from_millis(3), "{d:?}");
        // That read is now the latest; another since() without a read reuses it.
        let latest = recent();
        std::thread::sleep(Duration::from_millis(3));
        assert_eq!(since(start), latest - start);
    }

    #[test]
    fn each_thread_has_its_own_readings() {
        let here = now();
        std::thread::sleep(Duration::from_millis(2));
        let there = std::thread::spawn(|| {
            let first = recent();
            (first, recent())
        })
        .join()
        .unwrap();
        assert!(there.0 > here, "a new thread reads on its first recent()");
        assert_eq!(there.0, there.1);
        assert_eq!(recent(), here, "another thread's read is not this one's");
    }
}

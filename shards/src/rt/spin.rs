//! Idle spin: a shard that just read something keeps polling its ring for a few
//! microseconds before it parks (`server.idle_spin_us`, off by default).
//!
//! Parking costs a sleep in `io_uring_enter`/`epoll_wait` and a wake-up when the next
//! completion arrives; at low concurrency that is most of a call's CPU in a VM (the profile
//! in `docs/benchmarks.md`). While the spin task is runnable, monoio's loop does not park: it
//! submits and reaps completions without waiting, so an answer that arrives within the
//! window is taken without a sleep. The price is CPU burnt while nothing arrives.
//!
//! Bounds: a spin episode starts only on activity (a read that completed, [`touch`]), lasts
//! until `budget` passes with no new read, and at most `4 × budget` in all. After every
//! episode the task waits for the runtime to park once (a zero-length timer, which monoio
//! fires only from its park), so timers and cross-thread wake-ups are never starved by
//! back-to-back episodes, and an idle shard parks as before: an idle gateway spins not at all.
//!
//! monoio 0.2.4's non-waiting submit does not ask the kernel for events, so with
//! `defer_taskrun` (completions posted only on a waiting enter) a spin would see nothing:
//! config validation refuses the two together.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

thread_local! {
    static STATE: SpinState = const {
        SpinState {
            budget_us: Cell::new(0),
            running: Cell::new(false),
            reads: Cell::new(0),
            spins: Cell::new(0),
        }
    };
}

/// Plain cells only: no waker is kept here, because a thread-local outlives the runtime and
/// a monoio waker dropped after it aborts the thread.
struct SpinState {
    /// The spin window in microseconds; 0 = spinning is off on this thread.
    budget_us: Cell<u64>,
    /// An episode task is spawned and not finished.
    running: Cell<bool>,
    /// Reads completed on this thread while spinning is on.
    reads: Cell<u64>,
    /// Times an episode polled without parking (tests and bounds).
    spins: Cell<u64>,
}

/// Turns spinning on for this thread (a shard, at start) with a window of `budget`.
pub fn enable(budget: Duration) {
    let us = budget.as_micros().min(u64::MAX as u128) as u64;
    STATE.with(|s| s.budget_us.set(us));
}

/// Notes a completed read on this thread (called by [`crate::rt::io::read_more`]) and starts
/// a spin episode unless one runs. One thread-local test when spinning is off.
#[inline]
pub fn touch() {
    STATE.with(|s| {
        let us = s.budget_us.get();
        if us == 0 {
            return;
        }
        s.reads.set(s.reads.get().wrapping_add(1));
        if !s.running.get() {
            s.running.set(true);
            monoio::spawn(episode(Duration::from_micros(us)));
        }
    });
}

fn reads() -> u64 {
    STATE.with(|s| s.reads.get())
}

/// One episode: poll without parking until `budget` passes with no read (at most
/// `4 × budget`), then let the runtime park once (a zero-length timer fires only from its
/// park, with the other timers) before the next episode may start.
async fn episode(budget: Duration) {
    let _done = Done;
    let start = Instant::now();
    let mut last = start;
    let mut seen = reads();
    loop {
        YieldOnce(false).await;
        STATE.with(|s| s.spins.set(s.spins.get() + 1));
        let now = Instant::now();
        let r = reads();
        if r != seen {
            seen = r;
            last = now;
        }
        if episode_over(start, last, now, budget) {
            break;
        }
    }
    monoio::time::sleep(Duration::ZERO).await;
}

/// An episode ends when `budget` passed with no read, or `4 × budget` after it started
/// however busy the shard is (timers fire only once the runtime parks).
fn episode_over(start: Instant, last_read: Instant, now: Instant, budget: Duration) -> bool {
    now - last_read >= budget || now - start >= budget * 4
}

/// Marks the episode finished however it ends (also when the runtime drops it).
struct Done;

impl Drop for Done {
    fn drop(&mut self) {
        // try_with: the task may be dropped while the thread's locals are being destroyed.
        let _ = STATE.try_with(|s| s.running.set(false));
    }
}

/// Pending once with its task queued again: the runtime reaps completions without waiting
/// and comes back.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> monoio::Runtime<monoio::time::TimeDriver<monoio::LegacyDriver>> {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("runtime")
    }

    #[test]
    fn touch_without_a_spin_task_counts_nothing() {
        touch();
        touch();
        assert_eq!(reads(), 0);
    }

    #[test]
    fn an_episode_ends_after_a_quiet_window_or_four_windows_however_busy() {
        let b = Duration::from_micros(100);
        let t0 = Instant::now();
        let at = |us| t0 + Duration::from_micros(us);
        assert!(!episode_over(t0, at(50), at(60), b), "read 10 µs ago");
        assert!(episode_over(t0, at(50), at(150), b), "quiet for a window");
        assert!(
            !episode_over(t0, at(390), at(399), b),
            "busy, inside four windows"
        );
        assert!(
            episode_over(t0, at(400), at(400), b),
            "busy, but four windows long"
        );
    }

    #[test]
    fn timers_fire_on_time_while_reads_never_stop() {
        use std::io::Write;
        // A peer writes a byte every ~50 µs for up to 2 s, inside the 1 ms window: reads keep
        // arriving while the shard spins, and the 20 ms timer must still fire on time.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let writer = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(2) {
                if s.write_all(b"x").is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_micros(50));
            }
        });
        let waited = rt().block_on(async {
            enable(Duration::from_micros(1000));
            let mut stream = monoio::net::TcpStream::connect(addr).await.unwrap();
            monoio::spawn(async move {
                let mut buf = Vec::with_capacity(64);
                loop {
                    let (r, b) = crate::rt::io::read_more(&mut stream, buf, 64).await;
                    buf = b;
                    buf.clear();
                    if !matches!(r, Ok(n) if n > 0) {
                        break;
                    }
                }
            });
            let t0 = Instant::now();
            monoio::time::sleep(Duration::from_millis(20)).await;
            let waited = t0.elapsed();
            assert!(reads() > 0, "the reads were seen");
            assert!(STATE.with(|s| s.spins.get()) > 0, "and spun on");
            waited
        });
        writer.join().unwrap();
        assert!(
            waited < Duration::from_millis(500),
            "timer late: {waited:?}"
        );
    }

    #[test]
    fn an_idle_shard_spins_one_bounded_episode_then_waits_without_polling() {
        rt().block_on(async {
            enable(Duration::from_micros(100));
            let spins = || STATE.with(|s| s.spins.get());
            monoio::time::sleep(Duration::from_millis(5)).await;
            assert_eq!(spins(), 0, "no activity, no spin");
            touch();
            monoio::time::sleep(Duration::from_millis(5)).await;
            let after_episode = spins();
            assert!(after_episode > 0, "a read starts an episode");
            monoio::time::sleep(Duration::from_millis(30)).await;
            assert_eq!(
                spins(),
                after_episode,
                "the episode ended and nothing spins while idle"
            );
            STATE.with(|s| assert!(!s.running.get(), "no episode left running"));
        });
    }
}

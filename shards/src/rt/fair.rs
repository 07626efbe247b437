//! Fairness between the tasks of one shard: a loop that reads from outside gives way.
//!
//! On the epoll driver a read from a socket or pipe that already holds bytes completes
//! without suspending, so a loop that reads, handles and reads again never returns to the
//! scheduler while its peer keeps sending: one flooding backend or pipelining client would
//! hold a whole shard, and the tasks that drain what it produces (the SSE writer whose bounded
//! queue cuts a slow client off) would never run. Every loop over outside input calls
//! [`yield_now`] after each read that returned bytes, or [`Budget::spend`] per request.
//!
//! A task cannot give way in monoio by waking itself: a task woken while it runs is put at
//! the *front* of the run queue and polled again at once. So a yield parks the task's waker
//! in a per-thread list and wakes one helper task (spawned on the first yield, one per
//! runtime), which is idle and so queued at the back; when it runs, after every task queued
//! before it, it wakes the parked tasks, which queue at the back in turn. No allocation per
//! yield (the list is reused). io_uring suspends on every read anyway, so on a thread whose
//! runtime is io_uring ([`runtime_started`]) a yield returns at once and costs nothing.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use super::DriverKind;

#[derive(Default)]
struct Parked {
    /// Tasks waiting for their turn to come round again.
    wakers: Vec<Waker>,
    /// The helper task, while it waits for work.
    helper: Option<Waker>,
    /// A helper task lives on this thread's runtime.
    spawned: bool,
}

thread_local! {
    static PARKED: RefCell<Parked> = RefCell::new(Parked::default());
    /// Yields are needed on this thread: its runtime is epoll. Off until a runtime says so
    /// (io_uring, and a runtime that never called [`runtime_started`], yield for nothing).
    static NEEDED: Cell<bool> = const { Cell::new(false) };
}

/// Called as a runtime starts on this thread, with its driver: on epoll, yields park the task
/// and a helper task of this runtime wakes them; on io_uring they return at once. A helper
/// left from an earlier runtime on this thread is dropped.
pub fn runtime_started(kind: DriverKind) {
    NEEDED.with(|n| n.set(kind == DriverKind::Epoll));
    let stale = PARKED.with(|p| {
        let mut p = p.borrow_mut();
        p.spawned = false;
        (std::mem::take(&mut p.wakers), p.helper.take())
    });
    // Dropped outside the borrow: a task's drop may borrow again.
    drop(stale);
}

/// Called as this thread's runtime ends: tasks still parked, and the helper, are forgotten
/// rather than dropped later, at thread exit, outside the runtime they belong to (the
/// process is stopping; their memory goes with it).
pub fn runtime_ended() {
    let parked = PARKED.with(|p| {
        let mut p = p.borrow_mut();
        p.spawned = false;
        (std::mem::take(&mut p.wakers), p.helper.take())
    });
    std::mem::forget(parked);
}

/// Returns to the scheduler once: the task runs again after the tasks already queued.
pub fn yield_now() -> YieldNow {
    YieldNow { parked: false }
}

/// The future of [`yield_now`].
#[must_use = "a yield does nothing unless awaited"]
pub struct YieldNow {
    parked: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.parked || !NEEDED.with(Cell::get) {
            return Poll::Ready(());
        }
        self.parked = true;
        let spawn = PARKED.with(|p| {
            let mut p = p.borrow_mut();
            p.wakers.push(cx.waker().clone());
            if let Some(h) = p.helper.take() {
                h.wake();
            }
            !std::mem::replace(&mut p.spawned, true)
        });
        if spawn {
            monoio::spawn(helper());
        }
        Poll::Pending
    }
}

/// Clears the thread's record of its helper when the helper goes (its runtime ended), so a
/// later runtime on the same thread spawns its own.
struct HelperGone;

impl Drop for HelperGone {
    fn drop(&mut self) {
        // `try_with`: at thread exit the list may be gone before the helper.
        let _ = PARKED.try_with(|p| {
            if let Ok(mut p) = p.try_borrow_mut() {
                p.spawned = false;
                p.helper = None;
            }
        });
    }
}

async fn helper() {
    let _gone = HelperGone;
    let mut woken = Vec::new();
    std::future::poll_fn(|cx| {
        PARKED.with(|p| {
            let mut p = p.borrow_mut();
            std::mem::swap(&mut p.wakers, &mut woken);
            p.helper = Some(cx.waker().clone());
        });
        // Woken outside the borrow: a waker may run code that yields again.
        for w in woken.drain(..) {
            w.wake();
        }
        Poll::<()>::Pending
    })
    .await;
}

/// Requests a connection may serve back to back before its task gives way.
pub const REQUESTS_PER_TURN: u32 = 16;

/// Counts units of work and gives way every `per_turn` of them.
#[derive(Debug)]
pub struct Budget {
    left: u32,
    per_turn: u32,
}

impl Budget {
    /// A budget of `per_turn` units (at least one) between yields.
    pub fn new(per_turn: u32) -> Self {
        let per_turn = per_turn.max(1);
        Budget {
            left: per_turn,
            per_turn,
        }
    }

    /// Spends one unit; yields when the turn's budget is used up.
    pub async fn spend(&mut self) {
        self.left -= 1;
        if self.left == 0 {
            self.left = self.per_turn;
            yield_now().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    fn epoll_runtime() -> monoio::Runtime<monoio::time::TimeDriver<monoio::LegacyDriver>> {
        runtime_started(DriverKind::Epoll);
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap()
    }

    /// Two tasks that never wait on I/O still take turns when they yield (a self-wake would
    /// not do it: monoio runs a task woken during its own poll again at once).
    #[test]
    fn yielding_tasks_interleave() {
        for _ in 0..2 {
            // Twice on one thread: the second runtime gets its own helper.
            epoll_runtime().block_on(async {
                let log = Rc::new(RefCell::new(String::new()));
                let l = log.clone();
                let other = monoio::spawn(async move {
                    for _ in 0..3 {
                        l.borrow_mut().push('b');
                        yield_now().await;
                    }
                });
                let l = log.clone();
                let main = monoio::spawn(async move {
                    for _ in 0..3 {
                        l.borrow_mut().push('a');
                        yield_now().await;
                    }
                });
                main.await;
                other.await;
                // Spawned first, `b` runs first; what matters is that they alternate (a
                // self-wake gives "bbbaaa").
                assert_eq!(*log.borrow(), "bababa");
            });
        }
    }

    #[test]
    fn a_budget_yields_once_per_turn() {
        epoll_runtime().block_on(async {
            let turns = Rc::new(Cell::new(0u32));
            let stop = Rc::new(Cell::new(false));
            let (t, s) = (turns.clone(), stop.clone());
            // Runs once per turn the worker gives away.
            let counter = monoio::spawn(async move {
                while !s.get() {
                    t.set(t.get() + 1);
                    yield_now().await;
                }
            });
            let worker = monoio::spawn(async move {
                let mut b = Budget::new(4);
                for _ in 0..12 {
                    b.spend().await;
                }
            });
            worker.await;
            stop.set(true);
            counter.await;
            // Three turns given away (after units 4, 8 and 12), and the counter's first run.
            assert!((3..=5).contains(&turns.get()), "{}", turns.get());
        });
    }

    #[test]
    fn on_io_uring_a_yield_is_free() {
        epoll_runtime().block_on(async {
            NEEDED.with(|n| n.set(false));
            // Completes on its first poll: no helper, nothing parked.
            yield_now().await;
            assert!(PARKED.with(|p| !p.borrow().spawned));
        });
    }
}

//! Keeping a call's timeout alive when its future moves to another task.
//!
//! A monoio timer keeps the waker of the first task that polled it (`StateCell::poll` stores
//! a waker only when none is stored). A backend call is started on the client's connection
//! task and may then be handed to another task: the task that keeps a 2025 client's call
//! running after its first event, or the task that holds a call parked on a 2026 client's
//! input. When the call's deadline passes, the timer wakes the connection task, not the task
//! that now owns the call, so the call would never see its own timeout and would hold its
//! backend slot and event sink until something else woke it.
//!
//! [`Rewake`] wraps the call: on the task that first polls it, it costs a waker clone and a
//! comparison per poll. Once polled from a different task, it sets a timer of its own (in
//! that task) for the call's deadline, and when it fires polls the call again, which then
//! sees its timer fired and ends with its timeout error.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::upstream::Deadline;

/// A call future that is woken at its deadline in whichever task polls it.
pub struct Rewake<F> {
    /// Structurally pinned: never moved out of a pinned `Rewake`.
    fut: F,
    deadline: Deadline,
    /// The waker of the task that polled last.
    waker: Option<Waker>,
    /// This task's own timer for the deadline (only after a move between tasks).
    nudge: Option<Pin<Box<monoio::time::Sleep>>>,
}

impl<F: Future> Rewake<F> {
    /// Wraps `fut`, whose own timeout is `deadline`.
    pub fn new(fut: F, deadline: Deadline) -> Self {
        Rewake {
            fut,
            deadline,
            waker: None,
            nudge: None,
        }
    }

    fn deadline(&self) -> Instant {
        self.deadline.when()
    }
}

impl<F: Future> Future for Rewake<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `fut` is pinned structurally: it is only ever used through this pinned
        // reference and never moved out; `Rewake` has no `Drop` and no `Unpin` of its own.
        let this = unsafe { self.get_unchecked_mut() };
        let fut = unsafe { Pin::new_unchecked(&mut this.fut) };
        if let Poll::Ready(r) = fut.poll(cx) {
            return Poll::Ready(r);
        }
        match &this.waker {
            None => this.waker = Some(cx.waker().clone()),
            Some(w) if w.will_wake(cx.waker()) => {}
            Some(_) => {
                // Moved to another task: the call's own timer may wake the old one.
                this.waker = Some(cx.waker().clone());
                this.nudge = None;
                let at = this.deadline();
                if at > Instant::now() {
                    // A millisecond late, so the call's own timer has fired by then.
                    let at = monoio::time::Instant::from_std(at + Duration::from_millis(1));
                    this.nudge = Some(Box::pin(monoio::time::sleep_until(at)));
                }
            }
        }
        if let Some(n) = &mut this.nudge {
            if n.as_mut().poll(cx).is_ready() {
                this.nudge = None;
                // Poll the call again now: its timer has fired (or the deadline moved on
                // and the call set a new timer, in this task).
                cx.waker().wake_by_ref();
            }
        }
        Poll::Pending
    }
}

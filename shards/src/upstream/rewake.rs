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
//! [`Rewake`] wraps the call. When it is polled from another task than the last poll's, it
//! sets a timer of its own (in the new task) for the call's deadline, and when that fires
//! polls the call again, which then sees its timer fired and ends with its timeout error.
//! The task is told apart by the waker's data pointer (monoio's task header, the same for
//! the borrowed waker a task is polled with and for its clones), compared per poll: no
//! waker clone. (`Waker::will_wake` also compares vtable addresses, which differ between
//! the borrowed waker and a clone, so with it every poll looked like a move and set a
//! timer.) Code that hands the call over may also say so ([`Rewake::moved`]), which covers
//! a waker that is not a task's own.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::upstream::Deadline;

/// A call future that is woken at its deadline in whichever task polls it. `F` may be
/// unsized (`dyn Future`): the call is last, so a boxed `Rewake` coerces to one.
pub struct Rewake<F: ?Sized> {
    deadline: Deadline,
    /// Handed to another task since its last poll.
    moved: bool,
    /// The data pointer of the waker of the last poll (its task): compared, never
    /// dereferenced.
    task: *const (),
    /// This task's own timer for the deadline (only after a move). Boxed: a timer is large,
    /// and inline it would grow every call's future, which most calls never need.
    nudge: Option<Pin<Box<monoio::time::Sleep>>>,
    /// Structurally pinned: never moved out of a pinned `Rewake`.
    fut: F,
}

impl<F: Future> Rewake<F> {
    /// Wraps `fut`, whose own timeout is `deadline`.
    pub fn new(fut: F, deadline: Deadline) -> Self {
        Rewake {
            deadline,
            moved: false,
            task: std::ptr::null(),
            nudge: None,
            fut,
        }
    }
}

impl<F: Future + ?Sized> Rewake<F> {
    /// The call is being handed to another task: its next poll sets the deadline timer
    /// there.
    pub fn moved(self: Pin<&mut Self>) {
        // SAFETY: `moved` is not structurally pinned; nothing is moved out.
        unsafe { self.get_unchecked_mut() }.moved = true;
    }
}

impl<F: Future + ?Sized> Future for Rewake<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `fut` is pinned structurally: only ever used through this pinned reference
        // and never moved out; `Rewake` has no `Drop` and no `Unpin` of its own.
        let this = unsafe { self.get_unchecked_mut() };
        let fut = unsafe { Pin::new_unchecked(&mut this.fut) };
        if let Poll::Ready(r) = fut.poll(cx) {
            return Poll::Ready(r);
        }
        let task = cx.waker().data();
        let other_task = !this.task.is_null() && this.task != task;
        this.task = task;
        if std::mem::take(&mut this.moved) || other_task {
            // A millisecond late, so the call's own timer has fired by then. A timer at a
            // time already past fires at once: no clock read to check it first.
            let at = this.deadline.when() + Duration::from_millis(1);
            let at = monoio::time::Instant::from_std(at);
            this.nudge = Some(Box::pin(monoio::time::sleep_until(at)));
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    use crate::rt::test_runtime as rt;

    type Call = Pin<Box<Rewake<dyn Future<Output = Result<(), ()>>>>>;

    /// A call that never answers, bounded by its deadline the way the transports bound it.
    fn call(d: &Deadline) -> Call {
        let inner = d.clone();
        Box::pin(Rewake::new(
            async move {
                crate::upstream::within(
                    Duration::from_secs(60),
                    Some(&inner),
                    std::future::pending::<()>(),
                )
                .await
            },
            d.clone(),
        ))
    }

    /// Polls `c` once in a task of its own, which then ends without it.
    async fn poll_once_elsewhere(c: Call) -> Call {
        // In a `Some`: a future that returned a future would be taken for a mistake.
        monoio::spawn(async move {
            let mut c = c;
            let first = std::future::poll_fn(|cx| Poll::Ready(c.as_mut().poll(cx))).await;
            assert!(first.is_pending());
            Some(c)
        })
        .await
        .expect("the task gives the call back")
    }

    #[test]
    fn a_call_moved_to_another_task_still_ends_at_its_deadline() {
        rt().block_on(async {
            let start = Instant::now();
            let d = Deadline::at(start + Duration::from_millis(100));
            let mut c = poll_once_elsewhere(call(&d)).await;
            c.as_mut().moved();
            // The first task is gone: only the nudge set in this one can wake it.
            let r = monoio::time::timeout(Duration::from_secs(5), c).await;
            assert_eq!(r, Ok(Err(())), "ended by its own deadline");
            // Not by the outer timeout (which polls it too, once, at 5 s).
            let took = start.elapsed();
            assert!(
                took >= Duration::from_millis(100) && took < Duration::from_secs(4),
                "{took:?}"
            );
        });
    }

    #[test]
    fn a_moved_call_whose_deadline_was_pushed_back_ends_at_the_new_one() {
        rt().block_on(async {
            let start = Instant::now();
            let d = Deadline::at(start + Duration::from_millis(50));
            let mut c = poll_once_elsewhere(call(&d)).await;
            d.push_back(start + Duration::from_millis(200));
            c.as_mut().moved();
            let r = monoio::time::timeout(Duration::from_secs(5), c).await;
            assert_eq!(r, Ok(Err(())));
            let took = start.elapsed();
            assert!(
                took >= Duration::from_millis(200) && took < Duration::from_secs(4),
                "{took:?}"
            );
        });
    }

    #[test]
    fn a_call_moved_without_notice_is_caught_by_its_new_task() {
        // A batch hands its unfinished elements, calls inside, to another task wholesale:
        // nobody calls `moved` there, the task change itself must be seen.
        rt().block_on(async {
            let start = Instant::now();
            let d = Deadline::at(start + Duration::from_millis(100));
            let c = poll_once_elsewhere(call(&d)).await;
            let r = monoio::time::timeout(Duration::from_secs(5), c).await;
            assert_eq!(r, Ok(Err(())));
            let took = start.elapsed();
            assert!(
                took >= Duration::from_millis(100) && took < Duration::from_secs(4),
                "{took:?}"
            );
        });
    }

    #[test]
    fn without_rewake_a_call_moved_to_another_task_is_not_woken() {
        // Why `Rewake` exists: the same call unwrapped is never woken at its deadline.
        rt().block_on(async {
            let d = Deadline::at(Instant::now() + Duration::from_millis(30));
            let inner = d.clone();
            let c: Pin<Box<dyn Future<Output = Result<(), ()>>>> = Box::pin(async move {
                crate::upstream::within(
                    Duration::from_secs(60),
                    Some(&inner),
                    std::future::pending::<()>(),
                )
                .await
            });
            let c = monoio::spawn(async move {
                let mut c = c;
                let first = std::future::poll_fn(|cx| Poll::Ready(c.as_mut().poll(cx))).await;
                assert!(first.is_pending());
                Some(c)
            })
            .await
            .expect("the task gives the call back");
            let t = Instant::now();
            // Ended only when the outer timeout polls it (it polls the inner future first).
            let _ = monoio::time::timeout(Duration::from_millis(400), c).await;
            assert!(
                t.elapsed() >= Duration::from_millis(390),
                "{:?}",
                t.elapsed()
            );
        });
    }
}

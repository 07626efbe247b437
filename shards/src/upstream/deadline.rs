//! A call's time limits: the movable deadline that progress pushes back (up to the server's
//! `max_timeout_ms`), shared with the caller and with an owner shard the call may cross to,
//! and the client's cancellation signal. Kept apart from the transports, which all wait on
//! them the same way.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::upstream::link::{CancelRx, Deadline};

/// A deadline `after` from now (a new call link: `link.rs`).
pub fn deadline_in(after: Duration) -> Deadline {
    Deadline::at(std::time::Instant::now() + after)
}

/// Moves `d` to `after` from now, but never past `cap`.
pub fn extend_deadline(d: &Deadline, after: Duration, cap: std::time::Instant) {
    d.push_back((std::time::Instant::now() + after).min(cap));
}

/// Runs `fut` until it ends or the call's deadline passes (`Err(())`): a fixed `timeout`, or
/// the movable deadline re-read each time it is reached.
///
/// A future of its own rather than an `async fn`: the call's future is held once, next to
/// one timer. (As an `async fn` it held the future three times, as the argument, pinned, and
/// inside a `timeout`, 4.3 KiB of state for a 1.7 KiB call, copied with every call future.)
pub fn within<F: Future>(timeout: Duration, deadline: Option<&Deadline>, fut: F) -> Within<'_, F> {
    Within {
        fut,
        deadline,
        timeout,
        at: None,
        timer: None,
    }
}

/// See [`within`].
pub struct Within<'a, F> {
    /// Structurally pinned.
    fut: F,
    deadline: Option<&'a Deadline>,
    timeout: Duration,
    /// The deadline the timer is set for (movable deadlines only).
    at: Option<Instant>,
    /// Structurally pinned; set on the first poll that leaves the call pending.
    timer: Option<monoio::time::Sleep>,
}

impl<F: Future> Future for Within<'_, F> {
    type Output = Result<F::Output, ()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `fut` and `timer` are structurally pinned: never moved out of a pinned
        // `Within`; a timer is only dropped or replaced in place (the old value is dropped
        // where it lies), never moved. `Within` has no `Drop` and no `Unpin` of its own.
        let this = unsafe { self.get_unchecked_mut() };
        // A movable deadline already past before the call ever ran (a resend, a retry at
        // the end of its time): not sent at all. The shard's latest reading is never later
        // than now, so this never refuses a call in time.
        if this.timer.is_none() && this.at.is_none() {
            if let Some(d) = this.deadline {
                if d.when() <= crate::rt::clock::recent() {
                    return Poll::Ready(Err(()));
                }
            }
        }
        if let Poll::Ready(r) = unsafe { Pin::new_unchecked(&mut this.fut) }.poll(cx) {
            return Poll::Ready(Ok(r));
        }
        loop {
            let timer = match &mut this.timer {
                Some(t) => t,
                None => {
                    // A deadline already past fires at once: no clock read to check it.
                    let until = match this.deadline {
                        Some(d) => {
                            let at = d.when();
                            this.at = Some(at);
                            monoio::time::Instant::from_std(at)
                        }
                        None => monoio::time::Instant::now() + this.timeout,
                    };
                    this.timer.insert(monoio::time::sleep_until(until))
                }
            };
            if unsafe { Pin::new_unchecked(timer) }.poll(cx).is_pending() {
                return Poll::Pending;
            }
            // Reached: a movable deadline is read again (progress may have pushed it
            // back); unmoved, or fixed, the call is out of time.
            match (this.deadline, this.at) {
                (Some(d), Some(at)) if d.when() > at => this.timer = None,
                _ => return Poll::Ready(Err(())),
            }
        }
    }
}

/// Resolves when the client cancels (`cancel` fires); never when there is no signal or its
/// sender was dropped (the call finished normally).
pub async fn cancelled(cancel: Option<CancelRx>) {
    match cancel {
        Some(rx) => std::future::poll_fn(|cx| rx.poll_cancelled(cx)).await,
        None => std::future::pending::<()>().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::rt::test_runtime as rt;

    #[test]
    fn progress_pushes_the_deadline_back_up_to_the_cap() {
        rt().block_on(async {
            let start = std::time::Instant::now();
            let d = deadline_in(Duration::from_millis(150));
            let cap = start + Duration::from_millis(400);
            let d2 = d.clone();
            // "Progress" every 100 ms keeps a 300 ms call alive past its 150 ms timeout.
            monoio::spawn(async move {
                for _ in 0..3 {
                    monoio::time::sleep(Duration::from_millis(100)).await;
                    extend_deadline(&d2, Duration::from_millis(150), cap);
                }
            });
            let r = within(
                Duration::from_millis(150),
                Some(&d),
                monoio::time::sleep(Duration::from_millis(300)),
            )
            .await;
            assert!(r.is_ok(), "extended by progress");
            // Without progress the same deadline expires; and the cap always wins.
            let d = deadline_in(Duration::from_millis(100));
            let r = within(
                Duration::from_millis(100),
                Some(&d),
                monoio::time::sleep(Duration::from_millis(300)),
            )
            .await;
            assert!(r.is_err());
            let d = deadline_in(Duration::from_millis(100));
            let cap = std::time::Instant::now() + Duration::from_millis(150);
            extend_deadline(&d, Duration::from_secs(10), cap);
            let t = std::time::Instant::now();
            let r = within(
                Duration::from_millis(100),
                Some(&d),
                monoio::time::sleep(Duration::from_secs(2)),
            )
            .await;
            assert!(
                r.is_err() && t.elapsed() < Duration::from_secs(1),
                "the cap bounds every extension"
            );
        });
    }
}

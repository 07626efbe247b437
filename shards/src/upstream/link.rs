//! What a caller and a running backend call share, in one allocation: the call's movable
//! deadline, the client's cancellation, and the queue of the call's related messages
//! (progress, logs, server-to-client requests).
//!
//! A proxied call used to carry three separate things for these (an `Arc` deadline, a
//! cancel oneshot and an unbounded event channel): four heap allocations per call before
//! the backend saw a byte. They have the same owner and the same life, so they live in one
//! [`SharedCallLink`], and the handles below are views of it, each with one job. The link is
//! `Send + Sync`: a stdio call crosses to the shard that owns the child, and its events
//! come back from there. Nothing in it locks: atomics, two [`AtomicWaker`]s and a
//! lock-free segment queue, which allocates only when the first event arrives.
//!
//! - [`Deadline`]: read and pushed back by whoever holds the call (`deadline.rs`).
//! - [`CancelTx`] / [`CancelRx`]: the client's `notifications/cancelled` fires the first;
//!   the transport waits on the second (`deadline::cancelled`).
//! - [`EventTx`] / [`EventRx`]: many senders (counted: the receiver ends when the last one
//!   is dropped and the queue is empty), one receiver (a send fails once it is gone).

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use atomic_waker::AtomicWaker;
use crossbeam_queue::SegQueue;

use crate::upstream::BackendEvent;

/// The shared state of one backend call (see the module docs). Reached only through the
/// handles.
#[derive(Debug)]
pub struct SharedCallLink {
    /// Nanoseconds since [`epoch`]; `u64::MAX` when the call has no movable deadline.
    deadline: AtomicU64,
    cancelled: AtomicBool,
    cancel_waker: AtomicWaker,
    events: SegQueue<BackendEvent>,
    events_waker: AtomicWaker,
    /// Live [`EventTx`] handles.
    senders: AtomicUsize,
    /// An [`EventRx`] was made and is not dropped yet.
    receiving: AtomicBool,
}

/// The process-wide origin of [`Deadline`] values.
pub fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn nanos_since_epoch(at: Instant) -> u64 {
    at.saturating_duration_since(epoch()).as_nanos() as u64
}

/// A call's movable deadline, shared with the caller (and with an owner shard the call may
/// cross to); also the way to the rest of the call's link.
#[derive(Debug, Clone)]
pub struct Deadline(Arc<SharedCallLink>);

impl Deadline {
    /// A link whose deadline is `at`.
    pub fn at(at: Instant) -> Deadline {
        Deadline::with_nanos(nanos_since_epoch(at))
    }

    /// A link with no deadline of its own (a listen, a resent round: what bounds them is
    /// their caller's), for its events and cancellation.
    pub fn none() -> Deadline {
        Deadline::with_nanos(u64::MAX)
    }

    fn with_nanos(n: u64) -> Deadline {
        Deadline(Arc::new(SharedCallLink {
            deadline: AtomicU64::new(n),
            cancelled: AtomicBool::new(false),
            cancel_waker: AtomicWaker::new(),
            events: SegQueue::new(),
            events_waker: AtomicWaker::new(),
            senders: AtomicUsize::new(0),
            receiving: AtomicBool::new(false),
        }))
    }

    /// When the call times out now (far in the future for [`Deadline::none`]).
    pub fn when(&self) -> Instant {
        let n = self.0.deadline.load(Ordering::Relaxed);
        epoch() + Duration::from_nanos(n.min(u64::MAX >> 2))
    }

    /// Moves the deadline to `to`, if that is later than where it is.
    pub fn push_back(&self, to: Instant) {
        self.0
            .deadline
            .fetch_max(nanos_since_epoch(to), Ordering::Relaxed);
    }

    /// The call's cancel switch and the signal it fires.
    pub fn cancel_pair(&self) -> (CancelTx, CancelRx) {
        (CancelTx(self.0.clone()), CancelRx(self.0.clone()))
    }

    /// The call's event queue: its first sender and its only receiver.
    ///
    /// # Panics
    /// In debug builds, when called twice on one link (one receiver per queue).
    pub fn events(&self) -> (EventTx, EventRx) {
        let was = self.0.receiving.swap(true, Ordering::Relaxed);
        debug_assert!(!was, "one event receiver per call link");
        self.0.senders.fetch_add(1, Ordering::Relaxed);
        (EventTx(self.0.clone()), EventRx(self.0.clone()))
    }
}

/// Fires the client's cancellation of a call (held in the session's in-flight table).
#[derive(Debug)]
pub struct CancelTx(Arc<SharedCallLink>);

impl CancelTx {
    /// Cancels the call: its [`CancelRx`] resolves.
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::Release);
        self.0.cancel_waker.wake();
    }
}

/// What a transport waits on for the client's cancellation (`deadline::cancelled`).
#[derive(Debug)]
pub struct CancelRx(Arc<SharedCallLink>);

impl CancelRx {
    /// Whether the call was cancelled, without waiting (for tests).
    #[cfg(test)]
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::Acquire)
    }

    /// Ready once [`CancelTx::cancel`] was called; never otherwise. One waiter at a time.
    pub fn poll_cancelled(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.cancelled.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        self.0.cancel_waker.register(cx.waker());
        if self.0.cancelled.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

/// Where a call's related backend messages go while it runs, in the order the backend sent
/// them. `Send`, so it can cross to an owner shard; cloning counts one more sender.
#[derive(Debug)]
pub struct EventTx(Arc<SharedCallLink>);

impl EventTx {
    /// Queues `ev` for the receiver; gives it back when the receiver is gone.
    pub fn unbounded_send(&self, ev: BackendEvent) -> Result<(), BackendEvent> {
        if !self.0.receiving.load(Ordering::Acquire) {
            return Err(ev);
        }
        self.0.events.push(ev);
        self.0.events_waker.wake();
        Ok(())
    }

    /// Both send to the same receiver.
    pub fn same_receiver(&self, other: &EventTx) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The receiver is gone: nothing sent will be read.
    pub fn is_closed(&self) -> bool {
        !self.0.receiving.load(Ordering::Acquire)
    }
}

impl Clone for EventTx {
    fn clone(&self) -> Self {
        self.0.senders.fetch_add(1, Ordering::Relaxed);
        EventTx(self.0.clone())
    }
}

impl Drop for EventTx {
    fn drop(&mut self) {
        // Release: the receiver that sees 0 senders sees every event pushed before.
        if self.0.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.events_waker.wake();
        }
    }
}

/// The one reader of a call's events. As a stream it ends when every [`EventTx`] is
/// dropped and the queue is empty.
#[derive(Debug)]
pub struct EventRx(Arc<SharedCallLink>);

impl EventRx {
    /// The next queued event, without waiting.
    pub fn try_recv(&mut self) -> Option<BackendEvent> {
        self.0.events.pop()
    }
}

impl futures_core::Stream for EventRx {
    type Item = BackendEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<BackendEvent>> {
        let link = &self.0;
        for registered in [false, true] {
            if let Some(ev) = link.events.pop() {
                return Poll::Ready(Some(ev));
            }
            if link.senders.load(Ordering::Acquire) == 0 {
                // Every push happened before the last sender's drop (AcqRel above).
                return Poll::Ready(link.events.pop());
            }
            if !registered {
                link.events_waker.register(cx.waker());
            }
        }
        Poll::Pending
    }
}

impl Drop for EventRx {
    fn drop(&mut self) {
        self.0.receiving.store(false, Ordering::Release);
        // What was queued and not read goes now, not with the last handle of the link.
        while self.0.events.pop().is_some() {}
    }
}

#[cfg(test)]
#[path = "link_tests.rs"]
mod tests;

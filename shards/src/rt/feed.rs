//! The queue between a call's producer and the writer of its SSE answer, bounded in bytes.
//!
//! A backend can send events faster than a client reads them, and a client can stop reading
//! altogether. An unbounded channel there grows without limit (the attack run measured
//! 1.25 GB for one stream), so a feed ([`feed`]) counts the bytes queued and not yet taken by the
//! writer, in a shared atomic counter beside an unbounded channel (no lock, no allocation
//! per message beyond the channel's own node). Atomic because the two ends may live on two
//! shards: a request handed to the session's owner shard is answered on the connection's. A send that would take the queue past its bound
//! *overflows* it: the channel closes, the receiver ends at once (what was still queued is
//! dropped), and [`FeedRx::overflowed`] says so, so the HTTP writer closes the connection
//! without the stream's final chunk, as if the client had left. One message larger than the
//! bound still passes when nothing else is queued: a single answer is bounded elsewhere
//! (the backend's message size), and refusing it would make it undeliverable.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_channel::mpsc::{self, UnboundedReceiver, UnboundedSender};
use futures_core::Stream;

/// Bytes a stream may have queued toward a client that reads too slowly.
pub const SSE_QUEUE_BYTES: usize = 4 << 20;

#[derive(Default)]
struct Count {
    queued: AtomicUsize,
    overflowed: AtomicBool,
    /// The writer, while it waits in [`FeedRx::overflow`] (blocked on a slow client's socket).
    on_overflow: atomic_waker::AtomicWaker,
}

/// The sending side of a [`feed`].
pub struct FeedTx {
    tx: UnboundedSender<Vec<u8>>,
    count: Arc<Count>,
    cap: usize,
}

/// The receiving side: a stream of messages that ends early when the queue overflowed.
pub struct FeedRx {
    rx: UnboundedReceiver<Vec<u8>>,
    count: Arc<Count>,
    /// Messages were counted on their way in (false: a plain channel made into a feed).
    counted: bool,
}

/// Why a message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotSent {
    /// The receiver is gone (or the queue overflowed before).
    Closed,
    /// This message would have taken the queue past its bound: the feed is now closed.
    Overflow,
}

/// A feed holding at most `cap` bytes not yet taken by the receiver.
pub fn feed(cap: usize) -> (FeedTx, FeedRx) {
    let (tx, rx) = mpsc::unbounded();
    let count = Arc::new(Count::default());
    (
        FeedTx {
            tx,
            count: count.clone(),
            cap,
        },
        FeedRx {
            rx,
            count,
            counted: true,
        },
    )
}

impl FeedTx {
    /// Queues `msg`, or overflows the feed when the receiver is that far behind.
    pub fn send(&self, msg: Vec<u8>) -> Result<(), NotSent> {
        if self.tx.is_closed() {
            return Err(NotSent::Closed);
        }
        // Only the receiver lowers the count meanwhile, so the check errs on the safe side.
        let queued = self.count.queued.load(Relaxed);
        if queued > 0 && queued.saturating_add(msg.len()) > self.cap {
            self.count
                .overflowed
                .store(true, std::sync::atomic::Ordering::Release);
            self.tx.close_channel();
            self.count.on_overflow.wake();
            return Err(NotSent::Overflow);
        }
        self.count.queued.fetch_add(msg.len(), Relaxed);
        self.tx.unbounded_send(msg).map_err(|_| NotSent::Closed)
    }

    /// The receiver is gone or the feed overflowed.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

impl std::fmt::Debug for FeedRx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedRx")
            .field("queued", &self.count.queued.load(Relaxed))
            .field("overflowed", &self.count.overflowed.load(Relaxed))
            .finish()
    }
}

impl FeedRx {
    /// The sender overflowed the queue: the client did not keep up and the stream was cut.
    pub fn overflowed(&self) -> bool {
        self.count.overflowed.load(Relaxed)
    }

    /// Resolves once the sender has overflowed the queue: raced against a write to the
    /// client, so a writer stuck on a client that stopped reading learns at once that the
    /// stream is cut instead of at the write's stall timeout.
    pub fn overflow(&self) -> impl std::future::Future<Output = ()> + '_ {
        std::future::poll_fn(|cx| {
            if self
                .count
                .overflowed
                .load(std::sync::atomic::Ordering::Acquire)
            {
                return Poll::Ready(());
            }
            self.count.on_overflow.register(cx.waker());
            if self
                .count
                .overflowed
                .load(std::sync::atomic::Ordering::Acquire)
            {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }

    /// Bytes queued and not yet taken.
    pub fn queued(&self) -> usize {
        self.count.queued.load(Relaxed)
    }
}

/// A feed without a byte bound, for messages that are all in memory already.
impl From<UnboundedReceiver<Vec<u8>>> for FeedRx {
    fn from(rx: UnboundedReceiver<Vec<u8>>) -> Self {
        FeedRx {
            rx,
            count: Arc::default(),
            counted: false,
        }
    }
}

impl Stream for FeedRx {
    type Item = Vec<u8>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Vec<u8>>> {
        if self.count.overflowed.load(Relaxed) {
            return Poll::Ready(None);
        }
        let next = Pin::new(&mut self.rx).poll_next(cx);
        if let (Poll::Ready(Some(m)), true) = (&next, self.counted) {
            self.count.queued.fetch_sub(m.len(), Relaxed);
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn next(rx: &mut FeedRx) -> Option<Vec<u8>> {
        block_on(crate::rt::next(rx))
    }

    /// Runs a future that is ready at once (the channel is local and already filled).
    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .build()
            .unwrap();
        rt.block_on(f)
    }

    #[test]
    fn a_reader_that_keeps_up_never_overflows() {
        let (tx, mut rx) = feed(10);
        for _ in 0..100 {
            tx.send(vec![0; 6]).unwrap();
            assert_eq!(rx.queued(), 6);
            assert_eq!(next(&mut rx).map(|m| m.len()), Some(6));
            assert_eq!(rx.queued(), 0);
        }
        drop(tx);
        assert_eq!(next(&mut rx), None);
        assert!(!rx.overflowed());
    }

    #[test]
    fn a_reader_that_falls_behind_the_bound_ends_the_feed() {
        let (tx, mut rx) = feed(10);
        tx.send(vec![1; 4]).unwrap();
        tx.send(vec![2; 6]).unwrap();
        assert_eq!(tx.send(vec![3; 1]), Err(NotSent::Overflow));
        assert!(tx.is_closed());
        assert_eq!(tx.send(vec![4; 1]), Err(NotSent::Closed));
        assert!(rx.overflowed());
        assert_eq!(
            next(&mut rx),
            None,
            "what was queued is dropped, not written"
        );
    }

    #[test]
    fn one_message_larger_than_the_bound_passes_an_empty_queue() {
        let (tx, mut rx) = feed(10);
        tx.send(vec![0; 100]).unwrap();
        assert_eq!(tx.send(vec![0; 1]), Err(NotSent::Overflow));
        let (tx, mut rx2) = feed(10);
        tx.send(vec![0; 100]).unwrap();
        assert_eq!(next(&mut rx2).map(|m| m.len()), Some(100));
        tx.send(vec![0; 100]).unwrap();
        assert!(!rx2.overflowed());
        assert_eq!(next(&mut rx), None);
    }

    #[test]
    fn a_writer_waiting_for_overflow_is_woken_by_it() {
        let (tx, rx) = feed(10);
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        rt.block_on(async {
            // Not yet: the wait times out.
            let early =
                monoio::time::timeout(std::time::Duration::from_millis(20), rx.overflow()).await;
            assert!(early.is_err());
            // The sender overflows the feed from another task while the writer waits.
            let sender = monoio::spawn(async move {
                monoio::time::sleep(std::time::Duration::from_millis(10)).await;
                tx.send(vec![0; 8]).unwrap();
                assert_eq!(tx.send(vec![0; 8]), Err(NotSent::Overflow));
            });
            monoio::time::timeout(std::time::Duration::from_secs(5), rx.overflow())
                .await
                .expect("woken by the overflow");
            sender.await;
        });
    }

    #[test]
    fn a_dropped_receiver_closes_the_feed() {
        let (tx, rx) = feed(10);
        drop(rx);
        assert_eq!(tx.send(vec![0; 1]), Err(NotSent::Closed));
    }
}

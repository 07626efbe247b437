//! A shard's mailbox: a lock-free multi-producer queue plus a waker.
//!
//! Shards never block, so a plain crossbeam `recv()` is out. Senders push into a
//! `crossbeam_channel` (lock-free for the unbounded flavour) and then wake the single
//! consumer task through an [`AtomicWaker`]; monoio's `sync` feature turns that cross-thread
//! wake into an eventfd/io_uring wake-up of the owning runtime. The consumer drains with
//! `try_recv` and parks only when the queue is empty, re-checking after registering its waker
//! so no message is ever stranded.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;

use atomic_waker::AtomicWaker;
use crossbeam_channel::{Receiver, Sender, TryRecvError};

/// The sending half; `Send + Clone`, held by every other shard and the control thread.
pub struct SharedMailboxSender<T> {
    tx: Sender<T>,
    waker: Arc<AtomicWaker>,
}

impl<T> Clone for SharedMailboxSender<T> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            waker: self.waker.clone(),
        }
    }
}

impl<T> SharedMailboxSender<T> {
    /// Queues a message and wakes the owning shard. Returns the message back if the shard
    /// has stopped.
    pub fn send(&self, msg: T) -> Result<(), T> {
        self.tx.send(msg).map_err(|e| e.0)?;
        self.waker.wake();
        Ok(())
    }
}

/// The receiving half, owned by exactly one shard.
pub struct LocalMailbox<T> {
    rx: Receiver<T>,
    waker: Arc<AtomicWaker>,
}

/// Creates a connected sender/receiver pair.
pub fn mailbox<T>() -> (SharedMailboxSender<T>, LocalMailbox<T>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let waker = Arc::new(AtomicWaker::new());
    (
        SharedMailboxSender {
            tx,
            waker: waker.clone(),
        },
        LocalMailbox { rx, waker },
    )
}

impl<T> LocalMailbox<T> {
    /// Waits for the next message; `None` when every sender is gone.
    pub async fn recv(&self) -> Option<T> {
        poll_fn(|cx| {
            match self.rx.try_recv() {
                Ok(m) => return Poll::Ready(Some(m)),
                Err(TryRecvError::Disconnected) => return Poll::Ready(None),
                Err(TryRecvError::Empty) => {}
            }
            self.waker.register(cx.waker());
            match self.rx.try_recv() {
                Ok(m) => Poll::Ready(Some(m)),
                Err(TryRecvError::Disconnected) => Poll::Ready(None),
                Err(TryRecvError::Empty) => Poll::Pending,
            }
        })
        .await
    }

    /// Takes a message if one is queued, without waiting.
    pub fn try_recv(&self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

//! Keep-alive connections to one replica from one shard, bounded by the server's `pool_size`.
//!
//! At most `pool_size` connections hold a slot at once (busy or idle; the short messages
//! sent outside the bound, and SSE drains that gave their slot up, come on top). A call that
//! finds no idle connection opens one while under the bound, and otherwise queues (FIFO,
//! within its own timeout) for the next connection a finished call gives back, or for the
//! slot a closed one frees. Every connection a call gives back stays pooled: before, at most
//! 64 were kept and each call beyond that opened and closed its own connection, which at high
//! concurrency overflowed the backend's accept queue and stalled connects for the kernel's
//! 1 s retry.
//!
//! A lease may outlive its exchange ([`Leased::detach`]): the task reading the rest of an SSE
//! answer (`drain.rs`) keeps the connection, uncounted, and its slot apart ([`Slot`]). The
//! task gives the slot up as soon as the stream is slow to end, so calls queued for it do not
//! wait for a whole drain; a connection drained after that is pooled only if the bound has
//! room, else closed. So `open` (the connections counted: in use, idle or being opened) never
//! exceeds `max`; the connections still draining without a slot come on top, each for at
//! most the drain's bound.
//!
//! Shard-local (`Rc`/`RefCell`, no locks): a connection never leaves its shard.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::ops::{Deref, DerefMut};
use std::rc::Rc;

use futures_channel::oneshot;

use crate::http::client::LocalHttpConn;

/// What a waiting call is handed: a pooled connection, or the right to open one.
enum Handoff {
    Conn(LocalHttpConn),
    Slot,
}

/// The connections of one replica on this shard.
pub struct LocalPool {
    idle: RefCell<Vec<LocalHttpConn>>,
    /// Connections open and counted against `max` (idle, lent out, or being opened).
    open: Cell<usize>,
    max: usize,
    waiters: RefCell<VecDeque<oneshot::Sender<Handoff>>>,
    /// Calls that had to queue for a connection, since start (for the metrics).
    waits: Cell<u64>,
}

/// A connection lent out, holding its pool through `P` (a borrow for an exchange, an `Rc`
/// for a task that outlives it). [`Lease::put_back`] returns it to the pool; dropping it
/// closes the connection and frees its slot (handed to the first waiting call).
pub struct Lease<P: Deref<Target = LocalPool>> {
    conn: Option<LocalHttpConn>,
    pool: P,
    /// Counted against the bound (false for the messages that bypass it).
    counted: bool,
}

/// A connection lent to one exchange.
pub type Leased<'a> = Lease<&'a LocalPool>;

/// A connection lent to a task of its own (see [`Leased::detach`]).
pub type OwnedLease = Lease<Rc<LocalPool>>;

/// A counted slot held apart from its connection (see [`Leased::detach`]). Dropping it
/// releases the slot: to the first waiting call, or free. [`Slot::rejoin`] gives it back to
/// the connection it came with.
#[must_use = "dropping a slot releases it"]
pub struct Slot {
    pool: Option<Rc<LocalPool>>,
}

impl LocalPool {
    /// An empty pool of at most `max` connections (at least 1).
    pub fn new(max: usize) -> Self {
        Self {
            idle: RefCell::new(Vec::new()),
            open: Cell::new(0),
            max: max.max(1),
            waiters: RefCell::new(VecDeque::new()),
            waits: Cell::new(0),
        }
    }

    /// Connections open and counted against the bound (idle or lent out).
    pub fn open(&self) -> usize {
        self.open.get()
    }

    /// Calls that queued for a connection since start.
    pub fn waits(&self) -> u64 {
        self.waits.get()
    }

    /// A pooled connection, if one is idle (the fast path, no await).
    pub fn idle(&self) -> Option<Leased<'_>> {
        let c = self.idle.borrow_mut().pop()?;
        Some(self.lease(c, true))
    }

    /// An idle connection, a new one while under the bound, or the next one given back.
    /// The bool is true for a connection that was pooled (it may have gone stale).
    pub async fn take<F, Fut>(&self, connect: F) -> io::Result<(Leased<'_>, bool)>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = io::Result<LocalHttpConn>>,
    {
        loop {
            if let Some(c) = self.idle() {
                return Ok((c, true));
            }
            if self.open.get() < self.max {
                self.open.set(self.open.get() + 1);
                return self.open_counted(&connect).await;
            }
            let (tx, rx) = oneshot::channel();
            {
                let mut waiters = self.waiters.borrow_mut();
                // Calls that gave up while queued leave their senders behind until a handoff
                // reaches them; drop them here so a saturated pool's queue stays as long as
                // the calls really waiting.
                waiters.retain(|w| !w.is_canceled());
                waiters.push_back(tx);
            }
            self.waits.set(self.waits.get() + 1);
            let mut waiting = Waiting { rx, pool: self };
            match (&mut waiting.rx).await {
                Ok(Handoff::Conn(c)) => return Ok((self.lease(c, true), true)),
                // The slot of a closed connection is now ours (already counted).
                Ok(Handoff::Slot) => return self.open_counted(&connect).await,
                // Only if the sender was dropped unsent, which the pool never does: try again.
                Err(_) => continue,
            }
        }
    }

    /// For the short messages sent while calls may hold every pooled connection (a client's
    /// answer to a backend's request, a cancellation): an idle connection, or a new one
    /// outside the bound. Waiting here could deadlock a call that waits for that answer.
    pub async fn take_unbounded<F, Fut>(&self, connect: F) -> io::Result<Leased<'_>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = io::Result<LocalHttpConn>>,
    {
        if let Some(c) = self.idle() {
            return Ok(c);
        }
        Ok(self.lease(connect().await?, false))
    }

    /// Connections open and counted against the bound, and idle ones (for tests and stats).
    #[cfg(test)]
    fn counts(&self) -> (usize, usize, usize) {
        (
            self.open.get(),
            self.idle.borrow().len(),
            self.waiters.borrow().len(),
        )
    }

    async fn open_counted<F, Fut>(&self, connect: &F) -> io::Result<(Leased<'_>, bool)>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = io::Result<LocalHttpConn>>,
    {
        // The slot is held by a lease without a connection until the connect succeeds, so a
        // failed or cancelled connect gives it back.
        let mut slot = Leased {
            conn: None,
            pool: self,
            counted: true,
        };
        slot.conn = Some(connect().await?);
        Ok((slot, false))
    }

    fn lease(&self, conn: LocalHttpConn, counted: bool) -> Leased<'_> {
        Leased {
            conn: Some(conn),
            pool: self,
            counted,
        }
    }

    /// A counted slot was freed: hand it to the first call still waiting, or release it.
    fn release_slot(&self) {
        loop {
            let Some(w) = self.waiters.borrow_mut().pop_front() else {
                self.open.set(self.open.get() - 1);
                return;
            };
            if w.send(Handoff::Slot).is_ok() {
                return;
            }
        }
    }

    /// A reusable connection came back: to the first call still waiting, or to the idle list.
    fn give_back(&self, mut conn: LocalHttpConn) {
        loop {
            let Some(w) = self.waiters.borrow_mut().pop_front() else {
                self.idle.borrow_mut().push(conn);
                return;
            };
            match w.send(Handoff::Conn(conn)) {
                Ok(()) => return,
                Err(Handoff::Conn(c)) => conn = c,
                Err(Handoff::Slot) => unreachable!("send returns what it was given"),
            }
        }
    }
}

/// A call queued for a connection. If it gives up (its timeout, its client's cancellation)
/// after a connection or slot was already handed to it but before it ran again, the handoff
/// would die in the channel with the slot still counted: this returns it to the pool.
struct Waiting<'a> {
    rx: oneshot::Receiver<Handoff>,
    pool: &'a LocalPool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.rx.close();
        match self.rx.try_recv() {
            Ok(Some(Handoff::Conn(c))) => self.pool.give_back(c),
            Ok(Some(Handoff::Slot)) => self.pool.release_slot(),
            Ok(None) | Err(_) => {}
        }
    }
}

impl<'a> Leased<'a> {
    /// The same connection, holding its pool by `pool` (which must be the pool it came from)
    /// so a task may keep it past the exchange. The lease comes back uncounted and its slot
    /// apart, held by the [`Slot`] (none if the lease had none): the task drops the slot to
    /// let a waiting call have it while the connection is still busy, or rejoins the two.
    pub fn detach(mut self, pool: &Rc<LocalPool>) -> (OwnedLease, Option<Slot>) {
        assert!(
            std::ptr::eq(self.pool, &**pool),
            "a lease detached onto another pool"
        );
        let counted = std::mem::replace(&mut self.counted, false);
        let lease = Lease {
            conn: self.conn.take(),
            pool: pool.clone(),
            counted: false,
        };
        let slot = counted.then(|| Slot {
            pool: Some(pool.clone()),
        });
        (lease, slot)
    }
}

impl Slot {
    /// Gives this slot back to `lease`, the uncounted lease it was detached with: the lease
    /// is counted again, as before [`Leased::detach`].
    pub fn rejoin(mut self, lease: &mut OwnedLease) {
        let pool = self
            .pool
            .take()
            .expect("a slot is held until rejoined or dropped");
        assert!(
            Rc::ptr_eq(&pool, &lease.pool) && !lease.counted,
            "a slot rejoined to a lease it was not detached with"
        );
        lease.counted = true;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            pool.release_slot();
        }
    }
}

impl<P: Deref<Target = LocalPool>> Lease<P> {
    /// Replaces a connection found closed by a fresh one, keeping its slot (a caller that
    /// gave the slot back would queue behind every waiting call). On error the lease has no
    /// connection left and frees the slot when dropped.
    pub async fn reconnect<F, Fut>(&mut self, connect: F) -> io::Result<()>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = io::Result<LocalHttpConn>>,
    {
        self.conn = None;
        self.conn = Some(connect().await?);
        Ok(())
    }

    /// Returns the connection to the pool (call only when the exchange left it reusable).
    /// An uncounted one (opened outside the bound, or drained after its slot was released)
    /// is pooled only if the bound has room, and closed otherwise.
    pub fn put_back(mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        if !self.counted {
            if self.pool.open.get() >= self.pool.max {
                return;
            }
            self.pool.open.set(self.pool.open.get() + 1);
        }
        // The slot goes with the connection: this lease no longer holds one.
        self.counted = false;
        self.pool.give_back(conn);
    }
}

impl<P: Deref<Target = LocalPool>> Drop for Lease<P> {
    fn drop(&mut self) {
        // The connection is closed here, or its connect never finished: the slot is free.
        if self.counted {
            self.pool.release_slot();
        }
    }
}

impl<P: Deref<Target = LocalPool>> Deref for Lease<P> {
    type Target = LocalHttpConn;
    fn deref(&self) -> &LocalHttpConn {
        self.conn
            .as_ref()
            .expect("a lease holds its connection until put back")
    }
}

impl<P: Deref<Target = LocalPool>> DerefMut for Lease<P> {
    fn deref_mut(&mut self) -> &mut LocalHttpConn {
        self.conn
            .as_mut()
            .expect("a lease holds its connection until put back")
    }
}

#[cfg(test)]
#[path = "pool_tests.rs"]
mod tests;

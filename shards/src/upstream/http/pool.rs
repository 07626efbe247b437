//! Keep-alive connections to one replica from one shard, bounded by the server's `pool_size`.
//!
//! At most `pool_size` connections are open at once (busy or idle). A call that finds no idle
//! connection opens one while under the bound, and otherwise queues (FIFO, within its own
//! timeout) for the next connection a finished call gives back, or for the slot a closed one
//! frees. Every connection a call gives back stays pooled: before, at most 64 were kept and
//! each call beyond that opened and closed its own connection, which at high concurrency
//! overflowed the backend's accept queue and stalled connects for the kernel's 1 s retry.
//!
//! Shard-local (`Rc`/`RefCell`, no locks): a connection never leaves its shard.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::ops::{Deref, DerefMut};

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

/// A connection lent to one exchange. [`Leased::put_back`] returns it to the pool; dropping
/// it closes the connection and frees its slot (handed to the first waiting call).
pub struct Leased<'a> {
    conn: Option<LocalHttpConn>,
    pool: &'a LocalPool,
    /// Counted against the bound (false for the messages that bypass it).
    counted: bool,
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

impl Leased<'_> {
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
    /// A connection opened outside the bound is pooled only if the bound has room.
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

impl Drop for Leased<'_> {
    fn drop(&mut self) {
        // The connection is closed here, or its connect never finished: the slot is free.
        if self.counted {
            self.pool.release_slot();
        }
    }
}

impl Deref for Leased<'_> {
    type Target = LocalHttpConn;
    fn deref(&self) -> &LocalHttpConn {
        self.conn
            .as_ref()
            .expect("a lease holds its connection until put back")
    }
}

impl DerefMut for Leased<'_> {
    fn deref_mut(&mut self) -> &mut LocalHttpConn {
        self.conn
            .as_mut()
            .expect("a lease holds its connection until put back")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use std::rc::Rc;
    use std::time::Duration;

    fn rt() -> monoio::Runtime<monoio::time::TimeDriver<monoio::LegacyDriver>> {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap()
    }

    /// A real listener (the kernel accepts into its backlog; nothing reads): each connect
    /// succeeds and is counted, so the test sees how many connections the pool opened.
    struct Peer {
        _listener: std::net::TcpListener,
        addr: SocketAddr,
        connects: Rc<Cell<usize>>,
    }

    impl Peer {
        fn new() -> Self {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            Self {
                _listener: l,
                addr,
                connects: Rc::new(Cell::new(0)),
            }
        }

        fn connect(
            &self,
        ) -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = io::Result<LocalHttpConn>>>>
        {
            let addr = self.addr;
            let n = self.connects.clone();
            move || {
                n.set(n.get() + 1);
                Box::pin(async move {
                    LocalHttpConn::connect_tcp(&[addr], Duration::from_secs(2)).await
                })
            }
        }
    }

    #[test]
    fn given_back_connections_are_reused_not_reopened() {
        rt().block_on(async {
            let peer = Peer::new();
            let pool = LocalPool::new(4);
            for _ in 0..10 {
                let (c, _) = pool.take(peer.connect()).await.unwrap();
                c.put_back();
            }
            assert_eq!(peer.connects.get(), 1);
            assert_eq!(pool.counts(), (1, 1, 0));
            // Three at once need three connections; all three stay pooled afterwards (the
            // old fixed idle limit dropped the surplus and reconnected for every call).
            let a = pool.take(peer.connect()).await.unwrap().0;
            let b = pool.take(peer.connect()).await.unwrap().0;
            let c = pool.take(peer.connect()).await.unwrap().0;
            assert_eq!(peer.connects.get(), 3);
            a.put_back();
            b.put_back();
            c.put_back();
            assert_eq!(pool.counts(), (3, 3, 0));
        });
    }

    #[test]
    fn beyond_the_bound_a_call_waits_for_a_connection_given_back() {
        rt().block_on(async {
            let peer = Rc::new(Peer::new());
            let pool = Rc::new(LocalPool::new(2));
            let a = pool.take(peer.connect()).await.unwrap().0;
            let b = pool.take(peer.connect()).await.unwrap().0;
            let (p, q) = (pool.clone(), peer.clone());
            let waiter = monoio::spawn(async move {
                let (c, reused) = p.take(q.connect()).await.unwrap();
                c.put_back();
                reused
            });
            monoio::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(pool.counts(), (2, 0, 1), "the third call waits");
            a.put_back();
            assert!(waiter.await, "it got the connection given back");
            assert_eq!(peer.connects.get(), 2, "no third connection was opened");
            drop(b);
            assert_eq!(
                pool.counts(),
                (1, 1, 0),
                "a dropped lease closes and frees its slot"
            );
        });
    }

    #[test]
    fn a_closed_connection_hands_its_slot_to_a_waiting_call() {
        rt().block_on(async {
            let peer = Rc::new(Peer::new());
            let pool = Rc::new(LocalPool::new(1));
            let a = pool.take(peer.connect()).await.unwrap().0;
            let (p, q) = (pool.clone(), peer.clone());
            let waiter = monoio::spawn(async move {
                let (c, reused) = p.take(q.connect()).await.unwrap();
                drop(c);
                reused
            });
            monoio::time::sleep(Duration::from_millis(20)).await;
            drop(a); // not reusable: closed
            assert!(
                !waiter.await,
                "the waiter opened a fresh connection in the freed slot"
            );
            assert_eq!(peer.connects.get(), 2);
            assert_eq!(pool.counts(), (0, 0, 0));
        });
    }

    #[test]
    fn a_waiter_that_gave_up_is_skipped_and_a_failed_connect_frees_its_slot() {
        rt().block_on(async {
            let peer = Rc::new(Peer::new());
            let pool = Rc::new(LocalPool::new(1));
            let a = pool.take(peer.connect()).await.unwrap().0;
            // A call that times out while queued leaves a dead waiter behind.
            let gave_up =
                monoio::time::timeout(Duration::from_millis(20), pool.take(peer.connect())).await;
            assert!(gave_up.is_err());
            assert_eq!(
                pool.counts().2,
                1,
                "its sender stays until the next handoff or wait"
            );
            let again =
                monoio::time::timeout(Duration::from_millis(20), pool.take(peer.connect())).await;
            assert!(again.is_err());
            assert_eq!(pool.counts().2, 1, "the next wait dropped the dead sender");
            a.put_back();
            assert_eq!(
                pool.counts(),
                (1, 1, 0),
                "the connection went idle, not to the dead waiter"
            );
            // A refused connect (nothing listens on the port) returns its slot.
            let dead: SocketAddr = {
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                l.local_addr().unwrap()
            };
            let fresh = LocalPool::new(1);
            let refused =
                || async move { LocalHttpConn::connect_tcp(&[dead], Duration::from_secs(2)).await };
            assert!(fresh.take(refused).await.is_err());
            assert_eq!(fresh.counts(), (0, 0, 0));
        });
    }

    #[test]
    fn a_handoff_to_a_waiter_that_gives_up_before_running_returns_to_the_pool() {
        rt().block_on(async {
            let peer = Peer::new();
            let pool = LocalPool::new(1);
            let noop = std::task::Waker::noop();
            let mut cx = std::task::Context::from_waker(noop);
            for close in [false, true] {
                let a = pool.take(peer.connect()).await.unwrap().0;
                // Queue a call, hand it the connection (or the freed slot), then drop the call
                // before it runs again, as a timeout firing in the same turn would.
                let mut queued = Box::pin(pool.take(peer.connect()));
                assert!(queued.as_mut().poll(&mut cx).is_pending());
                assert_eq!(pool.counts().2, 1, "queued");
                if close {
                    drop(a);
                } else {
                    a.put_back();
                }
                drop(queued);
                let want = if close { (0, 0, 0) } else { (1, 1, 0) };
                assert_eq!(pool.counts(), want, "nothing leaked (close = {close})");
            }
            // The slot is usable again: a new call gets a connection at once.
            assert!(pool.take(peer.connect()).await.is_ok());
        });
    }

    #[test]
    fn a_reconnect_keeps_the_slot_and_a_failed_one_frees_it() {
        rt().block_on(async {
            let peer = Peer::new();
            let pool = LocalPool::new(1);
            let mut a = pool.take(peer.connect()).await.unwrap().0;
            a.reconnect(peer.connect()).await.unwrap();
            assert_eq!(peer.connects.get(), 2);
            assert_eq!(pool.counts(), (1, 0, 0), "still one slot, held");
            a.put_back();
            assert_eq!(pool.counts(), (1, 1, 0));
            let mut b = pool.idle().unwrap();
            let dead: SocketAddr = {
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                l.local_addr().unwrap()
            };
            let refused =
                || async move { LocalHttpConn::connect_tcp(&[dead], Duration::from_secs(2)).await };
            assert!(b.reconnect(refused).await.is_err());
            drop(b);
            assert_eq!(
                pool.counts(),
                (0, 0, 0),
                "the failed reconnect freed the slot"
            );
        });
    }

    #[test]
    fn unbounded_messages_never_wait_and_pool_only_with_room() {
        rt().block_on(async {
            let peer = Peer::new();
            let pool = LocalPool::new(1);
            let a = pool.take(peer.connect()).await.unwrap().0;
            let m = pool.take_unbounded(peer.connect()).await.unwrap();
            assert_eq!(peer.connects.get(), 2, "opened outside the bound, at once");
            m.put_back();
            assert_eq!(pool.counts(), (1, 0, 0), "no room: closed, not pooled");
            drop(a);
            let m = pool.take_unbounded(peer.connect()).await.unwrap();
            m.put_back();
            assert_eq!(pool.counts(), (1, 1, 0), "room: pooled and counted");
        });
    }
}

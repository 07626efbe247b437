//! Tests of the per-replica connection pool (`pool.rs`) against a real listener.

use super::*;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use crate::rt::test_runtime as rt;

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
    ) -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = io::Result<LocalHttpConn>>>> {
        let addr = self.addr;
        let n = self.connects.clone();
        move || {
            n.set(n.get() + 1);
            Box::pin(
                async move { LocalHttpConn::connect_tcp(&[addr], Duration::from_secs(2)).await },
            )
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

#[test]
fn a_detached_lease_holds_its_slot_apart_until_rejoined_or_released() {
    rt().block_on(async {
        let peer = Rc::new(Peer::new());
        let pool = Rc::new(LocalPool::new(1));
        let queue = |pool: &Rc<LocalPool>| {
            let (p, q) = (pool.clone(), peer.clone());
            monoio::spawn(async move {
                let (c, reused) = p.take(q.connect()).await.unwrap();
                c.put_back();
                reused
            })
        };
        // Rejoined (the stream ended within the hold): pooled in its own slot.
        let a = pool.take(peer.connect()).await.unwrap().0;
        let (mut owned, slot) = a.detach(&pool);
        let slot = slot.expect("a counted lease detaches with its slot");
        assert_eq!(pool.counts(), (1, 0, 0), "the slot is still held");
        let waiter = queue(&pool);
        monoio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(pool.counts(), (1, 0, 1), "a call waits for the held slot");
        slot.rejoin(&mut owned);
        monoio::spawn(async move { owned.put_back() }).await;
        assert!(waiter.await, "it got the connection the task gave back");
        assert_eq!((peer.connects.get(), pool.counts()), (1, (1, 1, 0)));

        // Released while the connection still drains: the waiting call opens its own in
        // the slot; the drained one finds no room and is closed, not pooled over the bound.
        let (owned, slot) = pool.idle().unwrap().detach(&pool);
        let (p, q) = (pool.clone(), peer.clone());
        let waiter = monoio::spawn(async move { p.take(q.connect()).await.unwrap().0.detach(&p) });
        monoio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(pool.counts(), (1, 0, 1));
        drop(slot);
        let (other, other_slot) = waiter.await;
        assert_eq!(
            peer.connects.get(),
            2,
            "a fresh connection in the released slot"
        );
        assert_eq!(
            pool.counts(),
            (1, 0, 0),
            "still one counted: the draining one is not"
        );
        owned.put_back();
        assert_eq!(pool.counts(), (1, 0, 0), "no room: closed");
        // Once the slot is free, a drained connection is pooled and counted again.
        drop(other_slot);
        assert_eq!(pool.counts(), (0, 0, 0));
        other.put_back();
        assert_eq!(pool.counts(), (1, 1, 0), "room: pooled and counted");

        // A drain task dropped (at shutdown) with its slot and lease: nothing leaks.
        let (b, slot) = pool.idle().unwrap().detach(&pool);
        monoio::spawn(async move { drop((b, slot)) }).await;
        assert_eq!(pool.counts(), (0, 0, 0));
        // A lease outside the bound has no slot to hold.
        let m = pool.take_unbounded(peer.connect()).await.unwrap();
        let (m, slot) = m.detach(&pool);
        assert!(slot.is_none());
        drop(m);
        assert_eq!(pool.counts(), (0, 0, 0));
    });
}

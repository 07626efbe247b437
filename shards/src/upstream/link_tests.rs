use std::time::{Duration, Instant};

use super::*;

fn ev(n: u8) -> BackendEvent {
    BackendEvent {
        msg: vec![n],
        replica: n as usize,
    }
}

fn poll_next(rx: &mut EventRx) -> Poll<Option<BackendEvent>> {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    futures_core::Stream::poll_next(Pin::new(rx), &mut cx)
}

#[test]
fn events_arrive_in_order_and_the_stream_ends_with_the_last_sender() {
    let link = Deadline::none();
    let (tx, mut rx) = link.events();
    let tx2 = tx.clone();
    assert!(
        poll_next(&mut rx).is_pending(),
        "nothing sent, senders alive"
    );
    tx.unbounded_send(ev(1)).unwrap();
    tx2.unbounded_send(ev(2)).unwrap();
    drop(tx);
    assert!(matches!(poll_next(&mut rx), Poll::Ready(Some(e)) if e.msg == [1]));
    drop(tx2);
    // The queue is read to its end before the stream says it is over.
    assert!(matches!(poll_next(&mut rx), Poll::Ready(Some(e)) if e.msg == [2]));
    assert!(matches!(poll_next(&mut rx), Poll::Ready(None)));
    // Other holders of the link (its deadline) do not keep the stream open.
    assert!(link.when() > Instant::now() + Duration::from_secs(86_400 * 365));
}

#[test]
fn a_send_after_the_receiver_is_gone_gives_the_event_back() {
    let link = Deadline::none();
    let (tx, rx) = link.events();
    assert!(!tx.is_closed());
    drop(rx);
    assert!(tx.is_closed());
    let back = tx.unbounded_send(ev(7)).unwrap_err();
    assert_eq!(back.msg, [7]);
}

#[test]
fn a_waiting_receiver_is_woken_by_a_send_and_by_the_last_drop() {
    struct Count(std::sync::atomic::AtomicUsize);
    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let count = Arc::new(Count(AtomicUsize::new(0)));
    let waker = std::task::Waker::from(count.clone());
    let mut cx = Context::from_waker(&waker);
    let link = Deadline::none();
    let (tx, mut rx) = link.events();
    assert!(futures_core::Stream::poll_next(Pin::new(&mut rx), &mut cx).is_pending());
    tx.unbounded_send(ev(1)).unwrap();
    assert_eq!(count.0.load(Ordering::SeqCst), 1);
    assert!(rx.try_recv().is_some());
    assert!(futures_core::Stream::poll_next(Pin::new(&mut rx), &mut cx).is_pending());
    drop(tx);
    assert_eq!(count.0.load(Ordering::SeqCst), 2);
    assert!(matches!(
        futures_core::Stream::poll_next(Pin::new(&mut rx), &mut cx),
        Poll::Ready(None)
    ));
}

#[test]
fn events_sent_from_other_threads_all_arrive_in_each_senders_order() {
    const THREADS: u8 = 4;
    const EACH: usize = 2_000;
    let link = Deadline::none();
    let (tx, mut rx) = link.events();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for i in 0..EACH {
                    let mut e = ev(t);
                    e.replica = i;
                    tx.unbounded_send(e).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let mut last = [None::<usize>; THREADS as usize];
    let mut got = 0;
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        match poll_next(&mut rx) {
            Poll::Ready(Some(e)) => {
                let t = e.msg[0] as usize;
                assert!(last[t].is_none_or(|l| l < e.replica), "per-sender order");
                last[t] = Some(e.replica);
                got += 1;
            }
            Poll::Ready(None) => break,
            Poll::Pending => {
                assert!(Instant::now() < until, "senders never finished");
                std::thread::yield_now();
            }
        }
    }
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(got, THREADS as usize * EACH);
}

#[test]
fn cancel_fires_only_when_asked_and_wakes_the_waiter() {
    let link = Deadline::none();
    let (cancel, signal) = link.cancel_pair();
    let flag = Arc::new(AtomicBool::new(false));
    struct Flag(Arc<AtomicBool>);
    impl std::task::Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let waker = std::task::Waker::from(Arc::new(Flag(flag.clone())));
    let mut cx = Context::from_waker(&waker);
    assert!(signal.poll_cancelled(&mut cx).is_pending());
    let t = std::thread::spawn(move || cancel.cancel());
    t.join().unwrap();
    assert!(flag.load(Ordering::SeqCst), "the waiter was woken");
    assert!(signal.poll_cancelled(&mut cx).is_ready());
    // Dropping the switch without firing it never fires the signal.
    let link = Deadline::none();
    let (cancel, signal) = link.cancel_pair();
    drop(cancel);
    assert!(signal.poll_cancelled(&mut cx).is_pending());
}

#[test]
fn the_deadline_only_moves_later() {
    let now = Instant::now();
    let d = Deadline::at(now + Duration::from_millis(100));
    let at = d.when();
    assert!(at >= now + Duration::from_millis(99) && at <= now + Duration::from_millis(101));
    d.push_back(now + Duration::from_millis(50));
    assert_eq!(d.when(), at, "an earlier time never moves it forward");
    let other = d.clone();
    other.push_back(now + Duration::from_secs(1));
    assert!(
        d.when() >= now + Duration::from_millis(999),
        "shared by every clone"
    );
}

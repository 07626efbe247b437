//! A shard-local one-way flag that tasks can wait on: set once, never cleared.
//!
//! A task that must end when something stops (a stdio backend's supervisor watching for its
//! stop) used to poll a `Cell<bool>` every 50 ms, which woke an idle shard 20 times a second
//! per backend. [`LocalFlag::wait`] sleeps until [`LocalFlag::set`] wakes it. The waiting
//! tasks' wakers are kept once each (`Waker::will_wake`), so a task that re-polls the wait
//! (inside a `select!`) does not grow the list.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// A set-once flag with waiters; `Rc`-shared on one shard.
#[derive(Default)]
pub struct LocalFlag {
    set: Cell<bool>,
    waiters: RefCell<Vec<Waker>>,
}

impl LocalFlag {
    /// An unset flag.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the flag is set.
    pub fn get(&self) -> bool {
        self.set.get()
    }

    /// Sets the flag and wakes every waiting task.
    pub fn set(&self) {
        self.set.set(true);
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for w in waiters {
            w.wake();
        }
    }

    /// Resolves once the flag is set (at once if it is).
    pub fn wait(&self) -> Wait<'_> {
        Wait { flag: self }
    }
}

/// The future of [`LocalFlag::wait`].
pub struct Wait<'a> {
    flag: &'a LocalFlag,
}

impl Future for Wait<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.flag.set.get() {
            return Poll::Ready(());
        }
        let mut waiters = self.flag.waiters.borrow_mut();
        if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
            waiters.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;
    use std::time::{Duration, Instant};

    use crate::rt::test_runtime as rt;

    #[test]
    fn a_waiter_wakes_when_the_flag_is_set_not_before() {
        rt().block_on(async {
            let flag = Rc::new(LocalFlag::new());
            let f = flag.clone();
            let t0 = Instant::now();
            let waiter = monoio::spawn(async move {
                f.wait().await;
                t0.elapsed()
            });
            monoio::time::sleep(Duration::from_millis(30)).await;
            assert!(!flag.get());
            flag.set();
            let woke_after = waiter.await;
            assert!(woke_after >= Duration::from_millis(30), "{woke_after:?}");
            assert!(flag.get());
            // Once set, every wait is ready at once.
            flag.wait().await;
        });
    }

    #[test]
    fn a_task_re_polling_its_wait_is_kept_once() {
        rt().block_on(async {
            let flag = Rc::new(LocalFlag::new());
            let f = flag.clone();
            let loser = monoio::spawn(async move {
                for _ in 0..100 {
                    monoio::select! {
                        _ = f.wait() => return true,
                        _ = monoio::time::sleep(Duration::from_micros(10)) => {}
                    }
                }
                false
            });
            monoio::time::sleep(Duration::from_millis(20)).await;
            assert!(flag.waiters.borrow().len() <= 1, "one waker per task");
            flag.set();
            let _ = loser.await;
            assert!(flag.waiters.borrow().is_empty(), "set empties the list");
        });
    }
}

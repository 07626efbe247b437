//! Containing a panic to the connection that caused it.
//!
//! A shard runs every connection as a task on one thread; a panic that escaped a task would
//! unwind through the runtime and end the thread, while the kernel kept handing new
//! connections to its listener (they hung forever). [`Contained`] polls a connection's task
//! inside `catch_unwind`: a panic is reported (logged with the request it was serving,
//! counted) and ends that task only, which drops, and so closes, its connection; the shard
//! serves on. Unwinding releases every `RefCell` borrow and runs every guard's `Drop` on the
//! way, so the shard's state stays usable. A panic anywhere else on a shard still ends the
//! thread, and the thread's owner then ends the process at once (`src/control`): never a
//! half-alive gateway.

use std::any::Any;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

/// A task whose panic is reported to `on_panic` and ends only this task.
pub struct Contained<F, P> {
    inner: Option<Pin<Box<F>>>,
    on_panic: Option<P>,
}

/// Wraps `fut` (one connection's task) so that its panic calls `on_panic` with the panic
/// message and completes the task instead of unwinding into the runtime.
pub fn contain<F, P>(fut: F, on_panic: P) -> Contained<F, P>
where
    F: Future<Output = ()>,
    P: FnOnce(&str),
{
    Contained {
        inner: Some(Box::pin(fut)),
        on_panic: Some(on_panic),
    }
}

impl<F, P> Future for Contained<F, P>
where
    F: Future<Output = ()>,
    P: FnOnce(&str) + Unpin,
{
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(());
        };
        match catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(p) => p,
            Err(payload) => {
                // Drop the task (its connection closes) before reporting.
                self.inner = None;
                if let Some(report) = self.on_panic.take() {
                    report(message(&*payload));
                }
                Poll::Ready(())
            }
        }
    }
}

/// The text of a panic payload (`panic!("...")` gives `&str` or `String`).
pub fn message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(non-string panic payload)")
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;

    use super::*;

    #[test]
    fn a_panicking_task_ends_alone_and_the_runtime_serves_on() {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        let reported = Rc::new(RefCell::new(Vec::<String>::new()));
        let state = Rc::new(RefCell::new(0u32));
        let survivors = Rc::new(Cell::new(0));
        rt.block_on({
            let (reported, state, survivors) = (reported.clone(), state.clone(), survivors.clone());
            async move {
                let mut tasks = Vec::new();
                for i in 0..4u64 {
                    let (reported, state, survivors) =
                        (reported.clone(), state.clone(), survivors.clone());
                    tasks.push(monoio::spawn(contain(
                        async move {
                            monoio::time::sleep(std::time::Duration::from_millis(i)).await;
                            let mut held = state.borrow_mut();
                            *held += 1;
                            if i % 2 == 0 {
                                // Unwinding with the borrow held must release it.
                                let v: Vec<u8> = Vec::new();
                                let _ = v[i as usize + 7];
                            }
                            survivors.set(survivors.get() + 1);
                        },
                        move |msg: &str| reported.borrow_mut().push(msg.to_string()),
                    )));
                }
                for t in tasks {
                    t.await;
                }
                // The shard goes on: state is still borrowable, timers still run.
                monoio::time::sleep(std::time::Duration::from_millis(1)).await;
                *state.borrow_mut() += 100;
            }
        });
        assert_eq!(survivors.get(), 2);
        assert_eq!(*state.borrow(), 104);
        let r = reported.borrow();
        assert_eq!(r.len(), 2, "{r:?}");
        assert!(r.iter().all(|m| m.contains("index out of bounds")), "{r:?}");
    }
}

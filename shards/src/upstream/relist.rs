//! "This backend's lists may have changed": the signal from whatever heard it to the one task
//! that re-lists the backend.
//!
//! What pokes it: a `list_changed` on a stdio child's channel, on an HTTP backend's GET stream
//! or on the gateway's upstream `subscriptions/listen` stream, and an upstream listen that
//! came back after a drop (it may have missed announcements meanwhile). The backend controls
//! how often that happens, so the signal is bounded whatever it sends:
//!
//! - a poke sets bits (which kinds were announced) and, only the first time since the last
//!   re-list began, queues one wake-up: a flood of announcements holds one queued message,
//!   never one per announcement;
//! - re-lists are paced: the first after a quiet spell waits [`SETTLE`] (a burst becomes one
//!   re-list), the next no sooner than [`MIN_GAP`] after the previous began. A backend that
//!   never stops announcing is re-listed at most once per `MIN_GAP`, and its last
//!   announcement is still re-listed within `MIN_GAP` plus one listing.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_channel::mpsc;

use crate::catalog::ListsChanged;

/// How long a first announcement waits for the rest of its burst.
pub const SETTLE: Duration = Duration::from_millis(20);
/// The least time between the starts of two re-lists of one backend.
pub const MIN_GAP: Duration = Duration::from_millis(250);

#[derive(Default)]
struct State {
    /// A wake-up is queued or being served and the kinds are not taken yet.
    asked: Cell<bool>,
    /// Kinds announced since the last re-list began.
    kinds: Cell<ListsChanged>,
}

/// The poking end; cheap to clone (one per place that hears a backend).
#[derive(Clone)]
pub struct RelistTx {
    state: Rc<State>,
    wake: mpsc::UnboundedSender<()>,
}

/// The re-listing task's end.
pub struct RelistRx {
    state: Rc<State>,
    wake: mpsc::UnboundedReceiver<()>,
    last: Option<Instant>,
}

/// A new signal.
pub fn channel() -> (RelistTx, RelistRx) {
    let state = Rc::new(State::default());
    let (tx, rx) = mpsc::unbounded();
    (
        RelistTx {
            state: state.clone(),
            wake: tx,
        },
        RelistRx {
            state,
            wake: rx,
            last: None,
        },
    )
}

impl RelistTx {
    /// The backend announced `kinds` (or, with none, its lists may have changed unannounced).
    pub fn poke(&self, kinds: ListsChanged) {
        let s = &self.state;
        s.kinds.set(s.kinds.get().union(kinds));
        if !s.asked.replace(true) {
            let _ = self.wake.unbounded_send(());
        }
    }
}

impl RelistRx {
    /// Waits for a poke, then for the pacing, and returns the kinds announced meanwhile;
    /// `None` once every poking end is gone.
    pub async fn next(&mut self) -> Option<ListsChanged> {
        crate::rt::next(&mut self.wake).await?;
        let now = Instant::now();
        let mut at = now + SETTLE;
        if let Some(last) = self.last {
            at = at.max(last + MIN_GAP);
        }
        monoio::time::sleep(at - now).await;
        self.last = Some(Instant::now());
        // Pokes from here on queue the next re-list.
        self.state.asked.set(false);
        Some(self.state.kinds.take())
    }
}

#[cfg(test)]
impl RelistRx {
    /// A queued wake-up's kinds, taken at once without the pacing (tests of what pokes).
    pub(crate) fn wake_pending(&mut self) -> Option<ListsChanged> {
        self.wake.try_recv().ok()?;
        self.state.asked.set(false);
        Some(self.state.kinds.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::rt::test_runtime as rt;

    const TOOLS: ListsChanged = ListsChanged {
        tools: true,
        prompts: false,
        resources: false,
    };
    const PROMPTS: ListsChanged = ListsChanged {
        tools: false,
        prompts: true,
        resources: false,
    };

    #[test]
    fn a_burst_is_one_relist_with_every_kind_it_announced() {
        rt().block_on(async {
            let (tx, mut rx) = channel();
            let t = Instant::now();
            for _ in 0..1000 {
                tx.poke(TOOLS);
            }
            tx.poke(PROMPTS);
            // Served as one re-list, soon, with both kinds...
            assert_eq!(rx.next().await, Some(TOOLS.union(PROMPTS)));
            assert!(
                t.elapsed() < Duration::from_millis(200),
                "{:?}",
                t.elapsed()
            );
            // ...and nothing else was queued for the 1001 pokes.
            assert!(rx.wake.try_recv().is_err(), "one wake-up for a burst");
            // A poke without kinds still asks for a re-list (a listen that reconnected).
            tx.poke(ListsChanged::NONE);
            assert_eq!(rx.next().await, Some(ListsChanged::NONE));
            drop(tx);
            assert_eq!(rx.next().await, None, "ends with its pokers");
        });
    }

    #[test]
    fn a_backend_that_never_stops_announcing_is_relisted_at_a_bounded_rate() {
        rt().block_on(async {
            let (tx, mut rx) = channel();
            let run = Duration::from_millis(1200);
            let flood = monoio::spawn(async move {
                let start = Instant::now();
                while start.elapsed() < run {
                    for _ in 0..100 {
                        tx.poke(TOOLS);
                    }
                    monoio::time::sleep(Duration::from_millis(1)).await;
                }
            });
            let start = Instant::now();
            let mut relists = 0u32;
            while rx.next().await.is_some() {
                relists += 1;
            }
            flood.await;
            let bound = (start.elapsed().as_millis() / MIN_GAP.as_millis()) as u32 + 2;
            assert!(
                (3..=bound).contains(&relists),
                "{relists} re-lists in {:?} (at most {bound})",
                start.elapsed()
            );
        });
    }
}

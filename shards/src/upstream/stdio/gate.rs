//! The gateway-wide cap on stdio processes starting at once (`proxy.max_concurrent_spawns`).
//!
//! Starting a stdio server (fork, exec, runtime boot, `initialize`, the list calls) is the
//! most expensive thing a gateway does; a reload that adds fifty `npx` servers, or a crash
//! loop across shards, must not fork them all in the same second. Each shard supervises its
//! own children, so the cap is one shared counter: a lock-free compare-and-swap to take a
//! permit, a plain decrement to give it back. A supervisor that finds no permit free polls
//! again every 10 ms (spawns are rare, so no cross-thread waker is worth having) without
//! blocking its shard. The permit is held from the fork until the handshake and the lists
//! are done (or failed), which is the costly part.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The shared counter behind the cap; one per gateway, handed to every shard.
#[derive(Debug)]
pub struct SharedSpawnGate {
    in_use: AtomicUsize,
    limit: AtomicUsize,
}

impl SharedSpawnGate {
    /// A gate letting `limit` starts run at once (at least one).
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            in_use: AtomicUsize::new(0),
            limit: AtomicUsize::new(limit.max(1)),
        })
    }

    /// Changes the cap (config reload); starts already running keep their permits.
    pub fn set_limit(&self, limit: usize) {
        self.limit.store(limit.max(1), Ordering::Relaxed);
    }

    /// Starts running right now.
    pub fn in_use(&self) -> usize {
        self.in_use.load(Ordering::Relaxed)
    }

    /// A permit if one is free now.
    pub fn try_acquire(self: &Arc<Self>) -> Option<SpawnPermit> {
        let limit = self.limit.load(Ordering::Relaxed);
        let mut cur = self.in_use.load(Ordering::Relaxed);
        loop {
            if cur >= limit {
                return None;
            }
            match self.in_use.compare_exchange_weak(
                cur,
                cur + 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(SpawnPermit(self.clone())),
                Err(now) => cur = now,
            }
        }
    }

    /// Waits (without blocking the shard) for a permit; `None` if `give_up()` turns true
    /// first (the server is being stopped).
    pub async fn acquire(self: &Arc<Self>, give_up: impl Fn() -> bool) -> Option<SpawnPermit> {
        loop {
            if give_up() {
                return None;
            }
            if let Some(p) = self.try_acquire() {
                return Some(p);
            }
            monoio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// One running start; dropping it frees the slot.
#[derive(Debug)]
pub struct SpawnPermit(Arc<SharedSpawnGate>);

impl Drop for SpawnPermit {
    fn drop(&mut self) {
        self.0.in_use.fetch_sub(1, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_are_capped_and_given_back_on_drop() {
        let g = SharedSpawnGate::new(2);
        let a = g.try_acquire().unwrap();
        let b = g.try_acquire().unwrap();
        assert!(g.try_acquire().is_none());
        assert_eq!(g.in_use(), 2);
        drop(a);
        let c = g.try_acquire().unwrap();
        g.set_limit(1);
        drop(b);
        assert!(g.try_acquire().is_none(), "still one running, cap now 1");
        drop(c);
        assert!(g.try_acquire().is_some());
        assert_eq!(g.in_use(), 0);
    }

    #[test]
    fn a_zero_cap_still_lets_one_start_run() {
        let g = SharedSpawnGate::new(0);
        let p = g.try_acquire();
        assert!(p.is_some());
        assert!(g.try_acquire().is_none());
    }

    #[test]
    fn permits_hold_across_threads() {
        let g = SharedSpawnGate::new(3);
        let max = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (g, max) = (g.clone(), max.clone());
                std::thread::spawn(move || {
                    for _ in 0..2000 {
                        if let Some(_p) = g.try_acquire() {
                            max.fetch_max(g.in_use(), Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(max.load(Ordering::Relaxed) <= 3);
        assert_eq!(g.in_use(), 0);
    }
}

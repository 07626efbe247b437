//! One shard's response cache and single-flight batcher (`[cache]`).
//!
//! What is cached: `resources/read` results, and (when the operator opts in) `tools/call`
//! results of tools their backend annotates both `readOnlyHint` and `idempotentHint`. Lists
//! need no entry here: they are rendered from the catalog snapshot and never forwarded.
//!
//! The key ([`key`]) holds the era, the backend, the gateway's name or URI, the raw
//! arguments, and the caller's **role set** (its RBAC view), so one role's answer never
//! reaches another; a result a 2026 backend marks `cacheScope: "private"` is keyed by the
//! principal too. An entry lives `[cache] ttl_ms`, or the backend's `ttlMs` when smaller
//! (`ttlMs: 0` is not cached), and dies with the snapshot it was filled under: a reload or
//! any backend's `list_changed` makes a new snapshot. A `notifications/resources/updated`
//! received on this shard drops its cached reads. Tool errors (`isError`) are not cached.
//!
//! Single-flight ([`LocalCache::join`]): while a cacheable request is in flight, identical
//! ones (same public key) wait for its answer instead of calling the backend again; each
//! gets the result under its own JSON-RPC id. The cache and flights are shard-local
//! (`RefCell`), so nothing here locks.

pub mod lru;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Instant;

use futures_channel::oneshot;
use hashbrown::HashMap;

use crate::error::McpError;
use lru::LocalLru;

/// What kind of request an entry answers (also the metrics' `method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cacheable {
    /// `resources/read`.
    Read = 0,
    /// `tools/call` of a read-only, idempotent tool.
    Call = 1,
}

impl Cacheable {
    /// The `method` label.
    pub fn method(self) -> &'static str {
        match self {
            Cacheable::Read => "resources/read",
            Cacheable::Call => "tools/call",
        }
    }
}

/// One cached result.
pub struct LocalEntry {
    /// The JSON-RPC `result` as the client received it.
    pub result: Rc<[u8]>,
    expires: Instant,
    version: u64,
    reads_epoch: u64,
}

/// What a waiting identical request gets from the one in flight.
#[derive(Debug, Clone)]
pub enum Shared {
    /// The `result` to answer with.
    Result(Rc<[u8]>),
    /// The gateway-level error the call ended with.
    Error(McpError),
}

/// Counters per [`Cacheable`] kind, cumulative (the shard's stats report copies them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheCounters {
    /// Answered from the cache.
    pub hits: [u64; 2],
    /// Looked up and not found (then coalesced or sent on).
    pub misses: [u64; 2],
    /// Answered by another identical request's backend call (calls saved).
    pub coalesced: [u64; 2],
    /// Entries evicted for room (not expiries).
    pub evictions: u64,
}

/// Requests in flight by public key, each with the identical ones waiting for it.
type LocalFlights = HashMap<Box<[u8]>, Vec<oneshot::Sender<Shared>>, ahash::RandomState>;

/// The shard's cache.
#[derive(Default)]
pub struct LocalCache {
    lru: RefCell<LocalLru<LocalEntry>>,
    flights: RefCell<LocalFlights>,
    counters: Cell<CacheCounters>,
    reads_epoch: Cell<u64>,
}

/// Builds the cache key into `out` (cleared first). `private_to` is the principal for a
/// `cacheScope: "private"` entry.
#[allow(clippy::too_many_arguments)]
pub fn key(
    out: &mut Vec<u8>,
    what: Cacheable,
    modern: bool,
    backend: usize,
    name: &str,
    args: &[u8],
    view: &str,
    private_to: Option<&str>,
) {
    out.clear();
    out.push(what as u8);
    out.push(modern as u8);
    out.extend_from_slice(&(backend as u32).to_le_bytes());
    for part in [name.as_bytes(), args, view.as_bytes()] {
        out.extend_from_slice(&(part.len() as u32).to_le_bytes());
        out.extend_from_slice(part);
    }
    if let Some(p) = private_to {
        out.push(b'P');
        out.extend_from_slice(p.as_bytes());
    }
}

impl LocalCache {
    /// The counters so far.
    pub fn counters(&self) -> CacheCounters {
        self.counters.get()
    }

    /// Entries and bytes held now.
    pub fn size(&self) -> (usize, usize) {
        let l = self.lru.borrow();
        (l.len(), l.bytes())
    }

    fn count(&self, f: impl FnOnce(&mut CacheCounters)) {
        let mut c = self.counters.get();
        f(&mut c);
        self.counters.set(c);
    }

    /// The live entry under `key` (filled under snapshot `version`), if any. Does not
    /// count: the caller tries the public key and then the private one, and counts once.
    pub fn get(&self, key: &[u8], version: u64, now: Instant) -> Option<Rc<[u8]>> {
        let mut lru = self.lru.borrow_mut();
        let live = {
            let e = lru.get(key)?;
            (e.version == version && e.expires > now && e.reads_epoch == self.reads_epoch.get())
                .then(|| e.result.clone())
        };
        if live.is_none() {
            lru.remove(key);
        }
        live
    }

    /// Counts a hit or a miss of `what`.
    pub fn looked_up(&self, what: Cacheable, hit: bool) {
        let k = what as usize;
        self.count(|c| {
            if hit {
                c.hits[k] += 1
            } else {
                c.misses[k] += 1
            }
        });
    }

    /// Stores `result` under `key` until `expires`, within the bounds.
    pub fn put(
        &self,
        key: &[u8],
        result: Rc<[u8]>,
        version: u64,
        expires: Instant,
        bounds: (usize, usize),
    ) {
        let size = result.len() + 64;
        let entry = LocalEntry {
            result,
            expires,
            version,
            reads_epoch: self.reads_epoch.get(),
        };
        let evicted = self
            .lru
            .borrow_mut()
            .insert(key, entry, size, bounds.0, bounds.1);
        if evicted > 0 {
            self.count(|c| c.evictions += evicted);
        }
    }

    /// A backend said a resource changed: every cached read of this shard is stale.
    pub fn resource_updated(&self) {
        self.reads_epoch.set(self.reads_epoch.get() + 1);
    }

    /// Joins the identical request in flight under `key`: a receiver for its answer, or
    /// `None` when there is none (the caller then leads: [`LocalCache::lead`]).
    pub fn join(&self, key: &[u8]) -> Option<oneshot::Receiver<Shared>> {
        let mut flights = self.flights.borrow_mut();
        let waiters = flights.get_mut(key)?;
        let (tx, rx) = oneshot::channel();
        waiters.push(tx);
        Some(rx)
    }

    /// Opens a flight under `key`; identical requests join it until [`Flight::land`] (or the
    /// flight is dropped, which sends them on their own way).
    pub fn lead(self: &Rc<Self>, key: &[u8]) -> Flight {
        self.flights.borrow_mut().insert(key.into(), Vec::new());
        Flight {
            cache: self.clone(),
            key: key.into(),
        }
    }
}

/// An open single-flight; dropping it without landing releases the waiters to call on
/// their own.
pub struct Flight {
    cache: Rc<LocalCache>,
    key: Box<[u8]>,
}

impl Flight {
    /// Hands `shared` to every waiter (counted as coalesced) and closes the flight.
    pub fn land(self, what: Cacheable, shared: Shared) {
        let waiters = self.cache.flights.borrow_mut().remove(&self.key);
        let mut n = 0;
        for tx in waiters.into_iter().flatten() {
            if tx.send(shared.clone()).is_ok() {
                n += 1;
            }
        }
        self.cache.count(|c| c.coalesced[what as usize] += n);
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        // Landed flights are already gone; otherwise the waiters' senders drop here.
        self.cache.flights.borrow_mut().remove(&self.key);
    }
}

#[cfg(test)]
mod tests;

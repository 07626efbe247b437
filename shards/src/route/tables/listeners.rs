//! The shard's open `subscriptions/listen` streams and their caps (the functions that open
//! and feed them are in `route/listen.rs`).

use std::sync::Arc;

use ahash::RandomState;
use hashbrown::HashMap;

use crate::rt::feed::FeedTx;

/// Longest request id (as JSON text) a listen may carry: it is kept for the stream's life.
pub const MAX_LISTEN_ID: usize = 256;

/// One open listen stream on this shard.
pub struct LocalListener {
    pub(in crate::route) id: Vec<u8>,
    pub(in crate::route) principal: Arc<str>,
    pub(in crate::route) tools: bool,
    pub(in crate::route) prompts: bool,
    pub(in crate::route) resources: bool,
    pub(in crate::route) tx: FeedTx,
    /// False until the acknowledgment is sent (resource subscriptions are acknowledged once
    /// the backends took them): nothing else goes out before it.
    pub(in crate::route) ready: bool,
    /// The resources it subscribed to, acknowledged (`route/listen_resources.rs`).
    pub(in crate::route) subs: Vec<ListenSub>,
}

/// One resource a listen subscribed to, and where its updates come from.
#[derive(Clone)]
pub struct ListenSub {
    /// The URI as the gateway lists it (what the client asked for and hears).
    pub(in crate::route) uri: String,
    /// The backend's id and its own URI.
    pub(in crate::route) server: String,
    pub(in crate::route) original: String,
    /// Snapshot index of the backend (to forward `resources/subscribe` to it).
    pub(in crate::route) backend: usize,
    /// The backend speaks 2026-07-28 only (the shard's resource listen carries the URI).
    pub(in crate::route) modern_only: bool,
    pub(in crate::route) timeout: std::time::Duration,
}

/// The shard's open listens, by a key local to the shard.
#[derive(Default)]
pub struct Listeners {
    pub(in crate::route) map: HashMap<u64, LocalListener, RandomState>,
    pub(in crate::route) next: u64,
}

impl Listeners {
    /// Open listens.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Forgets listens whose stream has ended; returns how many of `principal`'s remain.
    pub(in crate::route) fn prune_count(&mut self, principal: &str) -> usize {
        let mut mine = 0;
        self.map.retain(|_, l| {
            let open = !l.tx.is_closed();
            mine += usize::from(open && &*l.principal == principal);
            open
        });
        mine
    }

    /// Checks the caps (`cap` listens, `cap_principal` for `l.principal`), then adds `l`.
    pub(in crate::route) fn admit(
        &mut self,
        l: LocalListener,
        cap: usize,
        cap_principal: usize,
    ) -> Result<u64, (CapHit, LocalListener)> {
        let mine = self.prune_count(&l.principal);
        if mine >= cap_principal {
            return Err((CapHit::Principal, l));
        }
        if self.map.len() >= cap {
            return Err((CapHit::Global, l));
        }
        let key = self.next;
        self.next += 1;
        self.map.insert(key, l);
        Ok(key)
    }
}

/// Which cap refused a listen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::route) enum CapHit {
    Global,
    Principal,
}

//! [`Upstreams`]: everything one shard holds of its backends, in one place.
//!
//! The backends by id (an HTTP pool, a stdio child this shard owns, a pointer to the shard
//! that owns one, or a pool of instances), the stdio children this shard supervises, the
//! per-backend in-flight counts that enforce `max_inflight`, and the gateway-wide gate on
//! stdio starts. The router reads it to call backends; the composition root fills it from
//! the snapshot (`setup.rs`) and changes it on reload (`apply.rs`). It names nothing above
//! the upstream layer.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use ahash::RandomState;
use futures_channel::oneshot;
use hashbrown::HashMap;

use crate::upstream::stdio::gate::SharedSpawnGate;
use crate::upstream::stdio::LocalStdioSlot;
use crate::upstream::LocalBackend;

/// A stdio child this shard owns, and the signal that its supervisor has finished.
pub type OwnedStdio = (Rc<LocalStdioSlot>, Option<oneshot::Receiver<()>>);

/// One shard's backends.
pub struct Upstreams {
    /// Backends by id (a pool member of a multi-instance server also as `<id>#<k>`).
    pub backends: RefCell<HashMap<String, Rc<LocalBackend>, RandomState>>,
    /// stdio children this shard owns and supervises.
    pub owned: RefCell<Vec<OwnedStdio>>,
    /// Backend calls in flight from this shard, by backend id (for `max_inflight`).
    pub inflight: RefCell<HashMap<Rc<str>, usize, RandomState>>,
    /// The gateway-wide cap on stdio starts (`proxy.max_concurrent_spawns`), shared by every
    /// shard.
    pub spawn_gate: Arc<SharedSpawnGate>,
}

impl Upstreams {
    /// No backends yet; stdio starts go through `spawn_gate`.
    pub fn new(spawn_gate: Arc<SharedSpawnGate>) -> Self {
        Upstreams {
            backends: RefCell::default(),
            owned: RefCell::default(),
            inflight: RefCell::default(),
            spawn_gate,
        }
    }

    /// The backend `id`, if this shard has it.
    pub fn get(&self, id: &str) -> Option<Rc<LocalBackend>> {
        self.backends.borrow().get(id).cloned()
    }
}

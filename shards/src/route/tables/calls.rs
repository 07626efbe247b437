//! The calls in flight on this shard, and the one counter behind every number the router
//! hands out: progress tokens and server-to-client ids (`"o1m.<shard>.<n>"`), stream and park
//! numbers. Keyed by session and client id, so a cancellation or an answer can only reach the
//! call of the session that sent it.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use ahash::RandomState;
use futures_channel::mpsc;
use hashbrown::HashMap;

use crate::upstream::{CancelTx, LocalBackend};

/// Where a client's answer to a relayed server-to-client request goes.
pub struct S2cRoute {
    pub(crate) handle: Rc<LocalBackend>,
    pub(crate) replica: usize,
    pub(crate) backend_request_id: Vec<u8>,
}

/// Where a client's answer to a request the gateway made itself goes: a 2026 backend's
/// input request relayed to a 2025 client (`route/relay_input.rs`), answered by slot.
pub struct InputSlot {
    pub(crate) tx: mpsc::UnboundedSender<(usize, Vec<u8>)>,
    pub(crate) slot: usize,
}

/// The key of a call in the tables: its session (empty for a stateless 2026 call) and the
/// client's JSON-RPC id, raw.
pub fn inflight_key(sid: &str, client_id: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(sid.len() + 1 + client_id.len());
    k.extend_from_slice(sid.as_bytes());
    k.push(0);
    k.extend_from_slice(client_id);
    k
}

/// [`inflight_key`] built once, shared: a session's call holds it to leave the table and
/// the table holds it as its key, for one allocation per call.
pub fn inflight_key_rc(sid: &str, client_id: &[u8]) -> Rc<[u8]> {
    // Exact-length iterators: collected into the `Rc` with a single allocation.
    sid.bytes()
        .chain(std::iter::once(0))
        .chain(client_id.iter().copied())
        .collect()
}

/// The shard's calls in flight.
pub struct LocalCalls {
    /// Forwarded calls a client may cancel: [`inflight_key`] → cancel signal.
    pub inflight: RefCell<HashMap<Rc<[u8]>, CancelTx, RandomState>>,
    /// Server-to-client requests relayed to a client and not answered yet, by
    /// [`inflight_key`] of the gateway's id.
    pub s2c: RefCell<HashMap<Vec<u8>, S2cRoute, RandomState>>,
    /// A 2026 backend's input requests relayed to a 2025 client and not answered yet, by
    /// [`inflight_key`] of the gateway's id.
    pub inputs: RefCell<HashMap<Vec<u8>, InputSlot, RandomState>>,
    next: Cell<u64>,
}

impl Default for LocalCalls {
    fn default() -> Self {
        LocalCalls {
            inflight: RefCell::default(),
            s2c: RefCell::default(),
            inputs: RefCell::default(),
            next: Cell::new(1),
        }
    }
}

impl LocalCalls {
    /// A number no other call, stream or relayed request of this shard has had. The only
    /// place they are made, so two sessions can never be handed the same one.
    pub fn mint(&self) -> u64 {
        let n = self.next.get();
        self.next.set(n + 1);
        n
    }
}

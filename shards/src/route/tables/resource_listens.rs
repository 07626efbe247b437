//! This shard's `subscriptions/listen` streams toward 2026-only backends that carry its 2025
//! sessions' resource subscriptions, one per backend (`route/resource_listen.rs` holds them
//! open and changes them).

use std::collections::BTreeMap;

use ahash::RandomState;
use futures_channel::{mpsc, oneshot};
use hashbrown::{HashMap, HashSet};

use crate::error::McpError;

/// A `resources/subscribe` waiting for the listen that carries its URI.
pub struct Waiter {
    /// The generation of the URI set it needs (or a later one).
    pub(in crate::route) generation: u64,
    /// The backend's own URI.
    pub(in crate::route) uri: String,
    pub(in crate::route) tx: oneshot::Sender<Result<(), McpError>>,
}

/// One backend's listen on this shard.
pub struct LocalResourceListen {
    /// The backend's own URIs, each with the sessions of this shard subscribed to it.
    pub(in crate::route) uris: BTreeMap<String, HashSet<String, RandomState>>,
    /// Bumped each time the set of URIs changes.
    pub(in crate::route) generation: u64,
    /// The generation the open listen carries, once the backend acknowledged it.
    pub(in crate::route) acked: Option<u64>,
    /// Wakes the task that holds the listen: the set changed.
    pub(in crate::route) wake: mpsc::UnboundedSender<()>,
    pub(in crate::route) waiters: Vec<Waiter>,
}

/// This shard's listens, by backend id.
pub type ResourceListens = HashMap<String, LocalResourceListen, RandomState>;

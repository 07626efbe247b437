//! This node's place in a fleet: its id and the cluster keys (model layer).
//!
//! Nodes are independent processes behind a load balancer (`docs/fleet.md`). What lets them
//! work as one is shared secrets, not a protocol: every node reads the same key file, so a
//! session id or a `requestState` minted on one node verifies on all of them. A session id
//! names its node (`<node_id>.<random>.<mac>`, [`session_id`]) so the balancer can route it
//! and no node ever adopts another's session; a `requestState` names its node too, so a retry
//! that lands elsewhere is replayed rather than lost (`route/bridge.rs`).
//!
//! [`SharedCluster`] is published in every snapshot: the key file is re-read on reload and the
//! next snapshot carries the new keys. Outside a cluster the node has no id and one random
//! key drawn per process, which signs its `requestState`s as before.

pub mod keys;
pub mod mac;
pub mod session_id;

use std::sync::{Arc, OnceLock};

pub use keys::{KeyFileError, KeyRing};

/// Longest node id.
pub const MAX_NODE_ID: usize = 16;

/// Is `id` a valid node id (1-16 chars of `[a-z0-9-]`)?
pub fn valid_node_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_NODE_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The node's identity and keys, as one snapshot holds them.
#[derive(Debug)]
pub struct SharedCluster {
    /// `[cluster] node_id`; `None` outside a cluster.
    pub node: Option<Box<str>>,
    /// The keys: the cluster's, or the process's own.
    pub keys: KeyRing,
}

impl SharedCluster {
    /// A node of a cluster.
    pub fn node(node_id: &str, keys: KeyRing) -> SharedCluster {
        SharedCluster {
            node: Some(node_id.into()),
            keys,
        }
    }

    /// A gateway outside a cluster: no node id, one random key for the life of the process
    /// (the same `Arc` every time, so a state minted before a reload verifies after it).
    pub fn solo() -> Arc<SharedCluster> {
        static SOLO: OnceLock<Arc<SharedCluster>> = OnceLock::new();
        SOLO.get_or_init(|| {
            Arc::new(SharedCluster {
                node: None,
                keys: KeyRing::single("process", &random_bytes::<32>()),
            })
        })
        .clone()
    }

    /// The node id, or `""` outside a cluster.
    pub fn node_id(&self) -> &str {
        self.node.as_deref().unwrap_or("")
    }
}

/// `N` bytes from the kernel's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    let mut filled = 0;
    while filled < N {
        // SAFETY: writes at most the remaining bytes of our buffer.
        let n = unsafe { libc::getrandom(b[filled..].as_mut_ptr().cast(), N - filled, 0) };
        if n > 0 {
            filled += n as usize;
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids() {
        for ok in ["g1", "a", "node-7", "0123456789abcdef"] {
            assert!(valid_node_id(ok), "{ok}");
        }
        for bad in ["", "G1", "g.1", "g_1", "0123456789abcdefg", "g 1", "ü"] {
            assert!(!valid_node_id(bad), "{bad}");
        }
    }

    #[test]
    fn solo_key_is_one_per_process() {
        let a = SharedCluster::solo();
        let b = SharedCluster::solo();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.node_id(), "");
    }
}

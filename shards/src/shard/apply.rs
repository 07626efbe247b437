//! Applying a config reload on one shard.
//!
//! The control thread has already published the new snapshot; it then tells every shard
//! which servers to retire and which to start ([`crate::shard::ShardMsg::Reload`]). A
//! changed server is retired and started again; a server the reload did not touch keeps
//! its pools, sessions and processes. Retiring takes the server out of this shard's
//! upstream map at once (no new call reaches it), lets calls already under way finish (up
//! to `shutdown_grace_ms`), then stops its stdio children, which their supervisors reap.

use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::shard::setup::setup_backend;
use crate::shard::LocalShard;
use crate::snapshot::BackendSpec;

/// Retires `removed`, then sets up `added`.
pub fn apply(shard: &Rc<LocalShard>, removed: Vec<String>, added: Vec<BackendSpec>) {
    let snap = shard.router.snapshot.load_full();
    let grace = Duration::from_millis(snap.config.server.shutdown_grace_ms);
    for id in &removed {
        retire(shard, id, grace);
    }
    let connect_timeout = Duration::from_millis(snap.config.proxy.connect_timeout_ms);
    for spec in &added {
        setup_backend(shard, spec, connect_timeout);
    }
    if !removed.is_empty() || !added.is_empty() {
        tracing::debug!(shard = shard.id, removed = ?removed, added = added.len(), "reload applied on shard");
    }
}

fn retire(shard: &Rc<LocalShard>, id: &str, grace: Duration) {
    let pool_prefix = format!("{id}#");
    let gone: Vec<_> = {
        let mut map = shard.router.upstreams.backends.borrow_mut();
        let keys: Vec<String> = map
            .keys()
            .filter(|k| *k == id || k.starts_with(&pool_prefix))
            .cloned()
            .collect();
        keys.iter().filter_map(|k| map.remove(k)).collect()
    };
    for b in &gone {
        b.retire();
    }
    crate::route::per_client::release_server(&shard.router, id);
    let slots: Vec<_> = {
        let mut owned = shard.router.upstreams.owned.borrow_mut();
        let (mine, keep): (Vec<_>, Vec<_>) = owned.drain(..).partition(|(s, _)| s.id() == id);
        *owned = keep;
        mine
    };
    if slots.is_empty() {
        return;
    }
    let server = id.to_string();
    monoio::spawn(async move {
        let deadline = Instant::now() + grace;
        while slots.iter().any(|(s, _)| s.inflight() > 0) && Instant::now() < deadline {
            monoio::time::sleep(Duration::from_millis(10)).await;
        }
        for (slot, _) in &slots {
            slot.stop();
        }
        for (slot, rx) in slots {
            if let Some(rx) = rx {
                if monoio::time::timeout(Duration::from_secs(10), rx)
                    .await
                    .is_err()
                {
                    tracing::error!(
                        server = slot.id(),
                        "retired stdio backend did not stop in time"
                    );
                }
            }
        }
        tracing::info!(server = %server, "retired stdio backend stopped");
    });
}

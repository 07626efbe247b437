//! Per-client upstream sessions (`session = "per_client"`).
//!
//! For a backend configured this way, each 2025-era client session gets its own upstream:
//! an HTTP pool and session initialized with that client's capabilities, or a stdio process
//! of its own. They live on the session's shard (every request of a session is served
//! there), are created on first use, and are stopped when the session ends (DELETE, or idle
//! expiry). Stateless 2026 clients have no session and use the shared upstream.

use std::rc::Rc;
use std::time::Duration;

use crate::route::router::Router;
use crate::route::tables::per_client::LocalPerClient;
use crate::snapshot::BackendSpec;
use crate::upstream::http::LocalHttpBackend;
use crate::upstream::stdio::LocalStdioSlot;
use crate::upstream::LocalBackend;

fn key(sid: &str, backend: &str) -> String {
    format!("{sid}\u{0}{backend}")
}

/// The upstream of `server` for session `sid`, if it has one.
pub fn handle_of(router: &Rc<Router>, sid: &str, server: &str) -> Option<Rc<LocalBackend>> {
    router
        .per_client
        .borrow()
        .get(&key(sid, server))
        .map(|p| p.handle.clone())
}

/// The upstream of `spec` for session `sid`, created on first use.
pub fn handle_for(router: &Rc<Router>, sid: &str, spec: &BackendSpec) -> Option<Rc<LocalBackend>> {
    let k = key(sid, &spec.id);
    if let Some(p) = router.per_client.borrow().get(&k) {
        return Some(p.handle.clone());
    }
    let caps = router.sessions.borrow().get(sid)?.caps_json.clone();
    let connect = Duration::from_millis(router.snapshot.load().config.proxy.connect_timeout_ms);
    let entry = match spec.transport {
        crate::config::Transport::Http => LocalPerClient {
            handle: Rc::new(LocalBackend::Http(Rc::new(LocalHttpBackend::for_client(
                spec.clone(),
                connect,
                caps,
            )))),
            stdio: None,
        },
        crate::config::Transport::Stdio => {
            let slot = Rc::new(LocalStdioSlot::for_client(spec.clone(), caps));
            let (tx, rx) = futures_channel::oneshot::channel();
            // The shared instance reports the catalog; this one only serves its client, and
            // what it announces unasked (its resource updates, its tasks' status) is this
            // session's alone.
            let updates = crate::route::pushes::session_updates(router, sid, &spec.id);
            monoio::spawn(crate::upstream::stdio::supervise(
                slot.clone(),
                spec.timeout,
                None,
                updates,
                tx,
                router.upstreams.spawn_gate.clone(),
            ));
            LocalPerClient {
                handle: Rc::new(LocalBackend::Stdio(slot.clone())),
                stdio: Some((slot, rx)),
            }
        }
    };
    let handle = entry.handle.clone();
    router.per_client.borrow_mut().insert(k, entry);
    tracing::debug!(session = sid, server = %spec.id, "per-client upstream created");
    Some(handle)
}

/// A reload removed or changed `server`: every session's own upstream of it goes (their
/// stdio children are stopped and reaped by their supervisors; the next call of the
/// session makes a fresh one from the new config).
pub fn release_server(router: &Rc<Router>, server: &str) {
    let suffix = format!("\u{0}{server}");
    let gone: Vec<LocalPerClient> = {
        let mut map = router.per_client.borrow_mut();
        let keys: Vec<String> = map
            .keys()
            .filter(|k| k.ends_with(&suffix))
            .cloned()
            .collect();
        keys.iter().filter_map(|k| map.remove(k)).collect()
    };
    for p in gone {
        p.handle.retire();
        if let Some((slot, _)) = p.stdio {
            slot.stop();
        }
    }
}

/// The session ended: stop its upstreams (stdio children are stopped and reaped by their
/// supervisors).
pub fn release(router: &Rc<Router>, sid: &str) {
    let prefix = format!("{sid}\u{0}");
    let gone: Vec<LocalPerClient> = {
        let mut map = router.per_client.borrow_mut();
        let keys: Vec<String> = map
            .keys()
            .filter(|k| k.starts_with(&prefix))
            .cloned()
            .collect();
        keys.iter().filter_map(|k| map.remove(k)).collect()
    };
    for p in gone {
        // An HTTP upstream's GET listeners (resource updates, task status) end with it.
        p.handle.retire();
        if let Some((slot, _)) = p.stdio {
            slot.stop();
        }
    }
}

/// Stops every per-client upstream (shutdown); returns what to wait for.
pub fn release_all(router: &Rc<Router>) -> Vec<crate::upstream::registry::OwnedStdio> {
    let all: Vec<LocalPerClient> = router
        .per_client
        .borrow_mut()
        .drain()
        .map(|(_, v)| v)
        .collect();
    let slots: Vec<crate::upstream::registry::OwnedStdio> = all
        .into_iter()
        .filter_map(|p| p.stdio)
        .map(|(slot, rx)| (slot, Some(rx)))
        .collect();
    for (s, _) in &slots {
        s.stop();
    }
    slots
}

/// Ends sessions idle for longer than `idle` (and their upstreams), every minute or so.
pub async fn expiry_task(router: Rc<Router>, idle: Duration) {
    let tick = (idle / 4).clamp(Duration::from_millis(200), Duration::from_secs(60));
    while !router.draining.get() {
        monoio::time::sleep(tick).await;
        // A session whose client still listens on its GET stream is not idle.
        let gone = {
            let listening = |sid: &str, s: &crate::route::session::LocalSession| {
                s.get_stream_no
                    .is_some_and(|n| crate::route::resume::attached(&router, sid, n))
            };
            router.sessions.borrow_mut().expire(idle, listening)
        };
        for sid in gone {
            tracing::debug!(session = %sid, "idle session expired");
            release(&router, &sid);
            crate::route::resume::forget_session(&router, &sid);
        }
    }
}

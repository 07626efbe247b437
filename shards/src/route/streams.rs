//! Messages for a session's standalone GET stream: list changes and resource updates.
//!
//! Each goes on exactly one stream (the session's GET stream), never broadcast to request
//! streams. A session without an open GET stream simply misses them, as the transport allows;
//! a stream whose client went away is forgotten on the first failed send.

use std::rc::Rc;

use crate::catalog::uri;
use crate::route::router::Router;

fn push_to_all(
    router: &Rc<Router>,
    msg: &[u8],
    want: impl Fn(&crate::route::session::LocalSession) -> bool,
) {
    let mut sessions = router.sessions.borrow_mut();
    for (_, s) in sessions.iter_mut() {
        if !want(s) {
            continue;
        }
        if let Some(tx) = &s.get_stream {
            if tx.unbounded_send(msg.to_vec()).is_err() {
                s.get_stream = None;
            }
        }
    }
}

/// The catalog changed: one `list_changed` per changed kind to every session of this shard.
pub fn list_changed(router: &Rc<Router>, tools: bool, prompts: bool, resources: bool) {
    router
        .listeners
        .borrow_mut()
        .list_changed(tools, prompts, resources);
    let kinds = [
        (
            tools,
            &br#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#[..],
        ),
        (
            prompts,
            &br#"{"jsonrpc":"2.0","method":"notifications/prompts/list_changed"}"#[..],
        ),
        (
            resources,
            &br#"{"jsonrpc":"2.0","method":"notifications/resources/list_changed"}"#[..],
        ),
    ];
    for (changed, msg) in kinds {
        if changed {
            push_to_all(router, msg, |_| true);
        }
    }
}

/// A backend resource changed: `notifications/resources/updated` with the URI as clients see
/// it, to the sessions of this shard that subscribed to it.
pub fn resource_updated(router: &Rc<Router>, server: &str, original: &str) {
    resource_updated_for(router, server, original, None);
}

/// As [`resource_updated`]; with `only`, the update came from that session's own upstream
/// (`session = "per_client"`) and reaches that session alone.
pub fn resource_updated_for(router: &Rc<Router>, server: &str, original: &str, only: Option<&str>) {
    router.cache.resource_updated();
    let exposed = {
        let snap = router.snapshot.load();
        match snap.backend_index(server) {
            Some(i) if snap.catalog.uri_prefix_of(i) => uri::wrap(server, original),
            _ => original.to_string(),
        }
    };
    let mut msg =
        br#"{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"#.to_vec();
    crate::wire::jsonrpc::push_json_str(&mut msg, &exposed);
    msg.extend_from_slice(b"}}");
    match only {
        None => {
            push_to_all(router, &msg, |s| s.subscriptions.contains(&exposed));
            router.listeners.borrow_mut().resource_updated(&exposed);
        }
        Some(sid) => {
            let mut sessions = router.sessions.borrow_mut();
            if let Some(s) = sessions.get_mut(sid) {
                if s.subscriptions.contains(&exposed) {
                    if let Some(tx) = &s.get_stream {
                        if tx.unbounded_send(msg).is_err() {
                            s.get_stream = None;
                        }
                    }
                }
            }
        }
    }
}

/// Where a backend's pushed message came from: which replica's upstream session, and, for a
/// `session = "per_client"` server, whose.
#[derive(Clone, Default)]
pub struct PushFrom {
    /// The replica (0 for stdio and single-URL servers).
    pub replica: u32,
    /// The session whose own upstream it is.
    pub session: Option<Rc<str>>,
}

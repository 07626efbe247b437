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
    push_to_all(router, &msg, |s| s.subscriptions.contains(&exposed));
    router.listeners.borrow_mut().resource_updated(&exposed);
}

/// What the router does with a message an HTTP backend pushes on its GET stream:
/// `list_changed` re-lists (owner shard only), `resources/updated` reaches this shard's
/// subscribed sessions, `tasks/status` the session of this shard whose task it is (each
/// shard listens on its own upstream session).
pub fn push_handler(
    router: &Rc<Router>,
    server: &str,
    relist: Option<crate::upstream::relist::RelistTx>,
) -> crate::upstream::listen::OnPush {
    let router = router.clone();
    let server = server.to_string();
    Rc::new(move |msg: Vec<u8>| {
        use sonic_rs::JsonValueTrait;
        let method = sonic_rs::get(&msg[..], ["method"])
            .ok()
            .and_then(|m| m.as_str().map(str::to_string))
            .unwrap_or_default();
        if let Some(kinds) = crate::catalog::ListsChanged::from_method(&method) {
            if let Some(tx) = &relist {
                tx.poke(kinds);
            }
        } else if method == "notifications/tasks/status" {
            crate::route::tasks::wire::status(&router, &server, &msg);
        } else if method == "notifications/resources/updated" {
            if let Some(uri) = sonic_rs::get(&msg[..], ["params", "uri"])
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
            {
                crate::route::streams::resource_updated(&router, &server, &uri);
            }
        }
    })
}

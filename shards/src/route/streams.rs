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

/// A session (`sid`; `None`: the shard's shared upstream) subscribed to a resource of HTTP
/// server `server`: this shard listens on the GET stream of every replica of the upstream
/// the subscription went to (a subscribe may land on any replica; for a `session =
/// "per_client"` server, the session's own upstream, created here if the subscribe is its
/// first request). Each starts once.
pub fn listen_for_updates(router: &Rc<Router>, server: &str, sid: Option<&str>) {
    let own = sid.and_then(|sid| {
        let snap = router.snapshot.load();
        let spec = snap
            .backend_index(server)
            .map(|i| snap.backends[i].clone())
            .filter(|s| s.per_client)?;
        Some((
            crate::route::per_client::handle_for(router, sid, &spec),
            sid,
        ))
    });
    let (handle, session) = match own {
        Some((h, sid)) => (h, Some(Rc::<str>::from(sid))),
        None => (
            router.upstreams.backends.borrow().get(server).cloned(),
            None,
        ),
    };
    if let Some(crate::upstream::LocalBackend::Http(h)) = handle.as_deref() {
        for i in 0..h.replica_count() {
            let from = PushFrom {
                replica: i as u32,
                session: session.clone(),
            };
            h.ensure_listening(
                i,
                push_handler(router, server, None, from),
                router.draining.clone(),
            );
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

/// What the router does with a message an HTTP backend pushes on a GET stream (`from`: whose):
/// `list_changed` re-lists (owner shard only), `resources/updated` reaches this shard's
/// subscribed sessions (a per-client upstream's: its session only), `tasks/status` the session
/// of this shard whose task it is on that replica (each shard listens on its own upstream
/// sessions).
pub fn push_handler(
    router: &Rc<Router>,
    server: &str,
    relist: Option<crate::upstream::relist::RelistTx>,
    from: PushFrom,
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
            crate::route::tasks::wire::status(&router, &server, &from, &msg);
        } else if method == "notifications/resources/updated" {
            if let Some(uri) = sonic_rs::get(&msg[..], ["params", "uri"])
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
            {
                resource_updated_for(&router, &server, &uri, from.session.as_deref());
            }
        }
    })
}

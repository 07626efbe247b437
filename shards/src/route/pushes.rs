//! Where what a backend pushes unasked goes, and which of its streams this shard listens on.
//!
//! A 2025 backend sends list changes, resource updates and task status notifications outside
//! any request: an HTTP backend on the GET stream of an upstream session, a stdio child on its
//! channel. This module owns the routing of those messages to sessions: it starts the GET
//! listeners a shard needs (replica 0 for list changes, every replica once a resource is
//! subscribed, the replica that holds a task; a per-client server's own upstream), and tells
//! each message by where it came from ([`PushFrom`]), since a backend's task ids are unique
//! only within one replica or process. Delivery itself is `streams.rs` (list changes, resource
//! updates); the session task table is the session's.

use std::rc::Rc;

use crate::route::router::Router;
use crate::route::streams::PushFrom;
use crate::wire::jsonrpc::push_json_str;

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
            status(&router, &server, &from, &msg);
        } else if method == "notifications/resources/updated" {
            if let Some(uri) = sonic_rs::get(&msg[..], ["params", "uri"])
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
            {
                crate::route::streams::resource_updated_for(
                    &router,
                    &server,
                    &uri,
                    from.session.as_deref(),
                );
            }
        }
    })
}

/// A session (`sid`; `None`: the shard's shared upstream) subscribed to a resource of HTTP
/// server `server`: this shard listens on the GET stream of every replica of the upstream
/// the subscription went to (a subscribe may land on any replica; for a `session =
/// "per_client"` server, the session's own upstream, created here if the subscribe is its
/// first request). Each starts once.
pub fn listen_for_updates(router: &Rc<Router>, server: &str, sid: Option<&str>) {
    let (handle, session) = upstream_of(router, server, sid, true);
    if let Some(crate::upstream::LocalBackend::Http(h)) = handle.as_deref() {
        for i in 0..h.replica_count() {
            listen_on(router, h, server, i as u32, session.clone());
        }
    }
}

/// A 2025 HTTP backend sends a task's status notifications on the GET stream of the
/// upstream session that created the task: this shard listens there from the first task on,
/// on that replica; for a `session = "per_client"` server, on the session's own upstream
/// (a per-client stdio child's notifications reach its session by [`session_updates`]).
pub(crate) fn listen_for_status(router: &Rc<Router>, server: &str, replica: u32, sid: &str) {
    let (handle, session) = upstream_of(router, server, Some(sid), false);
    if let Some(crate::upstream::LocalBackend::Http(h)) = handle.as_deref() {
        listen_on(router, h, server, replica, session);
    }
}

/// The upstream of `server` that session `sid` uses, and the session it belongs to: its own
/// for a per-client server (created when `create`), else the shard's shared one.
fn upstream_of(
    router: &Rc<Router>,
    server: &str,
    sid: Option<&str>,
    create: bool,
) -> (Option<Rc<crate::upstream::LocalBackend>>, Option<Rc<str>>) {
    let per_client = sid.and_then(|sid| {
        let snap = router.snapshot.load();
        let spec = snap
            .backend_index(server)
            .map(|i| &snap.backends[i])
            .filter(|s| s.per_client)?;
        Some(if create {
            crate::route::per_client::handle_for(router, sid, spec)
        } else {
            crate::route::per_client::handle_of(router, sid, server)
        })
        .map(|h| (h, Rc::<str>::from(sid)))
    });
    match per_client {
        Some((h, sid)) => (h, Some(sid)),
        None => (
            router.upstreams.backends.borrow().get(server).cloned(),
            None,
        ),
    }
}

/// Starts (once) this shard's listener on `replica`'s GET stream of `h`.
fn listen_on(
    router: &Rc<Router>,
    h: &Rc<crate::upstream::http::LocalHttpBackend>,
    server: &str,
    replica: u32,
    session: Option<Rc<str>>,
) {
    let from = PushFrom { replica, session };
    h.ensure_listening(
        replica as usize,
        push_handler(router, server, None, from),
        router.draining.clone(),
    );
}

/// Delivers a per-client stdio child's `notifications/resources/updated` and
/// `notifications/tasks/status` to its session only (weakly held: the child's routes live in
/// the router's own table).
pub(crate) fn session_updates(
    router: &Rc<Router>,
    sid: &str,
    server: &str,
) -> crate::upstream::stdio::Updates {
    let router = Rc::downgrade(router);
    let from = PushFrom {
        replica: 0,
        session: Some(sid.into()),
    };
    let server = server.to_string();
    Rc::new(move |msg: Vec<u8>| {
        use sonic_rs::JsonValueTrait;
        let Some(router) = router.upgrade() else {
            return;
        };
        let method = sonic_rs::get(&msg[..], ["method"]).ok();
        if method.as_ref().and_then(|m| m.as_str()) == Some("notifications/tasks/status") {
            status(&router, &server, &from, &msg);
        } else if let Some(uri) = sonic_rs::get(&msg[..], ["params", "uri"])
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
        {
            crate::route::streams::resource_updated_for(
                &router,
                &server,
                &uri,
                from.session.as_deref(),
            );
        }
    })
}

/// A 2025 backend's `notifications/tasks/status` (`server`'s own task id in
/// `params.taskId`, sent from `from`): to the GET stream of the session of this shard that
/// created the task there, with the gateway's id. Dropped when no session here created it.
pub fn status(router: &Rc<Router>, server: &str, from: &PushFrom, msg: &[u8]) {
    let Some((range, backend_task)) = task_id_at(msg) else {
        return;
    };
    let mut sessions = router.sessions.borrow_mut();
    for (sid, s) in sessions.iter_mut() {
        if from.session.as_deref().is_some_and(|only| only != sid) {
            continue;
        }
        let Some(t) = s.tasks.iter().find(|t| {
            &*t.server == server && *t.backend_task == *backend_task && t.replica == from.replica
        }) else {
            continue;
        };
        let mut quoted = Vec::new();
        push_json_str(&mut quoted, &t.gw_id);
        let mut out = Vec::with_capacity(msg.len() + quoted.len());
        crate::wire::jsonrpc::splice(msg, &[(range, &quoted[..])], &mut out);
        if let Some(tx) = &s.get_stream {
            if tx.unbounded_send(out).is_err() {
                s.get_stream = None;
            }
        }
        return;
    }
}

/// The range (quotes included) and value of `params.taskId` in `msg`.
fn task_id_at(msg: &[u8]) -> Option<(std::ops::Range<usize>, String)> {
    use sonic_rs::JsonValueTrait;
    let v = sonic_rs::get(msg, ["params", "taskId"]).ok()?;
    let s = v.as_str()?.to_string();
    let raw = v.as_raw_str();
    let start = raw.as_ptr() as usize - msg.as_ptr() as usize;
    Some((start..start + raw.len(), s))
}

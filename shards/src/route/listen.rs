//! `subscriptions/listen` (2026-07-28): a long-lived SSE answer carrying list changes.
//!
//! The first message acknowledges the filter the gateway honours (only kinds it can really
//! report: never `taskIds`, whose status clients poll with `tasks/get`; asking for them
//! without the tasks extension is -32021); every message on the stream is tagged with the listen request's id as
//! `_meta["io.modelcontextprotocol/subscriptionId"]`, and only opted-in kinds are sent.
//!
//! This module owns the shard's table of open listens, and bounds it: each entry costs its
//! request id (client-chosen, so capped at [`MAX_LISTEN_ID`] bytes) and a channel, for as long
//! as the stream lives. An entry leaves the table when its stream ends (the reply's
//! `on_end` is dropped with it when the SSE writer returns: client gone, write failed,
//! shutdown; a small local task waiting on it removes the entry), and
//! closed entries are pruned whenever a listen registers or a change is sent, so nothing
//! accumulates on a stable catalog. The shard holds its share of `server.max_listens` and of
//! `server.max_listens_per_principal` (gateway-wide value divided by the shard count, rounded
//! up); beyond, the listen is refused with `-32000` and `Retry-After` (503 or 429).

use std::rc::{Rc, Weak};

use sonic_rs::JsonValueTrait;

use crate::error::McpError;
use crate::http::response::Reply;
use crate::route::lifecycle::{refused, Refusal};
use crate::route::router::Router;
use crate::route::session_table::share;
use crate::route::tables::listeners::{tagged, CapHit, ListenSub, LocalListener, MAX_LISTEN_ID};
use crate::rt::feed::feed;
use crate::wire::jsonrpc::{push_json_str, Envelope};

/// Removes listen `key` from the shard (its stream ended).
fn forget(router: &Weak<Router>, key: u64) {
    if let Some(router) = router.upgrade() {
        // Never re-entered while borrowed (nothing in the table drops a reply); if it were,
        // the entry's closed channel is pruned at the next registration.
        let gone = router
            .listeners
            .try_borrow_mut()
            .ok()
            .and_then(|mut t| t.map.remove(&key));
        if let Some(l) = gone {
            crate::route::listen_resources::release(&router, key, l.subs);
        }
    }
}

/// Opens a listen stream for the request in `body`, made by `caller`.
pub fn listen(
    router: &Rc<Router>,
    body: &[u8],
    env: &Envelope<'_>,
    caller: &crate::auth::verify::Principal,
) -> Reply {
    let principal: &str = &caller.name;
    let id = env.id_bytes(body);
    if id.len() > MAX_LISTEN_ID {
        let e = McpError::InvalidRequest(format!(
            "subscriptions/listen request id is {} bytes; at most {MAX_LISTEN_ID} (it is kept for the life of the stream)",
            id.len()
        ));
        return Reply::json(400, e.to_response(id));
    }
    // Task status notifications need the tasks extension (SEP-2663); with it, the ids are
    // not acknowledged (clients poll `tasks/get`), which the extension allows.
    if sonic_rs::get(body, ["params", "notifications", "taskIds"]).is_ok()
        && !crate::route::tasks::declares_extension(body, env)
    {
        let e = crate::route::tasks::needs_extension("subscriptions/listen with taskIds");
        return Reply::json(400, e.to_response(id));
    }
    let uris = match crate::route::listen_resources::requested(body) {
        Ok(u) => u,
        Err(e) => return Reply::json(400, e.to_response(id)),
    };
    let want = |k: &str| {
        sonic_rs::get(body, ["params", "notifications", k])
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    };
    let snap = router.snapshot.load();
    let caps = snap.catalog_modern.caps.clone();
    let (cap_total, per_principal) = (
        snap.config.server.max_listens,
        snap.config.server.max_listens_per_principal,
    );
    let shards = router.shards;
    let cap = share(cap_total, shards);
    let cap_principal = match per_principal {
        0 => usize::MAX,
        n => share(n, shards),
    };
    let (tx, rx) = feed(LISTEN_QUEUE_BYTES);
    let l = LocalListener {
        id: id.to_vec(),
        principal: principal.into(),
        tools: want("toolsListChanged"),
        prompts: want("promptsListChanged") && caps.prompts,
        resources: want("resourcesListChanged") && caps.resources,
        tx,
        ready: uris.is_empty(),
        subs: Vec::new(),
    };
    let mut accepted = Vec::new();
    for (on, k) in [
        (l.tools, "toolsListChanged"),
        (l.prompts, "promptsListChanged"),
        (l.resources, "resourcesListChanged"),
    ] {
        if on {
            accepted.push(format!(r#""{k}":true"#));
        }
    }
    let asked_uris = !uris.is_empty();
    let ack = move |id: &[u8], subs: &[ListenSub]| {
        let mut kinds = accepted.join(",");
        if asked_uris {
            let mut list = Vec::new();
            for (i, s) in subs.iter().enumerate() {
                if i > 0 {
                    list.push(b',');
                }
                push_json_str(&mut list, &s.uri);
            }
            if !kinds.is_empty() {
                kinds.push(',');
            }
            kinds.push_str(r#""resourceSubscriptions":["#);
            kinds.push_str(&String::from_utf8_lossy(&list));
            kinds.push(']');
        }
        tagged(
            "notifications/subscriptions/acknowledged",
            id,
            &format!(r#""notifications":{{{kinds}}},"#),
        )
    };
    let subs = if asked_uris {
        crate::route::listen_resources::resolve(router, caller, uris)
    } else {
        let _ = l.tx.send(ack(&l.id, &[]));
        Vec::new()
    };
    let listen_id = l.id.clone();
    let admitted = router.listeners.borrow_mut().admit(l, cap, cap_principal);
    match admitted {
        Ok(key) => {
            let (done, ended) = futures_channel::oneshot::channel::<()>();
            let weak = Rc::downgrade(router);
            monoio::spawn(async move {
                // Completes (cancelled) when the reply holding `done` is dropped.
                let _ = ended.await;
                forget(&weak, key);
            });
            if asked_uris {
                monoio::spawn(crate::route::listen_resources::acknowledge(
                    router.clone(),
                    key,
                    subs,
                    move |took| ack(&listen_id, took),
                ));
            }
            let mut r = Reply::sse(rx);
            r.on_end = Some(done);
            r
        }
        Err((hit, _)) => {
            let why: Refusal = match hit {
                CapHit::Global => (
                    503,
                    format!("too many listens: the gateway holds server.max_listens ({cap_total}, {cap} on this core) open subscriptions/listen streams; retry later"),
                    "gateway",
                ),
                CapHit::Principal => (
                    429,
                    format!("too many listens for this caller: its server.max_listens_per_principal ({per_principal}, {cap_principal} on this core) are all open; close one or retry later"),
                    "client",
                ),
            };
            refused(router, "subscriptions/listen", why, id)
        }
    }
}

/// Bytes of notifications a listen stream may have queued toward a client that does not read
/// them (each is about 150 bytes; a catalog that changes faster than its listeners read is
/// cut off them, and they listen again).
pub const LISTEN_QUEUE_BYTES: usize = 64 << 10;

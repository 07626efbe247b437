//! Messages for a session's standalone GET stream: list changes and resource updates.
//!
//! Each goes on exactly one stream (the session's GET stream), never broadcast to request
//! streams. A session without an open GET stream simply misses them, as the transport allows;
//! a stream whose client went away is forgotten on the first failed send.

use std::rc::Rc;

use crate::catalog::uri;
use crate::shard::LocalShard;

fn push_to_all(
    shard: &Rc<LocalShard>,
    msg: &[u8],
    want: impl Fn(&crate::mcp::session::LocalSession) -> bool,
) {
    let mut sessions = shard.sessions.borrow_mut();
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
pub fn list_changed(shard: &Rc<LocalShard>, tools: bool, prompts: bool, resources: bool) {
    crate::mcp::listen::list_changed(shard, tools, prompts, resources);
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
            push_to_all(shard, msg, |_| true);
        }
    }
}

/// A backend resource changed: `notifications/resources/updated` with the URI as clients see
/// it, to the sessions of this shard that subscribed to it.
pub fn resource_updated(shard: &Rc<LocalShard>, server: &str, original: &str) {
    shard.cache.resource_updated();
    let exposed = {
        let snap = shard.snapshot.load();
        match snap.backend_index(server) {
            Some(i) if snap.catalog.uri_prefix_of(i) => uri::wrap(server, original),
            _ => original.to_string(),
        }
    };
    let mut msg =
        br#"{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"#.to_vec();
    crate::codec::jsonrpc::push_json_str(&mut msg, &exposed);
    msg.extend_from_slice(b"}}");
    push_to_all(shard, &msg, |s| s.subscriptions.contains(&exposed));
}

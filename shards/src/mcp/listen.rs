//! `subscriptions/listen` (2026-07-28): a long-lived SSE answer carrying list changes.
//!
//! The first message acknowledges the filter the gateway honours (only kinds it can really
//! report); every message on the stream is tagged with the listen request's id as
//! `_meta["io.modelcontextprotocol/subscriptionId"]`, and only opted-in kinds are sent. The
//! stream lives until the client goes away (the first failed send forgets it).

use std::rc::Rc;

use futures_channel::mpsc;
use sonic_rs::JsonValueTrait;

use crate::http::response::Reply;
use crate::mcp::jsonrpc::Envelope;
use crate::shard::LocalShard;

/// One open listen stream on this shard.
pub struct LocalListener {
    id: Vec<u8>,
    tools: bool,
    prompts: bool,
    resources: bool,
    tx: mpsc::UnboundedSender<Vec<u8>>,
}

fn tagged(method: &str, id: &[u8], params: &str) -> Vec<u8> {
    let mut m = format!(r#"{{"jsonrpc":"2.0","method":"{method}","params":{{{params}"_meta":{{"io.modelcontextprotocol/subscriptionId":"#).into_bytes();
    m.extend_from_slice(id);
    m.extend_from_slice(b"}}}");
    m
}

/// Opens a listen stream for the request in `body`.
pub fn listen(shard: &Rc<LocalShard>, body: &[u8], env: &Envelope<'_>) -> Reply {
    let want = |k: &str| {
        sonic_rs::get(body, ["params", "notifications", k])
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    };
    let caps = shard.snapshot.load().catalog_modern.caps.clone();
    let (tx, rx) = mpsc::unbounded();
    let l = LocalListener {
        id: env.id_bytes(body).to_vec(),
        tools: want("toolsListChanged"),
        prompts: want("promptsListChanged") && caps.prompts,
        resources: want("resourcesListChanged") && caps.resources,
        tx,
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
    let ack = tagged(
        "notifications/subscriptions/acknowledged",
        &l.id,
        &format!(r#""notifications":{{{}}},"#, accepted.join(",")),
    );
    let _ = l.tx.unbounded_send(ack);
    shard.listeners.borrow_mut().push(l);
    Reply::sse(rx)
}

/// The catalog changed: tell each listener that opted in to that kind.
pub fn list_changed(shard: &Rc<LocalShard>, tools: bool, prompts: bool, resources: bool) {
    shard.listeners.borrow_mut().retain(|l| {
        let kinds = [
            (tools && l.tools, "notifications/tools/list_changed"),
            (prompts && l.prompts, "notifications/prompts/list_changed"),
            (
                resources && l.resources,
                "notifications/resources/list_changed",
            ),
        ];
        kinds
            .iter()
            .filter(|(on, _)| *on)
            .all(|(_, m)| l.tx.unbounded_send(tagged(m, &l.id, "")).is_ok())
            && !l.tx.is_closed()
    });
}

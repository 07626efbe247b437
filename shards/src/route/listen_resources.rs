//! Resource subscriptions of a 2026-07-28 `subscriptions/listen` (`resourceSubscriptions`).
//!
//! Each URI the client names (at most [`MAX_LISTEN_URIS`]) is mapped to its backend through
//! the catalog (`route_uri`) and the caller's policy; one it may not see, or whose backend has
//! no subscriptions, is left out of the acknowledgment (the spec's way to decline it). The
//! rest are subscribed upstream before the acknowledgment goes out: a 2025 backend gets
//! `resources/subscribe` on the shard's shared upstream session (an HTTP one's GET stream is
//! listened to, where its updates arrive); a 2026-only backend gets the URI added to the
//! shard's resource listen toward it (`route/resource_listen.rs`), under a key naming this
//! listen. A URI the backend refuses is left out too. Updates reach
//! `streams::resource_updated`, which rewrites the URI to the gateway's and hands it to
//! `Listeners::resource_updated` (`route/tables/listeners.rs`):
//! each listen that was acknowledged that URI hears it once, tagged with its
//! `subscriptionId`. When the stream ends, its URIs are released: dropped from the resource
//! listen, and `resources/unsubscribe` sent to an HTTP 2025 backend when no session or listen
//! of the shard still wants the URI (a stdio backend's one process serves every shard, so it
//! is never unsubscribed, as for 2025 sessions).

use std::rc::Rc;
use std::time::Duration;

use sonic_rs::{JsonContainerTrait, JsonValueTrait};

use crate::error::McpError;
use crate::route::call::Call;
use crate::route::forward::{forward, Answer, Era};
use crate::route::router::Router;
use crate::route::tables::listeners::ListenSub;
use crate::wire::jsonrpc::{push_json_str, Envelope};

/// URIs one listen may subscribe to (each is kept, and held upstream, for the stream's life).
pub const MAX_LISTEN_URIS: usize = 256;
/// Longest URI a listen may subscribe to.
pub const MAX_LISTEN_URI: usize = 4096;

/// The `resourceSubscriptions` a listen request asks for (none when absent).
pub fn requested(body: &[u8]) -> Result<Vec<String>, McpError> {
    let Ok(v) = sonic_rs::get(body, ["params", "notifications", "resourceSubscriptions"]) else {
        return Ok(Vec::new());
    };
    let v: sonic_rs::Value = sonic_rs::from_str(v.as_raw_str()).unwrap_or_default();
    let Some(items) = v.as_array() else {
        return Err(McpError::InvalidParams(
            "params.notifications.resourceSubscriptions must be an array of URIs".into(),
        ));
    };
    if items.len() > MAX_LISTEN_URIS {
        return Err(McpError::InvalidParams(format!(
            "params.notifications.resourceSubscriptions names {} URIs; at most {MAX_LISTEN_URIS} per listen",
            items.len()
        )));
    }
    let mut uris: Vec<String> = Vec::with_capacity(items.len());
    for it in items.iter() {
        match it.as_str() {
            Some(u) if u.len() <= MAX_LISTEN_URI => {
                if !uris.iter().any(|h| h == u) {
                    uris.push(u.to_string());
                }
            }
            Some(_) => {
                return Err(McpError::InvalidParams(format!(
                    "a URI in params.notifications.resourceSubscriptions is longer than {MAX_LISTEN_URI} bytes"
                )))
            }
            None => {
                return Err(McpError::InvalidParams(
                    "params.notifications.resourceSubscriptions must hold strings only".into(),
                ))
            }
        }
    }
    Ok(uris)
}

/// The URIs `principal` may subscribe to, with their backends (others are declined).
pub fn resolve(
    router: &Router,
    principal: &crate::auth::verify::Principal,
    uris: Vec<String>,
) -> Vec<ListenSub> {
    let snap = router.snapshot.load();
    let item = crate::auth::policy::ItemKind::Resource;
    uris.into_iter()
        .filter_map(|uri| {
            let route = snap.catalog.route_uri(&uri)?;
            if !crate::auth::local::allows(&snap, principal, item, route.backend, &uri) {
                return None;
            }
            let caps = &snap.catalog.backend_caps[route.backend];
            if !caps.subscribe {
                return None;
            }
            Some(ListenSub {
                server: snap.backends[route.backend].id.clone(),
                original: route.original.to_string(),
                backend: route.backend,
                modern_only: caps.modern_only,
                timeout: snap.backends[route.backend].timeout,
                uri,
            })
        })
        .collect()
}

/// Subscribes listen `key` to `subs` upstream, then acknowledges it with those the backends
/// took (`ack` renders the acknowledgment from them).
pub async fn acknowledge(
    router: Rc<Router>,
    key: u64,
    subs: Vec<ListenSub>,
    ack: impl FnOnce(&[ListenSub]) -> Vec<u8>,
) {
    let mut took = Vec::with_capacity(subs.len());
    for s in subs {
        match upstream(&router, key, &s, true).await {
            Ok(()) => took.push(s),
            Err(e) => {
                tracing::info!(server = %s.server, "a listen's resource subscription was declined: {e}")
            }
        }
    }
    let msg = ack(&took);
    let open = {
        let mut table = router.listeners.borrow_mut();
        match table.map.get_mut(&key) {
            Some(l) if l.tx.send(msg).is_ok() => {
                l.subs = took.clone();
                l.ready = true;
                true
            }
            _ => false,
        }
    };
    if !open {
        release(&router, key, took);
    }
}

/// Listen `key` ended: its URIs are released upstream (module docs).
pub fn release(router: &Rc<Router>, key: u64, subs: Vec<ListenSub>) {
    if subs.is_empty() {
        return;
    }
    let router = router.clone();
    monoio::spawn(async move {
        for s in subs {
            if let Err(e) = upstream(&router, key, &s, false).await {
                tracing::debug!(server = %s.server, "releasing a listen's resource subscription: {e}");
            }
        }
    });
}

/// Subscribes (`on`) or unsubscribes listen `key` to `s` at its backend.
async fn upstream(router: &Rc<Router>, key: u64, s: &ListenSub, on: bool) -> Result<(), McpError> {
    if s.modern_only {
        let holder = crate::route::tables::listeners::holder_key(key);
        return crate::route::resource_listen::subscribe(
            router,
            &s.server,
            &holder,
            &s.original,
            on,
            s.timeout,
        )
        .await;
    }
    let handle = router.upstreams.backends.borrow().get(&s.server).cloned();
    let http = matches!(
        handle.as_deref(),
        Some(crate::upstream::LocalBackend::Http(_))
    );
    if on {
        crate::route::pushes::listen_for_updates(router, &s.server, None);
    } else {
        let wanted = router
            .sessions
            .borrow_mut()
            .iter_mut()
            .any(|(_, x)| x.subscriptions.contains(&s.uri))
            || router
                .listeners
                .borrow()
                .map
                .iter()
                .any(|(k, l)| *k != key && l.subs.iter().any(|o| o.uri == s.uri));
        if wanted || !http {
            return Ok(());
        }
    }
    let mut params = br#"{"uri":"#.to_vec();
    push_json_str(&mut params, &s.original);
    params.push(b'}');
    let method = if on {
        "resources/subscribe"
    } else {
        "resources/unsubscribe"
    };
    let (body, _) = crate::upstream::request_body(method, &params);
    let env = Envelope::parse(&body)?;
    let call = Call {
        router,
        sid: "",
        body: &body,
        env: &env,
        era: Era::default(),
    };
    let r = match forward(call, s.backend, None).await? {
        Answer::Json(r) => r,
        Answer::Parts(head, shared, tail, _) => [&head[..], &shared[..], &tail[..]].concat(),
        Answer::Stream(rx) => last_response(rx, s.timeout).await.ok_or_else(|| {
            McpError::Gateway(format!("{method}: the backend's stream ended unanswered"))
        })?,
    };
    if sonic_rs::get(&r[..], ["result"]).is_ok() {
        return Ok(());
    }
    Err(McpError::InvalidParams(format!(
        "server `{}` refused {method} of `{}`: {}",
        s.server,
        s.original,
        sonic_rs::get(&r[..], ["error", "message"])
            .ok()
            .and_then(|m| m.as_str().map(|m| m.chars().take(200).collect::<String>()))
            .unwrap_or_default()
    )))
}

/// The response on an answer's stream (what precedes it, progress or logs, is dropped): at
/// most 64 messages, within `timeout`.
async fn last_response(mut rx: crate::rt::feed::FeedRx, timeout: Duration) -> Option<Vec<u8>> {
    let read = async {
        for _ in 0..64 {
            let m = crate::rt::next(&mut rx).await?;
            let response = sonic_rs::get(&m[..], ["result"]).is_ok()
                || sonic_rs::get(&m[..], ["error"]).is_ok();
            if response {
                return Some(m);
            }
        }
        None
    };
    monoio::time::timeout(timeout, read).await.ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_requested_uris_are_bounded_and_deduplicated() {
        let body = |list: &str| {
            format!(r#"{{"params":{{"notifications":{{"resourceSubscriptions":{list}}}}}}}"#)
        };
        assert!(requested(br#"{"params":{"notifications":{}}}"#)
            .unwrap()
            .is_empty());
        assert_eq!(
            requested(body(r#"["a://1","b://2","a://1"]"#).as_bytes()).unwrap(),
            vec!["a://1".to_string(), "b://2".to_string()]
        );
        assert!(requested(body(r#""a://1""#).as_bytes()).is_err());
        assert!(requested(body("[1]").as_bytes()).is_err());
        let many: Vec<String> = (0..=MAX_LISTEN_URIS)
            .map(|i| format!("\"u://{i}\""))
            .collect();
        let e = requested(body(&format!("[{}]", many.join(","))).as_bytes()).unwrap_err();
        assert!(e.to_string().contains("at most 256"), "{e}");
        let long = format!("[\"{}\"]", "x".repeat(MAX_LISTEN_URI + 1));
        assert!(requested(body(&long).as_bytes()).is_err());
    }
}

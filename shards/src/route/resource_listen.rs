//! A 2025 client's resource subscriptions to a backend that speaks 2026-07-28 only.
//!
//! Such a backend has no `resources/subscribe`: a client names the resources it wants to hear
//! about in the `resourceSubscriptions` of a `subscriptions/listen`, and the backend sends
//! `notifications/resources/updated` on that stream. So each shard holds, per such backend,
//! one listen carrying the URIs its 2025 sessions subscribed to (`LocalBackend::listen`: an
//! HTTP connection of its own, or a request on the stdio child's channel whose notifications
//! come back by their `subscriptionId`), and what it hears goes to the subscribed sessions'
//! GET streams (`streams::resource_updated`, which also drops cached reads). A subscription
//! that adds a URI reopens the listen with the new set and is answered once the backend
//! acknowledged it (within the backend's timeout; a URI the acknowledgment leaves out is
//! refused with -32602); an unsubscription that leaves no session of the shard wanting the
//! URI reopens it without the URI. Sessions that ended leave the set at its next change.
//! When the stream ends or breaks it is opened again after a jittered, doubling delay
//! (`upstream::subscribe::Backoff`); the task ends when no URI is left, the backend refuses
//! the listen, the shard drains, or a reload removes the backend.

use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_channel::{mpsc, oneshot};
use sonic_rs::JsonValueTrait;

use crate::error::McpError;
use crate::route::router::Router;
use crate::route::tables::resource_listens::{LocalResourceListen, Waiter};
use crate::rt::next;
use crate::upstream::subscribe::{Backoff, Streak, HEALTHY};
use crate::wire::jsonrpc::{push_json_str, Envelope, Kind};

/// How long one listen request stays open before it is renewed.
const RENEW: Duration = Duration::from_secs(24 * 3600);

/// Session `sid` subscribes to (`on`) or unsubscribes from `uri`, the backend's own URI, of
/// the 2026-only backend `server`. A subscription is answered once a listen carrying the URI
/// is acknowledged, or fails after `timeout`.
pub(crate) async fn subscribe(
    router: &Rc<Router>,
    server: &str,
    sid: &str,
    uri: &str,
    on: bool,
    timeout: Duration,
) -> Result<(), McpError> {
    let wait = {
        let mut table = router.resource_listens.borrow_mut();
        if !on {
            if let Some(e) = table.get_mut(server) {
                let emptied = e.uris.get_mut(uri).is_some_and(|sids| {
                    sids.remove(sid);
                    sids.is_empty()
                });
                if emptied {
                    e.uris.remove(uri);
                    changed(e);
                }
            }
            return Ok(());
        }
        let e = table.entry(server.to_string()).or_insert_with(|| {
            let (wake, woken) = mpsc::unbounded();
            monoio::spawn(hold(router.clone(), server.to_string(), woken));
            LocalResourceListen {
                uris: Default::default(),
                generation: 0,
                acked: None,
                wake,
                waiters: Vec::new(),
            }
        });
        let new = !e.uris.contains_key(uri);
        e.uris
            .entry(uri.to_string())
            .or_default()
            .insert(sid.to_string());
        if new {
            changed(e);
        } else if e.acked == Some(e.generation) {
            return Ok(());
        }
        let (tx, rx) = oneshot::channel();
        e.waiters.retain(|w| !w.tx.is_canceled());
        e.waiters.push(Waiter {
            generation: e.generation,
            uri: uri.to_string(),
            tx,
        });
        rx
    };
    match monoio::time::timeout(timeout, wait).await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => Err(McpError::Gateway(
            "the listen toward the backend ended".into(),
        )),
        Err(_) => Err(McpError::BackendTimeout {
            server: server.to_string(),
            ms: timeout.as_millis() as u64,
        }),
    }
}

/// The set of URIs changed: the open listen is out of date.
fn changed(e: &mut LocalResourceListen) {
    e.generation += 1;
    e.acked = None;
    let _ = e.wake.unbounded_send(());
}

/// The URIs the next listen carries and their generation; `None` when the task should end
/// (no URI left, the shard draining, the backend gone), its entry then removed.
fn next_set(router: &Router, server: &str) -> Option<(Vec<String>, u64)> {
    let mut table = router.resource_listens.borrow_mut();
    let e = table.get_mut(server)?;
    let sessions = router.sessions.borrow();
    e.uris.retain(|_, sids| {
        // A holder is a 2025 session or a listen of this shard (`route/listen_resources.rs`).
        sids.retain(|s| sessions.get(s).is_some() || router.listeners.borrow().holds(s));
        !sids.is_empty()
    });
    let gone = router.draining.get() || router.upstreams.backends.borrow().get(server).is_none();
    if e.uris.is_empty() || gone {
        drop(sessions);
        if let Some(e) = table.remove(server) {
            let why = McpError::BackendUnavailable {
                server: server.to_string(),
                reason: "it is no longer served".into(),
            };
            settle(e.waiters, |_| Err(why.clone()));
        }
        return None;
    }
    Some((e.uris.keys().cloned().collect(), e.generation))
}

/// Answers `waiters`, each with `verdict(its URI)`.
fn settle(waiters: Vec<Waiter>, verdict: impl Fn(&str) -> Result<(), McpError>) {
    for w in waiters {
        let _ = w.tx.send(verdict(&w.uri));
    }
}

/// Answers the waiters of `server` that a listen of `generation` covers.
fn settle_up_to(
    router: &Router,
    server: &str,
    generation: u64,
    verdict: impl Fn(&str) -> Result<(), McpError>,
) {
    let ready = {
        let mut table = router.resource_listens.borrow_mut();
        let Some(e) = table.get_mut(server) else {
            return;
        };
        let (ready, later) = std::mem::take(&mut e.waiters)
            .into_iter()
            .partition(|w| w.generation <= generation);
        e.waiters = later;
        ready
    };
    settle(ready, verdict);
}

/// A `subscriptions/listen` asking for `uris` only, its id the placeholder.
fn listen_body(uris: &[String]) -> (Vec<u8>, std::ops::Range<usize>) {
    let mut p = br#"{"notifications":{"resourceSubscriptions":["#.to_vec();
    for (i, u) in uris.iter().enumerate() {
        if i > 0 {
            p.push(b',');
        }
        push_json_str(&mut p, u);
    }
    p.extend_from_slice(br#"]},"_meta":{"#);
    p.extend_from_slice(crate::upstream::modern::meta_keys().as_bytes());
    p.extend_from_slice(b"}}");
    crate::upstream::request_body("subscriptions/listen", &p)
}

/// What one message of the listen said.
enum Heard {
    /// The backend acknowledged it.
    Acknowledged,
    /// It refused (or ended) the listen with an error.
    Refused(String),
    Other,
}

/// Reads one message of the listen of `generation`: an acknowledgment answers the waiters it
/// covers, an update goes to the subscribed sessions.
fn hear(router: &Rc<Router>, server: &str, generation: u64, msg: &[u8]) -> Heard {
    let Ok(env) = Envelope::parse(msg) else {
        return Heard::Other;
    };
    match (env.kind, env.method.as_deref()) {
        (Kind::Notification, Some("notifications/subscriptions/acknowledged")) => {
            let key = ["params", "notifications", "resourceSubscriptions"];
            let honoured: Vec<String> = sonic_rs::get(msg, key)
                .ok()
                .and_then(|v| sonic_rs::from_str(v.as_raw_str()).ok())
                .unwrap_or_default();
            if let Some(e) = router.resource_listens.borrow_mut().get_mut(server) {
                if e.generation == generation {
                    e.acked = Some(generation);
                }
            }
            settle_up_to(router, server, generation, |uri| {
                match honoured.iter().any(|h| h == uri) {
                    true => Ok(()),
                    false => Err(McpError::InvalidParams(format!(
                        "server `{server}` did not accept a subscription to `{uri}`"
                    ))),
                }
            });
            Heard::Acknowledged
        }
        (Kind::Notification, Some("notifications/resources/updated")) => {
            if let Some(uri) = sonic_rs::get(msg, ["params", "uri"])
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
            {
                crate::route::streams::resource_updated(router, server, &uri);
            }
            Heard::Other
        }
        (Kind::Response, _) => match sonic_rs::get(msg, ["error", "message"]) {
            Ok(m) => Heard::Refused(m.as_str().unwrap_or("an error").chars().take(200).collect()),
            Err(_) => Heard::Other,
        },
        _ => Heard::Other,
    }
}

/// Holds `server`'s listen on this shard open, reopening it when its URIs change (`wake`)
/// or it ends (module docs).
async fn hold(router: Rc<Router>, server: String, mut wake: mpsc::UnboundedReceiver<()>) {
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    let mut streak = Streak::default();
    loop {
        // Changes already queued are in the set read now.
        while wake.try_recv().is_ok() {}
        let Some((uris, generation)) = next_set(&router, &server) else {
            return;
        };
        let Some(handle) = router.upstreams.backends.borrow().get(&server).cloned() else {
            continue;
        };
        let (body, id) = listen_body(&uris);
        let link = crate::upstream::Deadline::none();
        let (ev_tx, mut ev_rx) = link.events();
        let (stop, stop_rx) = link.cancel_pair();
        let mut stop = Some(stop);
        let opened = Instant::now();
        let (mut acked, mut refused) = (false, None);
        let mut listen = std::pin::pin!(handle.listen(body, id, ev_tx, stop_rx, RENEW));
        let ended = loop {
            monoio::select! {
                r = listen.as_mut() => break r,
                ev = next(&mut ev_rx) => match ev.map(|ev| hear(&router, &server, generation, &ev.msg)) {
                    Some(Heard::Acknowledged) => {
                        acked = true;
                        streak.acknowledged(&server);
                    }
                    Some(Heard::Refused(why)) => refused = Some(why),
                    _ => {}
                },
                _ = next(&mut wake), if stop.is_some() => {
                    // The URIs changed: end this listen, open one with the new set.
                    if let Some(s) = stop.take() {
                        s.cancel();
                    }
                }
            }
        };
        while let Some(ev) = ev_rx.try_recv() {
            if let Heard::Refused(why) = hear(&router, &server, generation, &ev.msg) {
                refused = Some(why);
            }
        }
        if stop.is_none() {
            continue;
        }
        if let Some(why) = refused {
            tracing::info!(server = %server, "the backend refused a subscriptions/listen for resource subscriptions ({why})");
            if let Some(e) = router.resource_listens.borrow_mut().remove(&server) {
                let err = McpError::BackendUnavailable {
                    server: server.clone(),
                    reason: format!("it refused subscriptions/listen: {why}"),
                };
                settle(e.waiters, |_| Err(err.clone()));
            }
            return;
        }
        let why = match ended {
            Ok(()) => "the backend ended the stream".to_string(),
            Err(e) => e,
        };
        settle_up_to(&router, &server, generation, |_| {
            Err(McpError::BackendUnavailable {
                server: server.clone(),
                reason: format!("its subscriptions/listen ended before it was acknowledged: {why}"),
            })
        });
        if let Some(e) = router.resource_listens.borrow_mut().get_mut(&server) {
            e.acked = None;
        }
        if acked && opened.elapsed() >= HEALTHY {
            backoff.reset();
            streak.healthy();
        }
        let wait = backoff.delay();
        streak.failed(&server, &why, wait);
        monoio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listen_asks_for_the_resources_only_in_the_modern_shape() {
        let (body, id) = listen_body(&["test://a".into(), "file:///\"q\"".into()]);
        assert_eq!(&body[id], b"0");
        let env = Envelope::parse(&body).unwrap();
        assert_eq!(env.method.as_deref(), Some("subscriptions/listen"));
        assert_eq!(
            env.meta.version.as_deref(),
            Some(crate::upstream::modern::MODERN)
        );
        let n: sonic_rs::Value = sonic_rs::from_str(
            sonic_rs::get(&body[..], ["params", "notifications"])
                .unwrap()
                .as_raw_str(),
        )
        .unwrap();
        let want: sonic_rs::Value =
            sonic_rs::from_str(r#"{"resourceSubscriptions":["test://a","file:///\"q\""]}"#)
                .unwrap();
        assert_eq!(n, want);
    }
}

//! `subscriptions/listen` (2026-07-28): the server's only unsolicited stream.
//!
//! Owns the [`Hub`] that fans change events out to the open listen streams
//! of both transports, the parsing of a listen request's
//! `SubscriptionFilter`, and the stream itself ([`serve`]):
//!
//! * The first message is `notifications/subscriptions/acknowledged`, whose
//!   `notifications` is the part of the filter this server honours (list
//!   changes only with the conformance fixture, which is what advertises
//!   `listChanged`; `resourceSubscriptions` likewise).
//! * Every notification carries `params._meta["io.modelcontextprotocol/
//!   subscriptionId"]`, the listen request's JSON-RPC id, JSON type kept.
//! * Only opted-in types are sent: `notifications/{tools,prompts,resources}/
//!   list_changed` (broadcast by the fixture's `test_trigger_*` tools) and
//!   `notifications/resources/updated` for a subscribed
//!   `test://watched-resource`, every [`WATCH_PERIOD`]. Progress and logs
//!   never go here.
//! * The stream ends when the client goes away (the next write fails),
//!   on stdio when the client sends `notifications/cancelled` for the listen
//!   id ([`Hub::cancel`], nothing more is sent), or on graceful shutdown
//!   ([`Hub::shutdown`], stdio EOF): then the listen request gets its
//!   `SubscriptionsListenResult` (`resultType` and `_meta.subscriptionId`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

use super::protocol::{notification, result_response};
use super::session::{lock, WATCHED_URI, WATCH_PERIOD};

/// A list whose changes listen streams can opt into (the resource list
/// never changes on the 2026 path, so `resourcesListChanged` never fires).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    Tools,
    Prompts,
}

impl List {
    pub fn method(self) -> &'static str {
        match self {
            List::Tools => "notifications/tools/list_changed",
            List::Prompts => "notifications/prompts/list_changed",
        }
    }
}

enum Event {
    Changed(List),
    /// Graceful teardown: answer the listen request, then end.
    Shutdown,
    /// The client cancelled the listen request: end silently.
    Cancelled,
}

/// What one listen stream asked for, reduced to what the server honours.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tools_list_changed: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub prompts_list_changed: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub resources_list_changed: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resource_subscriptions: Vec<String>,
}

impl Filter {
    /// Parses `params.notifications`; `fixture` says whether list changes
    /// and resource subscriptions are supported (else they are dropped).
    pub fn parse(params: &Value, fixture: bool) -> Result<Filter, String> {
        let Some(n) = params.get("notifications").filter(|n| n.is_object()) else {
            return Err("Invalid params: notifications must be an object".into());
        };
        let flag = |key: &str| -> Result<bool, String> {
            match n.get(key) {
                None => Ok(false),
                Some(v) => v.as_bool().ok_or_else(|| {
                    format!("Invalid params: notifications.{key} must be a boolean")
                }),
            }
        };
        let mut uris = Vec::new();
        if let Some(list) = n.get("resourceSubscriptions") {
            let bad = || "Invalid params: resourceSubscriptions must be an array of strings";
            for uri in list.as_array().ok_or_else(bad)?.iter() {
                uris.push(uri.as_str().ok_or_else(bad)?.to_string());
            }
        }
        let (tools, prompts, resources) = (
            flag("toolsListChanged")?,
            flag("promptsListChanged")?,
            flag("resourcesListChanged")?,
        );
        Ok(Filter {
            tools_list_changed: fixture && tools,
            prompts_list_changed: fixture && prompts,
            resources_list_changed: fixture && resources,
            resource_subscriptions: if fixture { uris } else { Vec::new() },
        })
    }

    fn wants(&self, list: List) -> bool {
        match list {
            List::Tools => self.tools_list_changed,
            List::Prompts => self.prompts_list_changed,
        }
    }
}

struct Sub {
    tx: mpsc::Sender<Event>,
    /// stdio: the listen id as JSON text, for `notifications/cancelled`.
    cancel_key: Option<String>,
}

/// The open listen streams of one server, both transports.
#[derive(Default)]
pub struct Hub {
    subs: Mutex<HashMap<u64, Sub>>,
    next: AtomicU64,
    /// Set by [`Hub::shutdown`]: streams opened afterwards end at once.
    closed: Mutex<bool>,
}

impl Hub {
    fn subscribe(&self, cancel_key: Option<String>) -> (u64, mpsc::Receiver<Event>) {
        let (tx, rx) = mpsc::channel();
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        let closed = lock(&self.closed);
        if *closed {
            let _ = tx.send(Event::Shutdown);
        } else {
            lock(&self.subs).insert(token, Sub { tx, cancel_key });
        }
        drop(closed);
        (token, rx)
    }

    fn unsubscribe(&self, token: u64) {
        lock(&self.subs).remove(&token);
    }

    /// Announces a change of `list` to every open stream (each filters);
    /// returns how many streams are open.
    pub fn broadcast(&self, list: List) -> usize {
        let subs = lock(&self.subs);
        for sub in subs.values() {
            let _ = sub.tx.send(Event::Changed(list));
        }
        subs.len()
    }

    /// stdio: ends the listen stream whose id (as JSON text) is `key`.
    pub fn cancel(&self, key: &str) -> bool {
        let mut found = false;
        for sub in lock(&self.subs).values() {
            if sub.cancel_key.as_deref() == Some(key) {
                let _ = sub.tx.send(Event::Cancelled);
                found = true;
            }
        }
        found
    }

    /// Ends every stream gracefully, now and from now on.
    pub fn shutdown(&self) {
        *lock(&self.closed) = true;
        for sub in lock(&self.subs).values() {
            let _ = sub.tx.send(Event::Shutdown);
        }
    }
}

/// Where a listen stream writes; `false` means the client is gone.
pub trait ListenOut {
    fn send(&mut self, json: &str) -> bool;
    /// Called when nothing was sent for a while (HTTP: an SSE comment).
    fn idle(&mut self) -> bool {
        true
    }
}

#[derive(Serialize)]
struct TagMeta<'a> {
    #[serde(rename = "io.modelcontextprotocol/subscriptionId")]
    subscription_id: &'a Value,
}

#[derive(Serialize)]
struct AckParams<'a> {
    notifications: &'a Filter,
    #[serde(rename = "_meta")]
    meta: TagMeta<'a>,
}

#[derive(Serialize)]
struct TaggedParams<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    uri: Option<&'a str>,
    #[serde(rename = "_meta")]
    meta: TagMeta<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListenResult<'a> {
    result_type: &'static str,
    #[serde(rename = "_meta")]
    meta: ListenResultMeta<'a>,
}

#[derive(Serialize)]
struct ListenResultMeta<'a> {
    #[serde(rename = "io.modelcontextprotocol/subscriptionId")]
    subscription_id: &'a Value,
    #[serde(rename = "io.modelcontextprotocol/serverInfo")]
    server_info: &'a Value,
}

/// Serves one listen stream until it ends (module docs). `server_info` is
/// the `Implementation` object stamped on results; `cancel_key` is set on
/// stdio. `idle_every` paces [`ListenOut::idle`].
pub fn serve(
    hub: &Hub,
    id: &Value,
    filter: &Filter,
    server_info: &Value,
    cancel_key: Option<String>,
    idle_every: Duration,
    out: &mut dyn ListenOut,
) {
    let (token, rx) = hub.subscribe(cancel_key);
    let tag = || TagMeta {
        subscription_id: id,
    };
    let ack = AckParams {
        notifications: filter,
        meta: tag(),
    };
    let watched = filter
        .resource_subscriptions
        .iter()
        .any(|u| u == WATCHED_URI);
    let mut next_update = Instant::now() + WATCH_PERIOD;
    let mut next_idle = Instant::now() + idle_every;
    let mut alive = out.send(&notification(
        "notifications/subscriptions/acknowledged",
        ack,
    ));
    while alive {
        let now = Instant::now();
        let due = if watched {
            next_idle.min(next_update)
        } else {
            next_idle
        };
        match rx.recv_timeout(due.saturating_duration_since(now)) {
            Ok(Event::Changed(list)) if filter.wants(list) => {
                let params = TaggedParams {
                    uri: None,
                    meta: tag(),
                };
                alive = out.send(&notification(list.method(), params));
            }
            Ok(Event::Changed(_)) => {}
            Ok(Event::Cancelled) => break,
            Ok(Event::Shutdown) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                let result = ListenResult {
                    result_type: "complete",
                    meta: ListenResultMeta {
                        subscription_id: id,
                        server_info,
                    },
                };
                out.send(&result_response(id, result));
                break;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let now = Instant::now();
                if watched && now >= next_update {
                    next_update = now + WATCH_PERIOD;
                    let params = TaggedParams {
                        uri: Some(WATCHED_URI),
                        meta: tag(),
                    };
                    alive = out.send(&notification("notifications/resources/updated", params));
                }
                if alive && now >= next_idle {
                    next_idle = now + idle_every;
                    alive = out.idle();
                }
            }
        }
    }
    hub.unsubscribe(token);
}

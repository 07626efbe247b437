//! Per-session protocol state and the server→client direction.
//!
//! Owns what one MCP session remembers between requests (the client's
//! declared capabilities, the negotiated version, the `logging/setLevel`
//! threshold, resource subscriptions) and everything the server *sends on
//! its own*: notifications related to a request (progress, logs), requests
//! to the client (`sampling/createMessage`, `elicitation/create`) with their
//! response matching, and unsolicited notifications (list_changed,
//! resources/updated) driven by the [`Ticker`].
//!
//! Two outlets, so a message goes on exactly one stream:
//! * [`Related`]: the stream of the request being handled (stdout on stdio,
//!   the POST's SSE response on HTTP).
//! * [`Sink`]: the session's stream for messages unrelated to any request
//!   (stdout on stdio, the standalone GET stream on HTTP).
//!
//! stdio has one session for the process; HTTP has one per `Mcp-Session-Id`.
//! A 2026-07-28 (stateless) request gets a throwaway [`Session::modern`]
//! holding what its `_meta` declared, and its [`Call`] carries an
//! [`InputBridge`] so server→client requests become MRTR input requests.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use serde::Serialize;
use sonic_rs::{JsonValueTrait, Value};

use super::mrtr::InputBridge;
use super::protocol::{notification, to_json};

/// RFC 5424 levels, least severe first (`logging/setLevel`).
pub const LEVELS: [&str; 8] = [
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];
/// How long a tool waits for the client to answer a server→client request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Conformance fixture: the dynamic tool/prompt/resource appear this long
/// after `initialize`.
pub const DYNAMIC_DELAY: Duration = Duration::from_secs(2);
/// Conformance fixture: `test://watched-resource` "changes" this often.
pub const WATCH_PERIOD: Duration = Duration::from_secs(3);
pub const WATCHED_URI: &str = "test://watched-resource";

pub fn level_index(name: &str) -> Option<usize> {
    LEVELS.iter().position(|l| *l == name)
}

/// The session's outlet for messages unrelated to any request. Returns
/// whether the message was handed to a live stream.
pub trait Sink: Send + Sync {
    fn send(&self, json: &str) -> bool;
}

/// The outlet for messages related to the request being handled.
pub trait Related {
    /// Sends one message; false if it cannot reach the client (e.g. an HTTP
    /// client that does not accept `text/event-stream`).
    fn send(&mut self, json: String) -> bool;
    /// HTTP only: end the response stream now, before the response (SSE
    /// polling); what follows is kept for the client's `Last-Event-ID`
    /// reconnection. False if the transport cannot do that.
    fn disconnect(&mut self) -> bool {
        false
    }
    /// HTTP only: the headers of the request being handled (the `headers`
    /// tool reports them). `None` on stdio.
    fn request_headers(&self) -> Option<&[(String, String)]> {
        None
    }
}

impl<F: FnMut(String) -> bool> Related for F {
    fn send(&mut self, json: String) -> bool {
        self(json)
    }
}

#[derive(Default)]
struct State {
    /// `params.capabilities` of the client's `initialize`.
    capabilities: Option<Value>,
    version: Option<String>,
    initialized_at: Option<Instant>,
    /// Index into [`LEVELS`]; logs below it are not sent.
    min_level: usize,
    subscriptions: HashSet<String>,
    dynamic_announced: bool,
    last_update: Option<Instant>,
}

pub struct Session {
    standalone: Arc<dyn Sink>,
    state: Mutex<State>,
    next_id: AtomicU64,
    /// Server→client requests awaiting the client's response, by id (as JSON text).
    pending: Mutex<HashMap<String, mpsc::Sender<Value>>>,
    closed: AtomicBool,
    /// The `Arc` this session lives in (set by `Server::new_session`), so a
    /// task can hold on to its session without keeping it alive.
    me: Weak<Session>,
}

#[derive(Serialize)]
struct RequestMsg<'a, P: Serialize> {
    jsonrpc: &'static str,
    id: u64,
    method: &'a str,
    params: &'a P,
}

#[derive(Serialize)]
struct LogParams<'a> {
    level: &'static str,
    logger: &'static str,
    data: &'a str,
}

#[derive(Serialize)]
struct UriParams<'a> {
    uri: &'a str,
}

#[derive(Serialize)]
struct NoParams {}

/// The outlet of a session that has no stream for unsolicited messages.
struct NoStream;

impl Sink for NoStream {
    fn send(&self, _: &str) -> bool {
        false
    }
}

impl Session {
    /// The stand-in session of one 2026-07-28 request: the client
    /// capabilities and log threshold from its `_meta` (`min_level` =
    /// `LEVELS.len()` sends no log), no unsolicited stream, no dynamic items.
    pub fn modern(version: &str, capabilities: Value, min_level: usize) -> Self {
        let session = Self::new(Arc::new(NoStream));
        {
            let mut s = session.state();
            s.version = Some(version.to_string());
            s.capabilities = Some(capabilities);
            s.min_level = min_level;
        }
        session
    }

    pub fn new(standalone: Arc<dyn Sink>) -> Self {
        Self {
            standalone,
            state: Mutex::default(),
            next_id: AtomicU64::new(0),
            pending: Mutex::default(),
            closed: AtomicBool::new(false),
            me: Weak::new(),
        }
    }

    /// A session that knows the `Arc` it lives in (see [`Session::me`]).
    pub fn new_in(standalone: Arc<dyn Sink>, me: Weak<Session>) -> Self {
        Self {
            me,
            ..Self::new(standalone)
        }
    }

    /// The `Arc` this session lives in, when it was made by [`Session::new_in`].
    pub fn me(&self) -> Option<Arc<Session>> {
        self.me.upgrade()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Records the outcome of `initialize`.
    pub fn initialized(&self, version: &str, capabilities: Option<Value>) {
        let mut s = self.state();
        s.version = Some(version.to_string());
        s.capabilities = capabilities;
        s.initialized_at = Some(Instant::now());
    }

    pub fn version(&self) -> Option<String> {
        self.state().version.clone()
    }

    /// The client's declared capability `name` (e.g. `"sampling"`), if any.
    pub fn client_capability(&self, name: &str) -> Option<Value> {
        let s = self.state();
        s.capabilities.as_ref()?.get(name).cloned()
    }

    pub fn set_level(&self, index: usize) {
        self.state().min_level = index;
    }

    pub fn log_enabled(&self, level: &str) -> bool {
        level_index(level).is_some_and(|i| i >= self.state().min_level)
    }

    pub fn subscribe(&self, uri: &str, on: bool) {
        let mut s = self.state();
        if on {
            s.subscriptions.insert(uri.to_string());
        } else {
            s.subscriptions.remove(uri);
        }
    }

    /// True once the conformance fixture's dynamic items exist for this
    /// session ([`DYNAMIC_DELAY`] after `initialize`).
    pub fn dynamic_visible(&self) -> bool {
        self.state()
            .initialized_at
            .is_some_and(|t| t.elapsed() >= DYNAMIC_DELAY)
    }

    /// Sends a notification on the standalone outlet (dropped if none is open).
    pub fn notify<P: Serialize>(&self, method: &str, params: P) -> bool {
        !self.closed.load(Ordering::Relaxed) && self.standalone.send(&notification(method, params))
    }

    /// An unsolicited `notifications/message`, if the level passes the filter.
    pub fn log_standalone(&self, level: &'static str, data: &str) {
        if self.log_enabled(level) {
            let params = LogParams {
                level,
                logger: "demo",
                data,
            };
            self.notify("notifications/message", params);
        }
    }

    /// Routes a client's response to the request waiting for it; unknown ids
    /// (late, cancelled or bogus) are dropped.
    pub fn deliver(&self, id: &Value, body: Value) {
        let key = sonic_rs::to_string(id).unwrap_or_default();
        if let Some(tx) = lock(&self.pending).remove(&key) {
            let _ = tx.send(body);
        }
    }

    /// Sends a request to the client on `related` and waits for its answer.
    /// `Ok` is the `result`; `Err` describes a JSON-RPC error, a timeout, a
    /// closed session or a request that could not be delivered.
    pub fn request<P: Serialize>(
        &self,
        related: &mut dyn Related,
        method: &str,
        params: &P,
    ) -> Result<Value, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let key = id.to_string();
        let (tx, rx) = mpsc::channel();
        lock(&self.pending).insert(key.clone(), tx);
        let msg = to_json(&RequestMsg {
            jsonrpc: "2.0",
            id,
            method,
            params,
        });
        if self.closed.load(Ordering::Relaxed) || !related.send(msg) {
            lock(&self.pending).remove(&key);
            return Err(format!(
                "cannot send {method}: no stream to the client for this request"
            ));
        }
        let answer = rx.recv_timeout(REQUEST_TIMEOUT);
        lock(&self.pending).remove(&key);
        let body = match answer {
            Ok(body) => body,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(format!("the client did not answer {method} in time"))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err("the session was closed".to_string())
            }
        };
        if let Some(error) = body.get("error") {
            let code = error.get("code").and_then(|c| c.as_i64()).unwrap_or(0);
            let message = error.get("message").and_then(|m| m.as_str()).unwrap_or("");
            return Err(format!("client error {code}: {message}"));
        }
        Ok(body.get("result").cloned().unwrap_or_default())
    }

    /// Ends the session: waiting requests fail at once, nothing more is sent.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        lock(&self.pending).clear();
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// One [`Ticker`] step: announces the dynamic items once, and reports
    /// the watched resource as updated every [`WATCH_PERIOD`] while subscribed.
    fn tick(&self, now: Instant) {
        let (announce, update) = {
            let mut s = self.state();
            let Some(init) = s.initialized_at else {
                return;
            };
            let announce = !s.dynamic_announced && now >= init + DYNAMIC_DELAY;
            s.dynamic_announced |= announce;
            // While subscribed, the first tick starts the clock; then one
            // update every period.
            let update = match (s.subscriptions.contains(WATCHED_URI), s.last_update) {
                (false, _) => {
                    s.last_update = None;
                    false
                }
                (true, Some(t)) if now < t + WATCH_PERIOD => false,
                (true, last) => {
                    s.last_update = Some(now);
                    last.is_some()
                }
            };
            (announce, update)
        };
        if announce {
            for kind in ["tools", "prompts", "resources"] {
                self.notify(&format!("notifications/{kind}/list_changed"), NoParams {});
            }
        }
        if update {
            self.notify(
                "notifications/resources/updated",
                UriParams { uri: WATCHED_URI },
            );
        }
    }
}

/// Drives the time-based behaviour of every live session from one thread
/// (conformance fixture only).
#[derive(Default)]
pub struct Ticker {
    sessions: Mutex<Vec<Weak<Session>>>,
    started: AtomicBool,
}

impl Ticker {
    pub fn register(self: &Arc<Self>, session: &Arc<Session>) {
        lock(&self.sessions).push(Arc::downgrade(session));
        if self.started.swap(true, Ordering::Relaxed) {
            return;
        }
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name("demo-ticker".into())
            .spawn(move || loop {
                std::thread::sleep(Duration::from_millis(200));
                let live: Vec<Arc<Session>> = {
                    let mut all = lock(&me.sessions);
                    all.retain(|w| w.upgrade().is_some_and(|s| !s.is_closed()));
                    all.iter().filter_map(Weak::upgrade).collect()
                };
                let now = Instant::now();
                for s in live {
                    s.tick(now);
                }
            });
        if let Err(e) = spawned {
            eprintln!("demo-server: cannot start the ticker thread: {e}");
        }
    }
}

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProgressParams<'a> {
    progress_token: &'a Value,
    progress: u64,
    total: u64,
    message: &'a str,
}

/// One request's handle on its session: what a tool may send while it runs.
pub struct Call<'a> {
    pub session: &'a Session,
    pub related: &'a mut dyn Related,
    /// `params._meta.progressToken` of the request, if any.
    pub progress_token: Option<Value>,
    /// 2026-07-28 requests: where requests to the client go instead.
    pub input: Option<&'a mut InputBridge>,
}

impl Call<'_> {
    /// `notifications/progress` with the caller's token; a no-op without one.
    pub fn progress(&mut self, progress: u64, total: u64, message: &str) {
        if let Some(token) = &self.progress_token {
            let params = ProgressParams {
                progress_token: token,
                progress,
                total,
                message,
            };
            self.related
                .send(notification("notifications/progress", params));
        }
    }

    /// `notifications/message` on the request's stream, if the level passes
    /// the session's `logging/setLevel` filter.
    pub fn log(&mut self, level: &'static str, data: &str) {
        if self.session.log_enabled(level) {
            let params = LogParams {
                level,
                logger: "demo",
                data,
            };
            self.related
                .send(notification("notifications/message", params));
        }
    }

    /// A server→client request on the request's stream (see
    /// [`Session::request`]), or on the 2026 path a lookup in the request's
    /// `inputResponses` (see [`InputBridge::request`]).
    pub fn request<P: Serialize>(&mut self, method: &str, params: &P) -> Result<Value, String> {
        match self.input.as_deref_mut() {
            Some(bridge) => bridge.request(method, params),
            None => self.session.request(self.related, method, params),
        }
    }

    /// See [`Related::disconnect`].
    pub fn disconnect(&mut self) -> bool {
        self.related.disconnect()
    }
}

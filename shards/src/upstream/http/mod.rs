//! A Streamable HTTP backend as one shard sees it: replicas, keep-alive pools, upstream sessions.
//!
//! Each shard keeps its own idle connections per replica and its own upstream MCP session per
//! replica (`session = "shared"`: every client of this shard multiplexes over it, ids are
//! remapped). The session is created lazily with `initialize` + `notifications/initialized`;
//! concurrent first calls wait for one handshake instead of racing N of them. A 404 from the
//! backend means its session expired: the session is re-initialized once, transparently.
//! Responses may be JSON or SSE; on SSE the stream is read until the response with our id.

mod handshake;

use std::cell::{Cell, RefCell};
use std::ops::Range;
use std::rc::Rc;
use std::time::Duration;

use futures_channel::oneshot;

use crate::error::McpError;
use crate::http::client::{ClientError, LocalHttpConn, ResponseHead};
use crate::http::sse::SseDecoder;
use crate::http::url::BackendUrl;
use crate::mcp::jsonrpc::{splice, Envelope, Kind};
use crate::snapshot::BackendSpec;
use crate::upstream::{BackendEvent, BackendReply, CallOpts, EventTx};

/// Largest backend response body accepted.
const MAX_RESPONSE: usize = 64 * 1024 * 1024;
/// Idle connections kept per replica per shard.
const MAX_IDLE: usize = 64;

#[derive(Clone)]
struct UpstreamSession {
    id: Option<String>,
    version: String,
    caps: crate::catalog::BackendCaps,
    /// A 2025 session exists (`initialize` succeeded).
    legacy: bool,
    /// The backend only speaks the deprecated HTTP+SSE transport: calls go through this.
    sse: Option<Rc<crate::upstream::sse_legacy::LocalSseSession>>,
    /// The backend also (or only) speaks 2026-07-28: no session, `_meta` and headers.
    modern_ok: bool,
}

enum SessionState {
    None,
    Initializing(Vec<oneshot::Sender<()>>),
    Ready(UpstreamSession),
}

struct LocalReplica {
    url: BackendUrl,
    idle: RefCell<Vec<LocalHttpConn>>,
    session: RefCell<SessionState>,
}

struct InitGuard<'a> {
    replica: &'a LocalReplica,
}

impl Drop for InitGuard<'_> {
    fn drop(&mut self) {
        finish_init(self.replica, SessionState::None);
    }
}

fn finish_init(replica: &LocalReplica, next: SessionState) {
    let prev = std::mem::replace(&mut *replica.session.borrow_mut(), next);
    if let SessionState::Initializing(waiters) = prev {
        for w in waiters {
            let _ = w.send(());
        }
    }
}

/// Marks a call in flight on a replica for `least_connections`, ended even if the call's
/// future is dropped.
struct InFlight<'a>(&'a crate::balance::LocalBalancer, usize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.ended(self.1);
    }
}

/// One HTTP backend on one shard.
pub struct LocalHttpBackend {
    spec: BackendSpec,
    replicas: Vec<LocalReplica>,
    balancer: crate::balance::LocalBalancer,
    breakers: Vec<crate::balance::breaker::LocalBreaker>,
    /// Replicas the control thread's health checks keep in rotation.
    healthy: Vec<Cell<bool>>,
    /// Retries this shard may still spend on this backend.
    retry_tokens: Cell<f64>,
    next_id: Cell<u64>,
    connect_timeout: Duration,
    listening: Cell<bool>,
    /// Per-client instance: the client's own capabilities for `initialize`.
    client_caps: Option<Vec<u8>>,
}

/// One try of a call: our id, which retry it is, where related messages go, and whether
/// the client is a 2026 one.
struct Try<'a> {
    our_id: u64,
    attempt: u32,
    events: Option<(&'a EventTx, usize)>,
    modern: bool,
}

enum Attempt {
    Done(Result<BackendReply, McpError>),
    Retry,
}

impl LocalHttpBackend {
    /// Creates the shard-local state for `spec` (no connection is opened yet).
    pub fn new(spec: BackendSpec, connect_timeout: Duration) -> Self {
        let replicas = spec
            .urls
            .iter()
            .map(|u| LocalReplica {
                url: u.clone(),
                idle: RefCell::new(Vec::new()),
                session: RefCell::new(SessionState::None),
            })
            .collect();
        let n = spec.urls.len();
        let weights = if spec.weights.len() == n {
            spec.weights.clone()
        } else {
            vec![1; n]
        };
        let balancer = crate::balance::LocalBalancer::new(
            spec.balance,
            weights,
            // A random seed per instance, so shards do not choose in lockstep.
            std::hash::BuildHasher::hash_one(&std::hash::RandomState::new(), &spec.id),
        );
        let breakers = spec
            .urls
            .iter()
            .map(|u| {
                crate::balance::breaker::LocalBreaker::new(
                    spec.breaker,
                    format!("{} {}", spec.id, u.raw),
                )
            })
            .collect();
        Self {
            spec,
            replicas,
            balancer,
            breakers,
            healthy: (0..n).map(|_| Cell::new(true)).collect(),
            retry_tokens: Cell::new(10.0),
            next_id: Cell::new(1),
            connect_timeout,
            listening: Cell::new(false),
            client_caps: None,
        }
    }

    fn unavailable(&self, reason: impl std::fmt::Display) -> McpError {
        McpError::BackendUnavailable {
            server: self.spec.id.clone(),
            reason: reason.to_string(),
        }
    }

    fn protocol(&self, reason: impl std::fmt::Display) -> McpError {
        McpError::BackendProtocol {
            server: self.spec.id.clone(),
            reason: reason.to_string(),
        }
    }

    /// Calls the backend with `body` (placeholder id at `id`). Related messages the backend
    /// streams before its response go to `opts.events`. On timeout or client cancellation the
    /// backend gets `notifications/cancelled` for our id.
    pub async fn call(
        &self,
        body: &[u8],
        id: Range<usize>,
        opts: CallOpts,
    ) -> Result<BackendReply, McpError> {
        let now = std::time::Instant::now();
        let pick = |by_health: bool| {
            self.balancer.pick(opts.affinity, |i| {
                (!by_health || self.healthy[i].get()) && self.breakers[i].usable(now)
            })
        };
        // Panic routing (Envoy's term): when the health checks have taken out every replica,
        // a call still goes to one whose breaker lets it through. Failing everything until
        // the next probe would turn a blip of the checker, or a replica that just came back,
        // into a full outage; the breakers still keep calls off a replica that is down.
        let Some(replica_idx) = pick(true).or_else(|| pick(false)) else {
            // Name only what took the replicas out: the breakers always did; the health
            // checks too only if they have every replica out.
            let reason = if self.healthy.iter().all(|h| !h.get()) {
                "no replica is in rotation (health checks failing and circuit breakers open)"
            } else {
                "no replica is in rotation (circuit breakers open)"
            };
            return Err(self.unavailable(reason));
        };
        self.breakers[replica_idx].allow(now);
        // Retry budget: each call earns a tenth of a retry (at most 10 banked), so retries
        // stay under ~10% of traffic even when a replica dies.
        self.retry_tokens
            .set((self.retry_tokens.get() + 0.1).min(10.0));
        let retry = (opts.retry_safe && self.replicas.len() > 1).then(|| opts.retry_copy());
        let result = {
            let _inflight = InFlight(&self.balancer, replica_idx);
            self.balancer.started(replica_idx);
            self.call_replica(replica_idx, body, id.clone(), opts).await
        };
        self.record(replica_idx, &result);
        if let (Err(McpError::BackendUnavailable { .. }), Some(retry)) = (&result, retry) {
            let now = std::time::Instant::now();
            let other = self.balancer.pick(retry.affinity, |i| {
                i != replica_idx && self.healthy[i].get() && self.breakers[i].usable(now)
            });
            if let (Some(j), true) = (other, self.retry_tokens.get() >= 1.0) {
                self.retry_tokens.set(self.retry_tokens.get() - 1.0);
                tracing::debug!(server = %self.spec.id, from = replica_idx, to = j, "retrying a safe call on another replica");
                self.breakers[j].allow(now);
                let again = {
                    let _inflight = InFlight(&self.balancer, j);
                    self.balancer.started(j);
                    self.call_replica(j, body, id, retry).await
                };
                self.record(j, &again);
                return again;
            }
        }
        result
    }

    fn record(&self, replica_idx: usize, result: &Result<BackendReply, McpError>) {
        match result {
            Ok(_) => self.breakers[replica_idx].success(),
            Err(McpError::BackendUnavailable { .. })
            | Err(McpError::BackendTimeout { .. })
            | Err(McpError::BackendProtocol { .. }) => {
                self.breakers[replica_idx].failure(std::time::Instant::now())
            }
            Err(_) => {}
        }
    }

    async fn call_replica(
        &self,
        replica_idx: usize,
        body: &[u8],
        id: Range<usize>,
        opts: CallOpts,
    ) -> Result<BackendReply, McpError> {
        let replica = &self.replicas[replica_idx];
        if let Some(sse) = self.sse_session(replica, opts.timeout).await? {
            return sse.call(body, id, opts).await;
        }
        let our_id = self.next_id.get();
        self.next_id.set(our_id + 1);
        let events = opts.events.as_ref();
        let fut = async {
            for attempt in 0..3 {
                match self
                    .attempt(
                        replica,
                        body,
                        &id,
                        Try {
                            our_id,
                            attempt,
                            events: events.map(|e| (e, replica_idx)),
                            modern: opts.modern,
                        },
                    )
                    .await
                {
                    Attempt::Done(r) => return r,
                    Attempt::Retry => continue,
                }
            }
            Err(self.unavailable("gave up after retries"))
        };
        let cancel = crate::upstream::cancelled(opts.cancel);
        let outcome = monoio::select! {
            r = crate::upstream::within(opts.timeout, opts.deadline.as_ref(), fut) => r.map_err(|_| McpError::BackendTimeout {
                server: self.spec.id.clone(),
                ms: opts.timeout.as_millis() as u64,
            }),
            _ = cancel => Err(McpError::Cancelled),
        };
        match outcome {
            Ok(r) => r,
            Err(e) => {
                self.send_cancelled(replica, our_id, &e).await;
                Err(e)
            }
        }
    }

    /// Posts a client's answer to a server-to-client request back on `replica`'s upstream
    /// session. Runs as its own task: the caller (a client's POST) does not wait for it.
    pub fn respond(self: &Rc<Self>, replica: usize, msg: Vec<u8>) {
        if let Some(r) = self.replicas.get(replica) {
            if let SessionState::Ready(UpstreamSession { sse: Some(sse), .. }) =
                &*r.session.borrow()
            {
                sse.respond(msg);
                return;
            }
        }
        let this = self.clone();
        monoio::spawn(async move {
            let Some(r) = this.replicas.get(replica) else {
                return;
            };
            if !this.post_message(r, &msg).await {
                tracing::warn!(server = %this.spec.id, "could not deliver a client's answer to the backend");
            }
        });
    }

    /// POSTs one notification or response on the replica's upstream session (expects 2xx).
    async fn post_message(&self, replica: &LocalReplica, msg: &[u8]) -> bool {
        let session = match &*replica.session.borrow() {
            SessionState::Ready(s) => s.clone(),
            _ => return false,
        };
        let post = async {
            let (mut conn, _) = self.take_conn(replica).await.ok()?;
            let headers = self.headers(&session);
            let hdrs: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            conn.send_post(&replica.url.path, &replica.url.authority, &hdrs, msg)
                .await
                .ok()?;
            let mut head = conn.read_head().await.ok()?;
            let mut sink = Vec::new();
            conn.read_body_all(&mut head, &mut sink, 65536).await.ok()?;
            if conn.reusable(&head) {
                replica.idle.borrow_mut().push(conn);
            }
            (200..300).contains(&head.status).then_some(())
        };
        monoio::time::timeout(self.connect_timeout * 2, post)
            .await
            .ok()
            .flatten()
            .is_some()
    }

    /// Best effort: tells the backend to stop working on `our_id` (bounded by the connect
    /// timeout; failures are only logged).
    async fn send_cancelled(&self, replica: &LocalReplica, our_id: u64, why: &McpError) {
        let msg = format!(
            r#"{{"jsonrpc":"2.0","method":"notifications/cancelled","params":{{"requestId":{our_id},"reason":"{}"}}}}"#,
            if matches!(why, McpError::Cancelled) {
                "cancelled by client"
            } else {
                "gateway timeout"
            }
        );
        if !self.post_message(replica, msg.as_bytes()).await {
            tracing::debug!(server = %self.spec.id, "could not deliver notifications/cancelled");
        }
    }

    async fn attempt(
        &self,
        replica: &LocalReplica,
        body: &[u8],
        id: &Range<usize>,
        t: Try<'_>,
    ) -> Attempt {
        let Try {
            our_id,
            attempt,
            events,
            modern: use_modern,
        } = t;
        let session = match self.ensure_session(replica).await {
            Ok(s) => s,
            Err(e) => return Attempt::Done(Err(e)),
        };
        let id_text = our_id.to_string();
        let modern = session.modern_ok && (!session.legacy || use_modern);
        let (body, id) = if modern {
            match crate::upstream::modern::to_modern(body, id.clone()) {
                Ok((b, i)) => (std::borrow::Cow::Owned(b), i),
                Err(e) => return Attempt::Done(Err(e)),
            }
        } else {
            (std::borrow::Cow::Borrowed(body), id.clone())
        };
        let mut wire = Vec::new();
        splice(&body, &[(id, id_text.as_bytes())], &mut wire);
        let (mut conn, reused) = match self.take_conn(replica).await {
            Ok(c) => c,
            Err(e) => return Attempt::Done(Err(e)),
        };
        let mut headers = if modern {
            self.modern_headers()
        } else {
            self.headers(&session)
        };
        if modern {
            headers.extend(crate::upstream::modern::request_headers(&wire));
        }
        let hdrs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let sent = conn
            .send_post(&replica.url.path, &replica.url.authority, &hdrs, &wire)
            .await;
        let head = match sent {
            Ok(()) => conn.read_head().await,
            Err(e) => Err(ClientError::Io(e)),
        };
        let mut head = match head {
            Ok(h) => h,
            // A pooled connection the backend closed meanwhile: retry on a fresh one.
            Err(ClientError::Io(_)) if reused && attempt < 2 => return Attempt::Retry,
            Err(e) => return Attempt::Done(Err(self.unavailable(e))),
        };
        if head.status == 404 && !modern && session.id.is_some() && attempt < 2 {
            // The upstream session expired: forget it and initialize again.
            *replica.session.borrow_mut() = SessionState::None;
            return Attempt::Retry;
        }
        if head.status != 200 {
            let mut snippet = Vec::new();
            let _ = conn.read_body_all(&mut head, &mut snippet, 65536).await;
            // A 2026 backend answers its JSON-RPC errors with 400/404: that error is the
            // backend's answer to relay, not a transport failure.
            if let Ok(reply) = BackendReply::from_message(&self.spec.id, snippet.clone()) {
                if reply.body[reply.id.clone()] == *id_text.as_bytes() {
                    return Attempt::Done(Ok(reply));
                }
            }
            snippet.truncate(200);
            return Attempt::Done(Err(self.protocol(format!(
                "HTTP {} from {}: {}",
                head.status,
                replica.url.raw,
                String::from_utf8_lossy(&snippet).trim()
            ))));
        }
        let result = self
            .read_reply(&mut conn, &mut head, &id_text, events)
            .await;
        if result.is_ok() && conn.reusable(&head) {
            let mut idle = replica.idle.borrow_mut();
            if idle.len() < MAX_IDLE {
                idle.push(conn);
            }
        }
        Attempt::Done(result)
    }

    async fn read_reply(
        &self,
        conn: &mut LocalHttpConn,
        head: &mut ResponseHead,
        id_text: &str,
        events: Option<(&EventTx, usize)>,
    ) -> Result<BackendReply, McpError> {
        if !head.sse {
            let mut body = Vec::new();
            conn.read_body_all(head, &mut body, MAX_RESPONSE)
                .await
                .map_err(|e| self.unavailable(e))?;
            let reply = BackendReply::from_message(&self.spec.id, body)?;
            if &reply.body[reply.id.clone()] != id_text.as_bytes() {
                return Err(self.protocol("response id does not match the request"));
            }
            return Ok(reply);
        }
        let mut dec = SseDecoder::default();
        let mut piece = Vec::with_capacity(8192);
        loop {
            piece.clear();
            let more = conn
                .read_body_piece(head, &mut piece)
                .await
                .map_err(|e| self.unavailable(e))?;
            dec.push(&piece);
            while let Some(ev) = dec.next_event() {
                let Ok(env) = Envelope::parse(&ev.data) else {
                    tracing::warn!(server = %self.spec.id, "backend sent a non-JSON-RPC SSE event; ignored");
                    continue;
                };
                if env.kind == Kind::Response
                    && env.id.as_ref().map(|r| &ev.data[r.clone()]) == Some(id_text.as_bytes())
                {
                    let id = env.id.clone().unwrap_or_default();
                    // Drain the rest of the stream when it is already complete so the
                    // connection can be reused; otherwise it is dropped by the caller.
                    return Ok(BackendReply { body: ev.data, id });
                }
                match events {
                    Some((tx, replica)) if env.kind != Kind::Response => {
                        let _ = tx.unbounded_send(BackendEvent {
                            msg: ev.data,
                            replica,
                        });
                    }
                    _ => {
                        tracing::debug!(server = %self.spec.id, method = ?env.method, "backend message on response stream not relayed")
                    }
                }
            }
            if !more {
                return Err(self.protocol("SSE stream ended without a response"));
            }
        }
    }

    /// An instance for one client session: its own pool and upstream session, initialized
    /// with that client's capabilities.
    pub fn for_client(spec: BackendSpec, connect_timeout: Duration, client_caps: Vec<u8>) -> Self {
        let mut b = Self::new(spec, connect_timeout);
        b.client_caps = Some(client_caps);
        b
    }

    /// For an HTTP+SSE backend, its live session (a dead one is replaced); `None` for the
    /// other transports. Bounded by `timeout`.
    async fn sse_session(
        &self,
        replica: &LocalReplica,
        timeout: Duration,
    ) -> Result<Option<Rc<crate::upstream::sse_legacy::LocalSseSession>>, McpError> {
        for _ in 0..2 {
            let session = match monoio::time::timeout(timeout, self.ensure_session(replica)).await {
                Ok(s) => s?,
                Err(_) => {
                    return Err(McpError::BackendTimeout {
                        server: self.spec.id.clone(),
                        ms: timeout.as_millis() as u64,
                    })
                }
            };
            match session.sse {
                Some(sse) if sse.alive() => return Ok(Some(sse)),
                Some(_) => *replica.session.borrow_mut() = SessionState::None,
                None => return Ok(None),
            }
        }
        Err(self.unavailable("its SSE stream keeps closing"))
    }

    /// (2025 session, 2026 stateless) of replica 0's upstream session, once it exists.
    pub fn eras(&self) -> (bool, bool) {
        match &*self.replicas[0].session.borrow() {
            SessionState::Ready(s) => (s.legacy, s.modern_ok),
            _ => (true, false),
        }
    }

    /// The health checks put replica `i` in or out of rotation.
    pub fn set_healthy(&self, i: usize, healthy: bool) {
        if let Some(h) = self.healthy.get(i) {
            h.set(healthy);
        }
    }

    /// Backend id.
    pub fn id(&self) -> &str {
        &self.spec.id
    }

    /// Replica 0's URL and the headers of its upstream session (created if needed, within
    /// the connect timeout), for the GET stream.
    pub async fn get_stream_target(&self) -> Result<(BackendUrl, Vec<(String, String)>), McpError> {
        let replica = &self.replicas[0];
        let session =
            match monoio::time::timeout(self.connect_timeout, self.ensure_session(replica)).await {
                Ok(r) => r?,
                Err(_) => return Err(self.unavailable("initialize timed out")),
            };
        Ok((replica.url.clone(), self.headers(&session)))
    }

    /// Starts this shard's GET listener once; later calls do nothing.
    pub fn ensure_listening(
        self: &Rc<Self>,
        on_push: crate::upstream::listen::OnPush,
        draining: Rc<Cell<bool>>,
    ) {
        if self.listening.replace(true) {
            return;
        }
        monoio::spawn(crate::upstream::listen::listen(
            self.clone(),
            on_push,
            draining,
        ));
    }

    /// Ensures an upstream session on the first replica (within `timeout`) and returns what
    /// the backend declared.
    pub async fn capabilities(
        &self,
        timeout: Duration,
    ) -> Result<crate::catalog::BackendCaps, McpError> {
        match monoio::time::timeout(timeout, self.ensure_session(&self.replicas[0])).await {
            Ok(r) => r.map(|s| s.caps),
            Err(_) => Err(McpError::BackendTimeout {
                server: self.spec.id.clone(),
                ms: timeout.as_millis() as u64,
            }),
        }
    }

    fn modern_headers(&self) -> Vec<(String, String)> {
        let mut h = vec![(
            "mcp-protocol-version".to_string(),
            crate::upstream::modern::MODERN.to_string(),
        )];
        h.extend(self.spec.headers.iter().cloned());
        h
    }

    fn headers(&self, session: &UpstreamSession) -> Vec<(String, String)> {
        let mut h: Vec<(String, String)> = Vec::with_capacity(2 + self.spec.headers.len());
        if let Some(id) = &session.id {
            h.push(("mcp-session-id".into(), id.clone()));
        }
        h.push(("mcp-protocol-version".into(), session.version.clone()));
        h.extend(self.spec.headers.iter().cloned());
        h
    }

    async fn take_conn(&self, replica: &LocalReplica) -> Result<(LocalHttpConn, bool), McpError> {
        if let Some(c) = replica.idle.borrow_mut().pop() {
            return Ok((c, true));
        }
        LocalHttpConn::connect(&replica.url.addrs, self.connect_timeout)
            .await
            .map(|c| (c, false))
            .map_err(|e| self.unavailable(format!("cannot connect to {}: {e}", replica.url.raw)))
    }

    async fn ensure_session(&self, replica: &LocalReplica) -> Result<UpstreamSession, McpError> {
        loop {
            let waiter = {
                let mut st = replica.session.borrow_mut();
                match &mut *st {
                    SessionState::Ready(s) => return Ok(s.clone()),
                    SessionState::Initializing(waiters) => {
                        let (tx, rx) = oneshot::channel();
                        waiters.push(tx);
                        Some(rx)
                    }
                    SessionState::None => {
                        *st = SessionState::Initializing(Vec::new());
                        None
                    }
                }
            };
            match waiter {
                Some(rx) => {
                    let _ = rx.await;
                    if matches!(&*replica.session.borrow(), SessionState::None) {
                        return Err(self.unavailable("upstream initialize failed"));
                    }
                }
                None => {
                    // If this future is dropped mid-handshake (the caller timed out), the
                    // guard puts the state back to None and wakes the waiters.
                    let guard = InitGuard { replica };
                    let res = self.handshake(replica).await;
                    std::mem::forget(guard);
                    finish_init(
                        replica,
                        match &res {
                            Ok(s) => SessionState::Ready(s.clone()),
                            Err(_) => SessionState::None,
                        },
                    );
                    return res;
                }
            }
        }
    }
}

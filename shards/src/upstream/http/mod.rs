//! A Streamable HTTP backend as one shard sees it: replicas, keep-alive pools, upstream sessions.
//!
//! Each shard keeps its own idle connections per replica and its own upstream MCP session per
//! replica (`session = "shared"`: every client of this shard multiplexes over it, ids are
//! remapped). The session is created lazily with `initialize` + `notifications/initialized`;
//! concurrent first calls wait for one handshake instead of racing N of them. A 404 from the
//! backend means its session expired: the session is re-initialized once, transparently.
//! Responses may be JSON or SSE; on SSE the stream is read until the response with our id,
//! and its rest after the caller has its answer (`drain.rs`), so the connection is reused.

mod choose;
mod drain;
mod exchange;
mod handshake;
pub mod pool;
mod session;
mod stats;
mod subscribe;

use std::cell::{Cell, RefCell};
use std::ops::Range;
use std::rc::Rc;
use std::time::Duration;

use futures_channel::oneshot;

use crate::error::McpError;
use crate::http::client::{ClientError, LocalHttpConn, ResponseHead};
use crate::http::sse::SseDecoder;
use crate::http::url::BackendUrl;
use crate::snapshot::BackendSpec;
use crate::upstream::{BackendEvent, BackendReply, CallOpts, EventTx};
use crate::wire::jsonrpc::{splice, Envelope, Kind};

/// Largest backend response body accepted.
const MAX_RESPONSE: usize = 64 * 1024 * 1024;

#[derive(Clone)]
struct UpstreamSession {
    id: Option<Rc<str>>,
    version: Rc<str>,
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
    /// Keep-alive connections, at most `pool_size` open (see `pool.rs`).
    pool: Rc<pool::LocalPool>,
    session: RefCell<SessionState>,
    /// Calls, failures and latency from this shard (see `stats.rs`).
    counters: stats::LocalReplicaCounters,
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
    next_id: crate::upstream::ids::LocalIdMint,
    connect_timeout: Duration,
    /// Per replica: this shard listens on its upstream session's GET stream.
    listening: Vec<Cell<bool>>,
    /// This shard holds the backend's upstream `subscriptions/listen` (`subscribe.rs`).
    subscribed: Cell<bool>,
    /// Per-client instance: the client's own capabilities for `initialize`.
    client_caps: Option<Vec<u8>>,
    /// Set when a config reload removed or changed this server: its background tasks
    /// (discovery, the GET stream) end, and calls already under way finish.
    retired: Rc<Cell<bool>>,
}

/// One try of a call: our id, which retry it is, where related messages go, and whether
/// the client is a 2026 one.
struct Try<'a> {
    our_id: u64,
    attempt: u32,
    events: Option<(&'a EventTx, usize)>,
    modern: bool,
    /// A task follow-up: the upstream it must find (see `CallOpts::pin`).
    pin: Option<crate::upstream::Origin>,
    tool_headers: Option<&'a crate::catalog::params::ToolHeaders>,
    /// What a 2026 backend is told the client can answer (`CallOpts::client_caps`).
    client_caps: Option<&'a [u8]>,
    /// The call's trace context (`CallOpts::trace`).
    trace: Option<&'a crate::trace::Outgoing>,
}

enum Attempt {
    Done(Result<BackendReply, McpError>),
    Retry,
}

/// A call's request headers, borrowed from the backend's spec and session.
pub(crate) type HeaderRefs<'a> = smallvec::SmallVec<[(&'a str, &'a str); 8]>;

impl LocalHttpBackend {
    /// Creates the shard-local state for `spec` (no connection is opened yet).
    pub fn new(spec: BackendSpec, connect_timeout: Duration) -> Self {
        let replicas = spec
            .urls
            .iter()
            .map(|u| LocalReplica {
                url: u.clone(),
                pool: Rc::new(pool::LocalPool::new(spec.pool_size)),
                session: RefCell::new(SessionState::None),
                counters: Default::default(),
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
            next_id: crate::upstream::ids::LocalIdMint::new(),
            connect_timeout,
            listening: (0..n).map(|_| Cell::new(false)).collect(),
            subscribed: Cell::new(false),
            client_caps: None,
            retired: Rc::new(Cell::new(false)),
        }
    }

    /// Ends this backend's background tasks (a reload removed or changed it).
    pub fn retire(&self) {
        self.retired.set(true);
    }

    /// Whether [`retire`](Self::retire) was called.
    pub fn retired(&self) -> bool {
        self.retired.get()
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

    async fn call_replica(
        &self,
        replica_idx: usize,
        body: &[u8],
        id: Range<usize>,
        opts: CallOpts,
    ) -> Result<BackendReply, McpError> {
        let replica = &self.replicas[replica_idx];
        // A ready Streamable HTTP session needs no await; the rest (first call, legacy HTTP+SSE)
        // is boxed so it does not size every call's future.
        if !replica.ready_without_sse() {
            if let Some(sse) = Box::pin(self.sse_session(replica, opts.timeout)).await? {
                return Box::pin(sse.call(body, id, opts)).await;
            }
        }
        let our_id = self.next_id.mint();
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
                            pin: opts.pin,
                            tool_headers: opts.tool_headers.as_deref(),
                            client_caps: opts.client_caps.as_deref(),
                            trace: opts.trace.as_ref(),
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
            Ok(r) => r.map(|mut r| {
                r.origin.replica = replica_idx;
                r
            }),
            Err(e) => {
                Box::pin(self.send_cancelled(replica, our_id, &e)).await;
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
            let mut conn = self.take_message_conn(replica).await.ok()?;
            let hdrs = self.header_refs(&session, false, &[]);
            conn.send_post(&replica.url.path, &replica.url.authority, &hdrs, msg)
                .await
                .ok()?;
            let mut head = conn.read_head().await.ok()?;
            let mut sink = Vec::new();
            conn.read_body_all(&mut head, &mut sink, 65536).await.ok()?;
            let ok = (200..300).contains(&head.status);
            if conn.reusable(&head) {
                conn.put_back();
            }
            ok.then_some(())
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

    /// An instance for one client session: its own pool and upstream session, initialized
    /// with that client's capabilities.
    pub fn for_client(spec: BackendSpec, connect_timeout: Duration, client_caps: Vec<u8>) -> Self {
        let mut b = Self::new(spec, connect_timeout);
        b.client_caps = Some(client_caps);
        b
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

    /// Replica `i`'s URL and the headers of its upstream session (created if needed, within
    /// the connect timeout), for the GET stream.
    pub async fn get_stream_target(
        &self,
        i: usize,
    ) -> Result<(BackendUrl, Vec<(String, String)>), McpError> {
        let replica = self
            .replicas
            .get(i)
            .ok_or_else(|| self.unavailable("no such replica"))?;
        let session =
            match monoio::time::timeout(self.connect_timeout, self.ensure_session(replica)).await {
                Ok(r) => r?,
                Err(_) => return Err(self.unavailable("initialize timed out")),
            };
        Ok((replica.url.clone(), self.headers(&session)))
    }

    /// Starts this shard's listener on replica `i`'s GET stream once; later calls for that
    /// replica do nothing (a replica that does not exist: nothing).
    pub fn ensure_listening(
        self: &Rc<Self>,
        i: usize,
        on_push: crate::upstream::listen::OnPush,
        draining: Rc<Cell<bool>>,
    ) {
        if self.listening.get(i).is_none_or(|l| l.replace(true)) {
            return;
        }
        monoio::spawn(crate::upstream::listen::listen(
            self.clone(),
            i,
            on_push,
            draining,
        ));
    }

    /// How many replicas this backend has.
    pub fn replica_count(&self) -> usize {
        self.replicas.len()
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

    fn headers(&self, session: &UpstreamSession) -> Vec<(String, String)> {
        self.header_refs(session, false, &[])
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The headers of a request on `session` (2026: of a stateless one), borrowed, with
    /// `extra` after the configured ones: one allocation per request.
    /// The request headers of a call, borrowed.
    fn header_refs<'a>(
        &'a self,
        session: &'a UpstreamSession,
        modern: bool,
        extra: &'a [(String, String)],
    ) -> HeaderRefs<'a> {
        // Inline for up to 8 (the session's two, a few configured, a trace context): no
        // allocation per call.
        let mut h = HeaderRefs::new();
        if modern {
            h.push(("mcp-protocol-version", crate::upstream::modern::MODERN));
        } else {
            if let Some(id) = &session.id {
                h.push(("mcp-session-id", &**id));
            }
            h.push(("mcp-protocol-version", &*session.version));
        }
        let pairs = self.spec.headers.iter().chain(extra);
        h.extend(pairs.map(|(k, v)| (k.as_str(), v.as_str())));
        h
    }

    /// A connection from the replica's pool (waiting for one beyond `pool_size`); the bool
    /// is true for a pooled one, which the backend may have closed meanwhile.
    async fn take_conn<'a>(
        &self,
        replica: &'a LocalReplica,
    ) -> Result<(pool::Leased<'a>, bool), McpError> {
        if let Some(c) = replica.pool.idle() {
            return Ok((c, true));
        }
        let connect = || LocalHttpConn::connect(&replica.url, self.connect_timeout);
        Box::pin(replica.pool.take(connect))
            .await
            .map_err(|e| self.cannot_connect(replica, e))
    }

    /// A connection for a short message that must not queue behind calls (see
    /// `LocalPool::take_unbounded`).
    async fn take_message_conn<'a>(
        &self,
        replica: &'a LocalReplica,
    ) -> Result<pool::Leased<'a>, McpError> {
        let connect = || LocalHttpConn::connect(&replica.url, self.connect_timeout);
        replica
            .pool
            .take_unbounded(connect)
            .await
            .map_err(|e| self.cannot_connect(replica, e))
    }

    fn cannot_connect(&self, replica: &LocalReplica, e: std::io::Error) -> McpError {
        self.unavailable(format!("cannot connect to {}: {e}", replica.url.raw))
    }
}

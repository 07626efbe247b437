//! The per-connection loop of the client-facing HTTP/1.1 front.
//!
//! Reads a request ([`crate::http::request`]), routes by path (`/mcp`, `/health`, `/metrics`;
//! `/ready` and the drain endpoints in [`crate::front::admin`]), writes the reply with one
//! write, and keeps the connection for the next request unless the client or the shard
//! (shutting down) says otherwise. HTTP-level failures (400, 408, 413, 431, 501) are
//! answered and the connection closed, because the rest of the stream cannot be trusted.
//!
//! Every write to the client runs under a stall timeout, `server.idle_timeout_ms`: a client
//! that accepts no byte of its answer for that long is idle as surely as one that sends
//! nothing, and its connection is closed (see [`crate::rt::io::write_all_within`] for why it
//! bounds stalls rather than whole writes). An SSE answer is fed through a byte-bounded
//! queue ([`crate::rt::feed`]): a client that falls more than that behind has its connection
//! closed without the stream's last chunk, as if it had left.

use std::rc::Rc;

use monoio::io::{AsyncReadRent, AsyncWriteRent};
use monoio::net::TcpStream;

use crate::catalog::BackendState;
use crate::front::LocalFront;
use crate::http::request::{read_request, ConnBuffers, Method, ReadError, Request};
use crate::http::response::{encode, Reply};
use crate::route::dispatch::handle;
use crate::route::request::McpHttpRequest;
use crate::rt::io::{write_all_from, write_all_within, write_gather_within, Gather, WatchClose};

/// What a connection is serving, kept for the log line of a contained panic
/// ([`crate::rt::contain`]): the request in progress, never its body or credentials.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnTag {
    /// HTTP method of the request in progress.
    pub method: Option<Method>,
    /// Its path, as one of the gateway's endpoints (or `other`).
    pub path: &'static str,
    /// Its body length.
    pub body_len: usize,
    /// Requests served on this connection before it.
    pub served: u64,
}

/// A connection's [`ConnTag`], shared with the panic report of its task.
pub type LocalConnTag = Rc<std::cell::Cell<ConnTag>>;

/// Logs and counts a panic contained to one connection of this shard.
pub fn report_panic(front: &LocalFront, tag: &ConnTag, msg: &str) {
    front.panics.set(front.panics.get() + 1);
    tracing::error!(
        shard = front.router.id,
        method = ?tag.method,
        path = tag.path,
        body_bytes = tag.body_len,
        served_before = tag.served,
        "gateway fault: panic while serving a connection ({msg}); that connection was closed, the shard serves on"
    );
}

/// Adds one to a shard counter for as long as it lives, unwinding included.
pub(crate) struct Counted<'a>(&'a std::cell::Cell<usize>);

impl<'a> Counted<'a> {
    pub(crate) fn enter(c: &'a std::cell::Cell<usize>) -> Self {
        c.set(c.get() + 1);
        Counted(c)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

/// Serves one TLS connection: the handshake (bounded by the read timeout), then requests.
pub async fn serve_tls(
    front: Rc<LocalFront>,
    acceptor: monoio_rustls::TlsAcceptor,
    stream: TcpStream,
    tag: LocalConnTag,
) {
    let limit = front.limits.read_timeout;
    match monoio::time::timeout(limit, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => serve_conn(front, tls, tag).await,
        Ok(Err(e)) => tracing::debug!(shard = front.router.id, "TLS handshake failed: {e}"),
        Err(_) => tracing::debug!(shard = front.router.id, "TLS handshake timed out"),
    }
}

/// Serves one client connection (plain TCP or TLS) until it closes.
pub async fn serve_conn<S: AsyncReadRent + AsyncWriteRent + WatchClose>(
    front: Rc<LocalFront>,
    mut stream: S,
    tag: LocalConnTag,
) {
    {
        let _open = Counted::enter(&front.connections);
        serve_requests(&front, &mut stream, &tag).await;
    }
    // Send FIN now rather than whenever the runtime gets to closing a dropped socket: a
    // client reading to EOF must not wait on the shard's next event. (Bounded: TLS writes a
    // close_notify, which a client that stopped reading would never take.)
    let stall = front.limits.idle_timeout;
    let _ = monoio::time::timeout(stall, monoio::io::AsyncWriteRent::shutdown(&mut stream)).await;
}

/// Answers a connection over the shard's limit with 503 and `Retry-After`, then closes it.
pub async fn refuse_conn(mut stream: TcpStream) {
    let mut reply = Reply::json(
        503,
        crate::error::McpError::Gateway("too many connections on this shard; retry shortly".into())
            .to_response(b""),
    );
    reply.retry_after = Some(1);
    let mut out = Vec::new();
    encode(&reply, false, &mut out);
    let _ = write_all_within(&mut stream, out, REFUSE_STALL).await;
    let _ = monoio::io::AsyncWriteRent::shutdown(&mut stream).await;
}

/// The answer to an MCP request that reaches a shard stopping its backends (on a connection
/// opened before): 503 with `Retry-After`, the request's id when it can be read, so a client
/// or balancer retries it on another node. The connection closes after it (draining).
fn stopping(body: &[u8]) -> Reply {
    let id = sonic_rs::get(body, ["id"]).map(|v| v.as_raw_str().as_bytes().to_vec());
    let mut reply = Reply::json(
        503,
        crate::error::McpError::Gateway("this gateway is stopping; retry on another node".into())
            .to_response(id.as_deref().unwrap_or(b"")),
    );
    reply.retry_after = Some(1);
    reply
}

/// How long a refused connection may take to accept its 503 (the shard holds no limit there).
const REFUSE_STALL: std::time::Duration = std::time::Duration::from_secs(5);

async fn serve_requests<S: AsyncReadRent + AsyncWriteRent + WatchClose>(
    front: &Rc<LocalFront>,
    stream: &mut S,
    tag: &LocalConnTag,
) {
    let front = front.clone();
    let stall = front.limits.idle_timeout;
    let mut bufs = ConnBuffers::default();
    // Reused across replies, grown to the largest one sent (not preallocated: a connection
    // that sent only small replies stays small while it idles).
    let mut out = Vec::new();
    // A client that pipelines without pause gives way now and then (`rt::fair`).
    let mut turn = crate::rt::fair::Budget::new(crate::rt::fair::REQUESTS_PER_TURN);
    loop {
        turn.spend().await;
        let req = match read_request(stream, &mut bufs, &front.limits).await {
            Ok(r) => r,
            Err(ReadError::Closed) | Err(ReadError::Io(_)) => return,
            Err(ReadError::Status(status, msg)) => {
                let reply = if status == 413 {
                    Reply::json(
                        413,
                        crate::error::McpError::InvalidRequest(format!(
                            "request body larger than {} bytes",
                            front.limits.max_body
                        ))
                        .to_response(b""),
                    )
                } else {
                    Reply::text(status, msg)
                };
                encode(&reply, false, &mut out);
                let _ = write_all_within(stream, std::mem::take(&mut out), stall).await;
                return;
            }
        };
        let prev = tag.get();
        tag.set(ConnTag {
            method: Some(req.method),
            path: endpoint(&bufs.buf[req.path.clone()]),
            body_len: bufs.body.len(),
            served: prev.served + u64::from(prev.method.is_some()),
        });
        let watch = req.method == Method::Post;
        let mut reply = {
            let _busy = Counted::enter(&front.inflight);
            // Pinned where it is made: the request's future is the largest this task holds,
            // and handing it to `select!` or `.await` by value copied all of it per request.
            let mut routed = std::pin::pin!(route(&front, &req, &mut bufs));
            if watch {
                // A request still being served after a moment watches its connection: a
                // client that left cancels it (its backend call ends, its slot frees) rather
                // than holding everything until the backend's timeout.
                let watch_at = monoio::time::Instant::from_std(req.arrived() + WATCH_AFTER);
                let gone = async {
                    monoio::time::sleep_until(watch_at).await;
                    stream.closed().await
                };
                monoio::select! {
                    r = routed.as_mut() => r,
                    _ = gone => {
                        front.router.clients_gone.set(front.router.clients_gone.get() + 1);
                        return;
                    }
                }
            } else {
                routed.as_mut().await
            }
        };
        // From SIGTERM on, no connection is left idle for a balancer to reuse: one it wrote
        // a request on just as the drain grace ends would lose that request. Each answer
        // closes its connection; the next request comes on a fresh one, which the stopped
        // node refuses and the balancer sends elsewhere (tests/drain_keepalive.rs).
        let keep = req.keep_alive
            && !front.router.draining.get()
            && front.router.readiness.state() != crate::readiness::Readiness::Stopping;
        if reply.stream.is_some() {
            match write_sse(stream, reply, out, stall).await {
                Some(back) if keep => out = back,
                Some(_) => return,
                None => return stream.abort(),
            }
            continue;
        }
        if reply.gz.is_some() {
            crate::front::gzip::encode(&front, &req, &bufs, &mut reply).await;
        }
        encode(&reply, keep, &mut out);
        let shared = if req.method == Method::Head {
            // HEAD: the head GET would get (its Content-Length included), without the body.
            out.truncate(out.len() - reply.body.len());
            None
        } else {
            reply.shared
        };
        // Copied into `out`: the body's buffer goes back to the shard's list for the next
        // answer (`rt/bufs.rs`).
        crate::rt::bufs::give(reply.body);
        // The write's stall counts from a fresh reading: the answer may have come after a
        // long wait with no reading on this shard (another shard's, a compression).
        let written = crate::rt::clock::now();
        out = match shared {
            // A pre-rendered list: head, shared bytes (not copied into `out`) and tail in one
            // `writev`.
            Some((shared, tail)) => {
                let parts = Gather::new(std::mem::take(&mut out), shared, tail);
                match write_gather_within(stream, parts, stall).await {
                    Ok(back) => back.into_head(),
                    Err(_) => return stream.abort(),
                }
            }
            None => match write_all_from(stream, std::mem::take(&mut out), stall, written).await {
                Ok(back) => back,
                Err(_) => return stream.abort(),
            },
        };
        if !keep {
            return;
        }
        crate::http::request::shrink_idle(&mut out);
    }
}

/// How long a request runs before its connection is watched for the client leaving (most
/// answers come sooner, and pay nothing for the watch).
const WATCH_AFTER: std::time::Duration = std::time::Duration::from_millis(50);

/// Keep-alive comment cadence on an idle SSE stream (intermediaries cut idle streams).
const SSE_KEEPALIVE: std::time::Duration = std::time::Duration::from_secs(15);

/// Streams an SSE reply with chunked framing so the connection survives the stream. Returns
/// the buffer for reuse, or `None` when the connection must close: the client went away,
/// stalled a write for `stall`, or fell so far behind that its feed overflowed (then the
/// last chunk is not sent, so the client cannot take the cut stream for a whole one).
async fn write_sse<S: AsyncWriteRent + WatchClose>(
    stream: &mut S,
    mut reply: Reply,
    mut out: Vec<u8>,
    stall: std::time::Duration,
) -> Option<Vec<u8>> {
    let mut rx = reply.stream.take()?;
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nx-accel-buffering: no\r\ntransfer-encoding: chunked\r\n");
    out.extend_from_slice(crate::http::response::served_by());
    if let Some(sid) = &reply.session_id {
        out.extend_from_slice(b"mcp-session-id: ");
        out.extend_from_slice(sid.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    // Send the head at once: clients wait for it before they read events.
    out = write_all_within(stream, std::mem::take(&mut out), stall)
        .await
        .ok()?;
    out.clear();
    loop {
        // Waiting for the next event also watches the connection: a client that left ends the
        // stream now (and what it holds, e.g. a listen's table entry, goes with the reply),
        // not at the next keep-alive write that fails.
        let next = {
            let wait = monoio::time::timeout(SSE_KEEPALIVE, crate::rt::next(&mut rx));
            let gone = stream.closed();
            monoio::select! {
                n = wait => n,
                _ = gone => return None,
            }
        };
        let event: Vec<u8> = match next {
            Ok(Some(item)) => {
                let (id, msg) = crate::http::response::untag_event(&item);
                let mut e = Vec::with_capacity(msg.len() + 48);
                if let Some(id) = id {
                    e.extend_from_slice(b"id: ");
                    e.extend_from_slice(id);
                    e.push(b'\n');
                }
                if msg.is_empty() {
                    // Priming event: an id and empty data, so the client can resume from it.
                    e.extend_from_slice(b"data: \n\n");
                } else {
                    e.extend_from_slice(b"event: message\ndata: ");
                    e.extend_from_slice(msg);
                    e.extend_from_slice(b"\n\n");
                }
                e
            }
            Ok(None) if rx.overflowed() => return None,
            Ok(None) => break,
            Err(_) => b": keep-alive\n\n".to_vec(),
        };
        out.extend_from_slice(format!("{:x}\r\n", event.len()).as_bytes());
        out.extend_from_slice(&event);
        out.extend_from_slice(b"\r\n");
        // A client that stopped reading blocks this write; the producer meanwhile fills the
        // feed to its bound and overflows it, which ends the wait (and the connection) now
        // rather than at the stall timeout.
        let write = write_all_within(stream, std::mem::take(&mut out), stall);
        out = monoio::select! {
            w = write => w.ok()?,
            _ = rx.overflow() => return None,
        };
        out.clear();
    }
    out.extend_from_slice(b"0\r\n\r\n");
    let mut back = write_all_within(stream, std::mem::take(&mut out), stall)
        .await
        .ok()?;
    back.clear();
    Some(back)
}

fn media_is(value: Option<&str>, want: &str) -> bool {
    value.is_some_and(|v| {
        v.split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case(want))
    })
}

fn accepts(value: Option<&str>, want: &str) -> bool {
    value.is_some_and(|v| {
        v.split(',').any(|part| {
            let t = part.split(';').next().unwrap_or("").trim();
            t.eq_ignore_ascii_case(want) || t == "*/*"
        })
    })
}

/// The endpoint a path names, for logs.
fn endpoint(path: &[u8]) -> &'static str {
    match path {
        b"/mcp" => "/mcp",
        b"/health" => "/health",
        b"/metrics" | b"/api/v1/admin/metrics" => "/metrics",
        b"/ready" => "/ready",
        b"/admin/drain" | b"/admin/undrain" => "/admin",
        _ => "other",
    }
}

async fn route(front: &Rc<LocalFront>, req: &Request, bufs: &mut ConnBuffers) -> Reply {
    let path = &bufs.buf[req.path.clone()];
    match path {
        b"/mcp" => mcp(front, req, bufs).await,
        b"/health" => {
            if req.method != Method::Get {
                let mut r = Reply::text(405, "use GET");
                r.allow = Some("GET");
                return r;
            }
            health(front)
        }
        b"/metrics" | b"/api/v1/admin/metrics" => {
            if req.method != Method::Get {
                let mut r = Reply::text(405, "use GET");
                r.allow = Some("GET");
                return r;
            }
            if let Err(refused) = authenticate(front, req, bufs) {
                return *refused;
            }
            metrics(front)
        }
        b"/ready" | b"/admin/drain" | b"/admin/undrain" => {
            crate::front::admin::serve(front, req, bufs)
        }
        b"/.well-known/oauth-protected-resource" | b"/.well-known/oauth-protected-resource/mcp" => {
            if req.method != Method::Get {
                let mut r = Reply::text(405, "use GET");
                r.allow = Some("GET");
                return r;
            }
            match &front.router.snapshot.load().auth.metadata {
                Some(doc) => Reply::json(200, doc.clone()),
                None => Reply::text(
                    404,
                    "no OAuth protected resource here (auth.mode is not jwt)",
                ),
            }
        }
        _ => Reply::text(404, "not found; the MCP endpoint is /mcp"),
    }
}

/// The caller of `req`, or the 401/403 to answer (and its audit line).
pub(crate) fn authenticate(
    front: &Rc<LocalFront>,
    req: &Request,
    bufs: &ConnBuffers,
) -> Result<crate::auth::verify::Principal, Box<Reply>> {
    let snap = front.router.snapshot.load();
    let authorization = req.headers.authorization.clone().map(|r| &bufs.buf[r]);
    let query = req.query.clone().map(|r| &bufs.buf[r]);
    front
        .router
        .auth
        .principal_of(&snap.auth, authorization, query, |kid| {
            (front.unknown_kid)(kid)
        })
        .map_err(|denied| {
            let reply = crate::auth::local::refusal(&snap.auth, &denied);
            let who = match &denied {
                crate::auth::verify::Denied::InsufficientScope(p) => Some(&**p),
                _ => None,
            };
            let session = req.headers.session_id.clone().map(|r| &bufs.buf[r]);
            crate::route::audit::refused(&front.router, &bufs.body, &reply, who, session);
            Box::new(reply)
        })
}

/// The Prometheus text the control thread last rendered (at most 500 ms old).
fn metrics(front: &Rc<LocalFront>) -> Reply {
    let text = front.metrics_text.load();
    if text.is_empty() {
        return Reply::text(503, "metrics not rendered yet; retry in a second");
    }
    Reply {
        status: 200,
        content_type: Some("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        body: text.to_vec(),
        ..Default::default()
    }
}

async fn mcp(front: &Rc<LocalFront>, req: &Request, bufs: &mut ConnBuffers) -> Reply {
    if front.stopped.get() {
        return stopping(&bufs.body);
    }
    let h = &req.headers;
    if let Err(why) = front.policy.check(bufs.text(&h.host), bufs.text(&h.origin)) {
        return Reply::json(
            403,
            crate::error::McpError::InvalidRequest(format!("forbidden: {why}")).to_response(b""),
        );
    }
    // Before anything else reads the request: who sent it.
    let principal = match authenticate(front, req, bufs) {
        Ok(p) => p,
        Err(refused) => return *refused,
    };
    if req.method == Method::Post {
        if !media_is(bufs.text(&h.content_type), "application/json") {
            return Reply::json(
                415,
                crate::error::McpError::InvalidRequest(
                    "Content-Type must be application/json".into(),
                )
                .to_response(b""),
            );
        }
        let accept = bufs.text(&h.accept);
        if !(accepts(accept, "application/json") && accepts(accept, "text/event-stream")) {
            return Reply::json(
                406,
                crate::error::McpError::InvalidRequest(
                    "Accept must include application/json and text/event-stream".into(),
                )
                .to_response(b""),
            );
        }
    }
    let mreq = McpHttpRequest {
        method: req.method,
        session_id: bufs.text(&h.session_id).map(|s| s.trim().into()),
        protocol_version: bufs.text(&h.protocol_version).map(|s| s.trim().into()),
        accepts_sse: accepts(bufs.text(&h.accept), "text/event-stream"),
        last_event_id: bufs.text(&h.last_event_id).map(|s| s.trim().to_string()),
        mcp_method: bufs.text(&h.mcp_method).map(|s| s.trim().to_string()),
        mcp_name: bufs.text(&h.mcp_name).map(|s| s.trim().to_string()),
        mcp_params: h
            .mcp_params
            .then(|| crate::http::request::mcp_params(&bufs.buf[..req.head_len]))
            .flatten(),
        affinity: {
            let snap = front.router.snapshot.load();
            crate::balance::AffinityValues::from_head(&snap.balance_keys, &bufs.buf[..req.head_len])
        },
        principal,
        discovery: {
            use crate::config::Discovery;
            match bufs.text(&h.discovery).map(str::trim) {
                Some(v) if v.eq_ignore_ascii_case("search") => Discovery::Search,
                Some(v) if v.eq_ignore_ascii_case("hybrid") => Discovery::Hybrid,
                Some(v) if v.eq_ignore_ascii_case("full") => Discovery::Full,
                _ => front.router.snapshot.load().config.proxy.discovery,
            }
        },
        trace: match front.router.trace.is_enabled() {
            true => crate::trace::Incoming::from_headers(
                h.traceparent.clone().map(|r| &bufs.buf[r]),
                h.tracestate.clone().map(|r| &bufs.buf[r]),
            ),
            false => Default::default(),
        },
        body: std::mem::take(&mut bufs.body),
    };
    let reply = handle(&front.router, mreq, true).await;
    reply
}

fn health(front: &Rc<LocalFront>) -> Reply {
    let snap = front.router.snapshot.load();
    let mut ready = true;
    let mut backends = Vec::with_capacity(snap.catalog.reports.len());
    for r in &snap.catalog.reports {
        let (state, reason) = match &r.state {
            BackendState::Starting => ("starting", None),
            BackendState::Ready => ("ready", None),
            BackendState::Down(why) => ("down", Some(why.as_str())),
        };
        ready &= r.state == BackendState::Ready;
        let dropped: Vec<sonic_rs::Value> = r
            .dropped
            .iter()
            .map(|(n, why)| sonic_rs::json!({"tool": n, "reason": why}))
            .collect();
        backends.push(sonic_rs::json!({
            "id": r.id, "state": state, "reason": reason, "tools": r.tools,
            "prompts": r.prompts, "resources": r.resources, "dropped": dropped,
        }));
    }
    let status = if front.router.draining.get() {
        "draining"
    } else if ready {
        "ok"
    } else {
        "degraded"
    };
    let body = sonic_rs::json!({
        "status": status,
        "shard": front.router.id,
        "shards": front.router.ring.shards(),
        "sessions_on_shard": front.router.sessions.borrow().len(),
        "tools": snap.catalog.len(),
        "backends": backends,
    });
    let code = if front.router.draining.get() {
        503
    } else {
        200
    };
    Reply::json(code, sonic_rs::to_vec(&body).unwrap_or_default())
}

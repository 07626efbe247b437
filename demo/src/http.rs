//! The Streamable HTTP transport: routing, and the legacy (session) shape.
//!
//! Owns the MCP side of HTTP on one endpoint, `/mcp`: the accept loop (one
//! thread per connection, keep-alive; TCP or, with `unix:PATH`, a unix
//! socket), request validation, routing and the
//! `Mcp-Session-Id` session table. The SSE streams live in
//! `http_stream.rs`, byte-level HTTP/1.1 framing in `http1.rs`.
//!
//! * Checks, in order: path (404), `Host` when the listener is on loopback
//!   (DNS-rebinding protection: only `localhost`, `127.x.x.x` or `[::1]`,
//!   with or without a port; else 403), `Origin` if present (loopback
//!   origins only; else 403). Then the era: a POST classified as 2026-07-28
//!   traffic (`modern::is_modern_http`: no session, a protocol version
//!   header or `_meta`, not a legacy header without `_meta`) goes to
//!   `http_modern.rs`; GET/DELETE without `Mcp-Session-Id` get 405 (the
//!   2026 transport is POST-only). Legacy traffic (all of it with
//!   `DEMO_MODERN=0`): `MCP-Protocol-Version` if present must be a
//!   supported version (else 400).
//! * `POST /mcp` with `Content-Type: application/json` (else 415). A request
//!   gets an `application/json` response, or SSE once it emits related
//!   messages (`PostStream`). Notifications and responses (answers to the
//!   server's requests, routed to the waiting tool) get 202 with no body.
//! * `initialize` mints a session id; every other request must carry a known
//!   `Mcp-Session-Id` (400 if missing, 404 if unknown or deleted).
//! * `GET /mcp` with `Accept: text/event-stream` (else 406): the session's
//!   standalone stream (409 if one is open), or with `Last-Event-ID` the
//!   rest of a stream the server closed early (400 if unknown).
//! * `DELETE /mcp` ends the session (200); other methods 405.

use std::collections::HashMap;
use std::io::{self, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use sonic_rs::JsonValueTrait;

use super::conn::Conn;
use super::http1::{read_request, respond, HttpError, Request};
use super::http_stream::{parked_stream, serve_resumed, serve_standalone, HttpSession, PostStream};
use super::protocol::{self, Message, Reply};
use super::server::{Server, Transport, SUPPORTED_VERSIONS};
use super::session::lock;
use super::{http_modern, modern};
use super::{Config, DemoOptions};

const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

struct State {
    server: Server,
    sessions: Mutex<HashMap<String, Arc<HttpSession>>>,
    counter: AtomicU64,
    verbose: bool,
    /// The listener is on a loopback address: validate `Host`.
    check_host: bool,
    /// Keep-alive connections idle this long are closed (`DEMO_IDLE_TIMEOUT_MS`).
    idle_timeout: Duration,
}

pub fn run(addr: &str, opts: DemoOptions, config: Config) -> anyhow::Result<()> {
    let state = |check_host| {
        Arc::new(State {
            server: Server::new(opts, Transport::Http, config),
            sessions: Mutex::new(HashMap::new()),
            counter: AtomicU64::new(0),
            verbose: std::env::var_os("DEMO_VERBOSE").is_some(),
            check_host,
            idle_timeout: idle_timeout(),
        })
    };
    if let Some(path) = addr.strip_prefix("unix:") {
        let listener = bind_unix(path)?;
        announce(&format!("unix:{path}:/mcp"))?;
        // Same machine only, like loopback: `Host` is checked the same way.
        let state = state(true);
        serve(&state, listener.incoming().map(|c| c.map(Conn::Unix)));
        return Ok(());
    }
    let listener = TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr()?;
    announce(&format!("http://{local}/mcp"))?;
    let state = state(local.ip().is_loopback());
    serve(&state, listener.incoming().map(|c| c.map(Conn::Tcp)));
    Ok(())
}

/// Binds a unix socket at `path`, replacing a stale socket file a previous run left (any
/// other kind of file there is an error, never removed).
fn bind_unix(path: &str) -> anyhow::Result<UnixListener> {
    use std::os::unix::fs::FileTypeExt;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            anyhow::bail!("binding unix:{path}: the path exists and is not a socket");
        }
        std::fs::remove_file(path).with_context(|| format!("removing stale socket {path}"))?;
    }
    UnixListener::bind(path).with_context(|| format!("binding unix:{path}"))
}

/// The one line on stdout that says where the server listens.
fn announce(url: &str) -> anyhow::Result<()> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "demo-server listening on {url}")?;
    stdout.flush()?;
    Ok(())
}

/// The accept loop: a thread per connection.
fn serve(state: &Arc<State>, incoming: impl Iterator<Item = io::Result<Conn>>) {
    for stream in incoming {
        match stream {
            Ok(stream) => {
                let state = state.clone();
                let spawned = std::thread::Builder::new()
                    .name("demo-http-conn".into())
                    .spawn(move || serve_connection(&state, stream));
                if let Err(e) = spawned {
                    eprintln!("demo-server: cannot spawn connection thread: {e}");
                }
            }
            Err(e) => {
                // EMFILE and friends are transient: back off, keep serving.
                eprintln!("demo-server: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// `DEMO_IDLE_TIMEOUT_MS` (real servers close idle keep-alive connections too: uvicorn after
/// 5 s), else [`IDLE_TIMEOUT`].
fn idle_timeout() -> Duration {
    std::env::var("DEMO_IDLE_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&ms| ms > 0)
        .map_or(IDLE_TIMEOUT, Duration::from_millis)
}

fn serve_connection(state: &State, stream: Conn) {
    // Failures here only cost this connection; there is nobody to report to.
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(state.idle_timeout));
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut out = stream;
    loop {
        let req = match read_request(&mut reader, &mut out) {
            Ok(Some(req)) => req,
            Ok(None) => return,
            Err(HttpError(status, msg)) => {
                let _ = respond(&mut out, status, &[], Some(&rpc_error(msg)), false);
                return;
            }
        };
        if state.verbose {
            eprintln!("demo-server: {} {}", req.method, req.path);
        }
        match route(state, &req, &mut out) {
            Ok(true) if req.keep_alive => {}
            _ => return,
        }
    }
}

fn fail(out: &mut Conn, status: u16, msg: &str, ka: bool) -> io::Result<bool> {
    respond(out, status, &[], Some(&rpc_error(msg)), ka)
}

/// Handles one request; `Ok(false)` means the connection must close.
fn route(state: &State, req: &Request, out: &mut Conn) -> io::Result<bool> {
    let ka = req.keep_alive;
    let path = req.path.split('?').next().unwrap_or("");
    if path != "/mcp" {
        return fail(out, 404, "Not Found", ka);
    }
    if state.check_host && req.header("host").is_some_and(|h| !is_loopback_host(h)) {
        return fail(out, 403, "Forbidden: invalid Host", ka);
    }
    if req.header("origin").is_some_and(|o| !is_loopback_origin(o)) {
        return fail(out, 403, "Forbidden: invalid Origin", ka);
    }
    let no_session = req.header("mcp-session-id").is_none();
    let modern = state.server.config().modern;
    if modern && no_session && matches!(req.method.as_str(), "GET" | "DELETE") {
        // 2026-07-28 is POST-only; a legacy GET/DELETE needs a session.
        let msg =
            "Method Not Allowed: GET and DELETE need an Mcp-Session-Id (2026-07-28 is POST-only)";
        return respond(out, 405, &[("Allow", "POST")], Some(&rpc_error(msg)), ka);
    }
    match req.method.as_str() {
        "POST" => post(state, req, out),
        _ if !legacy_version_ok(req) => unsupported_version(out, ka),
        "GET" => get(state, req, out),
        "DELETE" => match check_session(state, req) {
            Err((status, msg)) => fail(out, status, msg, ka),
            Ok((id, session)) => {
                lock(&state.sessions).remove(&id);
                session.close();
                respond(out, 200, &[], None, ka)
            }
        },
        _ => respond(
            out,
            405,
            &[("Allow", "GET, POST, DELETE")],
            Some(&rpc_error("Method Not Allowed")),
            ka,
        ),
    }
}

/// Legacy traffic: an `MCP-Protocol-Version` header, if any, must name a
/// version of [`SUPPORTED_VERSIONS`].
fn legacy_version_ok(req: &Request) -> bool {
    req.header("mcp-protocol-version")
        .is_none_or(|v| SUPPORTED_VERSIONS.contains(&v))
}

fn unsupported_version(out: &mut Conn, ka: bool) -> io::Result<bool> {
    let msg = "Bad Request: unsupported MCP-Protocol-Version";
    fail(out, 400, msg, ka)
}

/// True if any `Accept` header lists `text/event-stream`.
pub fn accepts_sse(req: &Request) -> bool {
    req.headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("accept") && v.to_ascii_lowercase().contains("text/event-stream")
    })
}

fn post(state: &State, req: &Request, out: &mut Conn) -> io::Result<bool> {
    let ka = req.keep_alive;
    let content_type = req.header("content-type").unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/json") {
        let msg = "Unsupported Media Type: Content-Type must be application/json";
        return fail(out, 415, msg, ka);
    }
    let msg = match protocol::parse(&req.body) {
        Ok(msg) => msg,
        Err(error) => return respond(out, 400, &[], Some(&error), ka),
    };
    if state.verbose {
        if let Message::Request { method, params, .. } = &msg {
            // Tests count what reached this backend by these lines.
            let name = params.get("name").and_then(|n| n.as_str()).unwrap_or("-");
            eprintln!("demo-server: request {method} {name}");
        }
    }
    let has_meta = match &msg {
        Message::Request { params, .. } => params.get("_meta").is_some(),
        _ => false,
    };
    let version = req.header("mcp-protocol-version");
    let session = req.header("mcp-session-id").is_some();
    if state.server.config().modern && modern::is_modern_http(session, version, has_meta) {
        return http_modern::post(&state.server, req, msg, out);
    }
    if !state.server.config().legacy {
        let id = match &msg {
            Message::Request { id, .. } => id.clone(),
            _ => sonic_rs::Value::default(),
        };
        return respond(out, 400, &[], Some(&modern::legacy_refused(&id)), ka);
    }
    if !legacy_version_ok(req) {
        return unsupported_version(out, ka);
    }
    let initialize = msg.is_request() && msg.method() == Some("initialize");
    let session = if initialize {
        Arc::new(HttpSession::new(&state.server))
    } else {
        match check_session(state, req) {
            Ok((_, session)) => session,
            Err((status, text)) => return fail(out, status, text, ka),
        }
    };
    if !msg.is_request() {
        state.server.handle(&session.mcp, msg, &mut |_| false);
        return respond(out, 202, &[], None, ka);
    }
    let mut stream =
        PostStream::new(out, ka, accepts_sse(req), Some(&session)).with_headers(&req.headers);
    let (json, error) = match state.server.handle(&session.mcp, msg, &mut stream) {
        Reply::Send { json, error } => (json, error),
        Reply::GarbageThen(_, json) => (json, false),
        Reply::Silent | Reply::Exit(_) => (rpc_error("Internal error"), true),
    };
    if initialize && !error {
        let id = new_session_id(state);
        lock(&state.sessions).insert(id.clone(), session.clone());
        return stream.finish(json, &[("Mcp-Session-Id", &id)]);
    }
    stream.finish(json, &[])
}

fn get(state: &State, req: &Request, out: &mut Conn) -> io::Result<bool> {
    let ka = req.keep_alive;
    if !accepts_sse(req) {
        return fail(
            out,
            406,
            "Not Acceptable: GET needs Accept: text/event-stream",
            ka,
        );
    }
    let session = match check_session(state, req) {
        Ok((_, session)) => session,
        Err((status, text)) => return fail(out, status, text, ka),
    };
    match req.header("last-event-id") {
        None => serve_standalone(&session, out, ka),
        Some(last) => match parked_stream(&session, last) {
            Some(stream) => serve_resumed(&session, stream, out, ka),
            None => fail(out, 400, "Bad Request: unknown Last-Event-ID", ka),
        },
    }
}

/// The request's known session (id and state), or the status and message
/// to fail with.
fn check_session(
    state: &State,
    req: &Request,
) -> Result<(String, Arc<HttpSession>), (u16, &'static str)> {
    let Some(id) = req.header("mcp-session-id") else {
        return Err((400, "Bad Request: missing Mcp-Session-Id"));
    };
    match lock(&state.sessions).get(id) {
        Some(session) => Ok((id.to_string(), session.clone())),
        None => Err((404, "Session not found")),
    }
}

/// 128 random bits as hex, from /dev/urandom, or from std's randomly keyed
/// hasher mixed with time and a counter if that is unavailable.
fn new_session_id(state: &State) -> String {
    let mut bytes = [0u8; 16];
    let urandom = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if urandom.is_err() {
        use std::hash::{BuildHasher, Hasher};
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let n = state.counter.fetch_add(1, Ordering::Relaxed);
        for (i, half) in bytes.chunks_mut(8).enumerate() {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(nanos);
            h.write_u64(n ^ i as u64);
            half.copy_from_slice(&h.finish().to_le_bytes());
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// True for `localhost`, `127.x.x.x` and `::1` (the host part of an
/// authority or URL, brackets removed).
fn is_loopback_name(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Splits `host[:port]` / `[v6][:port]`; `None` if malformed.
fn split_authority(authority: &str) -> Option<&str> {
    let (host, rest) = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once(']')?,
        None => match authority.split_once(':') {
            Some((h, port)) => (h, &authority[h.len()..][..port.len() + 1]),
            None => (authority, ""),
        },
    };
    let port_ok = match rest.strip_prefix(':') {
        Some(port) => !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()),
        None => rest.is_empty(),
    };
    port_ok.then_some(host)
}

/// A `Host` header naming a loopback host, with or without a port.
pub fn is_loopback_host(host: &str) -> bool {
    split_authority(host).is_some_and(is_loopback_name)
}

fn is_loopback_origin(origin: &str) -> bool {
    let Some((_, rest)) = origin.split_once("://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or("");
    split_authority(authority).is_some_and(is_loopback_name)
}

/// A JSON-RPC error body (id null) for HTTP-level failures.
pub fn rpc_error(message: &str) -> String {
    protocol::error_response(&sonic_rs::Value::new(), -32000, message)
}

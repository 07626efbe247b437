//! The Streamable HTTP transport (legacy, session-based shape).
//!
//! Owns the MCP side of HTTP on one endpoint, `/mcp`: the accept loop (one
//! thread per connection, keep-alive), routing, `Mcp-Session-Id` sessions
//! and the choice between a JSON and an SSE response. Byte-level HTTP/1.1
//! framing lives in `http1.rs`.
//!
//! * `POST /mcp` with `Content-Type: application/json` (else 415). A request
//!   gets an `application/json` response; a `sleep` call with a
//!   `progressToken` from a client that accepts `text/event-stream` gets a
//!   chunked SSE stream instead (each progress notification, then the
//!   response). Notifications and responses get 202 with no body.
//! * `initialize` mints a session id; every other POST must carry a known
//!   `Mcp-Session-Id` (400 if missing, 404 if unknown).
//! * `DELETE /mcp` ends the session (200). `GET /mcp` is 405 (no standalone
//!   stream: this server never sends unsolicited messages). Other paths 404.
//! * An `Origin` header that is not a loopback origin gets 403, and an
//!   unsupported `MCP-Protocol-Version` header gets 400, as the spec asks.

use std::collections::HashSet;
use std::io::{self, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;

use super::http1::{read_request, respond, write_event, HttpError, Request};
use super::protocol::{self, Message, Reply, Server, Transport, SUPPORTED_VERSIONS};
use super::DemoOptions;

const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

struct State {
    server: Server,
    sessions: Mutex<HashSet<String>>,
    counter: AtomicU64,
    verbose: bool,
}

pub fn run(addr: &str, opts: DemoOptions) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr()?;
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "demo-server listening on http://{local}/mcp")?;
    stdout.flush()?;
    drop(stdout);
    let state = Arc::new(State {
        server: Server::new(opts, Transport::Http),
        sessions: Mutex::new(HashSet::new()),
        counter: AtomicU64::new(0),
        verbose: std::env::var_os("DEMO_VERBOSE").is_some(),
    });
    for stream in listener.incoming() {
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
    Ok(())
}

fn serve_connection(state: &State, stream: TcpStream) {
    // Failures here only cost this connection; there is nobody to report to.
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
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

/// Handles one request; `Ok(false)` means the connection must close.
fn route(state: &State, req: &Request, out: &mut TcpStream) -> io::Result<bool> {
    let ka = req.keep_alive;
    let path = req.path.split('?').next().unwrap_or("");
    if path != "/mcp" {
        return respond(out, 404, &[], Some(&rpc_error("Not Found")), ka);
    }
    if let Some(origin) = req.header("origin") {
        if !is_loopback_origin(origin) {
            return respond(
                out,
                403,
                &[],
                Some(&rpc_error("Forbidden: invalid Origin")),
                ka,
            );
        }
    }
    if let Some(v) = req.header("mcp-protocol-version") {
        if !SUPPORTED_VERSIONS.contains(&v) {
            return respond(
                out,
                400,
                &[],
                Some(&rpc_error("Bad Request: unsupported MCP-Protocol-Version")),
                ka,
            );
        }
    }
    match req.method.as_str() {
        "POST" => post(state, req, out),
        "DELETE" => match check_session(state, req) {
            Err((status, msg)) => respond(out, status, &[], Some(&rpc_error(msg)), ka),
            Ok(id) => {
                lock(&state.sessions).remove(id);
                respond(out, 200, &[], None, ka)
            }
        },
        _ => respond(
            out,
            405,
            &[("Allow", "POST, DELETE")],
            Some(&rpc_error("Method Not Allowed")),
            ka,
        ),
    }
}

fn post(state: &State, req: &Request, out: &mut TcpStream) -> io::Result<bool> {
    let ka = req.keep_alive;
    let content_type = req.header("content-type").unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/json") {
        let msg = "Unsupported Media Type: Content-Type must be application/json";
        return respond(out, 415, &[], Some(&rpc_error(msg)), ka);
    }
    let msg = match protocol::parse(&req.body) {
        Ok(msg) => msg,
        Err(error) => return respond(out, 400, &[], Some(&error), ka),
    };
    let initialize = msg.is_request() && msg.method() == Some("initialize");
    if !initialize {
        if let Err((status, text)) = check_session(state, req) {
            return respond(out, status, &[], Some(&rpc_error(text)), ka);
        }
    }
    if !msg.is_request() {
        state.server.handle(msg, &mut |_| {});
        return respond(out, 202, &[], None, ka);
    }
    let accepts_sse = req
        .header("accept")
        .is_some_and(|a| a.to_ascii_lowercase().contains("text/event-stream"));
    if accepts_sse && msg.streams_progress() {
        return stream_sse(state, msg, out, ka);
    }
    // A JSON response has nowhere to put notifications: they are dropped.
    let (json, error) = match state.server.handle(msg, &mut |_| {}) {
        Reply::Send { json, error } => (json, error),
        Reply::GarbageThen(_, json) => (json, false),
        Reply::Silent | Reply::Exit(_) => (rpc_error("Internal error"), true),
    };
    if initialize && !error {
        let session = new_session_id(state);
        lock(&state.sessions).insert(session.clone());
        return respond(out, 200, &[("Mcp-Session-Id", &session)], Some(&json), ka);
    }
    respond(out, 200, &[], Some(&json), ka)
}

/// Answers with `text/event-stream`: one `message` event per notification
/// as it happens, then the response. Chunked on keep-alive connections,
/// close-delimited otherwise.
fn stream_sse(
    state: &State,
    msg: Message,
    out: &mut TcpStream,
    keep_alive: bool,
) -> io::Result<bool> {
    let mut head = String::from(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nX-Accel-Buffering: no\r\n",
    );
    head.push_str(if keep_alive {
        "Transfer-Encoding: chunked\r\n"
    } else {
        "Connection: close\r\n"
    });
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    let mut failed: Option<io::Error> = None;
    let mut send = |json: &str, out: &mut TcpStream| {
        if failed.is_none() {
            if let Err(e) = write_event(out, json, keep_alive) {
                failed = Some(e);
            }
        }
    };
    let mut sink = out.try_clone()?;
    let reply = state.server.handle(msg, &mut |n| send(&n, &mut sink));
    if let Reply::Send { json, .. } | Reply::GarbageThen(_, json) = reply {
        send(&json, out);
    }
    if let Some(e) = failed {
        return Err(e);
    }
    if keep_alive {
        out.write_all(b"0\r\n\r\n")?;
    }
    Ok(keep_alive)
}

/// Returns the request's known session id, or the status and message to fail with.
fn check_session<'r>(state: &State, req: &'r Request) -> Result<&'r str, (u16, &'static str)> {
    match req.header("mcp-session-id") {
        None => Err((400, "Bad Request: missing Mcp-Session-Id")),
        Some(id) if lock(&state.sessions).contains(id) => Ok(id),
        Some(_) => Err((404, "Session not found")),
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

fn is_loopback_origin(origin: &str) -> bool {
    let Some((_, rest)) = origin.split_once("://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or("");
    let host = if authority.starts_with('[') {
        authority.split(']').next().map(|h| &h[1..]).unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost") || host == "::1" || host.starts_with("127.")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A JSON-RPC error body (id null) for HTTP-level failures.
fn rpc_error(message: &str) -> String {
    protocol::error_response(&sonic_rs::Value::new(), -32000, message)
}

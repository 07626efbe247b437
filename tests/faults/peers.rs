//! The misbehaving peers of the fault-injection test, all deliberate fakes (`TcpListener`
//! threads in the test): no real MCP server can be made to misbehave like this on demand.
//!
//! - [`Hang`]: accepts connections, reads whatever comes, never answers.
//! - [`Scripted`]: a minimal Streamable HTTP MCP server that answers the gateway's handshake
//!   and discovery correctly (`server/discover` → 400, so it is a 2025-era server;
//!   `initialize`, `notifications/initialized`, `tools/list` with one `echo` tool; GET → 405),
//!   then answers `tools/call` badly ([`Bad`]) until [`Scripted::heal`] is called. So the
//!   gateway's call path is exercised, not only its discovery.
//!
//! Every thread is bounded (a deadline and a stop flag; sockets have read timeouts) and
//! joined on drop. Each connection serves one request and is closed (`connection: close`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sonic_rs::JsonValueTrait;

/// Upper bound on any fake's life.
const FAKE_MAX: Duration = Duration::from_secs(120);

/// Accepts on `l` until `stop` (or [`FAKE_MAX`]), running `conn` on a thread per connection;
/// joins them all before returning.
fn acceptor(
    l: TcpListener,
    stop: Arc<AtomicBool>,
    conn: impl Fn(TcpStream, &AtomicBool) + Send + Sync + 'static,
) -> JoinHandle<()> {
    l.set_nonblocking(true).unwrap();
    let conn = Arc::new(conn);
    std::thread::spawn(move || {
        let deadline = Instant::now() + FAKE_MAX;
        let mut conns: Vec<JoinHandle<()>> = Vec::new();
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            match l.accept() {
                Ok((c, _)) => {
                    let (stop, conn) = (stop.clone(), conn.clone());
                    conns.push(std::thread::spawn(move || {
                        let _ = c.set_nonblocking(false);
                        let _ = c.set_read_timeout(Some(Duration::from_millis(100)));
                        conn(c, &stop);
                    }));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
            conns.retain(|h| !h.is_finished());
        }
        for c in conns {
            let _ = c.join();
        }
    })
}

/// Reads from `c` until EOF, `stop`, or [`FAKE_MAX`]; `each` sees the bytes so far and says
/// when to stop reading.
fn read_while(c: &mut TcpStream, stop: &AtomicBool, mut each: impl FnMut(&[u8]) -> bool) {
    let deadline = Instant::now() + FAKE_MAX;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        match c.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if !each(&buf) {
                    return;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

/// A deliberate fake: an HTTP "backend" that accepts connections, reads whatever comes and
/// never answers.
pub struct Hang {
    pub addr: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Hang {
    pub fn start() -> Hang {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = acceptor(l, stop.clone(), |mut c, stop| {
            read_while(&mut c, stop, |_| true)
        });
        Hang {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Hang {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// How a [`Scripted`] fake answers `tools/call` while it is bad.
#[derive(Clone, Copy)]
pub enum Bad {
    /// `200 OK`, `content-type: application/json`, body `not json!`.
    Garbage,
    /// `200 OK` with `content-length: 1000`, 19 bytes of a JSON body, then the connection
    /// is closed.
    Cut,
}

/// A deliberate fake: a scripted 2025-era MCP server over HTTP that turns bad on
/// `tools/call` (see the module docs).
pub struct Scripted {
    pub addr: String,
    /// `tools/call` requests received (bad or healed).
    calls: Arc<AtomicU32>,
    healed: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Scripted {
    pub fn start(bad: Bad) -> Scripted {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(AtomicU32::new(0));
        let healed = Arc::new(AtomicBool::new(false));
        let (c2, h2) = (calls.clone(), healed.clone());
        let thread = acceptor(l, stop.clone(), move |mut c, stop| {
            let mut req = None;
            read_while(&mut c, stop, |buf| {
                req = parse_request(buf);
                req.is_none() && buf.len() < 1 << 20
            });
            if let Some((method, body)) = req {
                answer(&mut c, &method, &body, bad, &c2, &h2);
            }
        });
        Scripted {
            addr,
            calls,
            healed,
            stop,
            thread: Some(thread),
        }
    }

    pub fn calls(&self) -> u32 {
        self.calls.load(Ordering::Relaxed)
    }

    /// From now on `tools/call` gets a correct answer.
    pub fn heal(&self) {
        self.healed.store(true, Ordering::Relaxed);
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One complete request (HTTP method, body), once all of it has arrived.
fn parse_request(buf: &[u8]) -> Option<(String, Vec<u8>)> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut r = httparse::Request::new(&mut headers);
    let n = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return None,
        // Not HTTP at all: answer it as an empty request (it gets a 400).
        Err(_) => return Some((String::new(), Vec::new())),
    };
    let len = r
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
        .unwrap_or(0usize);
    (buf.len() >= n + len).then(|| (r.method.unwrap_or("").to_string(), buf[n..n + len].to_vec()))
}

fn respond(c: &mut TcpStream, status: &str, extra: &str, body: &str) {
    let _ = write!(
        c,
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n{extra}\r\n{body}",
        body.len()
    );
}

fn answer(
    c: &mut TcpStream,
    http_method: &str,
    body: &[u8],
    bad: Bad,
    calls: &AtomicU32,
    healed: &AtomicBool,
) {
    match http_method {
        "POST" => {}
        // No GET stream (the gateway's listener stops on 405); DELETE of a session is fine.
        "GET" => return respond(c, "405 Method Not Allowed", "", ""),
        "DELETE" => return respond(c, "200 OK", "", ""),
        _ => return respond(c, "400 Bad Request", "", ""),
    }
    let Ok(msg) = sonic_rs::from_slice::<sonic_rs::Value>(body) else {
        return respond(c, "400 Bad Request", "", "");
    };
    let id = sonic_rs::to_string(&msg["id"]).unwrap_or_else(|_| "null".into());
    let ok = |result: &str| format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#);
    match msg["method"].as_str().unwrap_or_default() {
        // A 2025-era server: no stateless 2026-07-28 side.
        "server/discover" => respond(c, "400 Bad Request", "", ""),
        "initialize" => respond(
            c,
            "200 OK",
            "mcp-session-id: scripted-1\r\n",
            &ok(
                r#"{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"scripted-fake","version":"1"}}"#,
            ),
        ),
        m if m.starts_with("notifications/") => respond(c, "202 Accepted", "", ""),
        "ping" => respond(c, "200 OK", "", &ok("{}")),
        "tools/list" => respond(
            c,
            "200 OK",
            "",
            &ok(
                r#"{"tools":[{"name":"echo","description":"Scripted fake.","inputSchema":{"type":"object"}}]}"#,
            ),
        ),
        "tools/call" => {
            calls.fetch_add(1, Ordering::Relaxed);
            if healed.load(Ordering::Relaxed) {
                return respond(
                    c,
                    "200 OK",
                    "",
                    &ok(r#"{"content":[{"type":"text","text":"healed"}]}"#),
                );
            }
            match bad {
                Bad::Garbage => respond(c, "200 OK", "", "not json!"),
                Bad::Cut => {
                    let _ = c.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                          content-length: 1000\r\n\r\n{\"jsonrpc\":\"2.0\",\"i",
                    );
                    let _ = c.flush();
                    let _ = c.shutdown(std::net::Shutdown::Both);
                }
            }
        }
        _ => respond(
            c,
            "200 OK",
            "",
            &format!(
                r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":-32601,"message":"method not found"}}}}"#
            ),
        ),
    }
}

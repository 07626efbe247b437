//! Reading one HTTP/1.1 request from a client connection.
//!
//! The head is parsed with httparse from a buffer owned by the connection; the headers the
//! gateway acts on are kept as ranges into that buffer, so a request costs no allocation for
//! its head. The body (Content-Length or chunked) is copied into a second reused buffer.
//! Limits: head size (431), body size (413), a read timeout for the whole request once its
//! first byte arrived (408) and an idle timeout between keep-alive requests (silent close).
//!
//! Framing follows RFC 9112 strictly, since a proxy that reads a body differently from the
//! next hop is a smuggling vector: `Content-Length` is digits only and at most once;
//! `Transfer-Encoding` must end in a single `chunked` (400 otherwise, 501 for a coding we do
//! not implement); both together are refused; chunk sizes are checked before any arithmetic.
//! One `Host` exactly (400 for none or two), and an absolute-form target's authority takes
//! its place; every other header the gateway acts on may appear once (400 for two), so no
//! check can be made against one copy while another is used.

use std::io;
use std::ops::Range;
use std::time::{Duration, Instant};

use monoio::io::{AsyncReadRent, AsyncWriteRent};

pub use crate::http::framing::Framing;
use crate::http::framing::{content_length, split_absolute, ChunkStep, TeState};
use crate::rt::io::read_more;

/// Limits applied to every request on a connection.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request head in bytes.
    pub max_head: usize,
    /// Largest request body in bytes.
    pub max_body: usize,
    /// Wait for the next request on a keep-alive connection.
    pub idle_timeout: Duration,
    /// Time to receive one whole request after its first byte.
    pub read_timeout: Duration,
}

/// The HTTP method, as far as the gateway cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// DELETE
    Delete,
    /// HEAD (answered like GET, without the body)
    Head,
    /// PUT, OPTIONS, ...
    Other,
}

/// Headers the gateway reads, as ranges into the connection buffer.
#[derive(Debug, Default, Clone)]
pub struct KnownHeaders {
    /// Host
    pub host: Option<Range<usize>>,
    /// Origin
    pub origin: Option<Range<usize>>,
    /// Content-Type
    pub content_type: Option<Range<usize>>,
    /// Accept
    pub accept: Option<Range<usize>>,
    /// Accept-Encoding (read with [`crate::http::coding::accepts_gzip`]).
    pub accept_encoding: Option<Range<usize>>,
    /// Mcp-Session-Id
    pub session_id: Option<Range<usize>>,
    /// MCP-Protocol-Version
    pub protocol_version: Option<Range<usize>>,
    /// Last-Event-ID
    pub last_event_id: Option<Range<usize>>,
    /// Authorization
    pub authorization: Option<Range<usize>>,
    /// Mcp-Method (2026-07-28)
    pub mcp_method: Option<Range<usize>>,
    /// Mcp-Name (2026-07-28)
    pub mcp_name: Option<Range<usize>>,
    /// `X-MCP-Discovery` (a client's choice of `full` or `search` tool discovery).
    pub discovery: Option<Range<usize>>,
    /// Some `Mcp-Param-*` header was sent (2026-07-28; read with [`mcp_params`]).
    pub mcp_params: bool,
    /// `traceparent` (W3C Trace Context); an empty range when sent twice (invalid).
    pub traceparent: Option<Range<usize>>,
    /// `tracestate` (the last line when sent on several).
    pub tracestate: Option<Range<usize>>,
}

/// One `Mcp-Param-{Name}` header a client sent (2026-07-28, SEP-2243).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentParam {
    /// `{Name}`, lower-cased.
    pub name: Box<str>,
    /// The value without optional whitespace, as bytes: it is checked, not trusted.
    pub value: Box<[u8]>,
}

/// The `Mcp-Param-*` headers of one request, in the order sent (a name may repeat: whoever
/// checks them refuses that).
pub type SentParams = std::sync::Arc<[SentParam]>;

const PARAM_PREFIX: &str = "mcp-param-";

fn is_param_header(name: &str) -> bool {
    name.len() > PARAM_PREFIX.len()
        && name.as_bytes()[..PARAM_PREFIX.len()].eq_ignore_ascii_case(PARAM_PREFIX.as_bytes())
}

/// The `Mcp-Param-*` headers of the request head `head` (which [`parse_head`] accepted, so
/// at most 64 lines within the head limit). Read only for a request that has some: one
/// allocation for them all.
pub fn mcp_params(head: &[u8]) -> Option<SentParams> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    req.parse(head).ok()?;
    let sent: Vec<SentParam> = req
        .headers
        .iter()
        .filter(|h| is_param_header(h.name))
        .map(|h| SentParam {
            name: h.name[PARAM_PREFIX.len()..].to_ascii_lowercase().into(),
            value: h.value.trim_ascii().into(),
        })
        .collect();
    (!sent.is_empty()).then(|| sent.into())
}

/// One parsed request: head ranges into `head_buf`, body in `body`.
#[derive(Debug)]
pub struct Request {
    /// Method.
    pub method: Method,
    /// Path without query string.
    pub path: Range<usize>,
    /// The query string (after `?`), if any.
    pub query: Option<Range<usize>>,
    /// Known headers.
    pub headers: KnownHeaders,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
    /// Length of the head (request line and headers) at the start of the buffer.
    pub head_len: usize,
    /// When its first bytes were there: the request's one clock reading on its way in
    /// (`rt/clock.rs`), set by [`read_request`]; see [`Request::arrived`].
    pub arrived_at: Option<Instant>,
}

impl Request {
    /// When the request arrived: its deadlines count from it. A request that did not come
    /// through [`read_request`] (a parsed head alone) reads the clock here.
    pub fn arrived(&self) -> Instant {
        self.arrived_at.unwrap_or_else(crate::rt::clock::now)
    }
}

/// Why a request could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed or went idle between requests: close quietly.
    Closed,
    /// Answer with this status and message, then close.
    Status(u16, &'static str),
    /// Socket error: close.
    Io(io::Error),
}

/// A connection's reusable buffers.
#[derive(Debug, Default)]
pub struct ConnBuffers {
    /// Raw bytes read from the socket (head, then possibly pipelined data).
    pub buf: Vec<u8>,
    /// Decoded body of the current request.
    pub body: Vec<u8>,
    /// Bytes of `buf` consumed by the current request (drained before the next one).
    pub consumed: usize,
    /// Where the current request's body starts in `buf` (its head's length).
    pub body_start: usize,
}

/// Capacity a connection's buffer keeps between requests; a larger one (left by a large
/// request) is given back, so an idle keep-alive connection never holds its largest
/// request's memory (100 idle connections once held 4.2 MB each).
pub const KEEP_CAPACITY: usize = 64 * 1024;

/// Gives back the capacity of `v` beyond [`KEEP_CAPACITY`] (keeping what it holds).
pub fn shrink_idle(v: &mut Vec<u8>) {
    if v.capacity() > KEEP_CAPACITY {
        v.shrink_to(v.len().max(4096));
    }
}

impl ConnBuffers {
    /// Between requests: buffers back to a small capacity.
    pub fn shrink(&mut self) {
        shrink_idle(&mut self.buf);
        shrink_idle(&mut self.body);
    }

    /// The text of a header range.
    pub fn text(&self, r: &Option<Range<usize>>) -> Option<&str> {
        r.as_ref()
            .and_then(|r| std::str::from_utf8(&self.buf[r.clone()]).ok())
    }
}

const MAX_HEADERS: usize = 64;

async fn fill<S: AsyncReadRent>(
    stream: &mut S,
    bufs: &mut ConnBuffers,
    deadline: Instant,
) -> Result<usize, ReadError> {
    // A deadline already past fires at once: no clock read needed to check it first.
    let buf = std::mem::take(&mut bufs.buf);
    let at = monoio::time::Instant::from_std(deadline);
    match monoio::time::timeout_at(at, read_more(stream, buf, 4096)).await {
        Ok((res, buf)) => {
            bufs.buf = buf;
            match res {
                Ok(n) => Ok(n),
                Err(e) => Err(ReadError::Io(e)),
            }
        }
        Err(_) => Err(ReadError::Status(408, "request not received in time")),
    }
}

/// Reads the next request. Returns `Closed` on a clean EOF or idle timeout before any byte.
pub async fn read_request<S: AsyncReadRent + AsyncWriteRent>(
    stream: &mut S,
    bufs: &mut ConnBuffers,
    limits: &Limits,
) -> Result<Request, ReadError> {
    if bufs.consumed > 0 {
        bufs.buf.drain(..bufs.consumed);
        bufs.consumed = 0;
    }
    bufs.body.clear();
    bufs.shrink();
    // Wait for the first byte under the idle timeout. The clock is read here, as the
    // connection parks: the last write may have waited long for a slow reader, so no
    // earlier reading will do. (A request already in the buffer skips this.)
    if bufs.buf.is_empty() {
        let buf = std::mem::take(&mut bufs.buf);
        let idle_until =
            monoio::time::Instant::from_std(crate::rt::clock::now() + limits.idle_timeout);
        match monoio::time::timeout_at(idle_until, read_more(stream, buf, 4096)).await {
            Ok((res, buf)) => {
                bufs.buf = buf;
                match res {
                    Ok(0) => return Err(ReadError::Closed),
                    Ok(_) => {}
                    Err(e) => return Err(ReadError::Io(e)),
                }
            }
            Err(_) => return Err(ReadError::Closed),
        }
    }
    let arrived = crate::rt::clock::now();
    let deadline = arrived + limits.read_timeout;
    loop {
        match parse_head(&bufs.buf) {
            Ok(Some((mut req_head, framing, expect_continue))) => {
                req_head.arrived_at = Some(arrived);
                let head_len = req_head.head_len;
                // A head that arrived whole in one read is held to the limit too (a read
                // may bring up to the buffer's spare room, 64 KiB on a reused connection).
                if head_len > limits.max_head {
                    return Err(ReadError::Status(431, "request head too large"));
                }
                bufs.consumed = head_len;
                bufs.body_start = head_len;
                if let Framing::Length(n) = framing {
                    if n > limits.max_body {
                        return Err(ReadError::Status(413, "request body too large"));
                    }
                }
                // curl and others wait for this before sending a larger body.
                if expect_continue
                    && bufs.buf.len() == head_len
                    && !matches!(framing, Framing::None)
                {
                    let (res, _) =
                        crate::rt::io::write_all(stream, &b"HTTP/1.1 100 Continue\r\n\r\n"[..])
                            .await;
                    res.map_err(ReadError::Io)?;
                }
                read_body(stream, bufs, limits, framing, deadline).await?;
                return Ok(req_head);
            }
            Ok(None) => {
                if bufs.buf.len() > limits.max_head {
                    return Err(ReadError::Status(431, "request head too large"));
                }
                if fill(stream, bufs, deadline).await? == 0 {
                    return Err(ReadError::Closed);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Parses a request head at the start of `buf`: the head, its body framing and whether it
/// expects `100 Continue`; `None` when the head is not complete yet. No I/O, no allocation.
pub fn parse_head(buf: &[u8]) -> Result<Option<(Request, Framing, bool)>, ReadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(head_len)) => {
            let (mut head, framing, expect_continue) = head_from(&req, buf)?;
            head.head_len = head_len;
            Ok(Some((head, framing, expect_continue)))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(ReadError::Status(431, "too many headers")),
        Err(_) => Err(ReadError::Status(400, "malformed HTTP request")),
    }
}

fn range_of(buf: &[u8], part: &[u8]) -> Range<usize> {
    let start = part.as_ptr() as usize - buf.as_ptr() as usize;
    start..start + part.len()
}

fn head_from(
    req: &httparse::Request<'_, '_>,
    buf: &[u8],
) -> Result<(Request, Framing, bool), ReadError> {
    let method = match req.method.unwrap_or("") {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "DELETE" => Method::Delete,
        "HEAD" => Method::Head,
        _ => Method::Other,
    };
    let target = req.path.unwrap_or("/");
    // Absolute form (`http://host:port/mcp`, RFC 9112 3.2.2): the authority replaces `Host`.
    let (authority, raw_path) = split_absolute(target)?;
    let path_only = raw_path.split('?').next().unwrap_or("/");
    let path = range_of(buf, path_only.as_bytes());
    let query = raw_path
        .split_once('?')
        .map(|(_, q)| range_of(buf, q.as_bytes()));
    let http10 = req.version == Some(0);
    let mut keep_alive = !http10;
    let mut headers = KnownHeaders::default();
    let mut framing = Framing::None;
    let mut saw_length = false;
    let mut saw_host = false;
    let mut te = TeState::default();
    let mut expect_continue = false;
    for h in req.headers.iter() {
        let v = range_of(buf, h.value);
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            if saw_length {
                return Err(ReadError::Status(400, "duplicate Content-Length"));
            }
            saw_length = true;
            framing = Framing::Length(content_length(h.value)?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            te.add(h.value)?;
        } else if name.eq_ignore_ascii_case("connection") {
            let c = std::str::from_utf8(h.value).unwrap_or("");
            if c.eq_ignore_ascii_case("close") {
                keep_alive = false;
            } else if c.eq_ignore_ascii_case("keep-alive") {
                keep_alive = true;
            }
        } else if name.eq_ignore_ascii_case("host") {
            if saw_host {
                return Err(ReadError::Status(400, "more than one Host header"));
            }
            saw_host = true;
            headers.host = Some(v);
        } else if name.eq_ignore_ascii_case("expect") {
            expect_continue = h.value.eq_ignore_ascii_case(b"100-continue");
        } else if name.eq_ignore_ascii_case("accept") {
            // A list field: several lines are legal; the last one is read.
            headers.accept = Some(v);
        } else if name.eq_ignore_ascii_case("accept-encoding") {
            // Several lines would have to be joined to be read right: read as none (identity),
            // which is always acceptable.
            let twice = headers.accept_encoding.is_some();
            headers.accept_encoding = Some(if twice { v.start..v.start } else { v });
        } else if is_param_header(name) {
            headers.mcp_params = true;
        } else if name.eq_ignore_ascii_case("traceparent") {
            // Two of them make the context invalid (W3C Trace Context): read as none.
            let twice = headers.traceparent.is_some();
            headers.traceparent = Some(if twice { v.start..v.start } else { v });
        } else if name.eq_ignore_ascii_case("tracestate") {
            headers.tracestate = Some(v);
        } else {
            let slot = match name.len() {
                6 if name.eq_ignore_ascii_case("origin") => &mut headers.origin,
                12 if name.eq_ignore_ascii_case("content-type") => &mut headers.content_type,
                14 if name.eq_ignore_ascii_case("mcp-session-id") => &mut headers.session_id,
                20 if name.eq_ignore_ascii_case("mcp-protocol-version") => {
                    &mut headers.protocol_version
                }
                13 if name.eq_ignore_ascii_case("last-event-id") => &mut headers.last_event_id,
                13 if name.eq_ignore_ascii_case("authorization") => &mut headers.authorization,
                10 if name.eq_ignore_ascii_case("mcp-method") => &mut headers.mcp_method,
                8 if name.eq_ignore_ascii_case("mcp-name") => &mut headers.mcp_name,
                15 if name.eq_ignore_ascii_case("x-mcp-discovery") => &mut headers.discovery,
                _ => continue,
            };
            if slot.is_some() {
                return Err(ReadError::Status(
                    400,
                    "a header the gateway acts on appears more than once",
                ));
            }
            *slot = Some(v);
        }
    }
    if te.present {
        if saw_length {
            // RFC 9112 6.3: both present is a smuggling vector; refuse.
            return Err(ReadError::Status(
                400,
                "both Content-Length and Transfer-Encoding",
            ));
        }
        framing = te.framing()?;
    }
    if let Some(a) = authority {
        headers.host = Some(range_of(buf, a.as_bytes()));
    } else if !saw_host && !http10 {
        return Err(ReadError::Status(400, "HTTP/1.1 request without Host"));
    }
    Ok((
        Request {
            method,
            path,
            query,
            headers,
            keep_alive,
            head_len: 0,
            arrived_at: None,
        },
        framing,
        expect_continue,
    ))
}

async fn read_body<S: AsyncReadRent>(
    stream: &mut S,
    bufs: &mut ConnBuffers,
    limits: &Limits,
    framing: Framing,
    deadline: Instant,
) -> Result<(), ReadError> {
    match framing {
        Framing::None => Ok(()),
        Framing::Length(n) => {
            if n > limits.max_body {
                return Err(ReadError::Status(413, "request body too large"));
            }
            while bufs.buf.len() - bufs.consumed < n {
                if fill(stream, bufs, deadline).await? == 0 {
                    return Err(ReadError::Closed);
                }
            }
            let start = bufs.consumed;
            if bufs.body.capacity() < n {
                // From the shard's list (`rt/bufs.rs`), taken only when a body arrives.
                // `mcp()` hands it to the router, which gives it back when the request is
                // done; a request answered before that (another path, a shutdown, a Host,
                // Origin or authentication refusal) leaves it on the connection, which
                // `read_request` shrinks to `KEEP_CAPACITY` (64 KiB) while idle.
                crate::rt::bufs::give(std::mem::replace(&mut bufs.body, crate::rt::bufs::take()));
            }
            bufs.body.extend_from_slice(&bufs.buf[start..start + n]);
            bufs.consumed += n;
            Ok(())
        }
        Framing::Chunked => loop {
            // Chunk lines and extensions are not body, but they are held until the request
            // ends: the raw bytes are bounded too (1-byte chunks with 1 KiB extensions once
            // held 4 GiB for a 4 MiB body).
            let raw = bufs.consumed.saturating_sub(bufs.body_start);
            if raw > crate::http::framing::max_chunked_raw(limits.max_body) {
                return Err(ReadError::Status(413, "request body too large"));
            }
            match crate::http::framing::chunk_step(
                &bufs.buf,
                bufs.consumed,
                bufs.body.len(),
                limits.max_body,
            )? {
                ChunkStep::Need => {
                    if fill(stream, bufs, deadline).await? == 0 {
                        return Err(ReadError::Closed);
                    }
                }
                ChunkStep::Data(data) => {
                    bufs.body.extend_from_slice(&bufs.buf[data.clone()]);
                    bufs.consumed = data.end + 2;
                }
                ChunkStep::End(next) => {
                    bufs.consumed = next;
                    return Ok(());
                }
            }
        },
    }
}

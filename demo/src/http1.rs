//! Minimal HTTP/1.1 framing for the demo server's HTTP transport.
//!
//! Owns the wire format only, no MCP: reading one request (head parsed by
//! `httparse`, body by `Content-Length` or chunked transfer coding, with
//! `Expect: 100-continue` and size limits) and writing responses and SSE
//! heads, events and ends. Kept apart from `http.rs` and `http_stream.rs` so
//! the routing, session and stream logic there reads without byte-level
//! noise.

use super::conn::Conn;
use std::io::{self, BufRead, BufReader, Read, Write};

const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 64;
const MAX_BODY: usize = 64 * 1024 * 1024;

/// A parsed request; only what the routes need.
pub struct Request {
    pub method: String,
    pub path: String,
    pub keep_alive: bool,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        let mut found = self
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name));
        found.next().map(|(_, v)| v.as_str())
    }
}

/// A request that cannot be read: answer `status` and close.
pub struct HttpError(pub u16, pub &'static str);

impl From<io::Error> for HttpError {
    fn from(_: io::Error) -> Self {
        HttpError(400, "Bad Request: read failed")
    }
}

/// Reads one request. `Ok(None)` is a clean EOF between requests.
pub fn read_request(
    reader: &mut BufReader<Conn>,
    out: &mut Conn,
) -> Result<Option<Request>, HttpError> {
    let mut head = Vec::with_capacity(1024);
    loop {
        let before = head.len();
        let n = match reader
            .by_ref()
            .take((MAX_HEAD + 1 - before) as u64)
            .read_until(b'\n', &mut head)
        {
            Ok(n) => n,
            Err(_) if head.is_empty() => return Ok(None), // idle timeout or reset
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            return if head.is_empty() {
                Ok(None)
            } else {
                Err(HttpError(400, "Bad Request: truncated head"))
            };
        }
        if head.len() > MAX_HEAD {
            return Err(HttpError(431, "Request Header Fields Too Large"));
        }
        let line = &head[before..];
        if line == b"\r\n" || line == b"\n" {
            if before == 0 {
                head.clear(); // tolerate blank lines between requests
                continue;
            }
            break;
        }
    }
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut slots);
    match parsed.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HttpError(431, "Request Header Fields Too Large"))
        }
        _ => return Err(HttpError(400, "Bad Request: malformed request head")),
    }
    let headers: Vec<(String, String)> = parsed
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).trim().to_string(),
            )
        })
        .collect();
    let mut req = Request {
        method: parsed.method.unwrap_or_default().to_string(),
        path: parsed.path.unwrap_or_default().to_string(),
        keep_alive: parsed.version == Some(1),
        headers,
        body: Vec::new(),
    };
    if req
        .header("connection")
        .is_some_and(|c| has_token(c, "close"))
    {
        req.keep_alive = false;
    }
    let chunked = match req.header("transfer-encoding") {
        Some(te) if has_token(te, "chunked") => true,
        Some(te) if !te.eq_ignore_ascii_case("identity") => {
            return Err(HttpError(501, "Not Implemented: transfer-encoding"))
        }
        _ => false,
    };
    let length = match req.header("content-length") {
        Some(_) if chunked => 0,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| HttpError(400, "Bad Request: bad Content-Length"))?,
        None => 0,
    };
    if length > MAX_BODY {
        return Err(HttpError(413, "Payload Too Large"));
    }
    if (chunked || length > 0)
        && req
            .header("expect")
            .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
    {
        out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    req.body = if chunked {
        read_chunked(reader)?
    } else {
        read_exact_vec(reader, length)?
    };
    Ok(Some(req))
}

fn read_exact_vec(reader: &mut impl Read, len: usize) -> io::Result<Vec<u8>> {
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    Ok(body)
}

fn read_chunked(reader: &mut BufReader<Conn>) -> Result<Vec<u8>, HttpError> {
    const BAD: HttpError = HttpError(400, "Bad Request: bad chunked body");
    let mut body = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        reader.by_ref().take(1024).read_until(b'\n', &mut line)?;
        let text = std::str::from_utf8(&line).map_err(|_| BAD)?;
        let size_hex = text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16).map_err(|_| BAD)?;
        if size == 0 {
            break;
        }
        if body.len().saturating_add(size) > MAX_BODY {
            return Err(HttpError(413, "Payload Too Large"));
        }
        body.extend_from_slice(&read_exact_vec(reader, size)?);
        line.clear();
        reader.by_ref().take(2).read_until(b'\n', &mut line)?;
        if line != b"\r\n" && line != b"\n" {
            return Err(BAD);
        }
    }
    loop {
        // Trailer section: skip header lines up to the blank line.
        line.clear();
        if reader
            .by_ref()
            .take(MAX_HEAD as u64)
            .read_until(b'\n', &mut line)?
            == 0
        {
            return Err(BAD);
        }
        if line == b"\r\n" || line == b"\n" {
            return Ok(body);
        }
    }
}

/// Writes a complete response; returns whether the connection stays open.
pub fn respond(
    out: &mut Conn,
    status: u16,
    headers: &[(&str, &str)],
    json: Option<&str>,
    keep_alive: bool,
) -> io::Result<bool> {
    let reason = match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        409 => "Conflict",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        _ => "Internal Server Error",
    };
    let body = json.unwrap_or("");
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\n",
        body.len()
    );
    if json.is_some() {
        head.push_str("Content-Type: application/json\r\n");
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !keep_alive {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    if body.len() < 16 * 1024 {
        head.push_str(body);
        out.write_all(head.as_bytes())?;
    } else {
        out.write_all(head.as_bytes())?;
        out.write_all(body.as_bytes())?;
    }
    out.flush()?;
    Ok(keep_alive)
}

/// Writes the head of a `text/event-stream` response: chunked on keep-alive
/// connections, close-delimited otherwise.
pub fn write_sse_head(out: &mut Conn, keep_alive: bool) -> io::Result<()> {
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
    out.flush()
}

/// Writes raw SSE text (one or more complete events or comments), as a
/// chunk when `chunked`, and flushes.
pub fn write_sse(out: &mut Conn, text: &str, chunked: bool) -> io::Result<()> {
    if chunked {
        out.write_all(format!("{:x}\r\n{text}\r\n", text.len()).as_bytes())?;
    } else {
        out.write_all(text.as_bytes())?;
    }
    out.flush()
}

/// Writes one SSE `message` event, as a chunk when `chunked`.
pub fn write_event(out: &mut Conn, json: &str, chunked: bool) -> io::Result<()> {
    write_sse(out, &format!("event: message\ndata: {json}\n\n"), chunked)
}

/// Ends an SSE response: the last chunk, or closing the write side.
pub fn end_sse(out: &mut Conn, chunked: bool) -> io::Result<()> {
    if chunked {
        out.write_all(b"0\r\n\r\n")?;
        out.flush()
    } else {
        out.shutdown(std::net::Shutdown::Write)
    }
}

/// True if a comma-separated header value contains `token`.
fn has_token(header: &str, token: &str) -> bool {
    header
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

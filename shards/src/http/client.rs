//! A keep-alive HTTP/1.1 client connection to one Streamable HTTP backend replica.
//!
//! One request at a time per connection (HTTP/1.1 without pipelining); the shard's pool keeps
//! idle connections per replica. The response head is parsed with httparse; the body is
//! decoded incrementally (Content-Length, chunked, or until close) so SSE responses can be
//! consumed event by event while they stream.
//!
//! The socket is TCP or, for a `unix:` backend URL, a unix stream socket: an enum matched at
//! each read and write (no allocation, no dynamic dispatch).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use monoio::net::{TcpStream, UnixStream};

use crate::http::response::push_num;
use crate::http::url::BackendUrl;
use crate::rt::io::{read_more, write_all};

/// Response body framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

/// The parts of a backend response head the gateway uses.
#[derive(Debug, Clone)]
pub struct ResponseHead {
    /// HTTP status.
    pub status: u16,
    /// Body is `text/event-stream`.
    pub sse: bool,
    /// `Mcp-Session-Id`, when the backend set one.
    pub session_id: Option<String>,
    keep_alive: bool,
    framing: Framing,
    remaining: usize,
    need_crlf: bool,
    final_chunk: bool,
    done: bool,
}

impl ResponseHead {
    /// True once the whole body was read.
    pub fn done(&self) -> bool {
        self.done
    }

    /// The backend allows another request on this connection after this response (HTTP/1.1,
    /// no `Connection: close`, a framed body).
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// Decodes the next piece of body from `buf` (received, not yet consumed) into `out`:
    /// the bytes of `buf` used, and `Some(more)` once a piece was decoded (`more` false: the
    /// body ended) or `None` when more bytes are needed. No I/O: [`LocalHttpConn`] reads.
    pub fn decode_piece(
        &mut self,
        buf: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(usize, Option<bool>), ClientError> {
        if self.done {
            return Ok((0, Some(false)));
        }
        let mut at = 0;
        loop {
            let avail = buf.len() - at;
            match self.framing {
                Framing::Length(_) => {
                    if avail > 0 {
                        let n = avail.min(self.remaining);
                        out.extend_from_slice(&buf[at..at + n]);
                        at += n;
                        self.remaining -= n;
                        if self.remaining == 0 {
                            self.done = true;
                        }
                        return Ok((at, Some(true)));
                    }
                }
                Framing::UntilClose => {
                    if avail > 0 {
                        out.extend_from_slice(&buf[at..]);
                        return Ok((buf.len(), Some(true)));
                    }
                }
                Framing::Chunked => {
                    if self.remaining > 0 {
                        if avail > 0 {
                            let n = avail.min(self.remaining);
                            out.extend_from_slice(&buf[at..at + n]);
                            at += n;
                            self.remaining -= n;
                            if self.remaining == 0 {
                                self.need_crlf = true;
                            }
                            return Ok((at, Some(true)));
                        }
                    } else if self.need_crlf {
                        if avail >= 2 {
                            if &buf[at..at + 2] != b"\r\n" {
                                return Err(ClientError::Protocol("malformed chunked body".into()));
                            }
                            at += 2;
                            self.need_crlf = false;
                            if self.final_chunk {
                                self.done = true;
                                return Ok((at, Some(false)));
                            }
                            continue;
                        }
                    } else {
                        match httparse::parse_chunk_size(&buf[at..]) {
                            Ok(httparse::Status::Complete((n, size))) => {
                                at += n;
                                if size == 0 {
                                    // Final chunk; trailers are not expected from MCP servers.
                                    self.need_crlf = true;
                                    self.final_chunk = true;
                                    continue;
                                }
                                self.remaining = size as usize;
                                continue;
                            }
                            Ok(httparse::Status::Partial) => {}
                            Err(_) => {
                                return Err(ClientError::Protocol("malformed chunked body".into()))
                            }
                        }
                    }
                }
            }
            return Ok((at, None));
        }
    }
}

/// Errors of one exchange.
#[derive(Debug)]
pub enum ClientError {
    /// Socket error or early close.
    Io(io::Error),
    /// The backend's bytes are not valid HTTP.
    Protocol(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "{e}"),
            ClientError::Protocol(m) => f.write_str(m),
        }
    }
}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Io(e)
    }
}

/// The socket under a connection.
enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// One pooled connection.
pub struct LocalHttpConn {
    stream: Stream,
    buf: Vec<u8>,
    at: usize,
    out: Vec<u8>,
}

/// Builds a POST request head + body into `out`.
pub fn encode_post(
    out: &mut Vec<u8>,
    path: &str,
    authority: &str,
    extra: &[(&str, &str)],
    body: &[u8],
) {
    out.clear();
    out.reserve(256 + body.len());
    out.extend_from_slice(b"POST ");
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(authority.as_bytes());
    out.extend_from_slice(
        b"\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\ncontent-length: ",
    );
    push_num(out, body.len() as u64);
    out.extend_from_slice(b"\r\n");
    for (k, v) in extra {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

impl LocalHttpConn {
    fn with(stream: Stream) -> Self {
        Self {
            stream,
            buf: Vec::with_capacity(8192),
            at: 0,
            out: Vec::with_capacity(1024),
        }
    }

    /// Connects to `url`: its unix socket, or the first of its addresses that answers, within
    /// `timeout`.
    pub async fn connect(url: &BackendUrl, timeout: Duration) -> io::Result<Self> {
        match &url.unix {
            Some(path) => Self::connect_unix(path, timeout).await,
            None => Self::connect_tcp(&url.addrs, timeout).await,
        }
    }

    /// Connects to the unix socket at `path` within `timeout`. The error names the path and
    /// says what is wrong with it (missing, nobody listening, not a socket).
    pub async fn connect_unix(path: &std::path::Path, timeout: Duration) -> io::Result<Self> {
        let shown = path.display();
        match monoio::time::timeout(timeout, UnixStream::connect(path)).await {
            Ok(Ok(stream)) => Ok(Self::with(Stream::Unix(stream))),
            Ok(Err(e)) => {
                let why = match e.kind() {
                    io::ErrorKind::NotFound => "does not exist (is the backend running?)",
                    // Linux also refuses a connect to a path that is not a socket.
                    io::ErrorKind::ConnectionRefused => {
                        "refused the connection (nothing listens on it, or it is not a socket)"
                    }
                    io::ErrorKind::PermissionDenied => "is not accessible (permission denied)",
                    _ => "cannot be connected to",
                };
                Err(io::Error::new(
                    e.kind(),
                    format!("unix socket {shown} {why}: {e}"),
                ))
            }
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connect to unix socket {shown} timed out"),
            )),
        }
    }

    /// Connects to the first address that answers within `timeout`.
    pub async fn connect_tcp(addrs: &[SocketAddr], timeout: Duration) -> io::Result<Self> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
        for addr in addrs {
            match monoio::time::timeout(timeout, TcpStream::connect_addr(*addr)).await {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(Self::with(Stream::Tcp(stream)));
                }
                Ok(Err(e)) => last = e,
                Err(_) => {
                    last = io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("connect to {addr} timed out"),
                    )
                }
            }
        }
        Err(last)
    }

    /// Sends one POST; the head and body are built in the connection's own buffer.
    pub async fn send_post(
        &mut self,
        path: &str,
        authority: &str,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<()> {
        let mut out = std::mem::take(&mut self.out);
        encode_post(&mut out, path, authority, extra, body);
        let (res, out) = self.write(out).await;
        self.out = out;
        res
    }

    /// Sends a GET asking for an event stream.
    pub async fn send_get(
        &mut self,
        path: &str,
        authority: &str,
        extra: &[(&str, &str)],
    ) -> io::Result<()> {
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        out.extend_from_slice(b"GET ");
        out.extend_from_slice(path.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
        out.extend_from_slice(authority.as_bytes());
        out.extend_from_slice(b"\r\naccept: text/event-stream\r\n");
        for (k, v) in extra {
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        let (res, out) = self.write(out).await;
        self.out = out;
        res
    }

    async fn write(&mut self, out: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        match &mut self.stream {
            Stream::Tcp(s) => write_all(s, out).await,
            Stream::Unix(s) => write_all(s, out).await,
        }
    }

    async fn fill(&mut self) -> Result<usize, ClientError> {
        if self.at > 0 && self.at == self.buf.len() {
            self.buf.clear();
            self.at = 0;
        }
        let buf = std::mem::take(&mut self.buf);
        let (res, buf) = match &mut self.stream {
            Stream::Tcp(s) => read_more(s, buf, 8192).await,
            Stream::Unix(s) => read_more(s, buf, 8192).await,
        };
        self.buf = buf;
        Ok(res?)
    }

    /// Reads the response head.
    pub async fn read_head(&mut self) -> Result<ResponseHead, ClientError> {
        loop {
            if let Some((head, n)) = parse_response_head(&self.buf[self.at..])? {
                self.at += n;
                return Ok(head);
            }
            if self.buf.len() - self.at > 64 * 1024 {
                return Err(ClientError::Protocol("response head too large".into()));
            }
            if self.fill().await? == 0 {
                return Err(ClientError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed before a response",
                )));
            }
        }
    }

    /// Appends the next piece of decoded body to `out`. Returns false once the body ended.
    pub async fn read_body_piece(
        &mut self,
        head: &mut ResponseHead,
        out: &mut Vec<u8>,
    ) -> Result<bool, ClientError> {
        loop {
            let (used, piece) = head.decode_piece(&self.buf[self.at..], out)?;
            self.at += used;
            if let Some(more) = piece {
                return Ok(more);
            }
            let n = self.fill().await?;
            if n == 0 {
                if head.framing == Framing::UntilClose {
                    head.done = true;
                    return Ok(false);
                }
                return Err(ClientError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "backend closed the connection mid-response",
                )));
            }
        }
    }

    /// Decodes the body bytes already received into `out`, without reading from the socket:
    /// true once the body ended.
    pub fn decode_buffered(
        &mut self,
        head: &mut ResponseHead,
        out: &mut Vec<u8>,
    ) -> Result<bool, ClientError> {
        loop {
            let (used, piece) = head.decode_piece(&self.buf[self.at..], out)?;
            self.at += used;
            match piece {
                Some(true) => continue,
                Some(false) => return Ok(true),
                None => return Ok(head.done),
            }
        }
    }

    /// Reads the whole remaining body into `out`.
    pub async fn read_body_all(
        &mut self,
        head: &mut ResponseHead,
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<(), ClientError> {
        while self.read_body_piece(head, out).await? {
            if out.len() > max {
                return Err(ClientError::Protocol(format!(
                    "response body larger than {max} bytes"
                )));
            }
        }
        Ok(())
    }

    /// Whether this connection may be reused after `head`'s response.
    pub fn reusable(&self, head: &ResponseHead) -> bool {
        head.keep_alive && head.done && self.at == self.buf.len()
    }
}

/// Parses a response head at the start of `buf`: the head and its length, or `None` when it
/// is not complete. A plain function, so httparse's header array (1.5 KiB) lives on the stack
/// only while parsing, not in every call's future across its awaits.
pub fn parse_response_head(buf: &[u8]) -> Result<Option<(ResponseHead, usize)>, ClientError> {
    let mut headers = [httparse::EMPTY_HEADER; 48];
    let mut resp = httparse::Response::new(&mut headers);
    let n = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => {
            return Err(ClientError::Protocol(format!(
                "malformed HTTP response: {e}"
            )))
        }
    };
    let status = resp.code.unwrap_or(0);
    let mut head = ResponseHead {
        status,
        sse: false,
        session_id: None,
        keep_alive: resp.version == Some(1),
        framing: Framing::UntilClose,
        remaining: 0,
        need_crlf: false,
        final_chunk: false,
        done: false,
    };
    for h in resp.headers.iter() {
        let v = std::str::from_utf8(h.value).unwrap_or("").trim();
        if h.name.eq_ignore_ascii_case("content-type") {
            head.sse = v.starts_with("text/event-stream");
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let len = v
                .parse()
                .map_err(|_| ClientError::Protocol("invalid Content-Length".into()))?;
            head.framing = Framing::Length(len);
            head.remaining = len;
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if v.eq_ignore_ascii_case("chunked") {
                head.framing = Framing::Chunked;
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            if v.eq_ignore_ascii_case("close") {
                head.keep_alive = false;
            }
        } else if h.name.eq_ignore_ascii_case("mcp-session-id") {
            head.session_id = Some(v.to_string());
        }
    }
    if head.framing == Framing::UntilClose {
        head.keep_alive = false;
    }
    if head.framing == Framing::Length(0) || status == 204 || status == 304 {
        head.done = true;
    }
    Ok(Some((head, n)))
}

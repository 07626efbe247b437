//! Writing HTTP/1.1 responses into a reused buffer, sent with one write.

/// Reason phrases for the statuses the gateway emits.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

/// The content coding of a reply's body, and whether it depends on `Accept-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Coding {
    /// As is, whatever the client accepts (no header).
    #[default]
    Identity,
    /// As is, though a client that accepts gzip would have had it (`Vary: Accept-Encoding`).
    IdentityVaries,
    /// gzip (`Content-Encoding: gzip`, `Vary: Accept-Encoding`).
    Gzip,
}

/// A response the front writes back.
#[derive(Debug, Default)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Content-Type, when there is a body.
    pub content_type: Option<&'static str>,
    /// `Mcp-Session-Id` to return (on initialize).
    pub session_id: Option<String>,
    /// `Allow` header (405).
    pub allow: Option<&'static str>,
    /// `Retry-After` seconds (503, 429).
    pub retry_after: Option<u32>,
    /// `WWW-Authenticate` (401, 403 from auth).
    pub www_authenticate: Option<String>,
    /// Body bytes (with `shared`: the first part of the body).
    pub body: Vec<u8>,
    /// The rest of the body, when it is written from shared bytes: those bytes, then a tail.
    pub shared: Option<(bytes::Bytes, Vec<u8>)>,
    /// The shared part compressed once, when this answer could be sent gzip (a large list
    /// page): the front uses it for a client that accepts gzip ([`crate::http::gzip`]).
    pub gz: Option<crate::http::gzip_slot::LazyGz>,
    /// How the body's encoding was chosen (`Content-Encoding`, `Vary`).
    pub coding: Coding,
    /// When set, the body is an SSE stream of these JSON-RPC messages instead.
    pub stream: Option<crate::rt::feed::FeedRx>,
    /// Dropped with the reply, i.e. when its stream has ended (written out, or the client
    /// gone): the receiver's owner learns the stream ended and releases what it held for it.
    pub on_end: Option<futures_channel::oneshot::Sender<()>>,
}

impl Reply {
    /// A JSON body.
    pub fn json(status: u16, body: Vec<u8>) -> Self {
        Reply {
            status,
            content_type: Some("application/json"),
            body,
            ..Default::default()
        }
    }

    /// A JSON body in three parts: `head`, `shared` (written as is, not copied), `tail`.
    pub fn json_parts(status: u16, head: Vec<u8>, shared: bytes::Bytes, tail: Vec<u8>) -> Self {
        Reply {
            status,
            content_type: Some("application/json"),
            body: head,
            shared: Some((shared, tail)),
            ..Default::default()
        }
    }

    /// Length of the whole body.
    pub fn body_len(&self) -> usize {
        self.body.len() + self.shared.as_ref().map_or(0, |(s, t)| s.len() + t.len())
    }

    /// The whole body in one buffer (copies the shared part; for writers that need one).
    pub fn body_bytes(&self) -> std::borrow::Cow<'_, [u8]> {
        match &self.shared {
            None => std::borrow::Cow::Borrowed(&self.body),
            Some((s, t)) => {
                let mut all = Vec::with_capacity(self.body_len());
                all.extend_from_slice(&self.body);
                all.extend_from_slice(s);
                all.extend_from_slice(t);
                std::borrow::Cow::Owned(all)
            }
        }
    }

    /// A `text/event-stream` body fed by `rx`, one JSON-RPC message per event.
    pub fn sse(rx: impl Into<crate::rt::feed::FeedRx>) -> Self {
        Reply {
            status: 200,
            content_type: Some("text/event-stream"),
            stream: Some(rx.into()),
            ..Default::default()
        }
    }

    /// No body.
    pub fn empty(status: u16) -> Self {
        Reply {
            status,
            ..Default::default()
        }
    }

    /// A plain-text error body (non-MCP paths and HTTP-level errors).
    pub fn text(status: u16, msg: &str) -> Self {
        let mut body = msg.as_bytes().to_vec();
        body.push(b'\n');
        Reply {
            status,
            content_type: Some("text/plain; charset=utf-8"),
            body,
            ..Default::default()
        }
    }
}

/// Marks a stream item with an SSE event id: `\0<id>\0<json>` (JSON never starts with NUL).
pub fn tag_event(id: &str, msg: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(id.len() + msg.len() + 2);
    v.push(0);
    v.extend_from_slice(id.as_bytes());
    v.push(0);
    v.extend_from_slice(msg);
    v
}

/// Splits a stream item into its event id (if tagged) and its JSON-RPC message (may be
/// empty: the priming event).
pub fn untag_event(item: &[u8]) -> (Option<&[u8]>, &[u8]) {
    if item.first() == Some(&0) {
        if let Some(end) = item[1..].iter().position(|&b| b == 0) {
            return (Some(&item[1..1 + end]), &item[2 + end..]);
        }
    }
    (None, item)
}

/// Serializes `reply` into `out` (cleared first): the head and `body`; a `shared` rest is
/// written after it by the caller.
pub fn encode(reply: &Reply, keep_alive: bool, out: &mut Vec<u8>) {
    out.clear();
    out.reserve(160 + reply.body.len());
    out.extend_from_slice(b"HTTP/1.1 ");
    push_num(out, reply.status as u64);
    out.push(b' ');
    out.extend_from_slice(reason(reply.status).as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(served_by());
    if let Some(ct) = reply.content_type {
        out.extend_from_slice(b"content-type: ");
        out.extend_from_slice(ct.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match reply.coding {
        Coding::Identity => {}
        Coding::IdentityVaries => out.extend_from_slice(b"vary: accept-encoding\r\n"),
        Coding::Gzip => {
            out.extend_from_slice(b"content-encoding: gzip\r\nvary: accept-encoding\r\n")
        }
    }
    if let Some(sid) = &reply.session_id {
        out.extend_from_slice(b"mcp-session-id: ");
        out.extend_from_slice(sid.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if let Some(secs) = reply.retry_after {
        out.extend_from_slice(b"retry-after: ");
        push_num(out, secs as u64);
        out.extend_from_slice(b"\r\n");
    }
    if let Some(w) = &reply.www_authenticate {
        out.extend_from_slice(b"www-authenticate: ");
        out.extend_from_slice(w.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if let Some(allow) = reply.allow {
        out.extend_from_slice(b"allow: ");
        out.extend_from_slice(allow.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"content-length: ");
    push_num(out, reply.body_len() as u64);
    out.extend_from_slice(b"\r\n");
    if !keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&reply.body);
}

static SERVED_BY: std::sync::OnceLock<Box<[u8]>> = std::sync::OnceLock::new();

/// Names this node in every response (`x-served-by: <node_id>`), for a fleet's operators and
/// tests: set once at start (a node id changes only with a restart). A later call is ignored.
pub fn set_served_by(node_id: &str) {
    let _ = SERVED_BY.set(format!("x-served-by: {node_id}\r\n").into_bytes().into());
}

/// The `x-served-by` header line, or nothing outside a cluster.
pub fn served_by() -> &'static [u8] {
    SERVED_BY.get().map_or(&[], |b| &b[..])
}

/// Appends the decimal digits of `n` without allocating.
pub fn push_num(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

//! The SSE streams of the Streamable HTTP transport.
//!
//! Owns the per-session HTTP state ([`HttpSession`]) and the three kinds of
//! stream a session can have:
//!
//! * **POST response** ([`PostStream`], also used without a session by the
//!   2026-07-28 path): a request's reply is plain
//!   `application/json` unless the request emits a related message
//!   (progress, log, a request to the client) while it runs; the first such
//!   message turns the response into `text/event-stream`, and the reply is
//!   then its last event. A client that does not accept SSE gets the JSON
//!   reply only (its related messages cannot be delivered).
//! * **Standalone GET stream** ([`serve_standalone`]): at most one per
//!   session (a second GET is 409), carrying the session's unsolicited
//!   messages (list_changed, resources/updated, logs) and a keep-alive
//!   comment every 15 s; it ends when the session is deleted.
//! * **Resumed stream** ([`serve_resumed`]): SSE polling (SEP-1699). A tool
//!   may end its POST stream early ([`Related::disconnect`]): the server
//!   sends a priming event (`id` + `retry`, empty data), closes the stream,
//!   and keeps what follows; the client's `GET` with `Last-Event-ID` then
//!   receives it, the reply included. Event ids are `<stream>-<seq>`.

use super::conn::Conn;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::http1::{end_sse, respond, write_event, write_sse, write_sse_head};
use super::session::{lock, Related, Session, Sink};

const KEEPALIVE: Duration = Duration::from_secs(15);
/// The `retry` (ms) advertised before a deliberate disconnect.
const RETRY_MS: u64 = 500;
/// How long a resumed stream waits for the rest of its messages.
const RESUME_TIMEOUT: Duration = Duration::from_secs(60);

/// The session's standalone GET stream, if one is open: the [`Sink`] of
/// its MCP session.
#[derive(Default)]
pub struct GetSlot {
    /// (generation, sender) of the open stream.
    tx: Mutex<Option<(u64, mpsc::Sender<String>)>>,
    generation: AtomicU64,
}

impl Sink for GetSlot {
    fn send(&self, json: &str) -> bool {
        match &*lock(&self.tx) {
            Some((_, tx)) => tx.send(json.to_string()).is_ok(),
            None => false,
        }
    }
}

impl GetSlot {
    /// Claims the slot; `None` if a stream is already open.
    fn attach(&self) -> Option<(u64, mpsc::Receiver<String>)> {
        let mut slot = lock(&self.tx);
        if slot.is_some() {
            return None;
        }
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel();
        *slot = Some((generation, tx));
        Some((generation, rx))
    }

    fn detach(&self, generation: u64) {
        let mut slot = lock(&self.tx);
        if matches!(&*slot, Some((g, _)) if *g == generation) {
            *slot = None;
        }
    }

    /// Ends the open stream, if any.
    fn close(&self) {
        *lock(&self.tx) = None;
    }
}

/// Messages of a POST stream that was closed early, kept for resumption.
#[derive(Default)]
struct Parked {
    events: VecDeque<String>,
    next_seq: u64,
    /// The reply is among `events` (or was sent): nothing more will come.
    done: bool,
}

/// One HTTP session: the MCP session plus its streams.
pub struct HttpSession {
    pub mcp: Arc<Session>,
    get: Arc<GetSlot>,
    parked: Mutex<HashMap<u64, Parked>>,
    parked_changed: Condvar,
    next_stream: AtomicU64,
    closed: AtomicBool,
}

impl HttpSession {
    pub fn new(server: &super::server::Server) -> Self {
        let get = Arc::new(GetSlot::default());
        Self {
            mcp: server.new_session(get.clone()),
            get,
            parked: Mutex::default(),
            parked_changed: Condvar::new(),
            next_stream: AtomicU64::new(1),
            closed: AtomicBool::new(false),
        }
    }

    /// DELETE: ends the MCP session, the GET stream and resumed streams.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.mcp.close();
        self.get.close();
        let _guard = lock(&self.parked);
        self.parked_changed.notify_all();
    }

    fn park(&self, stream: u64, json: String, done: bool) {
        let mut parked = lock(&self.parked);
        let entry = parked.entry(stream).or_default();
        entry.events.push_back(json);
        entry.done |= done;
        self.parked_changed.notify_all();
    }
}

/// The related-message outlet of one POST request (see the module docs).
pub struct PostStream<'a> {
    out: &'a mut Conn,
    keep_alive: bool,
    accepts_sse: bool,
    /// `None` for 2026-07-28 requests: no session, no resumption.
    session: Option<&'a HttpSession>,
    started: bool,
    failed: Option<io::Error>,
    /// Set once the stream was closed early: the id of its parked stream.
    parked: Option<u64>,
    /// The request's headers, for [`Related::request_headers`].
    headers: &'a [(String, String)],
}

impl<'a> PostStream<'a> {
    pub fn new(
        out: &'a mut Conn,
        keep_alive: bool,
        accepts_sse: bool,
        session: Option<&'a HttpSession>,
    ) -> Self {
        Self {
            out,
            keep_alive,
            accepts_sse,
            session,
            started: false,
            failed: None,
            parked: None,
            headers: &[],
        }
    }

    /// The headers of the request this stream answers (the `headers` tool).
    pub fn with_headers(mut self, headers: &'a [(String, String)]) -> Self {
        self.headers = headers;
        self
    }

    fn start(&mut self) -> bool {
        if !self.started && self.failed.is_none() {
            match write_sse_head(self.out, self.keep_alive) {
                Ok(()) => self.started = true,
                Err(e) => self.failed = Some(e),
            }
        }
        self.failed.is_none()
    }

    /// Sends the reply: as JSON (with `headers`) if nothing was streamed,
    /// else as the stream's last event. Returns whether the connection
    /// stays open.
    pub fn finish(self, json: String, headers: &[(&str, &str)]) -> io::Result<bool> {
        self.finish_with(200, json, headers)
    }

    /// [`Self::finish`] with this HTTP status if the reply goes as JSON (a
    /// stream already started is a 200 whatever the reply).
    pub fn finish_with(
        mut self,
        status: u16,
        json: String,
        headers: &[(&str, &str)],
    ) -> io::Result<bool> {
        if let (Some(stream), Some(session)) = (self.parked, self.session) {
            session.park(stream, json, true);
            return Ok(self.keep_alive);
        }
        if !self.started {
            return respond(self.out, status, headers, Some(&json), self.keep_alive);
        }
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        write_event(self.out, &json, self.keep_alive)?;
        end_sse(self.out, self.keep_alive)?;
        Ok(self.keep_alive)
    }
}

impl Related for PostStream<'_> {
    fn request_headers(&self) -> Option<&[(String, String)]> {
        Some(self.headers)
    }

    fn send(&mut self, json: String) -> bool {
        if let (Some(stream), Some(session)) = (self.parked, self.session) {
            session.park(stream, json, false);
            return true;
        }
        if !self.accepts_sse || !self.start() {
            return false;
        }
        if let Err(e) = write_event(self.out, &json, self.keep_alive) {
            self.failed = Some(e);
        }
        self.failed.is_none()
    }

    fn disconnect(&mut self) -> bool {
        let Some(session) = self.session else {
            return false;
        };
        if self.parked.is_some() || !self.accepts_sse || !self.start() {
            return false;
        }
        let stream = session.next_stream.fetch_add(1, Ordering::Relaxed);
        lock(&session.parked).insert(
            stream,
            Parked {
                next_seq: 1,
                ..Parked::default()
            },
        );
        let priming = format!("id: {stream}-0\nretry: {RETRY_MS}\ndata: \n\n");
        let ended = write_sse(self.out, &priming, self.keep_alive)
            .and_then(|()| end_sse(self.out, self.keep_alive));
        if let Err(e) = ended {
            self.failed = Some(e);
        }
        // Even if the close failed, what follows must wait for a GET now.
        self.parked = Some(stream);
        true
    }
}

/// Serves the standalone GET stream of `session` on this connection until
/// the session ends or the client goes away; 409 if one is already open.
pub fn serve_standalone(
    session: &HttpSession,
    out: &mut Conn,
    keep_alive: bool,
) -> io::Result<bool> {
    let Some((generation, rx)) = session.get.attach() else {
        let body = super::http::rpc_error("Conflict: only one GET stream per session");
        return respond(out, 409, &[], Some(&body), keep_alive);
    };
    let served = stream_standalone(out, keep_alive, &rx);
    session.get.detach(generation);
    served.map(|()| keep_alive)
}

fn stream_standalone(
    out: &mut Conn,
    keep_alive: bool,
    rx: &mpsc::Receiver<String>,
) -> io::Result<()> {
    write_sse_head(out, keep_alive)?;
    loop {
        match rx.recv_timeout(KEEPALIVE) {
            Ok(json) => write_event(out, &json, keep_alive)?,
            Err(mpsc::RecvTimeoutError::Timeout) => write_sse(out, ": keep-alive\n\n", keep_alive)?,
            Err(mpsc::RecvTimeoutError::Disconnected) => return end_sse(out, keep_alive),
        }
    }
}

/// The parked stream a `Last-Event-ID` names, if it exists.
pub fn parked_stream(session: &HttpSession, last_event_id: &str) -> Option<u64> {
    let stream: u64 = last_event_id.split_once('-')?.0.parse().ok()?;
    lock(&session.parked)
        .contains_key(&stream)
        .then_some(stream)
}

/// Serves the rest of parked stream `stream` (from [`parked_stream`]),
/// ending after the reply.
pub fn serve_resumed(
    session: &HttpSession,
    stream: u64,
    out: &mut Conn,
    keep_alive: bool,
) -> io::Result<bool> {
    write_sse_head(out, keep_alive)?;
    let deadline = Instant::now() + RESUME_TIMEOUT;
    loop {
        let (batch, done) = {
            let mut parked = lock(&session.parked);
            loop {
                let ready = parked
                    .get(&stream)
                    .is_none_or(|p| !p.events.is_empty() || p.done);
                let now = Instant::now();
                if ready || now >= deadline || session.closed.load(Ordering::Relaxed) {
                    break;
                }
                parked = session
                    .parked_changed
                    .wait_timeout(parked, deadline - now)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            match parked.get_mut(&stream) {
                None => (Vec::new(), true),
                Some(p) => {
                    let first = p.next_seq;
                    p.next_seq += p.events.len() as u64;
                    let batch: Vec<(u64, String)> = (first..).zip(p.events.drain(..)).collect();
                    (batch, p.done)
                }
            }
        };
        for (seq, json) in &batch {
            let event = format!("id: {stream}-{seq}\nevent: message\ndata: {json}\n\n");
            write_sse(out, &event, keep_alive)?;
        }
        let gave_up = Instant::now() >= deadline || session.closed.load(Ordering::Relaxed);
        if done || (batch.is_empty() && gave_up) {
            if done {
                lock(&session.parked).remove(&stream);
            }
            end_sse(out, keep_alive)?;
            return Ok(keep_alive);
        }
    }
}

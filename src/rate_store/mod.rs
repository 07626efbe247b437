//! The rate-limit store thread (`o1m-ratestore`): the one place that talks to Redis for
//! `[rate_limit] store = "redis"`, so that no shard ever waits on a socket it does not own.
//!
//! Shards put decisions on a bounded channel (`only1mcp_shards::auth::store`); this thread
//! takes what is queued (up to [`MAX_BATCH`] at once), writes them as one pipeline of
//! `EVALSHA` commands on one connection, reads the replies in order and wakes each shard with
//! its answer. Under load a batch is everything that arrived during the previous round trip,
//! so the cost of the round trip is shared; when quiet, a decision is one round trip. A
//! decision whose shard stopped waiting (its deadline passed) is answered `timeout`, unsent.
//!
//! # Outages
//!
//! While Redis cannot be reached, every decision is answered `unreachable` at once (the shard
//! then follows `on_store_error`) and the thread reconnects with a backoff from
//! [`MIN_BACKOFF`] doubling to [`MAX_BACKOFF`], so a Redis that comes back is used again
//! within about [`MAX_BACKOFF`], without a restart. An idle connection is checked with `PING`
//! every [`IDLE_PING`], so `only1mcp_rate_limit_store_up` stays true to the facts. Each
//! change of state is logged once (down with the reason, up again), never once per request.
//! Logs name Redis by `host:port/db` only: the password never leaves the config.
//!
//! # Why RESP is spoken here, not through a crate
//!
//! The maintained `redis` crate's current releases need Rust 1.88 (the workspace builds on
//! 1.85) and bring a parser-combinator stack for the whole protocol; this thread needs five
//! commands (`AUTH`, `SELECT`, `SCRIPT LOAD`, `EVALSHA`/`EVAL`, `PING`) and five reply types,
//! which `resp.rs` reads with every length bounded. See `docs/decisions/0004-rate-limit-store.md`.

mod resp;
mod script;

use std::io::{self, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use anyhow::Context;
use crossbeam_channel::RecvTimeoutError;
use only1mcp_shards::auth::limit_store::{
    SharedRateStore, StoreAnswer, StoreAsk, StoreFailure, StoreInbox, STORE_QUEUE,
};
use only1mcp_shards::config::{parse_redis_url, RateLimitSection, RateStore, RedisTarget};

use resp::Value;
use script::{Outcome, Script};

/// Most decisions sent in one pipeline.
pub const MAX_BATCH: usize = 512;
/// First reconnect delay after a failure.
pub const MIN_BACKOFF: Duration = Duration::from_millis(50);
/// Longest reconnect delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// An idle connection is checked this often.
pub const IDLE_PING: Duration = Duration::from_secs(1);
/// Connect, read and write timeout of the connection: a Redis silent this long is down.
pub const IO_TIMEOUT: Duration = Duration::from_secs(1);

/// Starts the store thread when `[rate_limit] store = "redis"`, and returns the handle the
/// shards ask; the local store otherwise. The thread ends when every shard has dropped its
/// handle. Redis need not be up yet: decisions follow `on_store_error` until it is.
pub fn start(cfg: &RateLimitSection) -> anyhow::Result<SharedRateStore> {
    if cfg.store == RateStore::Local {
        return Ok(SharedRateStore::local());
    }
    let url = cfg
        .redis_url
        .as_ref()
        .context("rate_limit.redis_url is required with store = \"redis\"")?;
    let target = parse_redis_url(url.expose())
        .map_err(|why| anyhow::anyhow!("rate_limit.redis_url: {why}"))?;
    let (store, inbox) = SharedRateStore::channel(STORE_QUEUE);
    std::thread::Builder::new()
        .name("o1m-ratestore".into())
        .spawn(move || {
            crate::control::exit_on_panic("the rate-limit store thread", move || {
                Worker::new(target, inbox).run()
            })
        })
        .context("cannot start the rate-limit store thread")?;
    Ok(store)
}

/// One open connection with the script loaded.
struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    sha: String,
}

/// Opens a connection to `t`, logs in, selects the database and loads the script.
fn connect(t: &RedisTarget) -> io::Result<Conn> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the host name has no address");
    for addr in (t.host.as_str(), t.port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, IO_TIMEOUT) {
            Ok(s) => {
                s.set_nodelay(true)?;
                s.set_read_timeout(Some(IO_TIMEOUT))?;
                s.set_write_timeout(Some(IO_TIMEOUT))?;
                let writer = s.try_clone()?;
                let mut reader = BufReader::with_capacity(16 * 1024, s);
                let mut w = writer;
                let sha = handshake(&mut reader, &mut w, t)?;
                return Ok(Conn {
                    reader,
                    writer: w,
                    sha,
                });
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// `AUTH` (when the URL has a password), `SELECT` (db other than 0), `SCRIPT LOAD`; the
/// script's SHA-1 as the server reports it.
fn handshake<R: io::BufRead, W: Write>(
    r: &mut R,
    w: &mut W,
    t: &RedisTarget,
) -> io::Result<String> {
    let refused = |what: &str, v: Value| {
        let why = match v {
            Value::Error(e) => e,
            other => format!("unexpected reply {other:?}"),
        };
        io::Error::other(format!("{what} refused: {why}"))
    };
    let mut out = Vec::with_capacity(512);
    if let Some(pw) = &t.password {
        match &t.username {
            Some(u) => resp::command(&mut out, &[b"AUTH", u.as_bytes(), pw.as_bytes()]),
            None => resp::command(&mut out, &[b"AUTH", pw.as_bytes()]),
        }
    }
    let db = t.db.to_string();
    if t.db != 0 {
        resp::command(&mut out, &[b"SELECT", db.as_bytes()]);
    }
    resp::command(&mut out, &[b"SCRIPT", b"LOAD", script::GCRA.as_bytes()]);
    w.write_all(&out)?;
    w.flush()?;
    if t.password.is_some() {
        match resp::read(r)? {
            Value::Simple(ok) if ok == "OK" => {}
            v => return Err(refused("AUTH", v)),
        }
    }
    if t.db != 0 {
        match resp::read(r)? {
            Value::Simple(ok) if ok == "OK" => {}
            v => return Err(refused("SELECT", v)),
        }
    }
    match resp::read(r)? {
        Value::Bulk(Some(sha)) if sha.len() == 40 && sha.iter().all(u8::is_ascii_hexdigit) => {
            Ok(String::from_utf8_lossy(&sha).into_owned())
        }
        v => Err(refused("SCRIPT LOAD", v)),
    }
}

/// Decides `asks` on one connection: one pipeline of `EVALSHA`, then one of `EVAL` for those
/// the server did not have the script for. An I/O error leaves the connection unusable.
/// `refusals` gets the first refusal's message (for one log line).
fn decide<R: io::BufRead, W: Write>(
    r: &mut R,
    w: &mut W,
    sha: &str,
    asks: &[StoreAsk],
    out: &mut Vec<u8>,
    refusal: &mut Option<String>,
) -> io::Result<Vec<StoreAnswer>> {
    out.clear();
    for a in asks {
        script::encode(out, &Script::Sha(sha), a);
    }
    w.write_all(out)?;
    w.flush()?;
    let mut answers = Vec::with_capacity(asks.len());
    let mut again = Vec::new();
    for i in 0..asks.len() {
        answers.push(match script::outcome(resp::read(r)?) {
            Outcome::Answer(a) => a,
            Outcome::NoScript => {
                again.push(i);
                StoreAnswer::Failed(StoreFailure::Error)
            }
            Outcome::Refused(why) => {
                refusal.get_or_insert(why);
                script::refused()
            }
        });
    }
    if again.is_empty() {
        return Ok(answers);
    }
    out.clear();
    for &i in &again {
        script::encode(out, &Script::Text, &asks[i]);
    }
    w.write_all(out)?;
    w.flush()?;
    for &i in &again {
        answers[i] = match script::outcome(resp::read(r)?) {
            Outcome::Answer(a) => a,
            Outcome::NoScript | Outcome::Refused(_) => script::refused(),
        };
    }
    Ok(answers)
}

/// The thread's state.
struct Worker {
    target: RedisTarget,
    inbox: StoreInbox,
    conn: Option<Conn>,
    /// No connect attempt before this.
    retry_at: Instant,
    backoff: Duration,
    /// Last state logged: `Some(true)` up, `Some(false)` down.
    logged: Option<bool>,
    /// A refused decision was logged on this connection already.
    refusal_logged: bool,
    out: Vec<u8>,
}

impl Worker {
    fn new(target: RedisTarget, inbox: StoreInbox) -> Worker {
        Worker {
            target,
            inbox,
            conn: None,
            retry_at: Instant::now(),
            backoff: MIN_BACKOFF,
            logged: None,
            refusal_logged: false,
            out: Vec::with_capacity(64 * 1024),
        }
    }

    fn run(mut self) {
        self.ensure_connected();
        let mut batch: Vec<StoreAsk> = Vec::with_capacity(MAX_BATCH);
        loop {
            let wait = match &self.conn {
                Some(_) => IDLE_PING,
                None => self.retry_at.saturating_duration_since(Instant::now()),
            };
            match self
                .inbox
                .rx
                .recv_timeout(wait.max(Duration::from_millis(1)))
            {
                Ok(a) => batch.push(a),
                Err(RecvTimeoutError::Timeout) => {
                    self.idle();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
            while batch.len() < MAX_BATCH {
                match self.inbox.rx.try_recv() {
                    Ok(a) => batch.push(a),
                    Err(_) => break,
                }
            }
            // A decision its shard no longer waits for is not sent (its answer would be late).
            let now = Instant::now();
            let (mut live, late): (Vec<StoreAsk>, Vec<StoreAsk>) = batch
                .drain(..)
                .partition(|a| !a.reply.is_canceled() && a.deadline > now);
            for a in late {
                let _ = a.reply.send(StoreAnswer::Failed(StoreFailure::Timeout));
            }
            if !live.is_empty() {
                self.serve(&mut live);
            }
        }
    }

    /// Nothing queued: reconnect when due, or check the open connection.
    fn idle(&mut self) {
        match self.conn.as_mut() {
            None => self.ensure_connected(),
            Some(c) => {
                let mut out = Vec::with_capacity(16);
                resp::command(&mut out, &[b"PING"]);
                let ok = c
                    .writer
                    .write_all(&out)
                    .and_then(|()| resp::read(&mut c.reader));
                if let Err(e) = ok {
                    self.lost(&e);
                }
            }
        }
    }

    fn serve(&mut self, batch: &mut Vec<StoreAsk>) {
        self.ensure_connected();
        let answers = match self.conn.as_mut() {
            None => Err(None),
            Some(c) => {
                let mut refusal = None;
                let r = decide(
                    &mut c.reader,
                    &mut c.writer,
                    &c.sha,
                    batch,
                    &mut self.out,
                    &mut refusal,
                );
                if let (Some(why), false) = (refusal, self.refusal_logged) {
                    self.refusal_logged = true;
                    tracing::warn!(redis = %self.target, "rate-limit store refused a decision ({why}); such requests follow rate_limit.on_store_error (logged once per connection)");
                }
                r.map_err(Some)
            }
        };
        match answers {
            Ok(answers) => {
                for (a, answer) in batch.drain(..).zip(answers) {
                    let _ = a.reply.send(answer);
                }
            }
            Err(e) => {
                if let Some(e) = e {
                    self.lost(&e);
                }
                for a in batch.drain(..) {
                    let _ = a.reply.send(StoreAnswer::Failed(StoreFailure::Unreachable));
                }
            }
        }
    }

    /// Connects when there is no connection and a retry is due.
    fn ensure_connected(&mut self) {
        if self.conn.is_some() || Instant::now() < self.retry_at {
            return;
        }
        match connect(&self.target) {
            Ok(c) => {
                self.conn = Some(c);
                self.backoff = MIN_BACKOFF;
                self.refusal_logged = false;
                self.inbox.set_up(true);
                if self.logged != Some(true) {
                    self.logged = Some(true);
                    tracing::info!(redis = %self.target, "rate-limit store connected: limits are cluster-wide");
                }
            }
            Err(e) => {
                self.retry_at = Instant::now() + self.backoff;
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                self.down(&e);
            }
        }
    }

    /// The connection failed: drop it; the next decision reconnects at once.
    fn lost(&mut self, e: &io::Error) {
        self.conn = None;
        self.retry_at = Instant::now();
        self.down(e);
    }

    fn down(&mut self, e: &io::Error) {
        self.inbox.set_up(false);
        if self.logged != Some(false) {
            self.logged = Some(false);
            tracing::warn!(redis = %self.target, "rate-limit store unreachable ({e}); requests follow rate_limit.on_store_error until it is back (retrying every {} ms at most)", MAX_BACKOFF.as_millis());
        }
    }
}

#[cfg(test)]
mod tests;

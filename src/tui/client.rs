//! The TUI's socket reader: a background thread that connects, reads lines and reconnects.
//!
//! It owns the connection and its retry policy, and reports everything as [`ClientEvent`]s
//! over a bounded channel, so the UI thread never blocks on the socket. While the gateway
//! is down it retries with exponential backoff (100 ms doubling to 2 s) and reports each
//! failure with the next attempt's number; `r` in the TUI ([`Client::reconnect`]) drops the
//! connection or skips the wait.

use std::io::{BufRead, BufReader, ErrorKind};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender};

use super::app::ClientEvent;
use crate::observe::SocketLine;

/// How often a blocked read wakes to check for `r` and for shutdown.
const POLL: Duration = Duration::from_millis(100);
/// First retry delay; doubles per failed attempt up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The reader thread's handle; dropping it stops the thread.
pub struct Client {
    events: Receiver<ClientEvent>,
    flags: Arc<Flags>,
}

#[derive(Default)]
struct Flags {
    reconnect: AtomicBool,
    stop: AtomicBool,
}

impl Client {
    /// Starts reading `path` on a background thread.
    pub fn spawn(path: PathBuf) -> std::io::Result<Client> {
        let (tx, rx) = bounded(4096);
        let flags = Arc::new(Flags::default());
        let f = flags.clone();
        std::thread::Builder::new()
            .name("o1m-tui-reader".into())
            .spawn(move || Reader { path, tx, flags: f }.run())?;
        Ok(Client { events: rx, flags })
    }

    /// What the reader saw, in order.
    pub fn events(&self) -> &Receiver<ClientEvent> {
        &self.events
    }

    /// Drops the current connection (or the backoff wait) and connects again now.
    pub fn reconnect(&self) {
        self.flags.reconnect.store(true, Ordering::Release);
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // The thread notices within one POLL; it is not joined, the process is leaving.
        self.flags.stop.store(true, Ordering::Release);
    }
}

struct Reader {
    path: PathBuf,
    tx: Sender<ClientEvent>,
    flags: Arc<Flags>,
}

impl Reader {
    fn stopped(&self) -> bool {
        self.flags.stop.load(Ordering::Acquire)
    }

    fn take_reconnect(&self) -> bool {
        self.flags.reconnect.swap(false, Ordering::AcqRel)
    }

    /// Sends unless stopping; `false` when the UI is gone.
    fn send(&self, ev: ClientEvent) -> bool {
        let mut ev = ev;
        loop {
            if self.stopped() {
                return false;
            }
            match self.tx.send_timeout(ev, POLL) {
                Ok(()) => return true,
                Err(crossbeam_channel::SendTimeoutError::Timeout(back)) => ev = back,
                Err(crossbeam_channel::SendTimeoutError::Disconnected(_)) => return false,
            }
        }
    }

    fn run(self) {
        let mut attempt = 0u32;
        while !self.stopped() {
            let reason = match UnixStream::connect(&self.path) {
                Ok(stream) => {
                    attempt = 0;
                    self.take_reconnect();
                    if !self.send(ClientEvent::Connected) {
                        return;
                    }
                    match self.stream(stream) {
                        Some(reason) => reason,
                        None => return,
                    }
                }
                Err(e) => e.to_string(),
            };
            attempt += 1;
            if !self.send(ClientEvent::Down { attempt, reason }) {
                return;
            }
            self.backoff(attempt);
        }
    }

    /// Reads lines until the connection ends; the reason, or `None` when stopping.
    fn stream(&self, stream: UnixStream) -> Option<String> {
        if let Err(e) = stream.set_read_timeout(Some(POLL)) {
            return Some(e.to_string());
        }
        let mut r = BufReader::new(stream);
        let mut line = Vec::new();
        loop {
            if self.stopped() {
                return None;
            }
            if self.take_reconnect() {
                return Some("reconnect requested".into());
            }
            // read_until keeps a partial line in `line` across timeouts.
            match r.read_until(b'\n', &mut line) {
                Ok(0) => return Some("the gateway closed the connection".into()),
                Ok(_) if line.ends_with(b"\n") => {
                    let ev = match std::str::from_utf8(&line).map_err(|e| e.to_string()) {
                        Ok(text) => match SocketLine::parse(text) {
                            Ok(l) => ClientEvent::Line(Box::new(l)),
                            Err(e) => ClientEvent::Malformed(e.to_string()),
                        },
                        Err(e) => ClientEvent::Malformed(e),
                    };
                    line.clear();
                    if !self.send(ev) {
                        return None;
                    }
                }
                Ok(_) => {} // a partial line at EOF is followed by Ok(0) next time
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Some(e.to_string()),
            }
        }
    }

    /// Waits before attempt `attempt` (skipped by `r`, cut short by shutdown).
    fn backoff(&self, attempt: u32) {
        let wait = FIRST_BACKOFF
            .saturating_mul(1 << attempt.saturating_sub(1).min(10))
            .min(MAX_BACKOFF);
        let until = Instant::now() + wait;
        while Instant::now() < until {
            if self.stopped() || self.take_reconnect() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::net::UnixListener;

    use super::*;

    fn next(c: &Client) -> ClientEvent {
        c.events()
            .recv_timeout(Duration::from_secs(5))
            .expect("an event within 5 s")
    }

    /// Down while nobody listens (attempts counting up), then connected, lines parsed,
    /// a bad line reported, and down again when the server closes.
    #[test]
    fn reports_down_connected_lines_and_reconnects() {
        let dir = std::env::temp_dir().join(format!("o1m-tui-client-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let c = Client::spawn(path.clone()).unwrap();
        assert!(matches!(next(&c), ClientEvent::Down { attempt: 1, .. }));
        assert!(matches!(next(&c), ClientEvent::Down { attempt: 2, .. }));

        let l = UnixListener::bind(&path).unwrap();
        c.reconnect(); // skip the backoff
        let (mut s, _) = l.accept().unwrap();
        // Events from attempts made before the listener existed may still be queued.
        let mut ev = next(&c);
        while matches!(ev, ClientEvent::Down { .. }) {
            ev = next(&c);
        }
        assert_eq!(ev, ClientEvent::Connected);
        let log = r#"{"type":"log","seq":1,"ts_ms":2,"level":"INFO","target":"t","message":"hi"}"#;
        // Split across writes: the reader joins a line cut by a read timeout.
        s.write_all(&log.as_bytes()[..10]).unwrap();
        std::thread::sleep(POLL * 2);
        s.write_all(&log.as_bytes()[10..]).unwrap();
        s.write_all(b"\nnot json\n").unwrap();
        match next(&c) {
            ClientEvent::Line(line) => match *line {
                SocketLine::Log(l) => assert_eq!(l.message, "hi"),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
        assert!(matches!(next(&c), ClientEvent::Malformed(_)));
        drop(s);
        assert!(matches!(next(&c), ClientEvent::Down { attempt: 1, .. }));
        // It comes back on its own.
        let (_s2, _) = l.accept().unwrap();
        assert_eq!(next(&c), ClientEvent::Connected);
        // `r` drops a live connection and connects again.
        c.reconnect();
        match next(&c) {
            ClientEvent::Down { reason, .. } => assert_eq!(reason, "reconnect requested"),
            other => panic!("{other:?}"),
        }
        let (_s3, _) = l.accept().unwrap();
        assert_eq!(next(&c), ClientEvent::Connected);
    }
}

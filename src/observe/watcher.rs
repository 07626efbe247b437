//! One watcher of the metrics socket: its outgoing buffer and the nonblocking writes that
//! drain it.
//!
//! Owns the drop policy's arithmetic: a watcher whose unsent bytes pass
//! [`MAX_PENDING_BYTES`] after a write attempt is [`Gone::Slow`]; the socket thread then
//! drops it. Nothing here ever blocks.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;

use super::socket::MAX_PENDING_BYTES;

/// One connected watcher and what it has not received yet.
pub(super) struct Watcher {
    pub(super) stream: UnixStream,
    /// Encoded lines not yet written; `sent` bytes of it are already gone.
    pending: Vec<u8>,
    sent: usize,
    /// The newest log `seq` queued for this watcher.
    pub(super) last_seq: u64,
}

/// Why a watcher was dropped.
pub(super) enum Gone {
    /// It closed its end (a normal goodbye).
    Left,
    /// Its socket failed.
    Failed(std::io::Error),
    /// It stopped reading and `MAX_PENDING_BYTES` piled up.
    Slow(usize),
}

impl Watcher {
    /// A watcher with nothing queued yet.
    pub(super) fn new(stream: UnixStream) -> Self {
        Self {
            stream,
            pending: Vec::new(),
            sent: 0,
            last_seq: 0,
        }
    }

    /// `true` while some queued bytes are not written yet.
    pub(super) fn has_unsent(&self) -> bool {
        self.sent < self.pending.len()
    }

    /// Appends one encoded line to the outgoing buffer.
    pub(super) fn queue(&mut self, line: &str) {
        self.pending.extend_from_slice(line.as_bytes());
    }

    /// Writes what the kernel takes now; never blocks.
    pub(super) fn flush(&mut self) -> Result<(), Gone> {
        while self.sent < self.pending.len() {
            match self.stream.write(&self.pending[self.sent..]) {
                Ok(0) => return Err(Gone::Left),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if is_goodbye(&e) => return Err(Gone::Left),
                Err(e) => return Err(Gone::Failed(e)),
            }
        }
        if self.sent == self.pending.len() {
            self.pending.clear();
            self.sent = 0;
        } else if self.sent > self.pending.len() / 2 {
            self.pending.drain(..self.sent);
            self.sent = 0;
        }
        match self.pending.len() - self.sent {
            unsent if unsent > MAX_PENDING_BYTES => Err(Gone::Slow(unsent)),
            _ => Ok(()),
        }
    }

    /// Reads and discards whatever the watcher sent; `Err` when it hung up.
    pub(super) fn drain_input(&mut self) -> Result<(), Gone> {
        let mut buf = [0u8; 512];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return Err(Gone::Left),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if is_goodbye(&e) => return Err(Gone::Left),
                Err(e) => return Err(Gone::Failed(e)),
            }
        }
    }
}

fn is_goodbye(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
    )
}

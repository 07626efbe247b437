//! The audit trail's shard side: one record per JSON-RPC request, handed to a writer thread.
//!
//! A shard never writes a file. It fills an [`AuditRecord`] when a request ends (or is
//! refused) and hands it to [`SharedAuditSink::log`], which puts it on a bounded lock-free
//! channel with `try_send`: it never blocks and never allocates beyond the record itself. The
//! binary's writer thread (`src/audit.rs`) formats and writes the lines. When the writer falls
//! behind and the channel is full, the record is dropped and counted
//! ([`SharedAuditSink::dropped`]), because stalling a core to keep an audit line would stall
//! every request on it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender, TrySendError};

/// Records the channel holds before new ones are dropped.
pub const AUDIT_CHANNEL_CAPACITY: usize = 65_536;

/// One audited request (one line of the audit log).
#[derive(Debug, Clone)]
pub struct AuditRecord {
    /// When the request arrived, unix milliseconds (see [`unix_ms_now`]).
    pub ts_ms: u64,
    /// The authenticated principal (`None`: unauthenticated).
    pub principal: Option<String>,
    /// The 2025-era `Mcp-Session-Id`, if any.
    pub session: Option<String>,
    /// JSON-RPC method (or what the refusal happened on, e.g. `tools/call`).
    pub method: String,
    /// Backend server id the request went to, if one.
    pub server: Option<String>,
    /// The tool (backend's own name) of a `tools/call`, if one.
    pub tool: Option<String>,
    /// `ok`, `denied`, `unauthenticated`, `forbidden`, `rate_limited`, `client_error`,
    /// `backend_error`, `backend_timeout`, `backend_unavailable`, `cancelled` or
    /// `gateway_error`.
    pub outcome: &'static str,
    /// HTTP status returned to the client.
    pub status: u16,
    /// Time from arrival to the response, microseconds.
    pub latency_us: u64,
    /// Request body bytes.
    pub bytes_in: u64,
    /// Response body bytes.
    pub bytes_out: u64,
}

/// The current time in unix milliseconds (for [`AuditRecord::ts_ms`]).
pub fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Where shards send audit records: every shard holds a clone; disabled when auditing is off.
#[derive(Debug, Clone)]
pub struct SharedAuditSink {
    /// The writer's channel (`None`: auditing off).
    tx: Option<Sender<AuditRecord>>,
    /// Records dropped because the channel was full or the writer had stopped.
    dropped: Arc<AtomicU64>,
}

impl SharedAuditSink {
    /// A sink that audits nothing.
    pub fn disabled() -> Self {
        SharedAuditSink {
            tx: None,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A sink and the receiving end for the writer thread, holding up to
    /// [`AUDIT_CHANNEL_CAPACITY`] records.
    pub fn channel() -> (Self, Receiver<AuditRecord>) {
        Self::bounded(AUDIT_CHANNEL_CAPACITY)
    }

    /// Like [`SharedAuditSink::channel`] with another capacity (tests use a tiny one).
    pub fn bounded(capacity: usize) -> (Self, Receiver<AuditRecord>) {
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        let sink = SharedAuditSink {
            tx: Some(tx),
            dropped: Arc::new(AtomicU64::new(0)),
        };
        (sink, rx)
    }

    /// True when records are written somewhere (callers skip building a record otherwise).
    pub fn is_enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Hands a record to the writer; never blocks. A full channel (or a stopped writer) drops
    /// the record and counts it.
    pub fn log(&self, r: AuditRecord) {
        let Some(tx) = &self.tx else {
            return;
        };
        match tx.try_send(r) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Records dropped so far (all clones of this sink together).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: u64) -> AuditRecord {
        AuditRecord {
            ts_ms: i,
            principal: Some("alice".into()),
            session: None,
            method: "tools/call".into(),
            server: Some("demo".into()),
            tool: Some("echo".into()),
            outcome: "ok",
            status: 200,
            latency_us: 1,
            bytes_in: i,
            bytes_out: 0,
        }
    }

    #[test]
    fn disabled_logs_nothing() {
        let s = SharedAuditSink::disabled();
        assert!(!s.is_enabled());
        s.log(record(1));
        assert_eq!(s.dropped(), 0);
    }

    #[test]
    fn full_channel_drops_and_counts_without_blocking() {
        let (s, rx) = SharedAuditSink::bounded(2);
        assert!(s.is_enabled());
        let other = s.clone();
        for i in 0..5 {
            s.log(record(i));
        }
        other.log(record(5));
        assert_eq!(s.dropped(), 4);
        assert_eq!(other.dropped(), 4);
        let got: Vec<u64> = rx.try_iter().map(|r| r.bytes_in).collect();
        assert_eq!(got, vec![0, 1]);
        // Room again.
        s.log(record(6));
        assert_eq!(rx.try_recv().map(|r| r.bytes_in).ok(), Some(6));
        // A stopped writer: dropped and counted too.
        drop(rx);
        s.log(record(7));
        assert_eq!(s.dropped(), 5);
    }

    #[test]
    fn default_capacity() {
        let (s, rx) = SharedAuditSink::channel();
        assert_eq!(rx.capacity(), Some(AUDIT_CHANNEL_CAPACITY));
        s.log(record(1));
        assert_eq!(rx.len(), 1);
    }

    #[test]
    fn now_is_after_2020() {
        assert!(unix_ms_now() > 1_577_836_800_000);
    }
}

//! Log capture for the metrics socket: a `tracing` layer that keeps the last log lines.
//!
//! [`LogLayer`] sits next to the stderr formatter (same filter, so the socket shows what
//! stderr shows) and turns each event into a [`LogLine`] with a sequence number, pushed into
//! a bounded [`LogRing`]. The socket thread reads the ring with [`LogRing::since`] every
//! 500 ms and sends each watcher the lines it has not seen yet.
//!
//! The ring is a `std::sync::Mutex<VecDeque>`. That is a lock the shards can touch, which the
//! house rules otherwise forbid, and it is allowed here on purpose: a shard logs on state
//! changes and failures (a backend down, a child restarted), never per request at the
//! default level, and the lock is held only to push one preformatted line or to copy lines
//! out. Formatting happens before the lock is taken. A lock-free ring would buy nothing
//! measurable and make `since` (a consistent copy by sequence number) much harder.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

use super::snapshot::{now_ms, LogLine};

/// Lines the ring keeps by default.
pub const DEFAULT_CAPACITY: usize = 1000;

/// A message longer than this is cut (with `…`), so one huge event cannot fill a watcher's
/// buffer or the ring's memory.
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// The last `capacity` log lines, numbered from 1.
#[derive(Debug)]
pub struct LogRing {
    inner: Mutex<Ring>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Ring {
    lines: VecDeque<LogLine>,
    /// The `seq` the next line gets.
    next_seq: u64,
}

impl LogRing {
    /// An empty ring keeping at most `capacity` lines (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Ring {
                lines: VecDeque::with_capacity(capacity.clamp(1, 4096)),
                next_seq: 1,
            }),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Ring> {
        // A panic while holding the lock leaves a consistent deque (push/pop are atomic from
        // our point of view), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends one line, dropping the oldest beyond capacity; returns its `seq`.
    pub fn push(&self, level: &str, target: &str, mut message: String) -> u64 {
        truncate_message(&mut message);
        let ts_ms = now_ms();
        let (level, target) = (level.to_string(), target.to_string());
        let mut ring = self.lock();
        let seq = ring.next_seq;
        ring.next_seq += 1;
        if ring.lines.len() == self.capacity {
            ring.lines.pop_front();
        }
        ring.lines.push_back(LogLine {
            seq,
            ts_ms,
            level,
            target,
            message,
        });
        seq
    }

    /// Every kept line with `seq > after`, oldest first (`since(0)` is everything kept).
    pub fn since(&self, after: u64) -> Vec<LogLine> {
        let ring = self.lock();
        // Sequence numbers are contiguous, so the first wanted line's index is arithmetic.
        let first = ring.lines.front().map_or(0, |l| l.seq);
        let skip = (after + 1).saturating_sub(first) as usize;
        ring.lines.iter().skip(skip).cloned().collect()
    }

    /// The last `n` kept lines, oldest first.
    pub fn tail(&self, n: usize) -> Vec<LogLine> {
        let ring = self.lock();
        let skip = ring.lines.len().saturating_sub(n);
        ring.lines.iter().skip(skip).cloned().collect()
    }
}

fn truncate_message(message: &mut String) {
    if message.len() > MAX_MESSAGE_BYTES {
        let mut cut = MAX_MESSAGE_BYTES;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push('…');
    }
}

/// The `tracing` layer that feeds a [`LogRing`].
pub struct LogLayer {
    ring: std::sync::Arc<LogRing>,
}

impl LogLayer {
    /// A layer pushing into `ring`.
    pub fn new(ring: std::sync::Arc<LogRing>) -> Self {
        Self { ring }
    }
}

impl<S: Subscriber> Layer<S> for LogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut v = MessageVisitor::default();
        event.record(&mut v);
        self.ring
            .push(meta.level().as_str(), meta.target(), v.finish());
    }
}

/// Collects `message` and the other fields as `message key=value key2=value2`, the way the
/// stderr formatter writes them.
#[derive(Default)]
struct MessageVisitor {
    message: String,
    fields: String,
}

impl MessageVisitor {
    fn finish(mut self) -> String {
        if self.message.is_empty() {
            self.fields.trim_start().to_string()
        } else {
            self.message.push_str(&self.fields);
            self.message
        }
    }
}

impl Visit for MessageVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[test]
    fn ring_numbers_lines_and_drops_the_oldest() {
        let ring = LogRing::new(3);
        assert!(ring.since(0).is_empty());
        for i in 0..5 {
            assert_eq!(ring.push("INFO", "t", format!("m{i}")), i + 1);
        }
        let seqs = |v: Vec<LogLine>| v.iter().map(|l| l.seq).collect::<Vec<_>>();
        assert_eq!(seqs(ring.since(0)), [3, 4, 5]);
        assert_eq!(seqs(ring.since(3)), [4, 5]);
        assert_eq!(seqs(ring.since(5)), Vec::<u64>::new());
        assert_eq!(seqs(ring.since(99)), Vec::<u64>::new());
        assert_eq!(seqs(ring.tail(2)), [4, 5]);
        assert_eq!(seqs(ring.tail(10)), [3, 4, 5]);
        assert_eq!(ring.since(4)[0].message, "m4");
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let ring = LogRing::new(2);
        ring.push("INFO", "t", "é".repeat(MAX_MESSAGE_BYTES));
        let m = &ring.since(0)[0].message;
        assert!(m.len() <= MAX_MESSAGE_BYTES + '…'.len_utf8());
        assert!(m.ends_with('…'));
    }

    #[test]
    fn layer_formats_message_and_fields() {
        let ring = Arc::new(LogRing::new(10));
        let sub = tracing_subscriber::registry().with(LogLayer::new(ring.clone()));
        tracing::subscriber::with_default(sub, || {
            tracing::warn!(server = %"demo", tries = 3, "backend down: {}", "eof");
            tracing::info!(only = "fields");
        });
        let lines = ring.since(0);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].level, "WARN");
        assert_eq!(lines[0].message, "backend down: eof server=demo tries=3");
        assert!(lines[0].target.contains("logs"), "{}", lines[0].target);
        assert_eq!(lines[1].message, "only=fields");
    }
}

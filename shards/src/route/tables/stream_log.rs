//! One SSE stream's resume log, bounded in events and bytes (per stream, and for all
//! streams of a shard); `route/resume.rs` numbers, relays and replays.

use std::cell::Cell;
use std::collections::VecDeque;
use std::time::Duration;

use crate::rt::feed::FeedTx;

/// Events kept per stream for replay.
pub const LOG_CAP: usize = 1024;
/// Bytes of events kept per stream for replay.
pub const LOG_BYTES: usize = 1 << 20;
/// Bytes of events kept for replay by all streams of a shard.
pub const SHARD_LOG_BYTES: usize = 64 << 20;
/// How long a finished stream stays resumable.
pub const KEEP_DONE: Duration = Duration::from_secs(120);

/// One stream's log and the response currently attached to it.
#[derive(Default)]
pub struct LocalStreamLog {
    pub(in crate::route) events: VecDeque<(u64, Vec<u8>)>,
    /// Bytes of `events`.
    pub(in crate::route) bytes: usize,
    /// The last sequence number dropped from the log (0: none).
    pub(in crate::route) dropped_through: u64,
    pub(in crate::route) live: Option<FeedTx>,
    pub(in crate::route) done: bool,
}

impl LocalStreamLog {
    /// A response is attached and still reading.
    pub fn attached(&self) -> bool {
        self.live.as_ref().is_some_and(|l| !l.is_closed())
    }

    /// Logs event `seq`, then drops the oldest events while this log holds more than
    /// [`LOG_CAP`] events or [`LOG_BYTES`] bytes, or the shard's logs (`shard_bytes`) more
    /// than `shard_cap` bytes.
    pub(in crate::route) fn push(
        &mut self,
        seq: u64,
        msg: Vec<u8>,
        shard_bytes: &Cell<usize>,
        shard_cap: usize,
    ) {
        // An answer may sit in a buffer from the shard's free list (`rt/bufs.rs`), up to
        // 64 KiB for a 100-byte message: kept here for minutes, it is trimmed, and the bounds
        // count the memory held (capacity), not the message's length.
        let mut msg = msg;
        if msg.capacity() > msg.len() * 2 + 64 {
            msg.shrink_to_fit();
        }
        let held = msg.capacity();
        self.bytes += held;
        shard_bytes.set(shard_bytes.get() + held);
        self.events.push_back((seq, msg));
        while self.events.len() > LOG_CAP
            || self.bytes > LOG_BYTES
            || (shard_bytes.get() > shard_cap && !self.events.is_empty())
        {
            let Some((s, m)) = self.events.pop_front() else {
                break;
            };
            self.bytes -= m.capacity();
            shard_bytes.set(shard_bytes.get().saturating_sub(m.capacity()));
            self.dropped_through = s;
        }
    }

    /// The events that followed `after`, or `None` when some of them were dropped.
    pub(in crate::route) fn after(
        &self,
        after: u64,
    ) -> Option<impl Iterator<Item = &(u64, Vec<u8>)>> {
        if after < self.dropped_through {
            return None;
        }
        Some(self.events.iter().filter(move |(s, _)| *s > after))
    }

    /// Empties the log, giving its bytes back to the shard's count.
    pub(in crate::route) fn release(&mut self, shard_bytes: &Cell<usize>) {
        shard_bytes.set(shard_bytes.get().saturating_sub(self.bytes));
        self.bytes = 0;
        self.events.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_of(sizes: &[usize], shard_bytes: &Cell<usize>, cap: usize) -> LocalStreamLog {
        let mut log = LocalStreamLog::default();
        for (i, &n) in sizes.iter().enumerate() {
            log.push(i as u64 + 1, vec![b'x'; n], shard_bytes, cap);
        }
        log
    }

    fn seqs(log: &LocalStreamLog, after: u64) -> Option<Vec<u64>> {
        log.after(after).map(|it| it.map(|(s, _)| *s).collect())
    }

    #[test]
    fn a_stream_log_keeps_at_most_log_bytes_newest_first() {
        let shard_bytes = Cell::new(0);
        let log = log_of(&[LOG_BYTES / 2; 5], &shard_bytes, usize::MAX);
        assert_eq!(log.bytes, LOG_BYTES);
        assert_eq!(shard_bytes.get(), LOG_BYTES);
        assert_eq!(seqs(&log, 3), Some(vec![4, 5]));
        assert_eq!(log.dropped_through, 3);
    }

    #[test]
    fn an_event_larger_than_the_bound_is_not_kept() {
        let shard_bytes = Cell::new(0);
        let log = log_of(&[10, 8 << 20], &shard_bytes, usize::MAX);
        assert_eq!((log.bytes, shard_bytes.get()), (0, 0));
        assert_eq!(seqs(&log, 2), Some(vec![]));
        assert_eq!(
            seqs(&log, 0),
            None,
            "resuming before a dropped event: unknown"
        );
        assert_eq!(seqs(&log, 1), None);
    }

    #[test]
    fn the_shard_bound_holds_across_streams_and_is_given_back() {
        let shard_bytes = Cell::new(0);
        let cap = 3 * 1000;
        let mut logs: Vec<_> = (0..10)
            .map(|_| log_of(&[500; 4], &shard_bytes, cap))
            .collect();
        assert!(shard_bytes.get() <= cap, "{} > {cap}", shard_bytes.get());
        assert_eq!(
            shard_bytes.get(),
            logs.iter().map(|l| l.bytes).sum::<usize>()
        );
        for l in &mut logs {
            l.release(&shard_bytes);
        }
        assert_eq!(shard_bytes.get(), 0);
    }

    #[test]
    fn a_small_message_in_a_large_buffer_is_trimmed_and_counted_as_held() {
        let shard_bytes = Cell::new(0);
        let mut log = LocalStreamLog::default();
        for seq in 1..=3 {
            let mut msg = Vec::with_capacity(64 << 10);
            msg.extend_from_slice(b"{\"jsonrpc\":\"2.0\"}");
            log.push(seq, msg, &shard_bytes, usize::MAX);
        }
        let held: usize = log.events.iter().map(|(_, m)| m.capacity()).sum();
        assert_eq!(log.bytes, held, "the bound counts what is held");
        assert_eq!(shard_bytes.get(), held);
        assert!(
            held < 3 * 1024,
            "trimmed: {held} bytes held for 3 small events"
        );
        log.release(&shard_bytes);
        assert_eq!(shard_bytes.get(), 0);
    }

    #[test]
    fn a_replay_from_a_kept_event_is_whole() {
        let shard_bytes = Cell::new(0);
        let log = log_of(&[10; LOG_CAP + 5], &shard_bytes, usize::MAX);
        assert_eq!(log.events.len(), LOG_CAP);
        assert_eq!(seqs(&log, 4), None);
        let from = (LOG_CAP + 3) as u64;
        assert_eq!(seqs(&log, from), Some(vec![from + 1, from + 2]));
        assert_eq!(seqs(&log, u64::MAX), Some(vec![]));
    }
}

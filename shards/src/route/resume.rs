//! SSE resumability for 2025-era sessions (`Last-Event-ID`).
//!
//! Every SSE stream of a session (each POST answer and the standalone GET stream) goes
//! through a relay that numbers its events `<stream>-<seq>`, keeps them in a bounded log,
//! and forwards them to whichever HTTP response is attached. The stream starts with a priming
//! event (an id, empty data) so a client can resume before the first message. If the client
//! drops the connection the call keeps running (a disconnect is not a cancellation) and its
//! events are logged; a GET with `Last-Event-ID` replays what followed that id on that stream
//! only, then stays attached while the stream lives. Stream numbers come from a shard-wide
//! counter, so ids are unique across the session's streams.
//!
//! The log is bounded in events ([`LOG_CAP`]) and bytes: [`LOG_BYTES`] per stream and
//! [`SHARD_LOG_BYTES`] for all streams of the shard (a session may open many streams, and
//! each is kept [`KEEP_DONE`] after it ends). Past a bound the oldest events of the stream
//! being logged are dropped, even a single event larger than the bound (a large result is
//! delivered, just not kept). A `Last-Event-ID` from before a dropped event names an event
//! that is gone: it is treated as unknown, like an expired stream, and nothing is replayed
//! rather than a replay with a hole in it. The response attached to a stream is fed through
//! a byte-bounded queue ([`crate::rt::feed`]); a client that falls behind it is detached as
//! one that left, and may resume from its last event id while that is still logged.

use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use std::cell::Cell;

use futures_core::Stream;

use crate::http::response::tag_event;
use crate::route::router::Router;
use crate::rt::feed::{feed, FeedRx, FeedTx, SSE_QUEUE_BYTES};

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
    events: VecDeque<(u64, Vec<u8>)>,
    /// Bytes of `events`.
    bytes: usize,
    /// The last sequence number dropped from the log (0: none).
    dropped_through: u64,
    live: Option<FeedTx>,
    done: bool,
}

impl LocalStreamLog {
    /// A response is attached and still reading.
    pub fn attached(&self) -> bool {
        self.live.as_ref().is_some_and(|l| !l.is_closed())
    }

    /// Logs event `seq`, then drops the oldest events while this log holds more than
    /// [`LOG_CAP`] events or [`LOG_BYTES`] bytes, or the shard's logs (`shard_bytes`) more
    /// than `shard_cap` bytes.
    fn push(&mut self, seq: u64, msg: Vec<u8>, shard_bytes: &Cell<usize>, shard_cap: usize) {
        self.bytes += msg.len();
        shard_bytes.set(shard_bytes.get() + msg.len());
        self.events.push_back((seq, msg));
        while self.events.len() > LOG_CAP
            || self.bytes > LOG_BYTES
            || (shard_bytes.get() > shard_cap && !self.events.is_empty())
        {
            let Some((s, m)) = self.events.pop_front() else {
                break;
            };
            self.bytes -= m.len();
            shard_bytes.set(shard_bytes.get().saturating_sub(m.len()));
            self.dropped_through = s;
        }
    }

    /// The events that followed `after`, or `None` when some of them were dropped.
    fn after(&self, after: u64) -> Option<impl Iterator<Item = &(u64, Vec<u8>)>> {
        if after < self.dropped_through {
            return None;
        }
        Some(self.events.iter().filter(move |(s, _)| *s > after))
    }

    /// Empties the log, giving its bytes back to the shard's count.
    fn release(&mut self, shard_bytes: &Cell<usize>) {
        shard_bytes.set(shard_bytes.get().saturating_sub(self.bytes));
        self.bytes = 0;
        self.events.clear();
    }
}

fn key(sid: &str, stream: u64) -> String {
    format!("{sid}/{stream}")
}

/// Puts `input` behind a numbered, resumable relay of session `sid`; returns the stream
/// number and the (tagged) receiver for the HTTP response.
pub fn track<S: Stream<Item = Vec<u8>> + Unpin + 'static>(
    router: &Rc<Router>,
    sid: &str,
    input: S,
) -> (u64, FeedRx) {
    let n = router.mint();
    let (live_tx, live_rx) = feed(SSE_QUEUE_BYTES);
    let _ = live_tx.send(tag_event(&format!("{n}-0"), b""));
    let k = key(sid, n);
    router.stream_logs.borrow_mut().insert(
        k.clone(),
        LocalStreamLog {
            live: Some(live_tx),
            ..Default::default()
        },
    );
    monoio::spawn(relay(router.clone(), k, n, input));
    (n, live_rx)
}

async fn relay<S: Stream<Item = Vec<u8>> + Unpin>(
    router: Rc<Router>,
    k: String,
    n: u64,
    mut input: S,
) {
    let mut seq = 0u64;
    while let Some(msg) = crate::rt::next(&mut input).await {
        seq += 1;
        let mut logs = router.stream_logs.borrow_mut();
        let Some(log) = logs.get_mut(&k) else {
            continue;
        };
        if let Some(live) = &log.live {
            // Gone, or too far behind (the writer then closes its connection): detached.
            if live.send(tag_event(&format!("{n}-{seq}"), &msg)).is_err() {
                log.live = None;
            }
        }
        log.push(seq, msg, &router.stream_log_bytes, SHARD_LOG_BYTES);
    }
    if let Some(log) = router.stream_logs.borrow_mut().get_mut(&k) {
        log.done = true;
        log.live = None; // ends the attached response
    }
    monoio::time::sleep(KEEP_DONE).await;
    if let Some(mut log) = router.stream_logs.borrow_mut().remove(&k) {
        log.release(&router.stream_log_bytes);
    }
}

/// Is stream `n` of `sid` attached to a live response?
pub fn attached(router: &Rc<Router>, sid: &str, n: u64) -> bool {
    router
        .stream_logs
        .borrow()
        .get(&key(sid, n))
        .is_some_and(LocalStreamLog::attached)
}

/// Attaches a new response to stream `n` of `sid`, replaying what followed `after`
/// (`u64::MAX`: a take-over, nothing replayed). The response attached before, if any, ends.
/// `None` when the stream is unknown (never existed, or expired), or when events that
/// followed `after` were dropped from its log.
pub fn resume(router: &Rc<Router>, sid: &str, n: u64, after: u64) -> Option<FeedRx> {
    let mut logs = router.stream_logs.borrow_mut();
    let log = logs.get_mut(&key(sid, n))?;
    let replay = log.after(after)?;
    // The replay is at most LOG_BYTES, under the queue's bound.
    let (tx, rx) = feed(SSE_QUEUE_BYTES);
    if after == u64::MAX {
        // Taking the stream over (a new GET): nothing is replayed, but the response is primed
        // with the stream's latest id so its client can resume from there.
        let last = log
            .events
            .back()
            .map_or(log.dropped_through, |(seq, _)| *seq);
        let _ = tx.send(tag_event(&format!("{n}-{last}"), b""));
    }
    for (seq, msg) in replay {
        let _ = tx.send(tag_event(&format!("{n}-{seq}"), msg));
    }
    if !log.done {
        log.live = Some(tx);
    }
    Some(rx)
}

/// Parses `<stream>-<seq>`.
pub fn parse_event_id(id: &str) -> Option<(u64, u64)> {
    let (a, b) = id.trim().split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Forgets every stream of a session that ended.
pub fn forget_session(router: &Rc<Router>, sid: &str) {
    let prefix = format!("{sid}/");
    router.stream_logs.borrow_mut().retain(|k, log| {
        let keep = !k.starts_with(&prefix);
        if !keep {
            log.release(&router.stream_log_bytes);
        }
        keep
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_of(sizes: &[usize], router: &Cell<usize>, cap: usize) -> LocalStreamLog {
        let mut log = LocalStreamLog::default();
        for (i, &n) in sizes.iter().enumerate() {
            log.push(i as u64 + 1, vec![b'x'; n], router, cap);
        }
        log
    }

    fn seqs(log: &LocalStreamLog, after: u64) -> Option<Vec<u64>> {
        log.after(after).map(|it| it.map(|(s, _)| *s).collect())
    }

    #[test]
    fn a_stream_log_keeps_at_most_log_bytes_newest_first() {
        let router = Cell::new(0);
        let log = log_of(&[LOG_BYTES / 2; 5], &router, usize::MAX);
        assert_eq!(log.bytes, LOG_BYTES);
        assert_eq!(router.get(), LOG_BYTES);
        assert_eq!(seqs(&log, 3), Some(vec![4, 5]));
        assert_eq!(log.dropped_through, 3);
    }

    #[test]
    fn an_event_larger_than_the_bound_is_not_kept() {
        let router = Cell::new(0);
        let log = log_of(&[10, 8 << 20], &router, usize::MAX);
        assert_eq!((log.bytes, router.get()), (0, 0));
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
        let router = Cell::new(0);
        let cap = 3 * 1000;
        let mut logs: Vec<_> = (0..10).map(|_| log_of(&[500; 4], &router, cap)).collect();
        assert!(router.get() <= cap, "{} > {cap}", router.get());
        assert_eq!(router.get(), logs.iter().map(|l| l.bytes).sum::<usize>());
        for l in &mut logs {
            l.release(&router);
        }
        assert_eq!(router.get(), 0);
    }

    #[test]
    fn a_replay_from_a_kept_event_is_whole() {
        let router = Cell::new(0);
        let log = log_of(&[10; LOG_CAP + 5], &router, usize::MAX);
        assert_eq!(log.events.len(), LOG_CAP);
        assert_eq!(seqs(&log, 4), None);
        let from = (LOG_CAP + 3) as u64;
        assert_eq!(seqs(&log, from), Some(vec![from + 1, from + 2]));
        assert_eq!(seqs(&log, u64::MAX), Some(vec![]));
    }
}

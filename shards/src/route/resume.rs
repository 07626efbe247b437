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
//! The log is bounded in events (`LOG_CAP`) and bytes: `LOG_BYTES` per stream and
//! `SHARD_LOG_BYTES` for all streams of the shard (a session may open many streams, and
//! each is kept `KEEP_DONE` after it ends). Past a bound the oldest events of the stream
//! being logged are dropped, even a single event larger than the bound (a large result is
//! delivered, just not kept). A `Last-Event-ID` from before a dropped event names an event
//! that is gone: it is treated as unknown, like an expired stream, and nothing is replayed
//! rather than a replay with a hole in it. The response attached to a stream is fed through
//! a byte-bounded queue (`crate::rt::feed`); a client that falls behind it is detached as
//! one that left, and may resume from its last event id while that is still logged.

use std::rc::Rc;

use futures_core::Stream;

use crate::http::response::tag_event;
use crate::route::router::Router;
use crate::route::tables::stream_log::{LocalStreamLog, KEEP_DONE, SHARD_LOG_BYTES};
use crate::rt::feed::{feed, FeedRx, SSE_QUEUE_BYTES};

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
    let n = router.calls.mint();
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

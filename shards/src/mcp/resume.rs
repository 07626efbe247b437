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

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use futures_channel::mpsc::{self, UnboundedReceiver, UnboundedSender};
use futures_core::Stream;

use crate::http::response::tag_event;
use crate::shard::LocalShard;

/// Events kept per stream for replay.
const LOG_CAP: usize = 1024;
/// How long a finished stream stays resumable.
const KEEP_DONE: Duration = Duration::from_secs(120);

/// One stream's log and the response currently attached to it.
#[derive(Default)]
pub struct LocalStreamLog {
    events: VecDeque<(u64, Vec<u8>)>,
    live: Option<UnboundedSender<Vec<u8>>>,
    done: bool,
}

impl LocalStreamLog {
    /// A response is attached and still reading.
    pub fn attached(&self) -> bool {
        self.live.as_ref().is_some_and(|l| !l.is_closed())
    }
}

fn key(sid: &str, stream: u64) -> String {
    format!("{sid}/{stream}")
}

/// Puts `input` behind a numbered, resumable relay of session `sid`; returns the stream
/// number and the (tagged) receiver for the HTTP response.
pub fn track(
    shard: &Rc<LocalShard>,
    sid: &str,
    input: UnboundedReceiver<Vec<u8>>,
) -> (u64, UnboundedReceiver<Vec<u8>>) {
    let n = shard.next_token.get();
    shard.next_token.set(n + 1);
    let (live_tx, live_rx) = mpsc::unbounded();
    let _ = live_tx.unbounded_send(tag_event(&format!("{n}-0"), b""));
    let k = key(sid, n);
    shard.stream_logs.borrow_mut().insert(
        k.clone(),
        LocalStreamLog {
            live: Some(live_tx),
            ..Default::default()
        },
    );
    monoio::spawn(relay(shard.clone(), k, n, input));
    (n, live_rx)
}

async fn relay(shard: Rc<LocalShard>, k: String, n: u64, mut input: UnboundedReceiver<Vec<u8>>) {
    let mut seq = 0u64;
    while let Some(msg) = poll_fn(|cx| Pin::new(&mut input).poll_next(cx)).await {
        seq += 1;
        let mut logs = shard.stream_logs.borrow_mut();
        let Some(log) = logs.get_mut(&k) else {
            continue;
        };
        if let Some(live) = &log.live {
            if live
                .unbounded_send(tag_event(&format!("{n}-{seq}"), &msg))
                .is_err()
            {
                log.live = None;
            }
        }
        log.events.push_back((seq, msg));
        if log.events.len() > LOG_CAP {
            log.events.pop_front();
        }
    }
    if let Some(log) = shard.stream_logs.borrow_mut().get_mut(&k) {
        log.done = true;
        log.live = None; // ends the attached response
    }
    monoio::time::sleep(KEEP_DONE).await;
    shard.stream_logs.borrow_mut().remove(&k);
}

/// Is stream `n` of `sid` attached to a live response?
pub fn attached(shard: &Rc<LocalShard>, sid: &str, n: u64) -> bool {
    shard
        .stream_logs
        .borrow()
        .get(&key(sid, n))
        .is_some_and(LocalStreamLog::attached)
}

/// Attaches a new response to stream `n` of `sid`, replaying what followed `after`
/// (`u64::MAX`: a take-over, nothing replayed). The response attached before, if any, ends.
/// `None` when the stream is unknown (never existed, or expired).
pub fn resume(
    shard: &Rc<LocalShard>,
    sid: &str,
    n: u64,
    after: u64,
) -> Option<UnboundedReceiver<Vec<u8>>> {
    let mut logs = shard.stream_logs.borrow_mut();
    let log = logs.get_mut(&key(sid, n))?;
    let (tx, rx) = mpsc::unbounded();
    if after == u64::MAX {
        // Taking the stream over (a new GET): nothing is replayed, but the response is primed
        // with the stream's latest id so its client can resume from there.
        let last = log.events.back().map_or(0, |(seq, _)| *seq);
        let _ = tx.unbounded_send(tag_event(&format!("{n}-{last}"), b""));
    }
    for (seq, msg) in log.events.iter().filter(|(s, _)| *s > after) {
        let _ = tx.unbounded_send(tag_event(&format!("{n}-{seq}"), msg));
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
pub fn forget_session(shard: &Rc<LocalShard>, sid: &str) {
    let prefix = format!("{sid}/");
    shard
        .stream_logs
        .borrow_mut()
        .retain(|k, _| !k.starts_with(&prefix));
}

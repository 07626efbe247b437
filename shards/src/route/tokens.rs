//! Token accounting's shard side: the answers a model will read (lists, forwarded calls, the
//! search meta tools), handed to the binary's tokenizer thread.
//!
//! Tokenizing costs tens of microseconds per kilobyte and the tokenizer tables take tens of
//! megabytes, so a shard never tokenizes. When `[metrics] tokens` names an encoding, a
//! shard copies each served answer into a [`TokenJob`] and puts it on a bounded lock-free
//! channel with `try_send`; the thread (`src/tokens.rs`) counts the tokens of the JSON-RPC
//! `result` and keeps the totals that `/metrics` exports. A full channel drops the job and
//! counts the drop: a core never waits for a metric. With accounting off (the default) the
//! sink is empty and a tap is one branch.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::http::response::Reply;

/// Jobs the channel holds before new ones are dropped.
pub const TOKEN_CHANNEL_CAPACITY: usize = 4096;

/// One answer to count.
#[derive(Debug)]
pub struct TokenJob {
    /// Method label (`tools/list`, `tools/call`, ...).
    pub method: &'static str,
    /// Backend server id for forwarded calls; empty for what the gateway answers itself.
    pub server: Box<str>,
    /// The backend's tool or prompt name, or the meta tool's; empty for lists and reads.
    pub name: Box<str>,
    /// The whole JSON-RPC response as sent.
    pub body: Vec<u8>,
}

/// Where shards send answers to count: every shard holds a clone; empty when off.
#[derive(Debug, Clone)]
pub struct SharedTokenSink {
    tx: Option<Sender<TokenJob>>,
    dropped: Arc<AtomicU64>,
}

impl SharedTokenSink {
    /// Accounting off.
    pub fn disabled() -> Self {
        SharedTokenSink {
            tx: None,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A sink and the tokenizer thread's end, holding up to `capacity` jobs.
    pub fn bounded(capacity: usize) -> (Self, Receiver<TokenJob>) {
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        let sink = SharedTokenSink {
            tx: Some(tx),
            dropped: Arc::new(AtomicU64::new(0)),
        };
        (sink, rx)
    }

    /// True when answers are counted.
    pub fn is_enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Hands a copy of `body` to the tokenizer; never blocks.
    pub fn served(&self, method: &'static str, server: &str, name: &str, body: &[u8]) {
        let Some(tx) = &self.tx else {
            return;
        };
        let job = TokenJob {
            method,
            server: server.into(),
            name: name.into(),
            body: body.to_vec(),
        };
        match tx.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// A sink that sends nothing but shares this one's drop count (for the metrics
    /// renderer: holding it does not keep the tokenizer thread alive).
    pub fn watcher(&self) -> Self {
        SharedTokenSink {
            tx: None,
            dropped: self.dropped.clone(),
        }
    }

    /// Jobs dropped so far (all clones together).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Taps a successful reply the gateway built itself: a list (`method` one of the four list
/// methods) or a search meta tool (`meta` its name). Forwarded calls are tapped where their
/// final response is built (`Finisher::reply`), which also covers streamed answers.
pub fn tap_gateway_reply(sink: &SharedTokenSink, method: &str, meta: Option<&str>, reply: &Reply) {
    if !sink.is_enabled() || reply.stream.is_some() {
        return;
    }
    let body = reply.body_bytes();
    let label = crate::stats::method_label(method);
    match (label, meta) {
        ("tools/list" | "prompts/list" | "resources/list" | "resources/templates/list", _) => {
            sink.served(label, "", "", &body)
        }
        // `call_tool` is counted where it is forwarded, under the tool it called.
        ("tools/call", Some(m)) if m != "call_tool" => sink.served(label, "", m, &body),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_copies_nothing_and_counts_no_drop() {
        let s = SharedTokenSink::disabled();
        s.served("tools/list", "", "", b"{}");
        assert!(!s.is_enabled());
        assert_eq!(s.dropped(), 0);
    }

    #[test]
    fn a_full_channel_drops_and_counts() {
        let (s, rx) = SharedTokenSink::bounded(1);
        s.served("tools/call", "demo", "echo", b"1");
        s.served("tools/call", "demo", "echo", b"2");
        assert_eq!(s.dropped(), 1);
        let job = rx.try_recv().unwrap();
        assert_eq!(
            (job.method, &*job.server, &*job.name),
            ("tools/call", "demo", "echo")
        );
        assert_eq!(job.body, b"1");
    }

    #[test]
    fn gateway_answers_tapped_are_lists_and_search_meta_tools_only() {
        let (s, rx) = SharedTokenSink::bounded(16);
        let ok = |b: &[u8]| Reply::json(200, b.to_vec());
        tap_gateway_reply(&s, "tools/list", None, &ok(b"L"));
        tap_gateway_reply(&s, "tools/call", Some("search_tools"), &ok(b"S"));
        tap_gateway_reply(&s, "tools/call", Some("call_tool"), &ok(b"C"));
        tap_gateway_reply(&s, "ping", None, &ok(b"P"));
        // A streamed reply is tapped where its response is finished, not here.
        let (_tx, rx_stream) = futures_channel::mpsc::unbounded::<Vec<u8>>();
        tap_gateway_reply(&s, "prompts/list", None, &Reply::sse(rx_stream));
        let got: Vec<_> = rx.try_iter().map(|j| (j.method, j.name, j.body)).collect();
        assert_eq!(
            got,
            vec![
                ("tools/list", "".into(), b"L".to_vec()),
                ("tools/call", "search_tools".into(), b"S".to_vec())
            ]
        );
    }
}

//! Token accounting's counting side: the `o1m-tokens` thread tokenizes what shards served
//! (`only1mcp_shards::route::tokens`) and keeps the totals `/metrics` exports.
//!
//! What is counted is the JSON-RPC `result` of each answer, as the client received it: the
//! text a client hands its model (a list's items, a tool's content). Error responses are
//! not counted. Lists repeat (every session lists the same catalog), so the count of each
//! distinct `result` text is remembered (by a 64-bit hash, up to [`MEMO_CAP`] of them) and
//! a repeated list costs a hash, not a tokenization.
//!
//! The totals sit behind a mutex shared with the metrics renderer; both are control-side
//! threads, and the data plane never touches it.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use anyhow::Context;
use crossbeam_channel::Receiver;
use only1mcp_shards::config::TokenEncoding;
use only1mcp_shards::route::tokens::{SharedTokenSink, TokenJob, TOKEN_CHANNEL_CAPACITY};
use tiktoken_rs::CoreBPE;

/// Distinct result texts whose counts are remembered.
const MEMO_CAP: usize = 4096;

/// One series: answers counted and their tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenCount {
    /// Answers counted.
    pub responses: u64,
    /// Their tokens.
    pub tokens: u64,
}

/// Totals by (method, server, name), what `/metrics` shows.
#[derive(Debug, Default)]
pub struct TokenTotals {
    /// The encoding (`encoding` label).
    pub encoding: &'static str,
    /// Per series.
    pub series: HashMap<(&'static str, Box<str>, Box<str>), TokenCount>,
}

/// Totals shared by the tokenizer thread and the metrics renderer.
pub type SharedTokenTotals = Arc<Mutex<TokenTotals>>;

/// The running accounting: what the metrics renderer reads.
#[derive(Clone)]
pub struct TokenAccounting {
    /// The totals.
    pub totals: SharedTokenTotals,
    /// Shares the shards' drop count.
    pub dropped: SharedTokenSink,
}

/// What [`start`] returns besides the sink: the accounting and its thread, when on.
pub type Started = Option<(TokenAccounting, JoinHandle<()>)>;

/// Starts the tokenizer thread for `encoding`; `None` when accounting is off. The thread
/// ends when every shard's sink is dropped.
pub fn start(encoding: TokenEncoding) -> anyhow::Result<(SharedTokenSink, Started)> {
    let bpe = match encoding {
        TokenEncoding::Off => return Ok((SharedTokenSink::disabled(), None)),
        TokenEncoding::O200k => tiktoken_rs::o200k_base(),
        TokenEncoding::Cl100k => tiktoken_rs::cl100k_base(),
    }
    .map_err(|e| anyhow::anyhow!("{e}"))
    .context("cannot load the tokenizer for [metrics] tokens")?;
    let (sink, rx) = SharedTokenSink::bounded(TOKEN_CHANNEL_CAPACITY);
    let totals: SharedTokenTotals = Arc::new(Mutex::new(TokenTotals {
        encoding: encoding.as_str(),
        series: HashMap::new(),
    }));
    let t = totals.clone();
    let handle = std::thread::Builder::new()
        .name("o1m-tokens".into())
        .spawn(move || count_loop(&bpe, &rx, &t))
        .context("cannot start the tokenizer thread")?;
    let acc = TokenAccounting {
        totals,
        dropped: sink.watcher(),
    };
    Ok((sink, Some((acc, handle))))
}

fn count_loop(bpe: &CoreBPE, rx: &Receiver<TokenJob>, totals: &SharedTokenTotals) {
    let mut counter = Counter::new(bpe);
    while let Ok(job) = rx.recv() {
        let Some(tokens) = counter.count(&job.body) else {
            continue;
        };
        let mut t = totals.lock().unwrap_or_else(|p| p.into_inner());
        let c = t
            .series
            .entry((job.method, job.server, job.name))
            .or_default();
        c.responses += 1;
        c.tokens += tokens;
    }
}

/// Counts the tokens of responses' `result`, remembering repeated texts.
pub struct Counter<'a> {
    bpe: &'a CoreBPE,
    memo: HashMap<u64, u64>,
    hasher: std::collections::hash_map::RandomState,
}

impl<'a> Counter<'a> {
    /// A counter with an empty memo.
    pub fn new(bpe: &'a CoreBPE) -> Self {
        Counter {
            bpe,
            memo: HashMap::new(),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    /// Tokens of `response`'s `result`; `None` for an error response or one that is not
    /// JSON-RPC.
    pub fn count(&mut self, response: &[u8]) -> Option<u64> {
        let result = sonic_rs::get(response, ["result"]).ok()?;
        let text = result.as_raw_str();
        let key = self.hasher.hash_one(text);
        if let Some(n) = self.memo.get(&key) {
            return Some(*n);
        }
        let n = self.bpe.encode_ordinary(text).len() as u64;
        if self.memo.len() >= MEMO_CAP {
            self.memo.clear();
        }
        self.memo.insert(key, n);
        Some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_result_only_and_skips_errors() {
        let bpe = tiktoken_rs::o200k_base().unwrap();
        let mut c = Counter::new(&bpe);
        let result = r#"{"content":[{"type":"text","text":"hello world"}]}"#;
        let want = bpe.encode_ordinary(result).len() as u64;
        let resp = format!(r#"{{"jsonrpc":"2.0","id":7,"result":{result}}}"#);
        assert_eq!(c.count(resp.as_bytes()), Some(want));
        // The same text again comes from the memo, with the same count.
        assert_eq!(c.count(resp.as_bytes()), Some(want));
        assert_eq!(c.memo.len(), 1);
        let err = br#"{"jsonrpc":"2.0","id":7,"error":{"code":-32602,"message":"no"}}"#;
        assert_eq!(c.count(err), None);
        assert_eq!(c.count(b"not json"), None);
    }

    #[test]
    fn the_thread_sums_per_series_and_stops_with_the_sinks() {
        let (sink, started) = start(TokenEncoding::Cl100k).unwrap();
        let (acc, handle) = started.unwrap();
        let body = br#"{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}"#;
        sink.served("tools/list", "", "", body);
        sink.served("tools/list", "", "", body);
        sink.served(
            "tools/call",
            "demo",
            "echo",
            br#"{"jsonrpc":"2.0","id":2,"error":{}}"#,
        );
        drop(sink);
        handle.join().unwrap();
        let t = acc.totals.lock().unwrap();
        assert_eq!(t.encoding, "cl100k");
        let bpe = tiktoken_rs::cl100k_base().unwrap();
        let one = bpe.encode_ordinary(r#"{"tools":[]}"#).len() as u64;
        let key = ("tools/list", "".into(), "".into());
        let got = t.series.get(&key).copied().unwrap();
        assert_eq!(
            got,
            TokenCount {
                responses: 2,
                tokens: 2 * one
            }
        );
        assert_eq!(t.series.len(), 1, "an error answer is not counted");
    }
}

//! The span exporter thread (`o1m-otlp`): the one place that talks to the OTLP endpoint, so
//! that no shard ever waits on it.
//!
//! Shards put finished spans on a bounded channel (`only1mcp_shards::trace`); this thread
//! polls it every [`POLL`] (it never parks on it: a parked receiver costs every sender a
//! wake-up call) and takes batches of up to [`MAX_BATCH`] spans or whatever arrived within
//! [`FLUSH_EVERY`] of a batch's first span, encodes each batch as OTLP protobuf
//! ([`otlp`]) and posts it to `/v1/traces` over plain HTTP/1.1 with [`POST_TIMEOUT`]. A
//! batch that fails for a reason worth retrying (no connection, a timeout, 429, 502, 503,
//! 504) is sent again up to [`RETRIES`] times with a short backoff, and only while the
//! endpoint was last seen up: while it is down, each batch gets one try, so a dead endpoint
//! costs one connect per second and the queue, not this thread, absorbs the rest. Spans
//! that could not be delivered are counted (`only1mcp_trace_spans_dropped_total{reason}`);
//! each change of the endpoint's state (up, down) is logged once, never once per span.
//!
//! `[telemetry]` is read at startup only: a reload that changes it is refused with a message
//! naming the keys (`control/reload.rs`), like `[audit]`.

pub mod otlp;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use crossbeam_channel::{Receiver, TryRecvError};
use only1mcp_shards::config::TelemetrySection;
use only1mcp_shards::trace::{SharedTraceSink, SpanRecord, TraceCounters, SPAN_QUEUE};

/// Most spans posted in one request.
pub const MAX_BATCH: usize = 512;
/// Longest a span waits for its batch to fill (give or take one [`POLL`]).
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// How often the exporter looks at the queue.
pub const POLL: Duration = Duration::from_millis(50);
/// Connect and whole-request timeout of one post.
pub const POST_TIMEOUT: Duration = Duration::from_secs(2);
/// Extra tries of a batch while the endpoint is up.
pub const RETRIES: u32 = 2;
/// Pause before the first retry (doubled before the second).
pub const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Starts the exporter when `[telemetry] otlp_endpoint` is set and returns the sink the
/// shards send to; a disabled sink otherwise. The thread ends when every shard has dropped
/// its sink.
pub fn start(cfg: &TelemetrySection) -> anyhow::Result<SharedTraceSink> {
    let Some(endpoint) = &cfg.otlp_endpoint else {
        return Ok(SharedTraceSink::disabled());
    };
    let url = traces_url(endpoint)?;
    let (sink, rx) = SharedTraceSink::bounded(SPAN_QUEUE, cfg.sample_ratio);
    let exporter = Exporter::new(url, cfg.service_name.clone(), rx, sink.counters.clone());
    std::thread::Builder::new()
        .name("o1m-otlp".into())
        .spawn(move || {
            crate::control::exit_on_panic("the OTLP exporter thread", move || exporter.run())
        })
        .context("cannot start the OTLP exporter thread")?;
    tracing::info!(endpoint = %exporter_label(endpoint), ratio = cfg.sample_ratio, "exporting traces (OTLP/HTTP)");
    Ok(sink)
}

/// The URL spans are posted to: `endpoint` + `/v1/traces` when it names no path, else
/// `endpoint` as written (a full traces URL).
pub fn traces_url(endpoint: &str) -> anyhow::Result<String> {
    let u = only1mcp_shards::config::parse_http_url(endpoint)
        .map_err(|why| anyhow::anyhow!("telemetry.otlp_endpoint: {why}"))?;
    let path = if u.path == "/" { "/v1/traces" } else { &u.path };
    Ok(format!("http://{}{path}", u.authority()))
}

/// The endpoint as logged: scheme, host and port (a path may carry a token).
fn exporter_label(endpoint: &str) -> String {
    only1mcp_shards::config::parse_http_url(endpoint)
        .map(|u| format!("http://{}", u.authority()))
        .unwrap_or_default()
}

/// Why a post failed, and whether trying again may help.
struct Failure {
    reason: String,
    retry: bool,
}

/// The exporter's state: where to post, what it last saw.
pub struct Exporter {
    url: String,
    service: String,
    rx: Receiver<SpanRecord>,
    counters: Arc<TraceCounters>,
    agent: ureq::Agent,
    /// `None` before the first post; then whether the last one got through.
    up: Option<bool>,
}

impl Exporter {
    /// An exporter posting to `url` (a full traces URL) the spans `rx` delivers.
    pub fn new(
        url: String,
        service: String,
        rx: Receiver<SpanRecord>,
        counters: Arc<TraceCounters>,
    ) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(POST_TIMEOUT)
            .timeout(POST_TIMEOUT)
            .build();
        Exporter {
            url,
            service,
            rx,
            counters,
            agent,
            up: None,
        }
    }

    /// Runs until every sender is gone (the shards stopped), then sends what is left.
    ///
    /// The queue is polled every [`POLL`], never waited on: a receiver parked on the channel
    /// would make every shard's `try_send` wake it (a futex call per span on the shard).
    /// A poll that finds a full batch's worth polls again at once.
    pub fn run(mut self) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut buf = Vec::new();
        let mut first_at: Option<Instant> = None;
        loop {
            let mut gone = false;
            while batch.len() < MAX_BATCH {
                match self.rx.try_recv() {
                    Ok(s) => {
                        first_at.get_or_insert_with(Instant::now);
                        batch.push(s);
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        gone = true;
                        break;
                    }
                }
            }
            let due = first_at.is_some_and(|t| t.elapsed() >= FLUSH_EVERY);
            if batch.len() >= MAX_BATCH || (!batch.is_empty() && (due || gone)) {
                self.send(&batch, &mut buf);
                batch.clear();
                first_at = None;
                continue;
            }
            if gone {
                return;
            }
            std::thread::sleep(POLL);
        }
    }

    /// Posts one batch (with retries while the endpoint is up) and counts the outcome.
    fn send(&mut self, batch: &[SpanRecord], buf: &mut Vec<u8>) {
        otlp::encode(&self.service, batch, buf);
        let tries = if self.up == Some(false) {
            1
        } else {
            1 + RETRIES
        };
        let mut pause = RETRY_PAUSE;
        let mut result = Ok(());
        for attempt in 0..tries {
            if attempt > 0 {
                std::thread::sleep(pause);
                pause *= 2;
            }
            result = self.post(buf);
            match &result {
                Ok(()) => break,
                Err(f) if !f.retry => break,
                Err(_) => {}
            }
        }
        let n = batch.len() as u64;
        match result {
            Ok(()) => {
                self.counters.exported.fetch_add(n, Ordering::Relaxed);
                if self.up != Some(true) {
                    tracing::info!(url = %exporter_label(&self.url), "OTLP endpoint accepts spans");
                }
                self.up = Some(true);
            }
            Err(f) => {
                self.counters.export_failed.fetch_add(n, Ordering::Relaxed);
                if self.up != Some(false) {
                    tracing::warn!(url = %exporter_label(&self.url), reason = %f.reason, "OTLP endpoint is not taking spans; they are dropped and counted (only1mcp_trace_spans_dropped_total) until it is back");
                }
                self.up = Some(false);
            }
        }
    }

    fn post(&self, body: &[u8]) -> Result<(), Failure> {
        let sent = self
            .agent
            .post(&self.url)
            .set("Content-Type", "application/x-protobuf")
            .send_bytes(body);
        match sent {
            Ok(_) => Ok(()),
            Err(ureq::Error::Status(code, _)) => Err(Failure {
                reason: format!("HTTP {code}"),
                retry: matches!(code, 429 | 502 | 503 | 504),
            }),
            Err(ureq::Error::Transport(t)) => Err(Failure {
                reason: t.kind().to_string(),
                retry: true,
            }),
        }
    }
}

#[cfg(test)]
mod tests;

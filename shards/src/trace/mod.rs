//! OpenTelemetry traces, the shard side: W3C context in and out, sampling, and finished
//! span records handed to the exporter thread.
//!
//! A shard never encodes or sends a span. When a request ends it fills a [`SpanRecord`] and
//! hands it to [`LocalTracer::export`], which puts it on a bounded lock-free channel with
//! `try_send`: it never blocks; a full channel drops the span and counts it
//! ([`TraceCounters`]). The binary's exporter thread (`src/telemetry/`) batches, encodes OTLP
//! protobuf and posts it. With no `[telemetry] otlp_endpoint` the tracer is disabled: a
//! request pays one `bool` test where its span would open (and `None` checks after); no id,
//! no clock read, no allocation.
//!
//! # Key Components
//! - [`context`]: `traceparent` / `tracestate` parsing and writing (W3C rules).
//! - [`sample`]: `ParentBased(TraceIdRatioBased)`, the per-shard id generator, the clock anchor.
//! - [`inject`]: the splice that puts the context in a forwarded request's `params._meta`.

pub mod context;
pub mod inject;
pub mod sample;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, TrySendError};

pub use context::SpanContext;

/// Span records the channel holds before new ones are dropped.
pub const SPAN_QUEUE: usize = 8192;

/// OTLP span kinds the gateway emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    /// A client request served by the gateway.
    Server = 2,
    /// A call the gateway made to a backend.
    Client = 3,
}

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
}

/// One finished span, as the exporter encodes it.
#[derive(Debug, Clone)]
pub struct SpanRecord {
    /// Its trace.
    pub trace_id: [u8; 16],
    /// Its own id.
    pub span_id: [u8; 8],
    /// The parent span (remote for a server span, the server span for a client span).
    pub parent: Option<[u8; 8]>,
    /// The W3C `tracestate` it was started with.
    pub trace_state: Option<Arc<str>>,
    /// `{mcp.method.name} {target}`.
    pub name: String,
    /// Server or client.
    pub kind: SpanKind,
    /// Start, Unix nanoseconds.
    pub start_ns: u64,
    /// End, Unix nanoseconds.
    pub end_ns: u64,
    /// Attributes, in the order they were set.
    pub attrs: Vec<(&'static str, Value)>,
    /// `Some(message)`: status ERROR with that description.
    pub error: Option<String>,
    /// A linked context (the HTTP `traceparent` when `params._meta` gave the parent).
    pub link: Option<SpanContext>,
}

/// Spans dropped and exported, shared by every shard and the exporter thread.
#[derive(Debug, Default)]
pub struct TraceCounters {
    /// Dropped because the queue to the exporter was full.
    pub queue_full: AtomicU64,
    /// Dropped because the endpoint refused them or could not be reached (after retries).
    pub export_failed: AtomicU64,
    /// Accepted by the endpoint.
    pub exported: AtomicU64,
}

/// Where shards send spans: every shard holds a clone; disabled without an endpoint.
#[derive(Debug, Clone)]
pub struct SharedTraceSink {
    tx: Option<Sender<SpanRecord>>,
    /// Drops and exports so far.
    pub counters: Arc<TraceCounters>,
    /// Rejection threshold of new traces ([`sample::threshold`]).
    threshold: u64,
}

impl SharedTraceSink {
    /// A sink that traces nothing.
    pub fn disabled() -> Self {
        SharedTraceSink {
            tx: None,
            counters: Arc::default(),
            threshold: 0,
        }
    }

    /// A sink sampling new traces at `ratio`, and the exporter's end, holding up to
    /// `capacity` spans.
    pub fn bounded(capacity: usize, ratio: f64) -> (Self, Receiver<SpanRecord>) {
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        let sink = SharedTraceSink {
            tx: Some(tx),
            counters: Arc::default(),
            threshold: sample::threshold(ratio),
        };
        (sink, rx)
    }

    /// True when spans are exported.
    pub fn is_enabled(&self) -> bool {
        self.tx.is_some()
    }
}

/// What the front read of a request's HTTP trace headers (only when tracing is on).
#[derive(Debug, Clone, Default)]
pub struct Incoming {
    /// A valid `traceparent` header (a malformed one, or two of them, read as none).
    pub traceparent: Option<SpanContext>,
    /// A `tracestate` header worth passing on.
    pub tracestate: Option<Arc<str>>,
    /// The request came through the stdio front (`network.transport` = `pipe`).
    pub stdio: bool,
}

impl Incoming {
    /// From the raw header values.
    pub fn from_headers(traceparent: Option<&[u8]>, tracestate: Option<&[u8]>) -> Self {
        Incoming {
            traceparent: traceparent.and_then(SpanContext::parse),
            tracestate: tracestate
                .filter(|v| context::tracestate_ok(v))
                .and_then(|v| std::str::from_utf8(v.trim_ascii()).ok())
                .map(Arc::from),
            stdio: false,
        }
    }
}

/// The context a backend call carries (HTTP backends get it as headers; every backend gets
/// it in `params._meta` too, spliced into the body).
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The call's `traceparent` (the backend call's own span as parent).
    pub traceparent: [u8; context::TRACEPARENT_LEN],
    /// The `tracestate` passed on unchanged.
    pub tracestate: Option<Arc<str>>,
}

/// A traced request's server span while it runs: its context (the trace it joined or
/// began, its own span id, whether it is recorded) and what its backend calls pass on.
#[derive(Debug, Clone)]
pub struct Active {
    /// The server span's own context.
    pub ctx: SpanContext,
    /// The remote parent's span id, when the request carried a valid context.
    pub parent: Option<[u8; 8]>,
    /// The `tracestate` passed on unchanged.
    pub tracestate: Option<Arc<str>>,
    /// The HTTP header's context when `params._meta` gave the parent and they differ.
    pub link: Option<SpanContext>,
    /// When the request arrived.
    pub start: Instant,
}

/// A shard's tracer: the sink and the shard's id generator.
#[derive(Debug)]
pub struct LocalTracer {
    sink: SharedTraceSink,
    ids: sample::LocalIds,
}

impl LocalTracer {
    /// The tracer of shard `shard`.
    pub fn new(sink: SharedTraceSink, shard: usize) -> Self {
        if sink.is_enabled() {
            sample::init_clock();
        }
        LocalTracer {
            sink,
            ids: sample::LocalIds::new(shard),
        }
    }

    /// Tracing is on (the one test a request pays when it is off).
    #[inline]
    pub fn is_enabled(&self) -> bool {
        self.sink.is_enabled()
    }

    /// Starts a server span at `start` under `parent` (the request's remote context, if
    /// valid): its trace and sampled flag are the parent's, else a new trace sampled by ratio.
    pub fn start(
        &self,
        parent: Option<SpanContext>,
        tracestate: Option<Arc<str>>,
        link: Option<SpanContext>,
        start: Instant,
    ) -> Active {
        let span_id = self.ids.span_id();
        let ctx = match parent {
            Some(p) => SpanContext {
                trace_id: p.trace_id,
                span_id,
                flags: p.flags & 1,
            },
            None => {
                let trace_id = self.ids.trace_id();
                let sampled = sample::root_sampled(&trace_id, self.sink.threshold);
                SpanContext {
                    trace_id,
                    span_id,
                    flags: u8::from(sampled),
                }
            }
        };
        Active {
            ctx,
            parent: parent.map(|p| p.span_id),
            tracestate: parent.and(tracestate),
            link: link.filter(|l| parent.is_some_and(|p| p != *l)),
            start,
        }
    }

    /// A child context of `of` (a backend call's client span).
    pub fn child(&self, of: &SpanContext) -> SpanContext {
        SpanContext {
            trace_id: of.trace_id,
            span_id: self.ids.span_id(),
            flags: of.flags,
        }
    }

    /// Hands a finished span to the exporter; never blocks. A full queue drops it, counted.
    pub fn export(&self, r: SpanRecord) {
        let Some(tx) = &self.sink.tx else {
            return;
        };
        match tx.try_send(r) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.sink
                    .counters
                    .queue_full
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> SpanRecord {
        SpanRecord {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent: None,
            trace_state: None,
            name: "tools/call echo".into(),
            kind: SpanKind::Server,
            start_ns: 1,
            end_ns: 2,
            attrs: Vec::new(),
            error: None,
            link: None,
        }
    }

    #[test]
    fn disabled_exports_nothing_and_counts_nothing() {
        let t = LocalTracer::new(SharedTraceSink::disabled(), 0);
        assert!(!t.is_enabled());
        t.export(record());
        assert_eq!(t.sink.counters.queue_full.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_full_queue_drops_and_counts_without_blocking() {
        let (sink, rx) = SharedTraceSink::bounded(2, 1.0);
        let t = LocalTracer::new(sink.clone(), 0);
        for _ in 0..5 {
            t.export(record());
        }
        assert_eq!(rx.len(), 2);
        assert_eq!(sink.counters.queue_full.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn a_parent_decides_the_trace_and_the_sampling() {
        let (sink, _rx) = SharedTraceSink::bounded(2, 0.0);
        let t = LocalTracer::new(sink, 0);
        let now = Instant::now();
        let sampled = SpanContext {
            trace_id: [7; 16],
            span_id: [8; 8],
            flags: 1,
        };
        // Ratio 0, but a sampled parent is honoured (ParentBased).
        let a = t.start(Some(sampled), Some("k=v".into()), None, now);
        assert_eq!(a.ctx.trace_id, [7; 16]);
        assert_ne!(a.ctx.span_id, [8; 8]);
        assert_eq!(a.parent, Some([8; 8]));
        assert!(a.ctx.sampled());
        assert_eq!(a.tracestate.as_deref(), Some("k=v"));
        // An unsampled parent is not recorded, whatever the ratio.
        let (sink, _rx) = SharedTraceSink::bounded(2, 1.0);
        let t1 = LocalTracer::new(sink, 1);
        let b = t1.start(
            Some(SpanContext {
                flags: 0,
                ..sampled
            }),
            None,
            None,
            now,
        );
        assert!(!b.ctx.sampled());
        // No parent: a new trace, by ratio (0 here), and no tracestate without a parent.
        let c = t.start(None, Some("k=v".into()), None, now);
        assert_ne!(c.ctx.trace_id, [7; 16]);
        assert!(!c.ctx.sampled());
        assert!(c.parent.is_none() && c.tracestate.is_none());
        let d = t1.start(None, None, None, now);
        assert!(d.ctx.sampled());
        // A child keeps the trace and the flag, with its own id.
        let ch = t.child(&a.ctx);
        assert_eq!((ch.trace_id, ch.flags), (a.ctx.trace_id, a.ctx.flags));
        assert_ne!(ch.span_id, a.ctx.span_id);
    }

    #[test]
    fn incoming_headers_are_checked() {
        let i = Incoming::from_headers(
            Some(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            Some(b" a=b "),
        );
        assert!(i.traceparent.is_some());
        assert_eq!(i.tracestate.as_deref(), Some("a=b"));
        let i = Incoming::from_headers(Some(b"00-zz"), Some(b"\x01"));
        assert!(i.traceparent.is_none() && i.tracestate.is_none());
    }
}

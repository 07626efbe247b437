//! The `/metrics` families of the span exporter (`[telemetry]`, `src/telemetry/`): spans
//! exported, and spans dropped by reason. Shown only when tracing is on.

use std::sync::atomic::Ordering;

use only1mcp_shards::trace::TraceCounters;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use prometheus_client::metrics::counter::ConstCounter;

use super::prom::{counter, single};

/// The exporter's counters, read once per scrape.
#[derive(Debug, Clone)]
pub struct TraceFigures {
    exported: u64,
    queue_full: u64,
    export_failed: u64,
}

impl TraceFigures {
    /// Reads the counters.
    pub fn of(t: &TraceCounters) -> TraceFigures {
        TraceFigures {
            exported: t.exported.load(Ordering::Relaxed),
            queue_full: t.queue_full.load(Ordering::Relaxed),
            export_failed: t.export_failed.load(Ordering::Relaxed),
        }
    }
}

impl Collector for TraceFigures {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        single(
            &mut enc,
            "trace_spans_exported",
            "Spans the OTLP endpoint accepted.",
            &ConstCounter::new(self.exported),
        )?;
        counter(
            &mut enc,
            "trace_spans_dropped",
            "Spans not delivered, by reason: queue_full (the exporter fell behind; shards never wait for it), export_failed (the endpoint was down or refused them, after bounded retries).",
            [
                (vec![("reason", "queue_full".to_string())], self.queue_full),
                (vec![("reason", "export_failed".to_string())], self.export_failed),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;

    #[test]
    fn both_families_with_their_reasons() {
        let t = TraceCounters::default();
        t.exported.store(7, Ordering::Relaxed);
        t.queue_full.store(2, Ordering::Relaxed);
        t.export_failed.store(5, Ordering::Relaxed);
        let mut r = Registry::with_prefix("only1mcp");
        r.register_collector(Box::new(TraceFigures::of(&t)));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &r).unwrap();
        assert!(
            out.contains("only1mcp_trace_spans_exported_total 7"),
            "{out}"
        );
        assert!(
            out.contains("only1mcp_trace_spans_dropped_total{reason=\"queue_full\"} 2"),
            "{out}"
        );
        assert!(
            out.contains("only1mcp_trace_spans_dropped_total{reason=\"export_failed\"} 5"),
            "{out}"
        );
    }
}

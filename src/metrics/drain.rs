//! The readiness families of `/metrics`: whether this node takes new sessions, its drain
//! state, and the `initialize` requests that still arrived while it was draining or stopping.
//!
//! A collector of its own beside the main one in [`super::prom`]: the state is read from
//! [`SharedReadiness`] when the text is rendered, the count is summed from the shards'
//! reports.

use only1mcp_shards::readiness::Readiness;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::prom::{gauge, single};

/// What one scrape shows of the node's readiness.
#[derive(Debug, Clone, Copy)]
pub struct DrainFigures {
    /// The state when the text was rendered.
    pub state: Readiness,
    /// `initialize` requests that arrived while draining or stopping, summed over shards.
    pub initialize_while_draining: u64,
}

impl Collector for DrainFigures {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        single(
            &mut enc,
            "ready",
            "1 while the node takes new sessions (GET /ready answers 200), 0 while starting, draining or stopping.",
            &ConstGauge::new(i64::from(self.state.accepting())),
        )?;
        gauge(
            &mut enc,
            "drain_state",
            "The node's readiness: 1 for the state it is in (starting, ready, draining, stopping), 0 for the others.",
            Readiness::ALL.iter().map(|s| {
                (
                    vec![("state", s.as_str().to_string())],
                    i64::from(*s == self.state),
                )
            }),
        )?;
        single(
            &mut enc,
            "initialize_while_draining",
            "initialize requests that arrived while the node was draining or stopping (served all the same): a balancer still sending new sessions here.",
            &ConstCounter::new(self.initialize_while_draining),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;

    fn text(state: Readiness, n: u64) -> String {
        let mut registry = Registry::with_prefix("only1mcp");
        registry.register_collector(Box::new(DrainFigures {
            state,
            initialize_while_draining: n,
        }));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        out
    }

    #[test]
    fn the_state_is_one_hot_and_ready_follows_it() {
        let t = text(Readiness::Draining, 3);
        assert!(t.contains("only1mcp_ready 0\n"), "{t}");
        assert!(
            t.contains("only1mcp_drain_state{state=\"draining\"} 1\n"),
            "{t}"
        );
        for other in ["starting", "ready", "stopping"] {
            assert!(
                t.contains(&format!("only1mcp_drain_state{{state=\"{other}\"}} 0\n")),
                "{t}"
            );
        }
        assert!(
            t.contains("only1mcp_initialize_while_draining_total 3\n"),
            "{t}"
        );
        let t = text(Readiness::Ready, 0);
        assert!(t.contains("only1mcp_ready 1\n"), "{t}");
        assert!(
            t.contains("only1mcp_drain_state{state=\"ready\"} 1\n"),
            "{t}"
        );
    }
}

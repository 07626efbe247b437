//! The fleet families of `/metrics`: session ids this node refused, by why.
//!
//! A collector of its own beside the main one in [`super::prom`], summed from the shards'
//! reports. (The node id itself is a label of `only1mcp_build_info`.)

use only1mcp_shards::cluster::session_id::Verdict;
use only1mcp_shards::stats::report::ShardStats;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use super::prom::counter;

/// Session ids refused with 404, by [`Verdict::index`], summed over shards.
#[derive(Debug, Clone, Copy)]
pub struct ClusterFigures {
    refused: [u64; 4],
}

impl ClusterFigures {
    /// Sums the shards' counters.
    pub fn of(shards: &[&ShardStats]) -> ClusterFigures {
        let mut refused = [0; 4];
        for s in shards {
            for (a, n) in refused.iter_mut().zip(s.session_ids_refused) {
                *a += n;
            }
        }
        ClusterFigures { refused }
    }
}

impl Collector for ClusterFigures {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        counter(
            &mut enc,
            "session_ids_refused",
            "Requests answered 404 for a session id this node does not hold, by why: another node's (foreign), not signed by any cluster key (forged), not an id this gateway mints (malformed), or this node's but ended, expired or from before a restart (unknown).",
            Verdict::ALL
                .iter()
                .map(|v| (vec![("reason", v.label().to_string())], self.refused[v.index()])),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;

    #[test]
    fn refused_ids_are_summed_over_shards_by_reason() {
        let mut a = ShardStats::default();
        a.session_ids_refused[Verdict::Foreign.index()] = 2;
        let mut b = ShardStats::default();
        b.session_ids_refused[Verdict::Foreign.index()] = 3;
        b.session_ids_refused[Verdict::Forged.index()] = 1;
        let mut registry = Registry::with_prefix("only1mcp");
        registry.register_collector(Box::new(ClusterFigures::of(&[&a, &b])));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        for (reason, n) in [
            ("foreign", 5),
            ("forged", 1),
            ("malformed", 0),
            ("unknown", 0),
        ] {
            let line = format!("only1mcp_session_ids_refused_total{{reason=\"{reason}\"}} {n}");
            assert!(out.contains(&line), "{line} not in\n{out}");
        }
    }
}

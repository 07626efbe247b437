//! The `/metrics` family of requests waiting on a client's input, per shard and kind.
//!
//! A collector of its own beside the main one in [`super::prom`]. The three tables it counts
//! empty themselves as calls end (answered, timed out, cancelled); a figure that only grows
//! points at a leak.

use only1mcp_shards::stats::report::ShardStats;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use super::prom::gauge;

/// The `kind` label of each slot of `ShardStats::client_input`.
const KINDS: [&str; 3] = ["relayed", "bridged", "parked"];

/// (shard, waiting by kind) of every shard.
#[derive(Debug, Clone)]
pub struct InputFigures {
    shards: Vec<(usize, [u64; 3])>,
}

impl InputFigures {
    /// Takes each shard's figures.
    pub fn of(shards: &[&ShardStats]) -> InputFigures {
        InputFigures {
            shards: shards.iter().map(|s| (s.shard, s.client_input)).collect(),
        }
    }
}

impl Collector for InputFigures {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        gauge(
            &mut enc,
            "client_input_pending",
            "Requests waiting on a client's input, per shard: server-to-client requests of a 2025 backend relayed to a 2025 client (relayed), input requests of a 2026 backend's input_required relayed to a 2025 client (bridged), and 2025 backend calls parked until a 2026 client retries with the input (parked).",
            self.shards.iter().flat_map(|&(i, n)| {
                KINDS.iter().zip(n).map(move |(kind, v)| {
                    (
                        vec![("shard", i.to_string()), ("kind", kind.to_string())],
                        v as i64,
                    )
                })
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;

    #[test]
    fn each_shard_shows_each_kind() {
        let a = ShardStats {
            shard: 0,
            client_input: [1, 2, 0],
            ..ShardStats::default()
        };
        let b = ShardStats {
            shard: 1,
            client_input: [0, 0, 3],
            ..ShardStats::default()
        };
        let mut registry = Registry::with_prefix("only1mcp");
        registry.register_collector(Box::new(InputFigures::of(&[&a, &b])));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        for (shard, kind, n) in [
            (0, "relayed", 1),
            (0, "bridged", 2),
            (0, "parked", 0),
            (1, "parked", 3),
        ] {
            let line =
                format!("only1mcp_client_input_pending{{shard=\"{shard}\",kind=\"{kind}\"}} {n}");
            assert!(out.contains(&line), "{line} not in\n{out}");
        }
    }
}

//! From the config to what shards need: one [`BackendSpec`] per enabled server, with DNS
//! resolved here (the control thread may block; a shard never resolves a name).

use std::time::Duration;

use only1mcp_shards::balance::breaker::BreakerSpec;
use only1mcp_shards::balance::BalanceKey;
use only1mcp_shards::config::{Config, Transport, SELF_COMMAND};
use only1mcp_shards::http::url::BackendUrl;
use only1mcp_shards::snapshot::BackendSpec;

/// Turns the config's enabled servers into what shards need (DNS resolved here).
pub fn backend_specs(cfg: &Config) -> anyhow::Result<Vec<BackendSpec>> {
    let mut out = Vec::new();
    for s in cfg.servers.iter().filter(|s| s.enabled) {
        let id = s.id.get_ref().clone();
        let transport = *s.transport.get_ref();
        let urls = if transport == Transport::Http {
            s.replica_urls()
                .into_iter()
                .map(BackendUrl::resolve)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| anyhow::anyhow!("server `{id}`: {e}"))?
        } else {
            Vec::new()
        };
        let command = match s.command.as_ref().map(|c| c.get_ref().as_str()) {
            // The running image itself, even after the binary on disk was replaced by an
            // upgrade (its path then reads `... (deleted)`): a reload must not see that as
            // a changed command, and a restarted child must still start.
            Some(SELF_COMMAND) => "/proc/self/exe".to_string(),
            Some(c) => c.to_string(),
            None => String::new(),
        };
        out.push(BackendSpec {
            id,
            transport,
            timeout: Duration::from_millis(s.timeout_ms(&cfg.proxy)),
            urls,
            headers: s
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            command,
            args: s.args.clone(),
            env: s.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            cwd: s.cwd.clone(),
            prefix: s.prefix,
            per_client: s.session == only1mcp_shards::config::SessionMode::PerClient,
            max_inflight: s.max_inflight,
            bridge_replay: s.bridge_replay,
            pool_size: s.pool_size,
            instances: s.instances.max(1) as usize,
            tool_timeouts: s
                .tool_timeouts
                .iter()
                .map(|(k, v)| (k.clone(), Duration::from_millis(*v)))
                .collect(),
            max_timeout: Duration::from_millis(s.max_timeout_ms.unwrap_or(600_000)),
            balance: s.balance,
            weights: s.weights.clone(),
            balance_key: s
                .balance_key
                .as_deref()
                .map(BalanceKey::parse)
                .transpose()
                .map_err(|e| anyhow::anyhow!("server `{}`: {e}", s.id.get_ref()))?
                .unwrap_or_default(),
            curation: only1mcp_shards::catalog::curate::Curation {
                allow: s.tools_allow.clone(),
                deny: s.tools_deny.clone(),
                rename: s
                    .rename
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                descriptions: s
                    .descriptions
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                hide_invalid: s
                    .hide_invalid_schemas
                    .unwrap_or(cfg.proxy.hide_invalid_schemas),
                compaction: s.compaction.unwrap_or(cfg.proxy.compaction),
                description_budget: s.description_budget.unwrap_or(cfg.proxy.description_budget),
            },
            breaker: BreakerSpec {
                failures: s.breaker_failures,
                rate: s.breaker_failure_rate.map(|r| r as f32),
                window: s.breaker_window,
                cooldown: Duration::from_millis(s.breaker_cooldown_ms),
                trials: s.breaker_trials,
            },
            health: only1mcp_shards::snapshot::HealthSpec {
                interval: Duration::from_millis(s.health_interval_ms),
                timeout: Duration::from_millis(s.health_timeout_ms),
                healthy_threshold: s.healthy_threshold.max(1),
                unhealthy_threshold: s.unhealthy_threshold.max(1),
                path: s.health_path.clone(),
                canary: s.health_canary.as_ref().map(|c| {
                    let args = sonic_rs::to_string(&c.arguments).unwrap_or_else(|_| "{}".into());
                    (c.tool.clone(), args)
                }),
            },
        });
    }
    Ok(out)
}

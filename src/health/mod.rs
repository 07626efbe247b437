//! Active health checks of HTTP replicas, on their own control-side thread (it blocks on
//! sockets, which a shard must never do).
//!
//! Each replica is probed every `health_interval_ms` ([`probe`]: an MCP `ping` on the
//! checker's own session, `server/discover` for 2026-only replicas, the event stream for
//! HTTP+SSE ones, or a GET of `health_path`; plus the tool list when it is to rejoin, and
//! the `health_canary` call). `unhealthy_threshold` consecutive failures take the replica
//! out of every shard's rotation; `healthy_threshold` consecutive successes put it back.
//! Only transitions are sent to the shards, through their lock-free mailboxes. A config
//! reload sends the new specs; replicas whose server did not change keep their state (and
//! the checker's session), the others start over as never proven.

mod probe;

use std::time::{Duration, Instant};

use only1mcp_shards::rt::mailbox::SharedMailboxSender;
use only1mcp_shards::shard::ShardMsg;
use only1mcp_shards::snapshot::BackendSpec;

use probe::{probe, ProbeSession};

/// Runs the health checks until the process ends. Returns at once if no server has checks.
pub fn spawn(
    specs: Vec<BackendSpec>,
    shards: Vec<SharedMailboxSender<ShardMsg>>,
    updates: crossbeam_channel::Receiver<Vec<BackendSpec>>,
) -> anyhow::Result<()> {
    std::thread::Builder::new()
        .name("o1m-health".into())
        .stack_size(only1mcp_shards::rt::THREAD_STACK_BYTES)
        .spawn(move || {
            crate::control::exit_on_panic("the health prober", || {
                run(targets_of(specs), shards, updates)
            })
        })?;
    Ok(())
}

/// Every replica of every server with health checks on.
fn targets_of(specs: Vec<BackendSpec>) -> Vec<(BackendSpec, usize)> {
    specs
        .into_iter()
        .filter(|s| !s.health.interval.is_zero() && !s.urls.is_empty())
        .flat_map(|s| (0..s.urls.len()).map(move |i| (s.clone(), i)))
        .collect()
}

fn fresh() -> Target {
    Target {
        healthy: true,
        proven: false,
        successes: 0,
        failures: 0,
        next: Instant::now(),
        session: None,
    }
}

/// What the checker knows of one replica.
struct Target {
    healthy: bool,
    /// Whether a probe ever succeeded (the first one must list tools too).
    proven: bool,
    successes: u32,
    failures: u32,
    next: Instant,
    session: Option<ProbeSession>,
}

fn run(
    mut targets: Vec<(BackendSpec, usize)>,
    shards: Vec<SharedMailboxSender<ShardMsg>>,
    updates: crossbeam_channel::Receiver<Vec<BackendSpec>>,
) {
    let mut state: Vec<Target> = targets.iter().map(|_| fresh()).collect();
    loop {
        let now = Instant::now();
        for (i, (spec, replica)) in targets.iter().enumerate() {
            let st = &mut state[i];
            if now < st.next {
                continue;
            }
            st.next = now + spec.health.interval;
            let full = !st.healthy || !st.proven;
            match probe(spec, *replica, &mut st.session, full) {
                Ok(()) => {
                    st.proven = true;
                    st.successes += 1;
                    st.failures = 0;
                    if !st.healthy && st.successes >= spec.health.healthy_threshold {
                        st.healthy = true;
                        tracing::info!(server = %spec.id, replica, url = %spec.urls[*replica].raw, "replica healthy again: back in rotation");
                        tell(&shards, &spec.id, *replica, true);
                    }
                }
                Err(why) => {
                    st.failures += 1;
                    st.successes = 0;
                    tracing::debug!(server = %spec.id, replica, "health probe failed: {why}");
                    if st.healthy && st.failures >= spec.health.unhealthy_threshold {
                        st.healthy = false;
                        tracing::warn!(server = %spec.id, replica, url = %spec.urls[*replica].raw, "replica unhealthy ({why}): out of rotation");
                        tell(&shards, &spec.id, *replica, false);
                    }
                }
            }
        }
        let next = state
            .iter()
            .map(|s| s.next)
            .min()
            .unwrap_or(now + Duration::from_secs(1));
        let wait = next
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(10));
        match updates.recv_timeout(wait) {
            Ok(specs) => {
                let new = targets_of(specs);
                let mut old: Vec<Option<Target>> = state.into_iter().map(Some).collect();
                state = new
                    .iter()
                    .map(|(spec, i)| {
                        targets
                            .iter()
                            .position(|(s, j)| s == spec && j == i)
                            .and_then(|k| old[k].take())
                            .unwrap_or_else(fresh)
                    })
                    .collect();
                targets = new;
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            // The control thread is gone: the gateway is stopping.
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
        }
    }
}

fn tell(shards: &[SharedMailboxSender<ShardMsg>], server: &str, replica: usize, healthy: bool) {
    for s in shards {
        let _ = s.send(ShardMsg::Health {
            server: server.to_string(),
            replica,
            healthy,
        });
    }
}

#[cfg(test)]
mod tests;

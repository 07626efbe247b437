//! The control thread: startup, the catalog, signals, shutdown.
//!
//! This is the one thread allowed to block. It resolves backend URLs (DNS), binds the shard
//! listeners, starts one pinned shard thread per core, and then waits on two lock-free
//! channels: events from the shards (a backend's tools discovered or lost) and signals. Each
//! catalog change becomes one new immutable snapshot published with a single `ArcSwap::store`.
//! SIGINT/SIGTERM start a graceful shutdown: every shard stops accepting, drains in-flight
//! requests up to the grace period and stops its stdio children.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use arc_swap::ArcSwap;
use crossbeam_channel::{select, unbounded};
use only1mcp_shards::balance::breaker::BreakerSpec;
use only1mcp_shards::balance::BalanceKey;
use only1mcp_shards::catalog::build::BackendInput;
use only1mcp_shards::catalog::{BackendState, Catalog, Discovery};
use only1mcp_shards::config::{Config, Transport, SELF_COMMAND};
use only1mcp_shards::http::url::BackendUrl;
use only1mcp_shards::ring::Ring;
use only1mcp_shards::rt::mailbox::mailbox;
use only1mcp_shards::shard::{run_shard, ControlEvent, ShardInit, ShardMsg};
use only1mcp_shards::snapshot::{BackendSpec, SharedSnapshot};
use only1mcp_shards::upstream::stdio::gate::SharedSpawnGate;

/// Turns the config's enabled servers into what shards need (DNS resolved here).
pub fn backend_specs(cfg: &Config) -> anyhow::Result<Vec<BackendSpec>> {
    let self_exe = std::env::current_exe().context("cannot find the gateway's own executable")?;
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
            Some(SELF_COMMAND) => self_exe.display().to_string(),
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

/// Per backend: its state and the last discovery it reported.
type Discovered = Vec<(BackendState, Option<Discovery>)>;

/// The merged catalog as 2025-era clients (`modern = false`) or 2026 clients see it: a
/// dual-era backend contributes the lists of the era the client will be served in.
fn build_catalog(cfg: &Config, specs: &[BackendSpec], found: &Discovered, modern: bool) -> Catalog {
    let inputs: Vec<BackendInput<'_>> = specs
        .iter()
        .zip(found)
        .map(|(s, (state, d))| BackendInput {
            id: &s.id,
            prefix: s.prefix,
            state: state.clone(),
            discovery: d.as_ref().map(|d| match (&d.modern, modern) {
                (Some(m), true) => &**m,
                _ => d,
            }),
        })
        .collect();
    Catalog::build(&inputs, &cfg.proxy.tool_separator)
}

fn shard_count(cfg: &Config) -> usize {
    if cfg.server.cores > 0 {
        cfg.server.cores
    } else {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    }
}

/// How clients reach the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Front {
    /// Streamable HTTP on the configured address, one listener per shard.
    Http,
    /// One client on stdin/stdout (no listener); stdin EOF shuts the gateway down.
    Stdio,
}

/// The CPUs this process may run on (its affinity mask, e.g. under `taskset`), in order;
/// shard i is pinned to the i-th of them. Empty if the mask cannot be read (no pinning).
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity fills the one we own.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// Starts the gateway and runs the control loop until a shutdown signal. Blocks.
pub fn start(cfg: Config, front: Front) -> anyhow::Result<()> {
    let specs = backend_specs(&cfg)?;
    let n = if front == Front::Stdio && cfg.server.cores == 0 {
        1
    } else {
        shard_count(&cfg)
    };
    let (listeners, addr) = match front {
        Front::Http => {
            let (l, a) = crate::listen::bind_shards(&cfg.server.host, cfg.server.port, n)?;
            (l.into_iter().map(Some).collect::<Vec<_>>(), Some(a))
        }
        Front::Stdio => ((0..n).map(|_| None).collect(), None),
    };
    let stdout_tx = (front == Front::Stdio)
        .then(spawn_stdout_writer)
        .transpose()?;
    let cfg = Arc::new(cfg);
    let mut found: Discovered = vec![(BackendState::Starting, None); specs.len()];
    let mut version = 1u64;
    let slot = Arc::new(ArcSwap::from_pointee(SharedSnapshot::new(
        version,
        cfg.clone(),
        specs.clone(),
        build_catalog(&cfg, &specs, &found, false),
        build_catalog(&cfg, &specs, &found, true),
    )));

    let (events_tx, events_rx) = unbounded::<ControlEvent>();
    let (senders, boxes): (Vec<_>, Vec<_>) = (0..n).map(|_| mailbox::<ShardMsg>()).unzip();
    let ring = Ring::new(n);
    let cpus = allowed_cpus();
    let spawn_gate = SharedSpawnGate::new(cfg.proxy.max_concurrent_spawns);
    let mut threads = Vec::with_capacity(n);
    for (i, (listener, mbox)) in listeners.into_iter().zip(boxes).enumerate() {
        let init = ShardInit {
            id: i,
            cpu: (!cpus.is_empty()).then(|| cpus[i % cpus.len()]),
            listener,
            ring: ring.clone(),
            snapshot: slot.clone(),
            peers: senders.clone(),
            mailbox: mbox,
            stdout: if i == 0 { stdout_tx.clone() } else { None },
            control: events_tx.clone(),
            driver: cfg.server.driver,
            uring_entries: cfg.server.uring_entries,
            spawn_gate: spawn_gate.clone(),
        };
        let tx = events_tx.clone();
        let handle = std::thread::Builder::new()
            .name(format!("o1m-shard-{i}"))
            .spawn(move || {
                if let Err(e) = run_shard(init) {
                    tracing::error!(shard = i, "shard failed to start: {e}");
                    let _ = tx.send(ControlEvent::Stopped { shard: i });
                }
            })
            .context("cannot start shard thread")?;
        threads.push(handle);
    }

    // Wait for every shard to come up before announcing the address.
    let mut started = 0;
    let mut drivers = Vec::new();
    while started < n {
        match events_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(ControlEvent::Started { shard, driver }) => {
                started += 1;
                drivers.push((shard, driver));
            }
            Ok(ControlEvent::Stopped { shard }) => {
                for s in &senders {
                    let _ = s.send(ShardMsg::Shutdown);
                }
                anyhow::bail!("shard {shard} failed to start (see the log above)");
            }
            Ok(ControlEvent::Discovered { server, result }) => {
                apply_discovery(
                    &senders,
                    &cfg,
                    &specs,
                    &mut found,
                    &mut version,
                    &slot,
                    server,
                    result,
                );
            }
            Err(_) => anyhow::bail!("shards did not start within 30 s"),
        }
    }
    let driver_names: Vec<&str> = drivers.iter().map(|(_, d)| d.as_str()).collect();
    crate::health::spawn(specs.clone(), senders.clone())?;
    let (sig_tx, sig_rx) = unbounded::<i32>();
    match addr {
        Some(addr) => {
            tracing::info!(shards = n, drivers = ?driver_names, %addr, "gateway started");
            println!(
                "only1mcp-uring listening on http://{addr}/mcp (shards: {n}, driver: {})",
                driver_names[0]
            );
            let _ = std::io::stdout().flush();
        }
        None => {
            tracing::info!(shards = n, drivers = ?driver_names, "gateway started on stdio");
            spawn_stdin_reader(senders[0].clone(), sig_tx.clone())?;
        }
    }

    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .context("cannot install signal handlers")?;
    std::thread::Builder::new()
        .name("o1m-signals".into())
        .spawn(move || {
            for s in signals.forever() {
                if sig_tx.send(s).is_err() {
                    return;
                }
            }
        })
        .context("cannot start signal thread")?;

    loop {
        select! {
            recv(events_rx) -> ev => match ev {
                Ok(ControlEvent::Discovered { server, result }) => {
                    apply_discovery(&senders, &cfg, &specs, &mut found, &mut version, &slot, server, result);
                }
                Ok(ControlEvent::Stopped { shard }) => {
                    tracing::error!(shard, "shard stopped unexpectedly; shutting down");
                    break;
                }
                Ok(ControlEvent::Started { .. }) => {}
                Err(_) => break,
            },
            recv(sig_rx) -> sig => {
                tracing::info!(signal = ?sig.ok(), "shutdown requested: draining");
                break;
            }
        }
    }
    shutdown(
        &senders,
        &events_rx,
        threads,
        n,
        Duration::from_millis(cfg.server.shutdown_grace_ms),
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn apply_discovery(
    senders: &[only1mcp_shards::rt::mailbox::SharedMailboxSender<ShardMsg>],
    cfg: &Arc<Config>,
    specs: &[BackendSpec],
    found: &mut Discovered,
    version: &mut u64,
    slot: &Arc<ArcSwap<SharedSnapshot>>,
    server: String,
    result: Result<Discovery, String>,
) {
    let Some(idx) = specs.iter().position(|s| s.id == server) else {
        return;
    };
    // A failure after a success keeps the last known tools, marked down.
    match result {
        Ok(d) => found[idx] = (BackendState::Ready, Some(d)),
        Err(why) => found[idx].0 = BackendState::Down(why),
    }
    *version += 1;
    let catalog = build_catalog(cfg, specs, found, false);
    let catalog_modern = build_catalog(cfg, specs, found, true);
    for r in &catalog.reports {
        for (tool, why) in &r.dropped {
            tracing::warn!(server = %r.id, tool = %tool, "tool dropped from catalog: {why}");
        }
    }
    let old = slot.load();
    let changed = |a: &Arc<Vec<u8>>, b: &Arc<Vec<u8>>| a != b;
    let both = [
        (&old.catalog, &catalog),
        (&old.catalog_modern, &catalog_modern),
    ];
    let tools = both
        .iter()
        .any(|(o, n)| changed(&o.tools_json, &n.tools_json));
    let prompts = both
        .iter()
        .any(|(o, n)| changed(&o.prompts_json, &n.prompts_json));
    let resources = both.iter().any(|(o, n)| {
        changed(&o.resources_json, &n.resources_json)
            || changed(&o.templates_json, &n.templates_json)
    });
    drop(old);
    // A retried discovery of a down backend republishes (its reason may have changed) but
    // changes no list: keep that out of the info log, and out of the clients' notifications.
    if tools || prompts || resources {
        tracing::info!(version = *version, tools = catalog.len(), server = %server, "catalog updated");
    } else {
        tracing::debug!(version = *version, server = %server, "backend state republished, lists unchanged");
    }
    slot.store(Arc::new(SharedSnapshot::new(
        *version,
        cfg.clone(),
        specs.to_vec(),
        catalog,
        catalog_modern,
    )));
    if tools || prompts || resources {
        for p in senders {
            let _ = p.send(ShardMsg::ListChanged {
                tools,
                prompts,
                resources,
            });
        }
    }
}

/// The one thread that writes the stdio client's stdout: a line per message.
fn spawn_stdout_writer() -> anyhow::Result<crossbeam_channel::Sender<Vec<u8>>> {
    let (tx, rx) = unbounded::<Vec<u8>>();
    std::thread::Builder::new()
        .name("o1m-stdout".into())
        .spawn(move || {
            let mut out = std::io::stdout().lock();
            for mut msg in rx {
                msg.push(b'\n');
                if out.write_all(&msg).and_then(|_| out.flush()).is_err() {
                    return;
                }
            }
        })
        .context("cannot start the stdout writer")?;
    Ok(tx)
}

/// Reads the stdio client's lines (blocking, so on its own thread) into shard 0's mailbox;
/// stdin EOF means the client is gone: shut down like on SIGTERM.
fn spawn_stdin_reader(
    shard0: only1mcp_shards::rt::mailbox::SharedMailboxSender<ShardMsg>,
    stop: crossbeam_channel::Sender<i32>,
) -> anyhow::Result<()> {
    std::thread::Builder::new()
        .name("o1m-stdin".into())
        .spawn(move || {
            use std::io::BufRead;
            let mut stdin = std::io::stdin().lock();
            let mut line = Vec::new();
            loop {
                line.clear();
                match stdin.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if shard0.send(ShardMsg::StdioLine(line.clone())).is_err() {
                            break;
                        }
                    }
                }
            }
            tracing::info!("stdin closed: shutting down");
            let _ = stop.send(0);
        })
        .context("cannot start the stdin reader")?;
    Ok(())
}

fn shutdown(
    senders: &[only1mcp_shards::rt::mailbox::SharedMailboxSender<ShardMsg>],
    events: &crossbeam_channel::Receiver<ControlEvent>,
    threads: Vec<std::thread::JoinHandle<()>>,
    n: usize,
    grace: Duration,
) {
    for s in senders {
        let _ = s.send(ShardMsg::Shutdown);
    }
    let deadline = Instant::now() + grace + Duration::from_secs(15);
    let mut stopped = 0;
    while stopped < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(ControlEvent::Stopped { .. }) => stopped += 1,
            Ok(_) => {}
            Err(_) => {
                tracing::error!("shards did not stop in time; exiting anyway");
                return;
            }
        }
    }
    for t in threads {
        let _ = t.join();
    }
    tracing::info!("gateway stopped");
}

//! The control thread: startup, the catalog, hot reload, metrics, signals, shutdown.
//!
//! This is the one thread allowed to block. It resolves backend URLs (DNS), binds the shard
//! listeners, starts one pinned shard thread per core, and then waits on lock-free channels:
//! events from the shards (a backend's tools discovered or lost, their figures), the config
//! file watcher, a 500 ms metrics tick, and signals. Each change becomes one new immutable
//! snapshot published with a single `ArcSwap::store` ([`world`]); a reload also sends each
//! shard the servers to retire and start ([`reload`]). SIGHUP reloads; SIGUSR2 drains (`/ready`
//! answers 503, everything is still served); SIGINT/SIGTERM flip `/ready` to 503, serve on for
//! `server.drain_grace_ms` ([`drain`]; a second signal cuts it short), then start a graceful
//! shutdown: every shard stops accepting, drains in-flight requests up to the grace period
//! and stops its stdio children. Under systemd (`Type=notify`) each of these steps is also
//! told to systemd ([`notify`]).

pub mod cluster;
mod drain;
mod notify;
pub mod reload;
mod specs;
mod stdio_io;
mod world;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use arc_swap::ArcSwap;
use crossbeam_channel::{select, unbounded};
use only1mcp_shards::config::Config;
use only1mcp_shards::readiness::SharedReadiness;
use only1mcp_shards::ring::Ring;
use only1mcp_shards::rt::mailbox::mailbox;
use only1mcp_shards::shard::{run_shard, ControlEvent, ShardInit, ShardMsg, SharedMetricsText};
use only1mcp_shards::upstream::stdio::gate::SharedSpawnGate;

pub use reload::Overrides;
pub use specs::backend_specs;
use stdio_io::{spawn_stdin_reader, spawn_stdout_writer};
use world::World;

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

/// Exit status when a data-plane thread was lost to a panic.
pub const EXIT_THREAD_LOST: i32 = 70;

/// Runs a data-plane thread's body; if it panics (a panic that a connection task did not
/// contain), the whole process exits at once with [`EXIT_THREAD_LOST`] so a supervisor
/// restarts it: a shard that is gone while the kernel still hands it connections, or a
/// health prober that stopped, would leave a half-alive gateway.
pub fn exit_on_panic(thread: &str, body: impl FnOnce()) {
    if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        let msg = only1mcp_shards::rt::contain::message(&*payload);
        tracing::error!(
            thread,
            "gateway fault: {thread} panicked ({msg}); exiting with status {EXIT_THREAD_LOST} so a supervisor restarts the gateway"
        );
        std::process::exit(EXIT_THREAD_LOST);
    }
}

/// Starts the gateway and runs the control loop until a shutdown signal. Blocks.
///
/// `config`: the files the config came from and the command line's overrides; they are
/// then watched and reloaded (all of them, merged) on change or SIGHUP.
pub fn start(
    cfg: Config,
    front: Front,
    config: Option<(Vec<PathBuf>, Overrides)>,
) -> anyhow::Result<()> {
    // First, while this is the only thread: it takes `$NOTIFY_SOCKET` out of the environment.
    let mut notify = notify::Notifier::take_from_env();
    // Before any thread reads JSON from outside (restart-only key).
    only1mcp_shards::wire::scan::set_max_depth(cfg.server.max_json_depth);
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
    let cluster = cluster::load_logged(&cfg)?;
    if let Some(node) = cluster.node.as_deref() {
        only1mcp_shards::http::response::set_served_by(node);
    }
    let mut world = World::new(cfg.clone(), specs.clone(), cluster);
    let slot = world.slot.clone();

    let (events_tx, events_rx) = unbounded::<ControlEvent>();
    let (senders, boxes): (Vec<_>, Vec<_>) = (0..n).map(|_| mailbox::<ShardMsg>()).unzip();
    world.senders = senders.clone();
    let ring = Ring::new(n);
    let cpus = allowed_cpus();
    let spawn_gate = SharedSpawnGate::new(cfg.proxy.max_concurrent_spawns);
    let keys = crate::jwks::initial_keys(&cfg)?;
    let tls = match (&cfg.server.tls, front) {
        (Some(t), Front::Http) => Some(crate::tls::server_config(t)?),
        _ => None,
    };
    let (audit, audit_writer) = start_audit(&cfg, front)?;
    // Dropped once every shard holds its copy: the store thread ends with the shards.
    let rate_store = crate::rate_store::start(&cfg.rate_limit)?;
    let (tokens, accounting) = crate::tokens::start(cfg.metrics.tokens)?;
    // Ends with the shards, like the store thread.
    let trace = crate::telemetry::start(&cfg.telemetry)?;
    let metrics_text: SharedMetricsText = Arc::new(ArcSwap::from_pointee(bytes::Bytes::new()));
    let metrics_snapshot = Arc::new(ArcSwap::from_pointee(
        crate::observe::MetricsSnapshot::initial(n as u32, ""),
    ));
    let readiness = SharedReadiness::new();
    let mut metrics = crate::metrics::Aggregator::new(
        n,
        metrics_text.clone(),
        metrics_snapshot.clone(),
        readiness.clone(),
    );
    // The thread is detached: it ends when the last shard drops its sink.
    metrics.tokens = accounting.map(|(acc, _thread)| acc);
    metrics.traces = trace.is_enabled().then(|| trace.counters.clone());
    metrics.node = world.cluster.node_id().to_string();
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
            uring_setup: cfg.server.uring_setup.clone(),
            spawn_gate: spawn_gate.clone(),
            metrics_text: metrics_text.clone(),
            keys: keys.clone(),
            audit: audit.clone(),
            rate_store: rate_store.clone(),
            tokens: tokens.clone(),
            trace: trace.clone(),
            tls: tls.clone(),
            readiness: readiness.clone(),
        };
        let tx = events_tx.clone();
        let handle = std::thread::Builder::new()
            .name(format!("o1m-shard-{i}"))
            .stack_size(only1mcp_shards::rt::THREAD_STACK_BYTES)
            .spawn(move || {
                exit_on_panic(&format!("shard {i}"), || {
                    if let Err(e) = run_shard(init) {
                        tracing::error!(shard = i, "shard failed to start: {e}");
                        let _ = tx.send(ControlEvent::Stopped { shard: i });
                    }
                })
            })
            .context("cannot start shard thread")?;
        threads.push(handle);
    }
    drop(rate_store);
    drop(trace);

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
            Ok(ControlEvent::Discovered {
                server,
                result,
                announced,
            }) => world.discovered(&server, result, announced),
            Ok(ControlEvent::Stats(s)) => metrics.on_stats(s),
            Ok(ControlEvent::UnknownKid(_)) => {}
            Err(_) => anyhow::bail!("shards did not start within 30 s"),
        }
    }
    drain::warm_if_serving(&world, &readiness);
    let driver_names: Vec<&str> = drivers.iter().map(|(_, d)| d.as_str()).collect();
    metrics.set_driver(driver_names[0]);
    metrics.publish();
    let _socket = start_metrics_socket(&cfg, metrics_snapshot.clone())?;
    let ticker = crossbeam_channel::tick(Duration::from_millis(500));
    let (health_tx, health_rx) = unbounded();
    crate::health::spawn(specs.clone(), senders.clone(), health_rx)?;
    let (keys_tx, keys_rx) = unbounded();
    crate::jwks::spawn(&cfg, keys.clone(), keys_rx)?;
    if cfg.auth.mode == only1mcp_shards::config::AuthMode::None
        && front == Front::Http
        && !is_loopback(&cfg.server.host)
    {
        tracing::warn!(host = %cfg.server.host, "auth.mode = \"none\" on a non-loopback address: anyone who reaches this port can call every tool; set [auth] (docs/security.md)");
    }
    let watch = match &config {
        Some((paths, _)) => match reload::watch(paths) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!("config file not watched ({e:#}); SIGHUP still reloads it");
                None
            }
        },
        None => None,
    };
    let never = crossbeam_channel::never();
    let file_events = watch.as_ref().map_or(&never, |w| &w.events);
    let mut reload_due: Option<Instant> = None;
    let (sig_tx, sig_rx) = unbounded::<i32>();
    match addr {
        Some(addr) => {
            tracing::info!(shards = n, drivers = ?driver_names, %addr, "gateway started");
            let scheme = if tls.is_some() { "https" } else { "http" };
            println!(
                "only1mcp-uring listening on {scheme}://{addr}/mcp (shards: {n}, driver: {})",
                driver_names[0]
            );
            let _ = std::io::stdout().flush();
        }
        None => {
            tracing::info!(shards = n, drivers = ?driver_names, "gateway started on stdio");
            spawn_stdin_reader(senders[0].clone(), sig_tx.clone())?;
        }
    }
    if world.discovery_settled() {
        notify.ready(&drain::status(&readiness, &world));
    }

    let mut signals = signal_hook::iterator::Signals::new(drain::SIGNALS)
        .context("cannot install signal handlers")?;
    // The drain grace of SIGTERM/SIGINT: none for the stdio front (no balancer to tell).
    let mut stopping_at: Option<Instant> = None;
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
        if stopping_at.is_some_and(|t| Instant::now() >= t) {
            tracing::info!("drain grace over: draining");
            break;
        }
        let until_reload = [reload_due, stopping_at]
            .into_iter()
            .flatten()
            .min()
            .map_or(Duration::from_secs(3600), |t| {
                t.saturating_duration_since(Instant::now())
            });
        select! {
            recv(events_rx) -> ev => match ev {
                Ok(ControlEvent::Discovered { server, result, announced }) => {
                    world.discovered(&server, result, announced);
                    drain::warm_if_serving(&world, &readiness);
                    if world.discovery_settled() {
                        notify.ready(&drain::status(&readiness, &world));
                    }
                }
                Ok(ControlEvent::Stopped { shard }) => {
                    tracing::error!(shard, "shard stopped unexpectedly; shutting down");
                    readiness.stop();
                    break;
                }
                Ok(ControlEvent::Started { .. }) => {}
                Ok(ControlEvent::Stats(s)) => metrics.on_stats(s),
                Ok(ControlEvent::UnknownKid(kid)) => {
                    let _ = keys_tx.send(crate::jwks::KeysCmd::UnknownKid(kid));
                }
                Err(_) => break,
            },
            recv(ticker) -> _ => {
                metrics.publish();
                world.trim_if_due();
            }
            recv(file_events) -> _ => reload_due = Some(Instant::now() + reload::DEBOUNCE),
            recv(sig_rx) -> sig => {
                let grace = match front {
                    Front::Http => Duration::from_millis(world.cfg.server.drain_grace_ms),
                    Front::Stdio => Duration::ZERO,
                };
                let signal = sig.unwrap_or(0);
                match drain::on_signal(signal, &readiness, grace, stopping_at, Instant::now()) {
                    drain::Step::Reload => {
                        tracing::info!("SIGHUP: reloading the config");
                        reload_due = Some(Instant::now());
                    }
                    drain::Step::Serve => notify.status(&drain::status(&readiness, &world)),
                    drain::Step::StopAt(t) => {
                        notify.stopping("stopping: /ready answers 503 for server.drain_grace_ms");
                        stopping_at = Some(t);
                    }
                    drain::Step::StopNow => break,
                }
                continue;
            }
            default(until_reload) => {}
        }
        if reload_due.is_some_and(|t| Instant::now() >= t) {
            reload_due = None;
            match &config {
                Some((paths, overrides)) => {
                    let told = notify.reloading();
                    let result =
                        reload::reload(&mut world, paths, overrides, &spawn_gate, &health_tx);
                    let file = paths
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ");
                    if result.is_ok() {
                        let _ = keys_tx.send(crate::jwks::KeysCmd::Config(world.cfg.clone()));
                        drain::warm_if_serving(&world, &readiness);
                    }
                    metrics.reloaded(result.as_ref().err().cloned());
                    if told {
                        notify.reloaded(&drain::status(&readiness, &world));
                    }
                    match result {
                        Ok(summary) => {
                            tracing::info!(%file, "config reloaded: {summary}")
                        }
                        Err(why) => {
                            tracing::error!(%file, "config reload rejected, the running config stays: {why}")
                        }
                    }
                }
                None => {
                    tracing::warn!("reload requested but the gateway was started without --config")
                }
            }
        }
    }
    notify.stopping("stopping: draining in-flight requests");
    shutdown(
        &senders,
        &events_rx,
        threads,
        n,
        Duration::from_millis(world.cfg.server.shutdown_grace_ms),
    );
    // After the shards: every record they queued is written and flushed.
    if let Some(w) = audit_writer {
        w.stop();
    }
    Ok(())
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Starts the audit writer when `[audit] enabled`; stdout is refused for the stdio front
/// (stdout is the MCP channel there).
fn start_audit(
    cfg: &Config,
    front: Front,
) -> anyhow::Result<(
    only1mcp_shards::audit::SharedAuditSink,
    Option<crate::audit::AuditWriter>,
)> {
    let a = &cfg.audit;
    if !a.enabled {
        return Ok((only1mcp_shards::audit::SharedAuditSink::disabled(), None));
    }
    anyhow::ensure!(
        !(front == Front::Stdio && a.path == "-"),
        "audit.path = \"-\" (stdout) cannot be used with the stdio front: stdout carries MCP there"
    );
    let (sink, writer) = crate::audit::start(&a.path, a.max_bytes, a.keep)?;
    Ok((sink, Some(writer)))
}

/// Starts the metrics socket unless the config turns it off. A path the config names must
/// work (startup fails otherwise); the default path is best effort, since several gateways
/// on one machine share it: the first one takes it, the others say so and run without.
fn start_metrics_socket(
    cfg: &Config,
    snapshot: Arc<ArcSwap<crate::observe::MetricsSnapshot>>,
) -> anyhow::Result<Option<crate::observe::ObserveHandle>> {
    if !cfg.metrics.socket_enabled {
        return Ok(None);
    }
    let logs = crate::observe::log_ring().clone();
    match &cfg.metrics.socket {
        Some(path) => crate::observe::start(std::path::Path::new(path), snapshot, logs)
            .map(Some)
            .with_context(|| format!("metrics.socket = {path:?}")),
        None => {
            let path = crate::observe::default_socket_path();
            match crate::observe::start(&path, snapshot, logs) {
                Ok(h) => Ok(Some(h)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), "metrics socket not started: {e:#} (set [metrics] socket to choose a path)");
                    Ok(None)
                }
            }
        }
    }
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

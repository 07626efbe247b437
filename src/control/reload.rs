//! Hot reload: the config file is watched (and SIGHUP asks for a reload); the new file is
//! parsed and validated here on the control thread, checked for changes that need a restart,
//! diffed by server id against the running one, and applied as one new snapshot plus one
//! [`ShardMsg::Reload`] per shard. Anything wrong leaves the running config untouched and
//! is logged (file, line, key) and counted.
//!
//! Servers the reload did not change keep their pools, sessions and processes; a changed
//! server is retired (in-flight calls finish) and started again from its new settings; a
//! removed one is retired; an added one starts. Until a changed server reports its lists
//! again, its last known tools stay in the catalog, so a reload never blinks a list.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use only1mcp_shards::catalog::BackendState;
use only1mcp_shards::config::{self, Config, DriverChoice};
use only1mcp_shards::shard::ShardMsg;
use only1mcp_shards::snapshot::BackendSpec;
use only1mcp_shards::upstream::stdio::gate::SharedSpawnGate;

use super::world::World;

/// Editors write a file in bursts (truncate, write, rename): act once it is quiet this long.
pub const DEBOUNCE: Duration = Duration::from_millis(500);

/// The command-line settings that override the file; re-applied to every reloaded file so
/// that `--port 0` does not read as a port change.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--cores`.
    pub cores: Option<usize>,
    /// `--host`.
    pub host: Option<String>,
    /// `--port`.
    pub port: Option<u16>,
    /// `--driver`.
    pub driver: Option<DriverChoice>,
}

impl Overrides {
    /// Puts the command line's values into `cfg`.
    pub fn apply(&self, cfg: &mut Config) {
        if let Some(c) = self.cores {
            cfg.server.cores = c;
        }
        if let Some(h) = &self.host {
            cfg.server.host = h.clone();
        }
        if let Some(p) = self.port {
            cfg.server.port = p;
        }
        if let Some(d) = self.driver {
            cfg.server.driver = d;
        }
    }
}

/// The watched config files: a notify watcher on their directories (editors replace files by
/// renaming over them, which a watch on the file itself would miss) and the channel their
/// events arrive on.
pub struct ConfigWatch {
    /// One `()` per file-system event touching one of them.
    pub events: crossbeam_channel::Receiver<()>,
    _watcher: notify::RecommendedWatcher,
}

/// Starts watching `paths` (every `--config` file).
pub fn watch(paths: &[PathBuf]) -> anyhow::Result<ConfigWatch> {
    use notify::Watcher;
    let mut files = Vec::new();
    for path in paths {
        let path = std::fs::canonicalize(path)
            .with_context(|| format!("cannot resolve {}", path.display()))?;
        files.push(path);
    }
    let names: Vec<std::ffi::OsString> = files
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_os_string()))
        .collect();
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        if let Ok(ev) = ev {
            // Writes, creations, renames and removals; not reads (our own reload opens the
            // file) and not metadata (atime), which would reload in a loop.
            use notify::event::{EventKind, ModifyKind};
            let content = matches!(
                ev.kind,
                EventKind::Create(_)
                    | EventKind::Remove(_)
                    | EventKind::Modify(
                        ModifyKind::Data(_) | ModifyKind::Name(_) | ModifyKind::Any
                    )
            );
            let ours = |p: &PathBuf| p.file_name().is_some_and(|n| names.iter().any(|m| m == n));
            if content && ev.paths.iter().any(ours) {
                let _ = tx.send(());
            }
        }
    })
    .context("cannot start the config file watcher")?;
    let mut dirs: Vec<&Path> = files
        .iter()
        .map(|p| p.parent().unwrap_or(Path::new("/")))
        .collect();
    dirs.dedup();
    for dir in dirs {
        watcher
            .watch(dir, notify::RecursiveMode::NonRecursive)
            .with_context(|| format!("cannot watch {}", dir.display()))?;
    }
    Ok(ConfigWatch {
        events: rx,
        _watcher: watcher,
    })
}

/// The `[server]`, `[metrics]`, `[audit]`, `[telemetry]` and rate-limit store keys whose change needs a restart, as `key (old → new)`.
pub fn restart_only(old: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    macro_rules! key {
        ($section:ident . $field:ident) => {
            if old.$section.$field != new.$section.$field {
                out.push(format!(
                    "{}.{} ({:?} → {:?})",
                    stringify!($section),
                    stringify!($field),
                    old.$section.$field,
                    new.$section.$field
                ));
            }
        };
    }
    key!(server.host);
    key!(server.port);
    key!(server.cores);
    key!(server.driver);
    key!(server.uring_entries);
    key!(server.uring_setup);
    key!(server.max_body_bytes);
    key!(server.max_header_bytes);
    key!(server.max_json_depth);
    key!(server.idle_timeout_ms);
    key!(server.read_timeout_ms);
    key!(server.shutdown_grace_ms);
    key!(server.session_idle_timeout_ms);
    key!(server.max_connections_per_shard);
    key!(server.allowed_origins);
    key!(server.allowed_hosts);
    key!(server.tls);
    key!(metrics.socket_enabled);
    key!(metrics.socket);
    key!(audit.enabled);
    key!(audit.path);
    key!(audit.max_bytes);
    key!(audit.keep);
    // The exporter thread and the shards' sampling are set up once (`src/telemetry/`).
    key!(telemetry.otlp_endpoint);
    key!(telemetry.service_name);
    key!(telemetry.sample_ratio);
    // The Redis client is built once at startup; `redis_url`'s Debug hides any password.
    key!(rate_limit.store);
    key!(rate_limit.redis_url);
    out
}

/// What a reload changes, by server id.
#[derive(Debug, Default, PartialEq)]
pub struct Diff {
    /// In the new file only.
    pub added: Vec<String>,
    /// In the old file only.
    pub removed: Vec<String>,
    /// In both, with different settings.
    pub changed: Vec<String>,
    /// In both, the same.
    pub unchanged: usize,
}

impl Diff {
    /// Compares the running specs with the new ones.
    pub fn of(old: &[BackendSpec], new: &[BackendSpec]) -> Diff {
        let mut d = Diff::default();
        for n in new {
            match old.iter().find(|o| o.id == n.id) {
                None => d.added.push(n.id.clone()),
                Some(o) if o != n => d.changed.push(n.id.clone()),
                Some(_) => d.unchanged += 1,
            }
        }
        for o in old {
            if !new.iter().any(|n| n.id == o.id) {
                d.removed.push(o.id.clone());
            }
        }
        d
    }

    /// Nothing changes.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// Reads, validates and applies the files at `paths` (merged, `${...}` substituted anew: a
/// `${file:}` secret is re-read); `Ok(summary)` or why nothing changed.
pub fn reload(
    world: &mut World,
    paths: &[PathBuf],
    overrides: &Overrides,
    gate: &SharedSpawnGate,
    health: &crossbeam_channel::Sender<Vec<BackendSpec>>,
) -> Result<String, String> {
    let started = Instant::now();
    let loaded = config::load_files(paths).map_err(|errors| {
        errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let mut new = loaded.config;
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    overrides.apply(&mut new);
    let mut fixed = restart_only(&world.cfg, &new);
    fixed.extend(super::cluster::node_change(&world.cfg, &new));
    if !fixed.is_empty() {
        return Err(format!(
            "{}: {} can only change with a restart; restart the gateway to apply them",
            shown.join(", "),
            fixed.join(", ")
        ));
    }
    let specs = super::specs::backend_specs(&new).map_err(|e| format!("{e:#}"))?;
    let cluster = super::cluster::load_logged(&new).map_err(|e| e.to_string())?;
    let diff = Diff::of(&world.specs, &specs);
    // Unchanged and changed servers keep what they last reported until they report again.
    let found = specs
        .iter()
        .map(|s| {
            world
                .specs
                .iter()
                .position(|o| o.id == s.id)
                .map(|i| world.found[i].clone())
                .unwrap_or((BackendState::Starting, None))
        })
        .collect();
    let summary = if diff.is_empty() {
        format!("no server changed ({} unchanged)", diff.unchanged)
    } else {
        format!(
            "added {:?}, removed {:?}, changed {:?}, unchanged {}",
            diff.added, diff.removed, diff.changed, diff.unchanged
        )
    };
    let retire: Vec<String> = diff.removed.iter().chain(&diff.changed).cloned().collect();
    let start: Vec<BackendSpec> = specs
        .iter()
        .filter(|s| diff.added.contains(&s.id) || diff.changed.contains(&s.id))
        .cloned()
        .collect();
    gate.set_limit(new.proxy.max_concurrent_spawns);
    world.cfg = std::sync::Arc::new(new);
    world.specs = specs;
    world.found = found;
    world.cluster = cluster;
    world.publish("config reload");
    for s in &world.senders {
        let _ = s.send(ShardMsg::Reload {
            removed: retire.clone(),
            added: start.clone(),
        });
    }
    let _ = health.send(world.specs.clone());
    tracing::debug!(took = ?started.elapsed(), "reload applied");
    Ok(summary)
}

#[cfg(test)]
mod tests;

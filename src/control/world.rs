//! What the control thread knows of the backends, and the one way it publishes it.
//!
//! [`World`] holds the running config, the backend specs, each backend's last discovery
//! and the snapshot version. Every change (a discovery report, a reload) ends in
//! [`World::publish`]: both catalogs are rebuilt, one new immutable snapshot is stored with a
//! single `ArcSwap::store`, and the shards are told which lists changed so each client
//! session with a GET stream, and each 2026 listen, gets one `list_changed`: for a list whose
//! merged bytes changed, and for a list its backend announced changed (a re-list it caused).

use std::sync::Arc;

use arc_swap::ArcSwap;
use only1mcp_shards::catalog::build::BackendInput;
use only1mcp_shards::catalog::{BackendState, Catalog, Discovery, ListsChanged};
use only1mcp_shards::cluster::SharedCluster;
use only1mcp_shards::config::Config;
use only1mcp_shards::rt::mailbox::SharedMailboxSender;
use only1mcp_shards::shard::ShardMsg;
use only1mcp_shards::snapshot::{BackendSpec, SharedSnapshot};

/// Per backend: its state and the last discovery it reported.
pub type Discovered = Vec<(BackendState, Option<Discovery>)>;

/// The control thread's state of the world.
pub struct World {
    /// The running config.
    pub cfg: Arc<Config>,
    /// One per enabled server, in config order.
    pub specs: Vec<BackendSpec>,
    /// Parallel to `specs`.
    pub found: Discovered,
    /// The published snapshot's version.
    pub version: u64,
    /// Where snapshots are published.
    pub slot: Arc<ArcSwap<SharedSnapshot>>,
    /// Every shard's mailbox.
    pub senders: Vec<SharedMailboxSender<ShardMsg>>,
    /// A list changed since the heap was last trimmed (see [`World::trim_if_due`]).
    pub trim_due: bool,
    /// The node's id and keys, carried into every snapshot (replaced on reload).
    pub cluster: Arc<SharedCluster>,
}

impl World {
    /// The first snapshot: every backend starting.
    pub fn new(cfg: Arc<Config>, specs: Vec<BackendSpec>, cluster: Arc<SharedCluster>) -> World {
        let found: Discovered = vec![(BackendState::Starting, None); specs.len()];
        let (catalog, catalog_modern) = build_catalogs(&cfg, &specs, &found);
        let slot = Arc::new(ArcSwap::from_pointee(
            SharedSnapshot::new(1, cfg.clone(), specs.clone(), catalog, catalog_modern)
                .with_cluster(cluster.clone()),
        ));
        World {
            cfg,
            specs,
            found,
            version: 1,
            slot,
            senders: Vec::new(),
            trim_due: false,
            cluster,
        }
    }

    /// A backend's discovery report. A failure after a success keeps the last known tools,
    /// marked down. Reports of servers no longer configured are ignored. `announced`: the
    /// list kinds the backend said changed (this report is the re-list that caused):
    /// clients are told of those even when the merged lists come out the same.
    pub fn discovered(
        &mut self,
        server: &str,
        result: Result<Discovery, String>,
        announced: ListsChanged,
    ) {
        let Some(idx) = self.specs.iter().position(|s| s.id == server) else {
            return;
        };
        let announced = match result {
            Ok(d) => {
                self.found[idx] = (BackendState::Ready, Some(d));
                announced
            }
            Err(why) => {
                self.found[idx].0 = BackendState::Down(why);
                ListsChanged::NONE
            }
        };
        self.publish_announced(server, announced);
    }

    /// Rebuilds the catalogs, publishes the snapshot and sends `list_changed` where a list
    /// changed. `why` names the cause in the log.
    pub fn publish(&mut self, why: &str) {
        self.publish_announced(why, ListsChanged::NONE);
    }

    /// [`World::publish`], and `list_changed` for the `announced` kinds whether or not
    /// their merged lists changed (`catalog/changed.rs` says why).
    fn publish_announced(&mut self, why: &str, announced: ListsChanged) {
        self.version += 1;
        let (catalog, catalog_modern) = build_catalogs(&self.cfg, &self.specs, &self.found);
        for r in &catalog.reports {
            for (tool, why) in &r.dropped {
                tracing::warn!(server = %r.id, tool = %tool, "tool dropped from catalog: {why}");
            }
        }
        let old = self.slot.load();
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
        // A retried discovery of a down backend republishes (its reason may have changed)
        // but changes no list: keep that out of the info log and the clients' notifications.
        if tools || prompts || resources {
            tracing::info!(version = self.version, tools = catalog.len(), cause = %why, "catalog updated");
        } else if announced.any() {
            tracing::debug!(version = self.version, cause = %why, ?announced, "the backend announced a list change; lists unchanged, clients told");
        } else {
            tracing::debug!(version = self.version, cause = %why, "snapshot republished, lists unchanged");
        }
        let tools = tools || announced.tools;
        let prompts = prompts || announced.prompts;
        let resources = resources || announced.resources;
        self.slot.store(Arc::new(
            SharedSnapshot::new(
                self.version,
                self.cfg.clone(),
                self.specs.clone(),
                catalog,
                catalog_modern,
            )
            .with_cluster(self.cluster.clone()),
        ));
        if tools || prompts || resources {
            self.trim_due = true;
            for p in &self.senders {
                let _ = p.send(ShardMsg::ListChanged {
                    tools,
                    prompts,
                    resources,
                });
            }
        }
    }

    /// Backend discovery settled: every backend has reported once (ready or down), or one
    /// is ready (true with none). What systemd's `READY=1` waits for, besides the listeners:
    /// a backend that is down must not fail the service's start (`/health` says degraded).
    pub fn discovery_settled(&self) -> bool {
        let ready = |s: &BackendState| *s == BackendState::Ready;
        self.found.iter().any(|(s, _)| ready(s))
            || self.found.iter().all(|(s, _)| *s != BackendState::Starting)
    }

    /// What is served, in a few words (systemd's `STATUS=`): `serving 2 of 3 backends, 40 tools`.
    pub fn summary(&self) -> String {
        let ready = self
            .found
            .iter()
            .filter(|(s, _)| *s == BackendState::Ready)
            .count();
        let tools = self.slot.load().catalog.len();
        format!(
            "serving {ready} of {} backends, {tools} tools",
            self.specs.len()
        )
    }

    /// Called on the control thread's 500 ms tick: after a list changed, returns the heap
    /// the rebuilds freed to the system. Building the catalogs allocates and frees about as
    /// much as they hold, once per discovery report (100 times at start-up with 100
    /// backends): glibc would otherwise keep it as idle heap. On the tick, not per publish:
    /// `malloc_trim` locks each arena in turn (the shards' too), so it runs at most twice a
    /// second and only after a change, by when the shards have let go of the old snapshot.
    pub fn trim_if_due(&mut self) {
        if std::mem::take(&mut self.trim_due) {
            release_free_memory();
        }
    }
}

/// Returns free heap pages to the system (glibc only).
fn release_free_memory() {
    // SAFETY: malloc_trim only hands free memory back; it may be called from any thread.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The merged catalogs as 2025-era and as 2026 clients see them; the lists both show alike
/// are held once.
fn build_catalogs(cfg: &Config, specs: &[BackendSpec], found: &Discovered) -> (Catalog, Catalog) {
    let catalog = build_catalog(cfg, specs, found, false);
    let mut catalog_modern = build_catalog(cfg, specs, found, true);
    catalog_modern.share_lists(&catalog);
    (catalog, catalog_modern)
}

/// The merged catalog as 2025-era clients (`modern = false`) or 2026 clients see it: a
/// dual-era backend contributes the lists of the era the client will be served in.
fn build_catalog(cfg: &Config, specs: &[BackendSpec], found: &Discovered, modern: bool) -> Catalog {
    // A backend that speaks only 2026 with the tasks extension: 2025 clients get its tasks
    // through the bridge (`route/tasks/to_modern.rs`), and its tools offer them.
    let offered: Vec<Option<Discovery>> = found
        .iter()
        .map(|(_, d)| {
            d.as_ref()
                .filter(|d| !modern && bridges_tasks(d))
                .map(only1mcp_shards::catalog::build::offer_tasks)
        })
        .collect();
    let inputs: Vec<BackendInput<'_>> = specs
        .iter()
        .zip(found)
        .zip(&offered)
        .map(|((s, (state, d)), offered)| BackendInput {
            id: &s.id,
            prefix: s.prefix,
            state: state.clone(),
            discovery: offered
                .as_ref()
                .or(d.as_ref())
                .map(|d| match (&d.modern, modern) {
                    (Some(m), true) => &**m,
                    _ => d,
                }),
            curation: Some(&s.curation),
            // A 2026 client reaches a backend's 2026 side when it has one (then its tasks are
            // the extension's); a 2025 client reaches its 2025 session (experimental tasks),
            // and so does a 2026 client of a 2025-only backend, whose experimental tasks the
            // gateway bridges to the extension (`route/tasks/to_legacy.rs`).
            tasks: d.as_ref().is_some_and(|d| match (&d.modern, modern) {
                (Some(m), true) => m.caps.tasks_ext,
                (None, true) => d.caps.tasks_ext || d.caps.tasks_legacy,
                (_, false) => d.caps.tasks_legacy || bridges_tasks(d),
            }),
        })
        .collect();
    Catalog::build(&inputs, &cfg.proxy.tool_separator)
}

/// Does the gateway carry this backend's 2026 tasks to 2025 clients (it speaks only 2026
/// and declared the tasks extension)?
fn bridges_tasks(d: &Discovery) -> bool {
    d.modern.is_none() && d.caps.modern_only && d.caps.tasks_ext && !d.caps.tasks_legacy
}

#[cfg(test)]
mod tests {
    use super::*;
    use only1mcp_shards::catalog::{BackendCaps, RawItem};
    use only1mcp_shards::rt::mailbox::{mailbox, LocalMailbox};

    fn world() -> (World, LocalMailbox<ShardMsg>) {
        let text = "[[servers]]\nid = \"a\"\ntransport = \"stdio\"\ncommand = \"x\"\n";
        let cfg = only1mcp_shards::config::parse_str(text, "t.toml").unwrap();
        let specs = crate::control::backend_specs(&cfg).unwrap();
        let mut w = World::new(Arc::new(cfg), specs, SharedCluster::solo());
        let (tx, rx) = mailbox();
        w.senders.push(tx);
        (w, rx)
    }

    fn found(tools: &[&str]) -> Discovery {
        let items = tools
            .iter()
            .map(|t| RawItem {
                key: t.to_string(),
                json: format!(r#"{{"name":"{t}","inputSchema":{{"type":"object"}}}}"#).into_bytes(),
            })
            .collect();
        Discovery {
            caps: BackendCaps {
                tools: true,
                prompts: true,
                ..Default::default()
            },
            tools: Arc::new(items),
            ..Default::default()
        }
    }

    /// The (tools, prompts, resources) of each `ListChanged` sent since the last call.
    fn told(rx: &LocalMailbox<ShardMsg>) -> Vec<(bool, bool, bool)> {
        std::iter::from_fn(|| rx.try_recv())
            .filter_map(|m| match m {
                ShardMsg::ListChanged {
                    tools,
                    prompts,
                    resources,
                } => Some((tools, prompts, resources)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn discovery_settles_with_one_ready_backend_or_once_every_backend_reported() {
        let text = "[[servers]]\nid = \"a\"\ntransport = \"stdio\"\ncommand = \"x\"\n\
                    [[servers]]\nid = \"b\"\ntransport = \"stdio\"\ncommand = \"y\"\n";
        let cfg = only1mcp_shards::config::parse_str(text, "t.toml").unwrap();
        let specs = crate::control::backend_specs(&cfg).unwrap();
        let mut w = World::new(Arc::new(cfg), specs, SharedCluster::solo());
        assert!(!w.discovery_settled());
        assert_eq!(w.summary(), "serving 0 of 2 backends, 0 tools");
        w.discovered("a", Err("no answer".into()), ListsChanged::NONE);
        assert!(!w.discovery_settled(), "b has not reported");
        w.discovered("b", Err("no answer".into()), ListsChanged::NONE);
        assert!(w.discovery_settled(), "all reported, none ready");
        w.discovered("b", Ok(found(&["echo", "add"])), ListsChanged::NONE);
        assert_eq!(w.summary(), "serving 1 of 2 backends, 2 tools");
        let (mut one, _rx) = world();
        one.discovered("a", Ok(found(&["echo"])), ListsChanged::NONE);
        assert!(one.discovery_settled());
        let none = only1mcp_shards::config::parse_str("", "t.toml").unwrap();
        let empty = World::new(Arc::new(none), Vec::new(), SharedCluster::solo());
        assert!(empty.discovery_settled(), "no backend: settled at once");
    }

    #[test]
    fn a_2026_only_task_backend_offers_its_tasks_to_2025_clients_only() {
        let (w, _rx) = world();
        let mut d = found(&["run"]);
        d.caps.modern_only = true;
        d.caps.tasks_ext = true;
        let built = |d: &Discovery| {
            let found: Discovered = vec![(BackendState::Ready, Some(d.clone()))];
            build_catalogs(&w.cfg, &w.specs, &found)
        };
        let (legacy, modern) = built(&d);
        assert!(legacy.caps.tasks && modern.caps.tasks);
        let tools = |c: &Catalog| String::from_utf8(c.tools_json.to_vec()).unwrap();
        assert!(
            tools(&legacy).contains(r#""execution":{"taskSupport":"optional"}"#),
            "{}",
            tools(&legacy)
        );
        assert!(
            !tools(&modern).contains("taskSupport"),
            "{}",
            tools(&modern)
        );
        // Without the extension, or with a 2025 side of its own, nothing is offered here.
        d.caps.tasks_ext = false;
        let (legacy, _) = built(&d);
        assert!(!legacy.caps.tasks && !tools(&legacy).contains("taskSupport"));
        d.caps.tasks_ext = true;
        d.caps.modern_only = false;
        let (legacy, _) = built(&d);
        assert!(!legacy.caps.tasks && !tools(&legacy).contains("taskSupport"));
    }

    #[test]
    fn an_announced_change_is_told_even_when_the_merged_lists_stay_the_same() {
        let (mut w, rx) = world();
        w.discovered("a", Ok(found(&["echo"])), ListsChanged::NONE);
        assert_eq!(told(&rx), vec![(true, false, false)], "the tools appeared");
        // A re-list with nothing announced and nothing changed tells nobody.
        w.discovered("a", Ok(found(&["echo"])), ListsChanged::NONE);
        assert_eq!(told(&rx), vec![]);
        // The backend said its prompts changed: the clients hear it, lists alike or not.
        let prompts = ListsChanged::from_method("notifications/prompts/list_changed").unwrap();
        w.discovered("a", Ok(found(&["echo"])), prompts);
        assert_eq!(told(&rx), vec![(false, true, false)]);
        // A real change and an announcement of another kind: both kinds, in one message.
        let tools = ListsChanged::from_method("notifications/tools/list_changed").unwrap();
        let resources = ListsChanged::from_method("notifications/resources/list_changed").unwrap();
        w.discovered("a", Ok(found(&["echo", "add"])), resources.union(tools));
        assert_eq!(told(&rx), vec![(true, false, true)]);
        // A failed re-list announces nothing (the clients would re-list the old lists).
        w.discovered("a", Err("gone".into()), tools);
        assert_eq!(told(&rx), vec![]);
    }

    #[test]
    fn a_2026_client_sees_the_task_tools_of_a_2025_only_backend_with_tasks() {
        let text = "[[servers]]\nid = \"a\"\ntransport = \"stdio\"\ncommand = \"x\"\n";
        let cfg = only1mcp_shards::config::parse_str(text, "t.toml").unwrap();
        let specs = crate::control::backend_specs(&cfg).unwrap();
        let tool = r#"{"name":"job","inputSchema":{"type":"object"},"execution":{"taskSupport":"required"}}"#;
        let with = |legacy_tasks: bool, modern_side: bool| {
            let mut d = Discovery {
                caps: BackendCaps {
                    tools: true,
                    tasks_legacy: legacy_tasks,
                    ..Default::default()
                },
                tools: Arc::new(vec![RawItem {
                    key: "job".into(),
                    json: tool.as_bytes().to_vec(),
                }]),
                ..Default::default()
            };
            if modern_side {
                // A dual-era backend: 2026 clients reach its 2026 side, without the extension.
                let mut m = d.clone();
                m.caps.tasks_legacy = false;
                d.modern = Some(Box::new(m));
            }
            let found: Discovered = vec![(BackendState::Ready, Some(d))];
            build_catalogs(&cfg, &specs, &found)
        };
        // 2025-only with experimental tasks: both eras carry them (2026 through the bridge).
        let (legacy, modern) = with(true, false);
        assert!(legacy.caps.tasks && modern.caps.tasks);
        assert!(
            modern.route("a__job").is_some(),
            "the tool that requires a task is listed"
        );
        let json = String::from_utf8(modern.tools_json.to_vec()).unwrap();
        assert!(json.contains(r#""taskSupport":"required""#), "{json}");
        // Without tasks, or reached in 2026 without the extension: not carried to 2026 clients.
        let (_, modern) = with(false, false);
        assert!(!modern.caps.tasks && modern.route("a__job").is_none());
        let (legacy, modern) = with(true, true);
        assert!(legacy.caps.tasks && !modern.caps.tasks && modern.route("a__job").is_none());
    }
}

//! A shard's handles on its backends: for each server, this shard's own HTTP pool, the
//! stdio children the ring assigns to it (supervised here), or pointers to the shards that
//! own them; and the reporters that turn what a backend says (its lists, list_changed,
//! resources/updated) into control-thread events and broadcasts to every shard.
//! Used at shard start and by a config reload (`apply.rs`).

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use futures_channel::oneshot;

use crate::catalog::ListsChanged;
use crate::config::Transport;
use crate::shard::{ControlEvent, LocalShard, ShardMsg};
use crate::upstream::http::LocalHttpBackend;
use crate::upstream::stdio::LocalStdioSlot;
use crate::upstream::{discover, LocalBackend};

pub(crate) fn setup_backends(shard: &Rc<LocalShard>, connect_timeout: Duration) {
    let snap = shard.router.snapshot.load_full();
    for spec in &snap.backends {
        setup_backend(shard, spec, connect_timeout);
    }
}

/// Creates this shard's handle on `spec` (its pool, its own stdio children, or pointers
/// to their owners) and starts discovery where this shard is the reporter.
pub(crate) fn setup_backend(
    shard: &Rc<LocalShard>,
    spec: &crate::snapshot::BackendSpec,
    connect_timeout: Duration,
) {
    {
        let owner = shard.router.ring.owner(format!("{}/0", spec.id).as_bytes());
        let backend = match spec.transport {
            Transport::Http => Rc::new(LocalBackend::Http(Rc::new(LocalHttpBackend::new(
                spec.clone(),
                connect_timeout,
            )))),
            Transport::Stdio if spec.instances > 1 => {
                let members = (0..spec.instances)
                    .map(|k| {
                        let key = format!("{}#{k}", spec.id);
                        let owner = shard
                            .router
                            .ring
                            .owner(format!("{}/{k}", spec.id).as_bytes());
                        if owner == shard.id {
                            let member = own_stdio(shard, spec, k, k == 0);
                            shard
                                .router
                                .upstreams
                                .backends
                                .borrow_mut()
                                .insert(key, member.clone());
                            member
                        } else {
                            Rc::new(LocalBackend::RemoteStdio {
                                id: key,
                                owner: Rc::new(shard.peers[owner].clone()),
                            })
                        }
                    })
                    .collect();
                Rc::new(LocalBackend::Pool {
                    members,
                    next: Cell::new(shard.id),
                })
            }
            Transport::Stdio if owner == shard.id => own_stdio(shard, spec, 0, true),
            Transport::Stdio => Rc::new(LocalBackend::RemoteStdio {
                id: spec.id.clone(),
                owner: Rc::new(shard.peers[owner].clone()),
            }),
        };
        if spec.transport == Transport::Http && owner == shard.id {
            monoio::spawn(discover_http(
                shard.clone(),
                spec.id.clone(),
                backend.clone(),
                spec.timeout,
            ));
        }
        shard
            .router
            .upstreams
            .backends
            .borrow_mut()
            .insert(spec.id.clone(), backend);
    }
}

/// Starts a stdio child this shard owns. Only the reporting instance (the first of a pool)
/// feeds the catalog; the others serve calls.
fn own_stdio(
    shard: &Rc<LocalShard>,
    spec: &crate::snapshot::BackendSpec,
    instance: usize,
    reports: bool,
) -> Rc<LocalBackend> {
    let slot = Rc::new(LocalStdioSlot::new(spec.clone()).with_instance(instance));
    let (tx, rx) = oneshot::channel();
    let report = reports.then(|| reporter(shard, &spec.id));
    let updates = updates_broadcaster(shard, &spec.id, instance as u32);
    monoio::spawn(crate::upstream::stdio::supervise(
        slot.clone(),
        spec.timeout,
        report,
        updates,
        tx,
        shard.router.upstreams.spawn_gate.clone(),
    ));
    shard
        .router
        .upstreams
        .owned
        .borrow_mut()
        .push((slot.clone(), Some(rx)));
    Rc::new(LocalBackend::Stdio(slot))
}

/// Turns a backend's `notifications/resources/updated` and `notifications/tasks/status`
/// into a broadcast to every shard (the subscribed sessions, and the session whose task it
/// is, may live anywhere). `instance`: which process of the server's pool sent it (a task's
/// status is told by the process that holds the task).
fn updates_broadcaster(
    shard: &Rc<LocalShard>,
    server: &str,
    instance: u32,
) -> crate::upstream::stdio::Updates {
    let peers = shard.peers.clone();
    let server = server.to_string();
    Rc::new(move |msg: Vec<u8>| {
        use sonic_rs::JsonValueTrait;
        if memchr::memmem::find(&msg, b"notifications/tasks/status").is_some() {
            for p in &peers {
                let _ = p.send(ShardMsg::TaskStatus {
                    server: server.clone(),
                    instance,
                    msg: msg.clone(),
                });
            }
            return;
        }
        let Some(uri) = sonic_rs::get(&msg[..], ["params", "uri"])
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
        else {
            return;
        };
        for p in &peers {
            let _ = p.send(ShardMsg::ResourceUpdated {
                server: server.clone(),
                uri: uri.clone(),
            });
        }
    })
}

fn reporter(shard: &Rc<LocalShard>, server: &str) -> crate::upstream::stdio::Report {
    let control = shard.control.clone();
    let server = server.to_string();
    Rc::new(move |result, announced| {
        let _ = control.send(ControlEvent::Discovered {
            server: server.clone(),
            result,
            announced,
        });
    })
}

/// Discovers an HTTP backend's catalog (retrying with backoff until it answers), then listens
/// for its list changes (its 2025 GET stream, its 2026 `subscriptions/listen`, whichever it
/// speaks) and re-discovers when one says its lists changed (paced: `upstream/relist.rs`).
async fn discover_http(
    shard: Rc<LocalShard>,
    server: String,
    backend: Rc<LocalBackend>,
    timeout: Duration,
) {
    let report = reporter(&shard, &server);
    let (relist_tx, mut relist_rx) = crate::upstream::relist::channel();
    let mut announced = ListsChanged::NONE;
    loop {
        let mut backoff = Duration::from_millis(250);
        let found = loop {
            if shard.router.draining.get() || backend.retired() {
                return;
            }
            // Boxed: the handshake and the listing are large futures, and this task spends
            // its life waiting for a list change with neither in flight.
            let caps = match &*backend {
                LocalBackend::Http(h) => Box::pin(h.capabilities(timeout)).await,
                _ => Ok(Default::default()),
            };
            match Box::pin(async { discover(&server, &backend, caps?, timeout).await }).await {
                Ok(found) => {
                    tracing::info!(server = %server, tools = found.tools.len(), prompts = found.prompts.len(), resources = found.resources.len(), "http backend ready");
                    let caps = found.caps.clone();
                    report(Ok(found), announced.declared_by(&caps));
                    break caps;
                }
                Err(e) => {
                    tracing::warn!(server = %server, "http backend discovery failed: {e}; retrying in {backoff:?}");
                    report(Err(e.reason_for_backend()), ListsChanged::NONE);
                }
            }
            monoio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(30));
        };
        if let LocalBackend::Http(h) = &*backend {
            // Both start once and keep running; a backend whose era changed (a restart as
            // another version) gets the stream it now offers at the next re-list.
            let (legacy, modern) = h.eras();
            if legacy {
                h.ensure_listening(
                    0,
                    crate::route::pushes::push_handler(
                        &shard.router,
                        &server,
                        Some(relist_tx.clone()),
                        crate::route::streams::PushFrom::default(),
                    ),
                    shard.router.draining.clone(),
                );
            }
            if modern && found.list_changed {
                h.ensure_subscribed(relist_tx.clone(), shard.router.draining.clone());
            }
        }
        // This task holds a poker itself (for streams started later): it ends by watching.
        let next = monoio::select! {
            k = relist_rx.next() => k,
            _ = gone(&shard, &backend) => None,
        };
        match next {
            Some(kinds) => announced = kinds,
            None => return,
        }
    }
}

/// Resolves once the shard drains or a reload retires the backend (polled: both are rare
/// and not urgent).
async fn gone(shard: &LocalShard, backend: &LocalBackend) {
    while !shard.router.draining.get() && !backend.retired() {
        monoio::time::sleep(Duration::from_millis(250)).await;
    }
}

//! The `tasks/*` methods: a task id the client names is opened (`cluster::task_id`, bound to
//! its session or caller), and the request goes to the backend, replica and upstream that
//! created the task, with the backend's own id spliced in (`forward`, pinned by
//! `TaskCall::pin`); the answer comes back through the finisher (`route/tasks/wire.rs`).
//! 2025 `tasks/list` is the gateway's own: the session's remembered tasks, each asked for
//! with `tasks/get`.

use std::rc::Rc;

use crate::cluster::task_id::{open, Opened};
use crate::error::McpError;
use crate::route::call::Call;
use crate::route::forward::Answer;
use crate::route::router::Router;
use crate::route::tables::tasks::{Follow, TaskCall, TaskOwner};
use crate::route::tasks::wire::unknown_task;
use crate::snapshot::SharedSnapshot;

/// Tasks per 2025 `tasks/list` page (each costs one `tasks/get` to its backend).
pub const LIST_PAGE: usize = 16;

/// Whose task id a request may name.
pub(crate) fn owner_of(call: &Call<'_>) -> TaskOwner {
    if call.era.modern {
        let name = call
            .era
            .principal
            .as_ref()
            .map_or("anonymous", |p| &*p.name);
        TaskOwner::Principal(name.into())
    } else {
        TaskOwner::Session(call.sid.into())
    }
}

/// The task `id` names for `owner`, with its backend's index, if this node may serve it:
/// one it minted, or another node's whose backend any node reaches alike (a stateless
/// 2026 HTTP backend: the same replica, no upstream session to find).
fn resolve(snap: &SharedSnapshot, id: &str, owner: &TaskOwner) -> Option<(Opened, Option<usize>)> {
    let opened = open(&snap.cluster, id, owner.as_owner())?;
    let backend = snap.backend_index(&opened.task.server);
    let ours = opened.node.as_deref() == snap.cluster.node.as_deref();
    let anywhere = opened.task.epoch == 0
        && backend.is_some_and(|b| snap.backends[b].transport == crate::config::Transport::Http);
    (ours || anywhere).then_some((opened, backend))
}

/// `tasks/get`, `tasks/update`, `tasks/cancel` or `tasks/result` of the task the request
/// names.
pub(crate) async fn follow(call: Call<'_>, what: Follow) -> Result<Answer, McpError> {
    let (Some(id), Some(range)) = (call.env.task_id_str.as_deref(), call.env.task_id.clone())
    else {
        return Err(McpError::InvalidParams("params.taskId is required".into()));
    };
    let owner = owner_of(&call);
    let (opened, backend) = {
        let snap = call.router.snapshot.load();
        resolve(&snap, id, &owner).ok_or_else(unknown_task)?
    };
    let Some(backend) = backend else {
        // Its server left the configuration: the task went with it.
        let cx = crate::route::tasks::wire::Cx {
            router: call.router,
            server: &opened.task.server,
            client_id: call.env.id_bytes(call.body),
            modern: call.era.modern,
        };
        return Ok(Answer::Json(crate::route::tasks::wire::lost_answer(
            &cx,
            id,
            &opened.task,
            what,
            "its server is no longer configured",
        )));
    };
    if opened.task.to_modern {
        // A 2025 session's task on a backend that speaks only 2026: the bridge asks it.
        return crate::route::tasks::to_modern_follow::follow(call, id.into(), opened.task, what)
            .await;
    }
    if call.era.modern && opened.task.bridged.is_some() {
        // A 2026 caller's task on a backend reached through its 2025 session.
        let task = opened.task;
        return crate::route::tasks::to_legacy::follow(call, backend, id, task, what).await;
    }
    let mut quoted = Vec::with_capacity(opened.task.backend_task.len() + 2);
    crate::wire::jsonrpc::push_json_str(&mut quoted, &opened.task.backend_task);
    let mut era = call.era;
    era.retry_safe = false;
    era.task = Some(Rc::new(TaskCall::Follow {
        gw_id: id.into(),
        task: opened.task,
        what,
    }));
    let call = Call { era, ..call };
    crate::route::forward::forward(call, backend, Some((range, &quoted[..]))).await
}

/// 2025 `tasks/list`: the tasks session `sid` created (the newest it remembers), a page at
/// a time, each as its backend reports it now; tasks their backends no longer know are left
/// out. `cursor` is the gateway's own (`t<offset>`).
pub(crate) async fn list(call: Call<'_>) -> Result<Answer, McpError> {
    let Call {
        router,
        sid,
        body,
        env,
        era,
    } = call;
    let from = match env.cursor.clone().map(|r| &body[r]) {
        None | Some(b"null") => 0,
        Some(raw) => sonic_rs::from_slice::<String>(raw)
            .ok()
            .and_then(|c| c.strip_prefix('t').and_then(|n| n.parse::<usize>().ok()))
            .ok_or_else(|| McpError::InvalidParams("invalid cursor".into()))?,
    };
    let ids: Vec<Box<str>> = router
        .sessions
        .borrow()
        .get(sid)
        .map(|s| s.tasks.iter().map(|t| t.gw_id.clone()).collect())
        .unwrap_or_default();
    if from > ids.len() {
        return Err(McpError::InvalidParams("invalid cursor".into()));
    }
    let to = (from + LIST_PAGE).min(ids.len());
    let mut out = br#"{"tasks":["#.to_vec();
    let mut first = true;
    for gw in &ids[from..to] {
        if let Some(task) = get_one(router, sid, &era, gw).await {
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(&task);
        }
    }
    out.push(b']');
    if to < ids.len() {
        out.extend_from_slice(format!(r#","nextCursor":"t{to}""#).as_bytes());
    }
    out.push(b'}');
    Ok(Answer::Json(crate::wire::ok_result(
        env.id_bytes(body),
        &out,
    )))
}

/// One task of `sid` as `tasks/get` reports it (the result object), `None` when unknown.
async fn get_one(
    router: &Rc<Router>,
    sid: &str,
    era: &crate::route::forward::Era,
    gw: &str,
) -> Option<Vec<u8>> {
    // The gateway's own request travels as one of the session's (its in-flight table is
    // keyed by session and id): an id none of the client's requests in flight holds, so a
    // client's `notifications/cancelled` never reaches it and it never displaces theirs.
    let id = (0u32..)
        .map(|n| format!("\"o1m-tasks-list-{n}\""))
        .find(|id| {
            let key = crate::route::tables::calls::inflight_key(sid, id.as_bytes());
            !router.calls.inflight.borrow().contains_key(&key[..])
        })?;
    let mut body =
        format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tasks/get","params":{{"taskId":"#)
            .into_bytes();
    crate::wire::jsonrpc::push_json_str(&mut body, gw);
    body.extend_from_slice(b"}}");
    let env = crate::wire::jsonrpc::Envelope::parse(&body).ok()?;
    let call = Call {
        router,
        sid,
        body: &body,
        env: &env,
        era: era.clone(),
    };
    let Ok(Answer::Json(reply)) = Box::pin(follow(call, Follow::Get)).await else {
        return None;
    };
    let r = sonic_rs::get(&reply[..], ["result"]).ok()?;
    Some(r.as_raw_str().as_bytes().to_vec())
}

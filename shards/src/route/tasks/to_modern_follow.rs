//! The `tasks/*` requests of a 2025 session that name a task carried to a backend that
//! speaks only 2026 (`to_modern.rs` has the shapes and rules): each becomes the 2026
//! requests it takes, sent to the task's backend, replica and upstream through the usual
//! forwarding (`route/forward.rs`, pinned by `TaskCall::Follow`, the backend's id spliced
//! in, its lost-task rules applied by `route/tasks/wire.rs`); a task whose answer the
//! session holds is answered here. `tasks/result` waits in `to_modern_result.rs`.

use std::rc::Rc;
use std::time::Instant;

use crate::cluster::task_id::TaskRef;
use crate::error::McpError;
use crate::route::call::Call;
use crate::route::forward::{Answer, Era};
use crate::route::router::Router;
use crate::route::tables::tasks::{Follow, TaskCall};
use crate::route::tasks::to_modern::{
    held_task, legacy_task, status_of, terminal, with_related, CANCEL_WAIT, POLL_MIN,
};
use crate::route::tasks::wire::{lost_answer, Cx};
use crate::wire::jsonrpc::{push_json_str, Envelope};
use crate::wire::ok_result;

/// The `tasks/*` request of a 2025 session naming a bridged task (`methods::follow`).
pub(crate) async fn follow(
    call: Call<'_>,
    gw_id: Rc<str>,
    task: TaskRef,
    what: Follow,
) -> Result<Answer, McpError> {
    if task.backend_task.is_empty() {
        return held_follow(&call, &gw_id, &task, what);
    }
    let id = call.env.id_bytes(call.body).to_vec();
    let ask = |method: &'static str, what: Follow| {
        let (router, sid, era) = (call.router, call.sid, &call.era);
        let (gw_id, task, id) = (&gw_id, &task, &id);
        async move { ask(router, sid, era, gw_id, task, method, b"", what, id).await }
    };
    match what {
        Follow::Get => {
            let r = ask("tasks/get", Follow::Get).await?;
            Ok(Answer::Json(mapped(&task.server, &r, &gw_id, &id)))
        }
        Follow::Cancel => {
            let before = ask("tasks/get", Follow::Get).await?;
            match result_of(&before).and_then(status_of) {
                None => return Ok(Answer::Json(mapped(&task.server, &before, &gw_id, &id))),
                Some(s) if terminal(s) => {
                    return Err(McpError::InvalidParams(format!(
                        "the task has already ended: it is {s}"
                    )))
                }
                Some(_) => {}
            }
            let ack = ask("tasks/cancel", Follow::Cancel).await?;
            if result_of(&ack).is_none() {
                return Ok(Answer::Json(ack));
            }
            let until = Instant::now() + CANCEL_WAIT;
            loop {
                let now = ask("tasks/get", Follow::Get).await?;
                let done = result_of(&now).and_then(status_of).is_none_or(terminal);
                if done || Instant::now() >= until {
                    return Ok(Answer::Json(mapped(&task.server, &now, &gw_id, &id)));
                }
                monoio::time::sleep(POLL_MIN).await;
            }
        }
        Follow::Result => crate::route::tasks::to_modern_result::start(call, gw_id, task),
        Follow::Update => Err(McpError::MethodNotFound("tasks/update".into())),
    }
}

/// A follow-up of a task whose answer the session holds.
fn held_follow(
    call: &Call<'_>,
    gw_id: &str,
    task: &TaskRef,
    what: Follow,
) -> Result<Answer, McpError> {
    let held = call.router.sessions.borrow().get(call.sid).and_then(|s| {
        s.tasks
            .iter()
            .find(|t| &*t.gw_id == gw_id)
            .and_then(|t| t.held.clone())
    });
    let client_id = call.env.id_bytes(call.body);
    let Some(held) = held else {
        let cx = Cx {
            router: call.router,
            server: &task.server,
            client_id,
            modern: false,
        };
        let why = "the gateway no longer holds its answer (the session created many tasks since)";
        return Ok(Answer::Json(lost_answer(&cx, gw_id, task, what, why)));
    };
    match what {
        Follow::Get => Ok(Answer::Json(ok_result(client_id, &held_task(gw_id, task)))),
        Follow::Result => Ok(Answer::Json(ok_result(
            client_id,
            &with_related(Some(&held), gw_id),
        ))),
        Follow::Cancel => Err(McpError::InvalidParams(
            "the task has already ended: it is completed".into(),
        )),
        Follow::Update => Err(McpError::MethodNotFound("tasks/update".into())),
    }
}

/// The `result` object of a response, `None` for an error.
pub(crate) fn result_of(resp: &[u8]) -> Option<&[u8]> {
    let r = sonic_rs::get(resp, ["result"]).ok()?;
    let raw = r.as_raw_str();
    let start = raw.as_ptr() as usize - resp.as_ptr() as usize;
    Some(&resp[start..start + raw.len()])
}

/// A backend's `tasks/get` response as the 2025 client's (its id already the client's).
fn mapped(server: &str, resp: &[u8], gw: &str, client_id: &[u8]) -> Vec<u8> {
    let Some(obj) = result_of(resp) else {
        return resp.to_vec();
    };
    match legacy_task(server, obj, gw) {
        Ok(t) => ok_result(client_id, &t),
        Err(e) => e.to_response(client_id),
    }
}

/// Sends `method` (`tasks/get`, `tasks/cancel`, `tasks/update` with `more` in its params)
/// for bridged `task` to its backend, replica and upstream, under request id `id` (raw
/// JSON); the response, its id `id`, after the finisher's lost-task rules
/// (`route/tasks/wire.rs`).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn ask(
    router: &Rc<Router>,
    sid: &str,
    era: &Era,
    gw_id: &Rc<str>,
    task: &TaskRef,
    method: &str,
    more: &[u8],
    what: Follow,
    id: &[u8],
) -> Result<Vec<u8>, McpError> {
    let backend = router
        .snapshot
        .load()
        .backend_index(&task.server)
        .ok_or_else(|| {
            crate::upstream::task_lost(&task.server, "its server is no longer configured")
        })?;
    let mut body = Vec::with_capacity(96 + id.len() + gw_id.len() + more.len());
    body.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    body.extend_from_slice(id);
    body.extend_from_slice(br#","method":"#);
    push_json_str(&mut body, method);
    body.extend_from_slice(br#","params":{"taskId":"#);
    push_json_str(&mut body, gw_id);
    body.extend_from_slice(more);
    body.extend_from_slice(b"}}");
    let env = Envelope::parse(&body)?;
    let range = env
        .task_id
        .clone()
        .ok_or_else(|| McpError::Gateway("a task request without its task id".into()))?;
    let mut quoted = Vec::with_capacity(task.backend_task.len() + 2);
    push_json_str(&mut quoted, &task.backend_task);
    let mut era = era.clone();
    era.retry_safe = false;
    era.task = Some(Rc::new(TaskCall::Follow {
        gw_id: gw_id.clone(),
        task: task.clone(),
        what,
    }));
    let call = Call {
        router,
        sid,
        body: &body,
        env: &env,
        era,
    };
    let answer = Box::pin(crate::route::forward::forward(
        call,
        backend,
        Some((range, &quoted[..])),
    ))
    .await?;
    match answer {
        Answer::Json(b) => Ok(b),
        Answer::Parts(head, shared, tail, _) => Ok([&head[..], &shared[..], &tail[..]].concat()),
        // Notifications before the answer (a log line): only the answer matters here.
        Answer::Stream(mut rx) => {
            let mut last = None;
            while let Some(m) = crate::rt::next(&mut rx).await {
                last = Some(m);
            }
            last.ok_or_else(|| McpError::BackendProtocol {
                server: task.server.clone(),
                reason: format!("its answer to {method} never came"),
            })
        }
    }
}

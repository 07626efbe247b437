//! A 2025-11-25 session's tasks on a backend that speaks only 2026-07-28 (the tasks extension
//! `io.modelcontextprotocol/tasks`, SEP-2663): the gateway plays the 2026 client toward the
//! backend and shows the session 2025 experimental tasks.
//!
//! - Catalog: the 2025 catalog keeps such a backend's tools' `execution.taskSupport`, lists
//!   its tools that require a task, and offers the tools that name none as `"optional"`
//!   (2026 tasks are server-directed: a 2026 tool says nothing about them;
//!   `catalog::build::offer_tasks`, `src/control/world.rs`, docs/decisions/0006);
//!   `initialize` advertises `tasks{list,cancel,requests.tools.call}` as for a 2025 backend.
//! - `tools/call` with `params.task` goes out as a 2026 `tools/call` whose `_meta` declares
//!   the extension, with the session's `elicitation`/`sampling`/`roots` ([`caps`], set by
//!   `route/forward.rs` for task calls only). An `input_required` answer before any task
//!   (MRTR) is bridged like any call's (`route/relay_input.rs`). The backend's
//!   `CreateTaskResult` (`resultType: "task"`, flat) becomes the 2025 one,
//!   `{task:{taskId,status,statusMessage?,createdAt,lastUpdatedAt,ttl,pollInterval?}}`,
//!   under the gateway's id (`cluster::task_id`, `TaskRef::to_modern` set: bound to the
//!   session, naming server, replica or instance, upstream and the backend's id), and the
//!   session remembers it like its other tasks (`tasks/list`).
//! - A plain answer instead of a task is wrapped as a task already `completed` whose
//!   `tasks/result` returns it: the 2025 spec says a receiver that accepts a task-augmented
//!   request MUST return a `CreateTaskResult` (tasks.mdx, "Result Retrieval" 1), and the
//!   gateway declared `tasks.requests.tools.call`. The session holds that answer (its id has
//!   no backend task, `held`): at most [`HELD_BYTES`] each and [`SESSION_HELD_BYTES`] per
//!   session; a larger one goes back plain, which is what the answer would have been
//!   without tasks. Errors go back as errors.
//! - `tasks/get` → 2026 `tasks/get` (`Mcp-Name`: the backend's id), the task mapped field by
//!   field ([`legacy_task`]): the five statuses have the same names in both eras (`working`,
//!   `input_required`, `completed`, `failed`, `cancelled`; any other is the backend's
//!   protocol error), `ttlMs` → `ttl`, `pollIntervalMs` → `pollInterval`, a `failed` task's
//!   `error.message` → `statusMessage` when it has none; `inputRequests`, `result` and
//!   `error` are left out (2025 hands them out through `tasks/result`). A completed task
//!   whose result has `isError` stays `completed`, as the backend says.
//! - `tasks/cancel` → 2026 `tasks/get` first (a terminal task is -32602, as 2025 requires),
//!   then `tasks/cancel`, then `tasks/get` until the task ends (at most [`CANCEL_WAIT`]: a
//!   2026 cancel is eventually consistent), answered with the task as it then is.
//! - The follow-ups are sent by `to_modern_follow.rs`; `tasks/result` waits in
//!   `to_modern_result.rs` (polls, relays input requests, `tasks/update`).
//! - `notifications/tasks/status`: none are made (optional in 2025; clients poll).
//! - A backend that lost the task (unknown id, a restarted stdio child, its server gone):
//!   `failed` with "backend … lost the task", as for 2025 tasks (`route/tasks/wire.rs`).

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use sonic_rs::{JsonValueMutTrait, JsonValueTrait};

use crate::cluster::task_id::{mint, now_ms, TaskRef};
use crate::error::McpError;
use crate::route::router::Router;
use crate::route::tables::tasks::{SessionTask, TaskOwner, MAX_SESSION_TASKS};
use crate::route::tasks::wire::{iso8601, new_task, Before, Cx};
use crate::upstream::BackendReply;
use crate::wire::jsonrpc::push_json_str;
use crate::wire::ok_result;

/// Largest plain answer held as a completed task's result.
pub const HELD_BYTES: usize = 1 << 20;
/// Most bytes of such answers one session holds.
pub const SESSION_HELD_BYTES: usize = 4 << 20;
/// How long a held answer's task id is honoured (its `ttl`).
const HELD_LIFE_S: u64 = 600;
/// How long `tasks/cancel` waits for the cancelled task to end.
pub const CANCEL_WAIT: Duration = Duration::from_secs(2);
/// Bounds of the interval between two polls of a task (its `pollIntervalMs`, clamped).
pub const POLL_MIN: Duration = Duration::from_millis(100);
/// See [`POLL_MIN`].
pub const POLL_MAX: Duration = Duration::from_secs(2);

/// Are `server`'s tasks carried to 2025 sessions through this bridge (it speaks only 2026
/// and declared the extension)?
pub(crate) fn bridged(router: &Router, server: &str) -> bool {
    let snap = router.snapshot.load();
    snap.backend_index(server)
        .and_then(|b| snap.catalog.backend_caps.get(b))
        .is_some_and(|c| c.modern_only && c.tasks_ext)
}

/// The `clientCapabilities` a 2025 session's task call declares to a 2026 backend: the
/// extension, and what the session can answer.
pub(crate) fn caps(router: &Router, sid: &str) -> Arc<[u8]> {
    let own = router
        .sessions
        .borrow()
        .get(sid)
        .and_then(|s| s.input_caps.clone());
    let mut out = format!(
        r#"{{"extensions":{{"{}":{{}}}}"#,
        crate::catalog::TASKS_EXTENSION
    )
    .into_bytes();
    if let Some(own) = own.filter(|o| o.len() > 2) {
        out.push(b',');
        out.extend_from_slice(&own[1..own.len() - 1]);
    }
    out.push(b'}');
    out.into()
}

/// The answer to a 2025 task-augmented `tools/call` of a bridged backend (module docs).
pub(crate) fn created(cx: &Cx<'_>, owner: &TaskOwner, reply: BackendReply) -> Before {
    let TaskOwner::Session(sid) = owner else {
        return Before::Go(Ok(reply));
    };
    let Ok(result) = sonic_rs::get(&reply.body[..], ["result"]) else {
        return Before::Go(Ok(reply));
    };
    let result = result.as_raw_str().as_bytes();
    let is_task = sonic_rs::get(result, ["resultType"]).is_ok_and(|t| t.as_str() == Some("task"));
    if !is_task {
        return hold(cx, sid, result).unwrap_or(Before::Go(Ok(reply)));
    }
    let fail = |reason: String| {
        Before::Done(
            McpError::BackendProtocol {
                server: cx.server.to_string(),
                reason,
            }
            .to_response(cx.client_id),
        )
    };
    let backend_task = sonic_rs::get(result, ["taskId"])
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .filter(|t| !t.is_empty());
    let Some(backend_task) = backend_task else {
        return fail("its CreateTaskResult has no taskId".into());
    };
    let task = TaskRef {
        to_modern: true,
        ..new_task(cx.server, &reply, &["result", "ttlMs"], backend_task)
    };
    let cluster = cx.router.snapshot.load().cluster.clone();
    let Some(gw) = mint(&cluster, &task, owner.as_owner()) else {
        return fail(format!(
            "its task id is longer than {} bytes, which the gateway does not carry",
            crate::cluster::task_id::MAX_BACKEND_TASK_ID
        ));
    };
    let obj = match legacy_task(cx.server, result, &gw) {
        Ok(o) => o,
        Err(e) => return Before::Done(e.to_response(cx.client_id)),
    };
    remember(cx.router, sid, &gw, &task, None);
    Before::Done(ok_result(cx.client_id, &nest(&obj)))
}

/// `{"task":obj}`.
fn nest(obj: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(obj.len() + 10);
    out.extend_from_slice(b"{\"task\":");
    out.extend_from_slice(obj);
    out.push(b'}');
    out
}

/// A plain answer `result` held as a completed task's, if the session has room for it.
fn hold(cx: &Cx<'_>, sid: &Rc<str>, result: &[u8]) -> Option<Before> {
    let held_now: usize = cx
        .router
        .sessions
        .borrow()
        .get(sid)?
        .tasks
        .iter()
        .filter_map(|t| t.held.as_ref().map(|h| h.len()))
        .sum();
    if result.len() > HELD_BYTES || held_now + result.len() > SESSION_HELD_BYTES {
        return None;
    }
    let created_ms = now_ms();
    let task = TaskRef {
        server: cx.server.to_string(),
        replica: 0,
        epoch: 0,
        created_ms,
        expires: created_ms / 1000 + HELD_LIFE_S,
        backend_task: String::new(),
        to_modern: true,
        bridged: None,
    };
    let cluster = cx.router.snapshot.load().cluster.clone();
    let gw = mint(
        &cluster,
        &task,
        crate::cluster::task_id::Owner::Session(sid),
    )?;
    remember(cx.router, sid, &gw, &task, Some(result.into()));
    Some(Before::Done(ok_result(
        cx.client_id,
        &nest(&held_task(&gw, &task)),
    )))
}

/// The session remembers its task (for `tasks/list`, and a held answer).
fn remember(router: &Router, sid: &str, gw: &str, task: &TaskRef, held: Option<Rc<[u8]>>) {
    if let Some(s) = router.sessions.borrow_mut().get_mut(sid) {
        if s.tasks.len() >= MAX_SESSION_TASKS {
            s.tasks.pop_front();
        }
        s.tasks.push_back(SessionTask {
            gw_id: gw.into(),
            server: task.server.as_str().into(),
            backend_task: task.backend_task.as_str().into(),
            replica: task.replica,
            held,
        });
    }
}

/// The 2025 `Task` of a held answer: completed when created.
pub(crate) fn held_task(gw: &str, task: &TaskRef) -> Vec<u8> {
    let at = iso8601(task.created_ms);
    let mut out = Vec::with_capacity(160 + gw.len());
    out.extend_from_slice(b"{\"taskId\":");
    push_json_str(&mut out, gw);
    out.extend_from_slice(b",\"status\":\"completed\",\"createdAt\":\"");
    out.extend_from_slice(at.as_bytes());
    out.extend_from_slice(b"\",\"lastUpdatedAt\":\"");
    out.extend_from_slice(at.as_bytes());
    out.extend_from_slice(format!("\",\"ttl\":{}}}", HELD_LIFE_S * 1000).as_bytes());
    out
}

/// The status of a 2026 (or already mapped) task object, if it is one of the five.
pub(crate) fn status_of(obj: &[u8]) -> Option<&'static str> {
    let v = sonic_rs::get(obj, ["status"]).ok()?;
    [
        "working",
        "input_required",
        "completed",
        "failed",
        "cancelled",
    ]
    .into_iter()
    .find(|s| v.as_str() == Some(*s))
}

/// Is `status` terminal?
pub(crate) fn terminal(status: &str) -> bool {
    matches!(status, "completed" | "failed" | "cancelled")
}

/// A 2026 task object (`CreateTaskResult`, `DetailedTask`) as a 2025 `Task` under the
/// gateway's id `gw` (module docs). An object already in the 2025 shape maps to itself.
pub(crate) fn legacy_task(server: &str, obj: &[u8], gw: &str) -> Result<Vec<u8>, McpError> {
    let Some(status) = status_of(obj) else {
        return Err(McpError::BackendProtocol {
            server: server.to_string(),
            reason: "its task has no status the tasks extension names".into(),
        });
    };
    // A tool call that completed with `isError` is `failed` in 2025 ("for tool calls
    // specifically, this includes cases where the tool call result has isError set to
    // true"); the extension keeps it `completed`. `tasks/result` returns the result as is.
    let status = if status == "completed"
        && sonic_rs::get(obj, ["result", "isError"]).is_ok_and(|v| v.as_bool() == Some(true))
    {
        "failed"
    } else {
        status
    };
    let field = |k: &str| sonic_rs::get(obj, [k]).ok();
    let text = |k: &str| field(k).and_then(|v| v.as_str().map(str::to_string));
    let number = |a: &str, b: &str| field(a).or_else(|| field(b)).and_then(|v| v.as_u64());
    let message = text("statusMessage").or_else(|| {
        (status == "failed")
            .then(|| sonic_rs::get(obj, ["error", "message"]).ok())
            .flatten()
            .and_then(|v| v.as_str().map(str::to_string))
    });
    let created = text("createdAt").unwrap_or_else(|| iso8601(now_ms()));
    let updated = text("lastUpdatedAt").unwrap_or_else(|| created.clone());
    let mut out = Vec::with_capacity(200 + gw.len());
    out.extend_from_slice(b"{\"taskId\":");
    push_json_str(&mut out, gw);
    out.extend_from_slice(b",\"status\":");
    push_json_str(&mut out, status);
    if let Some(m) = message {
        out.extend_from_slice(b",\"statusMessage\":");
        push_json_str(&mut out, &m);
    }
    out.extend_from_slice(b",\"createdAt\":");
    push_json_str(&mut out, &created);
    out.extend_from_slice(b",\"lastUpdatedAt\":");
    push_json_str(&mut out, &updated);
    out.extend_from_slice(b",\"ttl\":");
    match number("ttlMs", "ttl") {
        Some(ms) => out.extend_from_slice(ms.to_string().as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    if let Some(ms) = number("pollIntervalMs", "pollInterval") {
        out.extend_from_slice(format!(",\"pollInterval\":{ms}").as_bytes());
    }
    out.push(b'}');
    Ok(out)
}

/// `obj` (a JSON object; anything else counts as `{}`) with
/// `_meta["io.modelcontextprotocol/related-task"]` naming task `gw`.
pub(crate) fn with_related(obj: Option<&[u8]>, gw: &str) -> Vec<u8> {
    let mut v: sonic_rs::Value = obj
        .and_then(|o| sonic_rs::from_slice(o).ok())
        .filter(|v: &sonic_rs::Value| v.is_object())
        .unwrap_or_else(sonic_rs::Value::new_object);
    let related = sonic_rs::json!({ "taskId": gw });
    if let Some(o) = v.as_object_mut() {
        match o.get_mut(&"_meta").and_then(|m| m.as_object_mut()) {
            Some(meta) => {
                meta.insert(&crate::route::tasks::wire::RELATED, related);
            }
            None => {
                let mut meta = sonic_rs::Object::new();
                meta.insert(&crate::route::tasks::wire::RELATED, related);
                o.insert(&"_meta", meta);
            }
        }
    }
    sonic_rs::to_vec(&v).unwrap_or_else(|_| b"{}".to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_2026_task_maps_to_the_2025_shape_field_by_field() {
        let modern = br#"{"resultType":"complete","taskId":"b-1","status":"input_required","statusMessage":"waiting","createdAt":"2026-01-01T00:00:00Z","lastUpdatedAt":"2026-01-01T00:00:01Z","ttlMs":60000,"pollIntervalMs":250,"inputRequests":{"k":{"method":"elicitation/create"}}}"#;
        let out = legacy_task("s", modern, "gw.1").unwrap();
        let v: sonic_rs::Value = sonic_rs::from_slice(&out).unwrap();
        assert_eq!(v["taskId"].as_str(), Some("gw.1"));
        assert_eq!(v["status"].as_str(), Some("input_required"));
        assert_eq!(v["statusMessage"].as_str(), Some("waiting"));
        assert_eq!(v["createdAt"].as_str(), Some("2026-01-01T00:00:00Z"));
        assert_eq!(v["lastUpdatedAt"].as_str(), Some("2026-01-01T00:00:01Z"));
        assert_eq!(v["ttl"].as_u64(), Some(60_000));
        assert_eq!(v["pollInterval"].as_u64(), Some(250));
        for gone in ["resultType", "inputRequests", "ttlMs", "pollIntervalMs"] {
            assert!(v.get(gone).is_none(), "{gone} left out: {v}");
        }
        // Mapping the mapped object changes nothing.
        assert_eq!(legacy_task("s", &out, "gw.1").unwrap(), out);
        // A failed task's error becomes its message; no ttl is unlimited.
        let failed = br#"{"taskId":"b","status":"failed","createdAt":"x","lastUpdatedAt":"y","ttlMs":null,"error":{"code":-32603,"message":"boom"}}"#;
        let v: sonic_rs::Value =
            sonic_rs::from_slice(&legacy_task("s", failed, "g").unwrap()).unwrap();
        assert_eq!(v["statusMessage"].as_str(), Some("boom"));
        assert!(v["ttl"].is_null() && v.get("pollInterval").is_none());
        // A tool result with isError: completed in 2026, failed in 2025.
        let tool_error = br#"{"taskId":"b","status":"completed","createdAt":"x","lastUpdatedAt":"y","ttlMs":null,"result":{"content":[],"isError":true}}"#;
        let v: sonic_rs::Value =
            sonic_rs::from_slice(&legacy_task("s", tool_error, "gw").unwrap()).unwrap();
        assert_eq!(v["status"].as_str(), Some("failed"));
        // A status neither era names is the backend's fault.
        let odd = br#"{"taskId":"b","status":"paused"}"#;
        assert!(matches!(
            legacy_task("s", odd, "g"),
            Err(McpError::BackendProtocol { .. })
        ));
    }

    #[test]
    fn related_task_meta_is_added_or_merged() {
        let v: sonic_rs::Value =
            sonic_rs::from_slice(&with_related(Some(br#"{"content":[]}"#), "g")).unwrap();
        assert_eq!(
            v["_meta"]["io.modelcontextprotocol/related-task"]["taskId"].as_str(),
            Some("g")
        );
        let v: sonic_rs::Value = sonic_rs::from_slice(&with_related(
            Some(br#"{"message":"m","_meta":{"k":1}}"#),
            "g",
        ))
        .unwrap();
        assert_eq!(v["_meta"]["k"].as_i64(), Some(1));
        assert_eq!(v["message"].as_str(), Some("m"));
        assert!(v["_meta"]["io.modelcontextprotocol/related-task"].is_object());
        let v: sonic_rs::Value = sonic_rs::from_slice(&with_related(None, "g")).unwrap();
        assert!(v["_meta"]["io.modelcontextprotocol/related-task"].is_object());
    }

    #[test]
    fn statuses_and_their_ends() {
        assert_eq!(status_of(br#"{"status":"working"}"#), Some("working"));
        assert_eq!(status_of(br#"{"status":"done"}"#), None);
        assert!(terminal("cancelled") && terminal("failed") && !terminal("input_required"));
    }
}

//! A 2026-07-28 client's tasks (the extension `io.modelcontextprotocol/tasks`) carried to a
//! backend the gateway reaches through its 2025-11-25 session (a 2025-only backend that
//! declared `tasks.requests.tools.call`): the gateway speaks the extension to the client and
//! 2025 experimental tasks to the backend.
//!
//! - Catalog: the 2026 catalog keeps such a backend's `execution.taskSupport` and lists its
//!   tools that require a task; `server/discover` advertises the extension.
//! - `tools/call` declaring the extension, of a tool with `taskSupport` `optional` or
//!   `required` ([`plan`], [`create`]): the backend gets the call with `params.task: {}` (it
//!   picks the ttl) on the upstream session the 2025 path uses, and its `CreateTaskResult`
//!   becomes the extension's (`to_legacy_wire.rs`) with the gateway's id (`cluster::task_id`,
//!   bound to the caller, naming replica or instance, upstream epoch, backend id and the
//!   shard that created it). Without the extension a tool that requires a task is refused
//!   by the gateway (-32021, `data.requiredCapabilities.extensions`, as a 2026 backend
//!   does); an `optional` one is called plainly.
//! - Follow-ups run on the shard that created the task ([`elsewhere`]: an HTTP backend's
//!   upstream session is that shard's, and so is the task's pending input), pinned to its
//!   replica and upstream session as every task follow-up is:
//!   - `tasks/get` → 2025 `tasks/get`. Statuses map one to one (`working`, `input_required`,
//!     `completed`, `failed`, `cancelled`), `ttl`/`pollInterval` become
//!     `ttlMs`/`pollIntervalMs`, except that `input_required` is shown as `working` (with a
//!     `statusMessage` saying why) until the gateway holds the backend's input request: the
//!     extension's `input_required` must carry `inputRequests` the client can answer. A
//!     `completed` or `failed` task carries the extension's `result` or `error`, fetched
//!     with 2025 `tasks/result` (which answers at once for a terminal task).
//!   - Input (`to_legacy_input.rs`): for an `input_required` task the gateway calls 2025
//!     `tasks/result`, on whose stream the backend sends its elicitation, sampling or roots
//!     request; the call is parked on it exactly as a plain call is (`route/bridge.rs`), and
//!     the request is the task's one `inputRequests` entry until the client's `tasks/update`
//!     answers it.
//!   - `tasks/update` → the answer to that pending request (other keys are ignored), then
//!     the usual ack; `tasks/cancel` → 2025 `tasks/cancel` (a parked input ends), then the
//!     ack (a task that had already ended, or that the backend lost, too).
//! - A backend that lost the task (restarted, upstream session gone, "unknown task") ends it
//!   `failed` with `backend … lost the task`, as for every task (`wire.rs`).

use std::ops::Range;
use std::rc::Rc;

use sonic_rs::JsonValueTrait;

use crate::catalog::{Catalog, NameRoute, TaskSupport};
use crate::cluster::task_id::{open, Owner, TaskRef};
use crate::error::McpError;
use crate::http::response::Reply;
use crate::route::call::Call;
use crate::route::forward::{forward, Answer};
use crate::route::request::McpHttpRequest;
use crate::route::router::Router;
use crate::route::tables::tasks::{Follow, TaskCall};
use crate::route::tasks::to_legacy_input as input;
use crate::route::tasks::to_legacy_wire::task_2026;
use crate::wire::jsonrpc::{push_json_str, splice, Envelope, Kind};

/// The `taskSupport` of a tool whose call a 2026 client's task may bridge: a tool of a
/// backend reached through its 2025 session whose tasks the 2026 catalog carries. `None`
/// for every other tool (checked first: almost no tool declares task support).
pub(crate) fn bridged(catalog: &Catalog, route: &NameRoute, modern: bool) -> Option<TaskSupport> {
    if route.task_support == TaskSupport::None || !modern {
        return None;
    }
    let caps = catalog.backend_caps.get(route.backend)?;
    (caps.tasks_legacy && !caps.tasks_ext).then_some(route.task_support)
}

/// What a 2026 call of such a tool becomes.
pub(crate) enum Plan {
    /// A task: the backend gets `params.task` ([`create`]).
    Task,
    /// A plain call (an `optional` tool called without the extension).
    Plain,
    /// Refused: the tool requires a task and the client did not declare the extension.
    Refuse(McpError),
}

/// The [`Plan`] for a call of tool `name` with `support`, in `era`.
pub(crate) fn plan(era: &crate::route::request::Era, support: TaskSupport, name: &str) -> Plan {
    match (era.task.as_deref(), support) {
        (Some(TaskCall::Create { .. }), _) => Plan::Task,
        (None, TaskSupport::Required) => Plan::Refuse(crate::route::tasks::needs_extension(
            &format!("tools/call of `{name}` (it requires a task)"),
        )),
        _ => Plan::Plain,
    }
}

/// A task-augmented 2025 `tools/call` for a 2026 request: `"task":{}` first in `params`
/// (unless the client sent one), the tool's name the backend's own (`edit`); its answer is
/// the extension's `CreateTaskResult` (`to_legacy_wire::created`).
pub(crate) async fn create(
    call: Call<'_>,
    backend: usize,
    edit: Option<(Range<usize>, &[u8])>,
) -> Result<Answer, McpError> {
    let Call {
        router,
        sid,
        body,
        env,
        mut era,
    } = call;
    let Some(TaskCall::Create { owner }) = era.task.as_deref() else {
        return Err(McpError::Gateway("a bridged task without its owner".into()));
    };
    let owner = owner.clone();
    let params = env
        .params
        .clone()
        .filter(|p| body.get(p.start) == Some(&b'{'))
        .ok_or_else(|| McpError::InvalidParams("params must be an object".into()))?;
    let (name_range, name_json) =
        edit.ok_or_else(|| McpError::InvalidParams("params.name is required".into()))?;
    let insert = params.start + 1;
    let task_field: &[u8] = if env.task { b"" } else { b"\"task\":{}," };
    let mut wire = Vec::with_capacity(body.len() + task_field.len() + name_json.len());
    splice(
        body,
        &[(insert..insert, task_field), (name_range, name_json)],
        &mut wire,
    );
    let env = Envelope::parse(&wire)?;
    era.retry_safe = false;
    era.task = Some(Rc::new(TaskCall::Bridged { owner }));
    let call = Call {
        router,
        sid,
        body: &wire,
        env: &env,
        era,
    };
    forward(call, backend, None).await
}

/// The shard a 2026 `tasks/*` request must run on when it names a bridged task created by
/// another shard of this node (`None`: here, or not a bridged task, or not one this caller
/// may name: the follow-up answers that as usual).
pub fn elsewhere(router: &Router, env: &Envelope<'_>, principal: &str) -> Option<usize> {
    if router.shards < 2 {
        return None;
    }
    let id = env.task_id_str.as_deref()?;
    let snap = router.snapshot.load();
    let opened = open(&snap.cluster, id, Owner::Principal(principal))?;
    let shard = usize::from(opened.task.bridged?);
    (shard != router.id
        && shard < router.shards
        && opened.node.as_deref() == snap.cluster.node.as_deref())
    .then_some(shard)
}

/// Serves `req` on shard `owner` (see [`elsewhere`]) and returns its answer.
pub async fn hand_off(router: &Router, req: &McpHttpRequest, owner: usize) -> Reply {
    let copy = req.stateless_copy();
    router.hand_off(owner, copy).await
}

/// `tasks/get`, `tasks/update` or `tasks/cancel` of bridged task `gw_id` (module docs), on
/// the shard that created it.
pub(crate) async fn follow(
    call: Call<'_>,
    backend: usize,
    gw_id: &str,
    task: TaskRef,
    what: Follow,
) -> Result<Answer, McpError> {
    let id = call.env.id_bytes(call.body);
    let ack = || crate::wire::ok_result(id, br#"{"resultType":"complete"}"#);
    let out = match what {
        Follow::Update => {
            input::answer(&call, gw_id, &task)?;
            ack()
        }
        Follow::Cancel => {
            input::forget(call.router, gw_id);
            let r = ask(&call, backend, gw_id, &task, Follow::Cancel).await?;
            if sonic_rs::get(&r[..], ["error"]).is_ok() {
                r
            } else {
                ack()
            }
        }
        Follow::Get => get(&call, backend, gw_id, &task).await?,
        Follow::Result => return Err(McpError::MethodNotFound("tasks/result".into())),
    };
    Ok(Answer::Json(out))
}

/// `tasks/get`: the backend's task in the extension's shape, with its input request or its
/// final result or error.
async fn get(
    call: &Call<'_>,
    backend: usize,
    gw_id: &str,
    task: &TaskRef,
) -> Result<Vec<u8>, McpError> {
    let r = ask(call, backend, gw_id, task, Follow::Get).await?;
    let Ok(result) = sonic_rs::get(&r[..], ["result"]) else {
        // An error other than "unknown task" (which `wire.rs` made a failed task): as sent.
        return Ok(r);
    };
    let raw = result.as_raw_str().as_bytes();
    let status = sonic_rs::get(raw, ["status"])
        .ok()
        .and_then(|s| s.as_str().map(str::to_string))
        .unwrap_or_default();
    // The gateway's own failed task (the backend lost it) is already in the extension's shape.
    let gateways_own = sonic_rs::get(raw, ["error"]).is_ok();
    let mut shown = status.as_str();
    let mut message = None;
    let mut extra: Vec<(&str, Vec<u8>)> = Vec::new();
    match status.as_str() {
        "input_required" => match input::shown(call, backend, gw_id, task).await {
            input::Shown::Asking(request) => extra.push(("inputRequests", request)),
            input::Shown::NotYet(why) => {
                shown = "working";
                message = Some(why);
            }
        },
        "completed" | "failed" if !gateways_own => {
            input::forget(call.router, gw_id);
            let end = ask(call, backend, gw_id, task, Follow::Result).await?;
            if let Ok(v) = sonic_rs::get(&end[..], ["result"]) {
                // A 2025 task that failed with a tool result (`isError`) is a completed task
                // in the extension, whose `failed` is for JSON-RPC errors only (SEP-2663).
                shown = "completed";
                extra.push(("result", v.as_raw_str().as_bytes().to_vec()));
            } else if let Ok(e) = sonic_rs::get(&end[..], ["error"]) {
                shown = "failed";
                extra.push(("error", e.as_raw_str().as_bytes().to_vec()));
            }
        }
        "completed" | "failed" | "cancelled" => input::forget(call.router, gw_id),
        _ => {}
    }
    let id = call.env.id_bytes(call.body);
    let body = task_2026(raw, gw_id, "complete", shown, message.as_deref(), &extra);
    Ok(crate::wire::ok_result(id, &body))
}

/// A 2025 `method` naming the backend's task id.
pub(crate) fn request(id: &[u8], method: &str, backend_task: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(80 + id.len() + backend_task.len());
    body.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    body.extend_from_slice(id);
    body.extend_from_slice(b",\"method\":");
    push_json_str(&mut body, method);
    body.extend_from_slice(b",\"params\":{\"taskId\":");
    push_json_str(&mut body, backend_task);
    body.extend_from_slice(b"}}");
    body
}

/// Sends the 2025 follow-up `what` of `task` to its backend, replica and upstream session
/// (through the usual path: pinned, the backend's id spliced back to the gateway's, a lost
/// task answered as `wire.rs` does) and returns the JSON-RPC answer.
async fn ask(
    call: &Call<'_>,
    backend: usize,
    gw_id: &str,
    task: &TaskRef,
    what: Follow,
) -> Result<Vec<u8>, McpError> {
    let method = match what {
        Follow::Get => "tasks/get",
        Follow::Cancel => "tasks/cancel",
        Follow::Result => "tasks/result",
        Follow::Update => return Err(McpError::Gateway("tasks/update has no 2025 form".into())),
    };
    let body = request(call.env.id_bytes(call.body), method, &task.backend_task);
    let env = Envelope::parse(&body)?;
    let era = follow_era(&call.era, gw_id, task, what);
    let answer = forward(
        Call {
            router: call.router,
            sid: "",
            body: &body,
            env: &env,
            era,
        },
        backend,
        None,
    )
    .await?;
    response_of(answer)
        .await
        .ok_or_else(|| McpError::Gateway("the backend's answer was lost on its way".into()))
}

/// The era of a gateway-made 2025 follow-up of a 2026 client's task: the client's, pinned
/// to the task, nothing cached, retried or parked.
pub(crate) fn follow_era(
    era: &crate::route::request::Era,
    gw_id: &str,
    task: &TaskRef,
    what: Follow,
) -> crate::route::request::Era {
    let mut era = era.clone();
    era.retry_safe = false;
    era.cacheable = false;
    era.tool = None;
    era.hints = None;
    era.bind = None;
    era.inputs = Default::default();
    era.tool_headers = None;
    era.params = Default::default();
    era.task = Some(Rc::new(TaskCall::Follow {
        gw_id: gw_id.into(),
        task: task.clone(),
        what,
    }));
    era
}

/// The JSON-RPC response in an answer (the last one of a stream; what else a stream carries
/// has no one to go to).
pub(crate) async fn response_of(answer: Answer) -> Option<Vec<u8>> {
    match answer {
        Answer::Json(b) => Some(b),
        Answer::Parts(mut head, shared, tail, _) => {
            head.extend_from_slice(&shared);
            head.extend_from_slice(&tail);
            Some(head)
        }
        Answer::Stream(mut rx) => {
            let mut last = None;
            while let Some(m) = crate::rt::next(&mut rx).await {
                if Envelope::parse(&m).is_ok_and(|e| e.kind == Kind::Response) {
                    last = Some(m);
                }
            }
            last
        }
    }
}

/// Whose a 2026 call's task is: its caller (`anonymous` without auth), as
/// `route/tasks/methods.rs` binds task ids.
pub(crate) fn owner_name(call: &Call<'_>) -> Rc<str> {
    call.era
        .principal
        .as_ref()
        .map_or("anonymous", |p| &*p.name)
        .into()
}

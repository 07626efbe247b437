//! The task tools' calls and the `tasks/*` methods, per era
//! (`DEMO_CONFORMANCE=1` only; the store and jobs are `tasks.rs`, the wire
//! shapes `tasks_wire.rs`).
//!
//! 2026 (extension `io.modelcontextprotocol/tasks`, server-directed): a
//! request that declares the extension in `_meta.clientCapabilities` gets a
//! `CreateTaskResult` from every task-supporting tool; one that does not
//! gets `slow_compute` synchronously, `confirm_delete` through MRTR, and
//! -32021 (`data.requiredCapabilities.extensions`) from the tools that need
//! a task (`failing_job`, `multi_input`, `test_tool_with_task`). `tasks/get`,
//! `tasks/update` and `tasks/cancel` need the extension too (-32021); an
//! unknown `taskId` is -32602; `tasks/cancel` of a finished task is the
//! same empty ack. `test_tool_with_task` first asks for `user_name` by MRTR,
//! then answers the retry with a task.
//!
//! 2025-11-25 (experimental): a `tools/call` with `params.task` of a tool
//! whose `taskSupport` allows it gets a nested `CreateTaskResult`; `task` on
//! a tool without task support, or none on a `required` one, is -32601.
//! `tasks/get`, `tasks/result` (blocks until the task ends; sends the task's
//! input requests on its own stream first), `tasks/cancel` (-32602 once
//! terminal, else the cancelled task) and `tasks/list` (the session's own
//! tasks, 10 per page).

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use sonic_rs::{JsonContainerTrait, JsonValueMutTrait, JsonValueTrait, Value};

use super::modern::{server_info, Answer, Meta, ResultMeta, MISSING_CAPABILITY};
use super::mrtr::{self, InputRequired, Requests};
use super::protocol::{
    ordered_value, send_error, send_error_data, send_result, to_json, Reply, INTERNAL_ERROR,
    INVALID_PARAMS, METHOD_NOT_FOUND,
};
use super::server::Server;
use super::session::{Related, Session};
use super::tasks::{Era, Job, Status, Tasks, TTL};
use super::tasks_wire::{self, legacy_created, legacy_task, modern_task, task_support};
use super::tools::ok_text;

/// The extension's identifier.
pub const EXTENSION: &str = "io.modelcontextprotocol/tasks";
/// Tasks listed per `tasks/list` page (2025).
const PAGE: usize = 10;

/// Does the request's `_meta` declare the tasks extension?
pub fn declared(meta: &Meta) -> bool {
    meta.capabilities
        .get("extensions")
        .and_then(|e| e.get(EXTENSION))
        .is_some_and(|v| v.is_object())
}

fn needs_extension(id: &Value, what: &str) -> Answer {
    let data: Value = sonic_rs::from_str(&format!(
        r#"{{"requiredCapabilities":{{"extensions":{{"{EXTENSION}":{{}}}}}}}}"#
    ))
    .unwrap_or_default();
    let msg = format!("Missing required client capability: {what} needs the {EXTENSION} extension");
    Answer::error(400, id, MISSING_CAPABILITY, &msg, Some(&data))
}

fn meta_of(server: &Server) -> Value {
    ordered_value(&ResultMeta {
        server_info: server_info(server),
    })
}

fn result_json(id: &Value, result_text: &str) -> Reply {
    let result: Value = sonic_rs::from_str(result_text).unwrap_or_default();
    send_result(id, result)
}

/// The job behind task tool `name`, from its arguments.
fn job(name: &str, args: &Value) -> Option<Job> {
    let text = |k: &str| args.get(k).and_then(|v| v.as_str()).unwrap_or("");
    Some(match name {
        "slow_compute" => Job::SlowCompute {
            seconds: args
                .get("seconds")
                .and_then(|s| s.as_f64())
                .filter(|s| s.is_finite())
                .unwrap_or(1.0)
                .clamp(0.0, 3600.0),
            label: text("label").to_string(),
        },
        "failing_job" => Job::Failing,
        "protocol_error_job" => Job::ProtocolError,
        "confirm_delete" => Job::ConfirmDelete {
            filename: text("filename").to_string(),
        },
        "multi_input" => Job::MultiInput,
        _ => return None,
    })
}

fn greet(args: &Value) -> super::tools::CallToolResult {
    let name = args.get("name").and_then(|n| n.as_str()).unwrap_or("World");
    ok_text(format!("Hello, {name}!"))
}

/// 2026: a call of task tool `name`; `None` when it is not one.
pub fn call_modern(
    server: &Server,
    id: &Value,
    name: &str,
    args: &Value,
    params: &Value,
    meta: &Meta,
) -> Option<Answer> {
    task_support(name)?;
    let stamp = |reply| super::modern::stamp(server, "tools/call", id, reply);
    let created = |job| {
        let t = server.tasks().start(Era::Modern, job, None);
        Answer::ok(result_json(id, &modern_task(&t, false, &meta_of(server))))
    };
    let ext = declared(meta);
    Some(match (name, job(name, args)) {
        ("greet", _) => Answer::ok(stamp(send_result(id, greet(args)))),
        ("test_tool_with_task", _) => {
            if !ext {
                return Some(needs_extension(id, name));
            }
            if !meta
                .capabilities
                .get("elicitation")
                .is_some_and(|c| c.is_object())
            {
                let data: Value =
                    sonic_rs::from_str(r#"{"requiredCapabilities":{"elicitation":{}}}"#)
                        .unwrap_or_default();
                let msg = "Missing required client capability: elicitation";
                return Some(Answer::error(400, id, MISSING_CAPABILITY, msg, Some(&data)));
            }
            let answer = params
                .get("inputResponses")
                .and_then(|r| r.get("user_name"));
            match answer.filter(|a| mrtr::check_response("elicitation/create", a).is_ok()) {
                Some(a) => created(Job::Greeting {
                    name: mrtr::accepted_str(a, "name")
                        .unwrap_or("stranger")
                        .to_string(),
                }),
                None => input_required(
                    server,
                    id,
                    InputRequired::default()
                        .ask("user_name", mrtr::elicit("What is your name?", NAME_SCHEMA)),
                ),
            }
        }
        (_, Some(job)) if ext => created(job),
        ("failing_job" | "multi_input", _) => needs_extension(id, name),
        ("protocol_error_job", _) => Answer::ok(send_error(
            id,
            INTERNAL_ERROR,
            "protocol_error_job: internal error (by design)",
        )),
        ("slow_compute", Some(Job::SlowCompute { seconds, label })) => {
            std::thread::sleep(Duration::from_secs_f64(seconds));
            let r = ok_text(format!("Computed {label} in {seconds} s"));
            Answer::ok(stamp(send_result(id, r)))
        }
        ("confirm_delete", Some(Job::ConfirmDelete { filename })) => {
            match params.get("inputResponses").and_then(|r| r.get("confirm")) {
                Some(a) if mrtr::check_response("elicitation/create", a).is_ok() => {
                    let r = ok_text(format!("Deleted {filename} (confirmed by MRTR)"));
                    Answer::ok(stamp(send_result(id, r)))
                }
                _ => input_required(
                    server,
                    id,
                    InputRequired::default().ask(
                        "confirm",
                        mrtr::elicit(&format!("Delete {filename}?"), CONFIRM_SCHEMA),
                    ),
                ),
            }
        }
        _ => Answer::ok(send_error(id, INTERNAL_ERROR, "not a task tool")),
    })
}

const NAME_SCHEMA: &str =
    r#"{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}"#;
const CONFIRM_SCHEMA: &str =
    r#"{"type":"object","properties":{"confirm":{"type":"boolean"}},"required":["confirm"]}"#;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InputRequiredResult<'a> {
    result_type: &'static str,
    input_requests: Requests<'a>,
    #[serde(rename = "_meta")]
    meta: Value,
}

fn input_required(server: &Server, id: &Value, asked: InputRequired) -> Answer {
    Answer::ok(send_result(
        id,
        InputRequiredResult {
            result_type: "input_required",
            input_requests: Requests(&asked.requests),
            meta: meta_of(server),
        },
    ))
}

/// The `taskId` parameter, or the -32602 answer.
fn task_id<'a>(id: &Value, params: &'a Value) -> Result<&'a str, Reply> {
    params
        .get("taskId")
        .and_then(|t| t.as_str())
        .ok_or_else(|| {
            send_error(
                id,
                INVALID_PARAMS,
                "Invalid params: taskId must be a string",
            )
        })
}

fn not_found(id: &Value) -> Reply {
    send_error(
        id,
        INVALID_PARAMS,
        "Failed to retrieve task: Task not found",
    )
}

/// 2026: `tasks/get`, `tasks/update` or `tasks/cancel`.
pub fn modern_method(
    server: &Server,
    id: &Value,
    method: &str,
    params: &Value,
    meta: &Meta,
) -> Answer {
    if !declared(meta) {
        return needs_extension(id, method);
    }
    let tid = match task_id(id, params) {
        Ok(t) => t,
        Err(reply) => return Answer::ok(reply),
    };
    let tasks = server.tasks();
    let ack = || {
        let meta = to_json(&meta_of(server));
        Answer::ok(result_json(
            id,
            &format!(r#"{{"resultType":"complete","_meta":{meta}}}"#),
        ))
    };
    match method {
        "tasks/get" => match tasks.get(tid, Era::Modern) {
            Some(t) => Answer::ok(result_json(id, &modern_task(&t, true, &meta_of(server)))),
            None => Answer::ok(not_found(id)),
        },
        "tasks/update" => {
            let Some(responses) = params.get("inputResponses").and_then(|r| r.as_object()) else {
                return Answer::ok(send_error(
                    id,
                    INVALID_PARAMS,
                    "Invalid params: inputResponses must be an object",
                ));
            };
            let given: Vec<(String, Value)> = responses
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            match tasks.update(tid, Era::Modern, &given) {
                true => ack(),
                false => Answer::ok(not_found(id)),
            }
        }
        _ => match tasks.cancel(tid, Era::Modern) {
            Some(_) => ack(),
            None => Answer::ok(not_found(id)),
        },
    }
}

/// 2025: a `tools/call` of task tool `name` with or without `params.task`;
/// `None` when it is not a task tool, or an ordinary call of a sync one.
pub fn call_legacy(
    server: &Server,
    session: &Session,
    id: &Value,
    name: &str,
    args: &Value,
    params: &Value,
) -> Option<Reply> {
    let support = task_support(name)?;
    let augmented = params.get("task").is_some_and(|t| t.is_object());
    Some(match (support, augmented, job(name, args)) {
        (None, false, _) => send_result(id, greet(args)),
        (None, true, _) | (_, _, None) => send_error(
            id,
            METHOD_NOT_FOUND,
            &format!("Method not found: {name} cannot run as a task"),
        ),
        (Some("required"), false, _) => send_error(
            id,
            METHOD_NOT_FOUND,
            &format!("Method not found: {name} must be called as a task (params.task)"),
        ),
        (Some(_), true, Some(job)) => {
            let t = server
                .tasks()
                .start(Era::Legacy, job, session.me().as_ref());
            send_result(id, legacy_created(&t))
        }
        (Some(_), false, Some(job)) => {
            // An optional-task tool called plainly: run it and wait.
            let t = server.tasks().start(Era::Legacy, job, None);
            return Some(match wait_terminal(server.tasks(), &t.id) {
                Some((_, Ok(result))) => send_result(id, result),
                Some((_, Err((code, msg)))) => send_error(id, code, &msg),
                None => not_found(id),
            });
        }
    })
}

/// Waits for task `id` (2025) to end: its result, or its error.
#[allow(clippy::type_complexity)]
fn wait_terminal(tasks: &Arc<Tasks>, id: &str) -> Option<(String, Result<Value, (i64, String)>)> {
    let t = tasks.wait(id, TTL, |t| t.status.terminal())?;
    let out = match t.status {
        Status::Completed => Ok(t.result.clone().unwrap_or_default()),
        Status::Failed => Err(t.error.clone().unwrap_or((INTERNAL_ERROR, "failed".into()))),
        Status::Cancelled => Err((INTERNAL_ERROR, "the task was cancelled".into())),
        _ => Err((INTERNAL_ERROR, "the task did not finish in time".into())),
    };
    Some((t.id, out))
}

/// `{"io.modelcontextprotocol/related-task":{"taskId":...}}`.
fn related_meta(task_id: &str) -> String {
    format!(
        r#"{{"io.modelcontextprotocol/related-task":{{"taskId":{}}}}}"#,
        to_json(&task_id)
    )
}

/// 2025: `tasks/get`, `tasks/result`, `tasks/cancel` or `tasks/list` of `session`.
pub fn legacy_method(
    server: &Server,
    session: &Session,
    id: &Value,
    method: &str,
    params: &Value,
    related: &mut dyn Related,
) -> Reply {
    let tasks = server.tasks();
    if method == "tasks/list" {
        return list(tasks, session, id, params);
    }
    let tid = match task_id(id, params) {
        Ok(t) => t,
        Err(reply) => return reply,
    };
    let Some(task) = tasks.get(tid, Era::Legacy) else {
        return not_found(id);
    };
    match method {
        "tasks/get" => send_result(id, legacy_task(&task)),
        "tasks/cancel" => match tasks.cancel(tid, Era::Legacy) {
            Some(s) if s.terminal() => send_error(
                id,
                INVALID_PARAMS,
                &format!("Cannot cancel task {tid}: it is already {}", s.name()),
            ),
            Some(_) => match tasks.get(tid, Era::Legacy) {
                Some(t) => send_result(id, legacy_task(&t)),
                None => not_found(id),
            },
            None => not_found(id),
        },
        _ => result(tasks, session, id, tid, related),
    }
}

/// 2025 `tasks/result`: sends the task's input requests on this stream, then
/// waits for its end and answers what the call would have answered.
fn result(
    tasks: &Arc<Tasks>,
    session: &Session,
    id: &Value,
    tid: &str,
    related: &mut dyn Related,
) -> Reply {
    loop {
        let Some(t) = tasks.wait(tid, TTL, |t| {
            t.status.terminal() || t.inputs.iter().any(|(k, _)| !t.sent.contains(k))
        }) else {
            return not_found(id);
        };
        if t.status.terminal() {
            break;
        }
        let Some((key, request)) = t.inputs.iter().find(|(k, _)| !t.sent.contains(k)) else {
            continue;
        };
        tasks.mark_sent(tid, key);
        let method = request.get("method").and_then(|m| m.as_str()).unwrap_or("");
        let params = with_meta(request.get("params"), &related_meta(tid));
        match session.request(related, method, &params) {
            Ok(answer) => {
                tasks.update(tid, Era::Legacy, &[(key.clone(), answer)]);
            }
            Err(e) => eprintln!("demo-server: task {tid} input {key}: {e}"),
        }
    }
    match wait_terminal(tasks, tid) {
        Some((_, Ok(r))) => {
            let r = with_meta(Some(&r), &related_meta(tid));
            send_result(id, r)
        }
        Some((_, Err((code, msg)))) => {
            let data: Value = sonic_rs::from_str(&format!(r#"{{"_meta":{}}}"#, related_meta(tid)))
                .unwrap_or_default();
            send_error_data(id, code, &msg, &data)
        }
        None => not_found(id),
    }
}

/// `params` (an object, or none) with `_meta` set to `meta` (JSON text).
fn with_meta(params: Option<&Value>, meta: &str) -> Value {
    let mut p = params
        .cloned()
        .filter(|p| p.is_object())
        .unwrap_or_else(Value::new_object);
    let meta: Value = sonic_rs::from_str(meta).unwrap_or_default();
    if let Some(obj) = p.as_object_mut() {
        obj.insert("_meta", meta);
    }
    p
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListTasksResult {
    tasks: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

fn list(tasks: &Arc<Tasks>, session: &Session, id: &Value, params: &Value) -> Reply {
    let Some(me) = session.me() else {
        return send_result(
            id,
            ListTasksResult {
                tasks: Vec::new(),
                next_cursor: None,
            },
        );
    };
    let all = tasks.of_session(&me);
    let from = match params.get("cursor").filter(|c| !c.is_null()) {
        None => 0,
        Some(c) => match c
            .as_str()
            .and_then(|c| c.strip_prefix("t"))
            .and_then(|n| n.parse().ok())
        {
            Some(n) if n <= all.len() => n,
            _ => return send_error(id, INVALID_PARAMS, "Invalid params: invalid cursor"),
        },
    };
    let to = (from + PAGE).min(all.len());
    send_result(
        id,
        ListTasksResult {
            tasks: all[from..to].iter().map(legacy_task).collect(),
            next_cursor: (to < all.len()).then(|| format!("t{to}")),
        },
    )
}

/// The 2026 extension in `server/discover` capabilities.
pub fn modern_capability() -> &'static str {
    r#""extensions":{"io.modelcontextprotocol/tasks":{}}"#
}

/// The 2025 `tasks` capability.
pub fn legacy_capability() -> &'static str {
    r#""tasks":{"list":{},"cancel":{},"requests":{"tools":{"call":{}}}}"#
}

/// The task tools of an era's `tools/list` (see `tasks_wire.rs`).
pub fn definitions(modern: bool) -> Vec<Value> {
    tasks_wire::definitions(modern)
}

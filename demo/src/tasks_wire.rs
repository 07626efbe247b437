//! The wire shapes of tasks (`tasks.rs`) in each era, and the fixture's
//! task tools as `tools/list` shows them.
//!
//! * 2025-11-25: a `Task` is `{taskId, status, statusMessage?, createdAt,
//!   lastUpdatedAt, ttl, pollInterval}`; `CreateTaskResult` nests it under
//!   `task`; tools declare `execution.taskSupport`.
//! * 2026 extension: the same fields with `ttlMs`/`pollIntervalMs`, flat:
//!   `CreateTaskResult` is `{resultType: "task", ...task}`, and `tasks/get`
//!   answers a `DetailedTask` (`inputRequests` while `input_required`,
//!   `result` once `completed`, `error` once `failed`) with `resultType:
//!   "complete"`. Tools carry no `execution` field: the server decides.

use serde::Serialize;
use sonic_rs::Value;

use super::mrtr::Requests;
use super::protocol::{ordered_value, to_json};
use super::tasks::{iso8601, Status, Task, POLL_MS, TTL};

/// The task tools, in `tools/list` order: (definition without
/// `execution`, 2025 `taskSupport` or `None` for a sync-only tool).
const TOOLS: [(&str, Option<&str>); 7] = [
    (
        r#"{"name":"greet","description":"Sync only: returns Hello, {name}!","inputSchema":{"type":"object","properties":{"name":{"type":"string"}}}}"#,
        None,
    ),
    (
        r#"{"name":"slow_compute","description":"Task-supporting: sleeps `seconds`, then reports `label` (cancellable)","inputSchema":{"type":"object","properties":{"seconds":{"type":"number"},"label":{"type":"string"}}}}"#,
        Some("optional"),
    ),
    (
        r#"{"name":"failing_job","description":"Task required: ends with a tool error (isError) after about a second","inputSchema":{"type":"object","properties":{}}}"#,
        Some("required"),
    ),
    (
        r#"{"name":"protocol_error_job","description":"Task-supporting: fails with a JSON-RPC error","inputSchema":{"type":"object","properties":{}}}"#,
        Some("optional"),
    ),
    (
        r#"{"name":"confirm_delete","description":"Task-supporting: asks for confirmation (input request confirm), then deletes nothing","inputSchema":{"type":"object","properties":{"filename":{"type":"string"}}}}"#,
        Some("required"),
    ),
    (
        r#"{"name":"multi_input","description":"Task-supporting: asks two questions at once (input requests name and confirm)","inputSchema":{"type":"object","properties":{}}}"#,
        Some("required"),
    ),
    (
        r#"{"name":"test_tool_with_task","description":"2026 only, task required: asks for user_name (MRTR), then greets in a task","inputSchema":{"type":"object","properties":{}}}"#,
        Some("required"),
    ),
];

/// The 2025 `taskSupport` of task tool `name`; `Some(None)` for `greet`,
/// `None` when `name` is not a task tool.
pub fn task_support(name: &str) -> Option<Option<&'static str>> {
    TOOLS.iter().find_map(|(def, support)| {
        def.contains(&format!(r#""name":"{name}""#))
            .then_some(*support)
    })
}

/// The task tools of one era (2026 lists `test_tool_with_task` too).
pub fn definitions(modern: bool) -> Vec<Value> {
    TOOLS
        .iter()
        .filter(|(def, _)| modern || !def.contains("test_tool_with_task"))
        .map(|(def, support)| {
            let text = match (modern, support) {
                (false, Some(s)) => format!(
                    r#"{},"execution":{{"taskSupport":"{s}"}}}}"#,
                    &def[..def.len() - 1]
                ),
                _ => def.to_string(),
            };
            sonic_rs::from_str(&text).unwrap_or_default()
        })
        .collect()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LegacyTask<'a> {
    task_id: &'a str,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_message: Option<&'a str>,
    created_at: String,
    last_updated_at: String,
    ttl: u64,
    poll_interval: u64,
}

/// A 2025 `Task` object.
pub fn legacy_task(t: &Task) -> Value {
    ordered_value(&LegacyTask {
        task_id: &t.id,
        status: t.status.name(),
        status_message: t.message.as_deref(),
        created_at: iso8601(t.created),
        last_updated_at: iso8601(t.updated),
        ttl: TTL.as_millis() as u64,
        poll_interval: POLL_MS,
    })
}

#[derive(Serialize)]
struct Created {
    task: Value,
}

/// A 2025 `CreateTaskResult`.
pub fn legacy_created(t: &Task) -> Value {
    ordered_value(&Created {
        task: legacy_task(t),
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ModernTask<'a> {
    result_type: &'static str,
    task_id: &'a str,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_message: Option<&'a str>,
    created_at: String,
    last_updated_at: String,
    ttl_ms: u64,
    poll_interval_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    input_requests: Option<Requests<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorObj<'a>>,
    #[serde(rename = "_meta")]
    meta: &'a Value,
}

#[derive(Serialize)]
struct ErrorObj<'a> {
    code: i64,
    message: &'a str,
}

/// A 2026 task as a result object: `CreateTaskResult` (`resultType:
/// "task"`, no detail) or, with `detailed`, the `DetailedTask` of
/// `tasks/get`. `meta` is the result's `_meta`.
pub fn modern_task(t: &Task, detailed: bool, meta: &Value) -> String {
    let detail = |on: bool| detailed && on;
    to_json(&ModernTask {
        result_type: if detailed { "complete" } else { "task" },
        task_id: &t.id,
        status: t.status.name(),
        status_message: t.message.as_deref(),
        created_at: iso8601(t.created),
        last_updated_at: iso8601(t.updated),
        ttl_ms: TTL.as_millis() as u64,
        poll_interval_ms: POLL_MS,
        input_requests: detail(t.status == Status::InputRequired && !t.inputs.is_empty())
            .then_some(Requests(&t.inputs)),
        result: t.result.as_ref().filter(|_| detail(true)),
        error: t
            .error
            .as_ref()
            .filter(|_| detail(true))
            .map(|(code, message)| ErrorObj {
                code: *code,
                message,
            }),
        meta,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sonic_rs::JsonValueTrait;

    #[test]
    fn each_era_lists_its_task_tools() {
        let legacy = definitions(false);
        assert_eq!(legacy.len(), 6);
        let support = |v: &Vec<Value>, name: &str| {
            v.iter()
                .find(|t| t.get("name").and_then(|n| n.as_str()) == Some(name))
                .and_then(|t| t.get("execution"))
                .and_then(|e| e.get("taskSupport"))
                .and_then(|s| s.as_str().map(str::to_string))
        };
        assert_eq!(support(&legacy, "failing_job").as_deref(), Some("required"));
        assert_eq!(
            support(&legacy, "slow_compute").as_deref(),
            Some("optional")
        );
        assert_eq!(support(&legacy, "greet"), None);
        let modern = definitions(true);
        assert_eq!(modern.len(), 7);
        assert!(modern.iter().all(|t| t.get("execution").is_none()));
        assert_eq!(task_support("failing_job"), Some(Some("required")));
        assert_eq!(task_support("greet"), Some(None));
        assert_eq!(task_support("echo"), None);
    }
}

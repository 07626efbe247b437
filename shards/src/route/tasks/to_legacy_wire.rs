//! Wire shapes of a bridged task (`to_legacy.rs`): a 2025 backend's tasks shown to a 2026
//! client in the extension's shape.
//!
//! - 2025 `CreateTaskResult` `{task: {taskId, status, statusMessage?, createdAt,
//!   lastUpdatedAt, ttl, pollInterval?}}` → the extension's flat `{resultType: "task",
//!   taskId, status, …, ttlMs, pollIntervalMs?}` with the gateway's id ([`created`]).
//! - A 2025 `Task` (a `tasks/get` answer) → the extension's detailed task ([`task_2026`]),
//!   to which the caller adds `inputRequests`, `result` or `error`.

use sonic_rs::JsonValueTrait;

use crate::cluster::task_id::{mint, TaskRef, MAX_BACKEND_TASK_ID};
use crate::error::McpError;
use crate::route::tables::tasks::TaskOwner;
use crate::route::tasks::wire::{new_task, Before, Cx};
use crate::upstream::BackendReply;
use crate::wire::jsonrpc::push_json_str;

/// Fields of a 2025 task copied to the extension's, renamed where the extension renamed
/// them (`ttl` and `pollInterval` are milliseconds in both eras).
const FIELDS: [(&str, &str); 8] = [
    ("statusMessage", "statusMessage"),
    ("createdAt", "createdAt"),
    ("lastUpdatedAt", "lastUpdatedAt"),
    ("ttl", "ttlMs"),
    ("ttlMs", "ttlMs"),
    ("pollInterval", "pollIntervalMs"),
    ("pollIntervalMs", "pollIntervalMs"),
    ("error", "error"),
];

/// The reply to a bridged task-augmented call: a 2025 `CreateTaskResult` becomes the
/// extension's, with the gateway's id minted for `owner`; anything else (a plain result, an
/// error) goes on as it is.
pub(crate) fn created(cx: &Cx<'_>, owner: &TaskOwner, reply: BackendReply) -> Before {
    let Ok(task) = sonic_rs::get(&reply.body[..], ["result", "task"]) else {
        return Before::Go(Ok(reply));
    };
    let raw = task.as_raw_str().as_bytes();
    let Some(backend_task) = sonic_rs::get(raw, ["taskId"])
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
    else {
        return Before::Go(Ok(reply));
    };
    let Ok(shard) = u16::try_from(cx.router.id) else {
        return Before::Done(
            McpError::Gateway("shard index too large".into()).to_response(cx.client_id),
        );
    };
    let t = TaskRef {
        bridged: Some(shard),
        ..new_task(cx.server, &reply, &["result", "task", "ttl"], backend_task)
    };
    let cluster = cx.router.snapshot.load().cluster.clone();
    let Some(gw) = mint(&cluster, &t, owner.as_owner()) else {
        return Before::Done(
            McpError::BackendProtocol {
                server: cx.server.to_string(),
                reason: format!(
                    "its task id is longer than {MAX_BACKEND_TASK_ID} bytes, which the gateway does not carry"
                ),
            }
            .to_response(cx.client_id),
        );
    };
    let status = sonic_rs::get(raw, ["status"])
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "working".into());
    let result = task_2026(raw, &gw, "task", &status, None, &[]);
    let id = &reply.body[reply.id.clone()];
    let body = crate::wire::ok_result(id, &result);
    // `ok_result` writes the id right after this prefix.
    let id_start = b"{\"jsonrpc\":\"2.0\",\"id\":".len();
    Before::Go(Ok(BackendReply {
        id: id_start..id_start + id.len(),
        body,
        origin: reply.origin,
    }))
}

/// A 2025 task object (`task`, raw JSON) in the extension's shape: `resultType`, the
/// gateway's id, `status` as given, the fields the two eras share (renamed), `statusMessage`
/// replaced by `message` when given, then `extra` (raw JSON values).
pub(crate) fn task_2026(
    task: &[u8],
    gw_id: &str,
    result_type: &str,
    status: &str,
    message: Option<&str>,
    extra: &[(&str, Vec<u8>)],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(task.len() + gw_id.len() + 64);
    out.extend_from_slice(b"{\"resultType\":");
    push_json_str(&mut out, result_type);
    out.extend_from_slice(b",\"taskId\":");
    push_json_str(&mut out, gw_id);
    out.extend_from_slice(b",\"status\":");
    push_json_str(&mut out, status);
    if let Some(m) = message {
        out.extend_from_slice(b",\"statusMessage\":");
        push_json_str(&mut out, m);
    }
    let mut seen: Vec<&str> = Vec::with_capacity(FIELDS.len());
    for (from, to) in FIELDS {
        if seen.contains(&to) || (to == "statusMessage" && message.is_some()) {
            continue;
        }
        if extra.iter().any(|(k, _)| *k == to) {
            continue;
        }
        if let Ok(v) = sonic_rs::get(task, [from]) {
            out.extend_from_slice(b",\"");
            out.extend_from_slice(to.as_bytes());
            out.extend_from_slice(b"\":");
            out.extend_from_slice(v.as_raw_str().as_bytes());
            seen.push(to);
        }
    }
    for (k, v) in extra {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"\":");
        out.extend_from_slice(v);
    }
    out.push(b'}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(b: &[u8]) -> sonic_rs::Value {
        sonic_rs::from_slice(b).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(b)))
    }

    #[test]
    fn a_2025_task_takes_the_extensions_shape() {
        let t = br#"{"taskId":"task-1","status":"working","statusMessage":"busy","createdAt":"2026-01-01T00:00:00.000Z","lastUpdatedAt":"2026-01-01T00:00:01.000Z","ttl":300000,"pollInterval":200,"resultType":"complete"}"#;
        let out = v(&task_2026(t, "gw.1", "task", "working", None, &[]));
        assert_eq!(out["resultType"].as_str(), Some("task"));
        assert_eq!(out["taskId"].as_str(), Some("gw.1"));
        assert_eq!(out["status"].as_str(), Some("working"));
        assert_eq!(out["statusMessage"].as_str(), Some("busy"));
        assert_eq!(out["ttlMs"].as_u64(), Some(300_000));
        assert_eq!(out["pollIntervalMs"].as_u64(), Some(200));
        assert_eq!(out["createdAt"].as_str(), Some("2026-01-01T00:00:00.000Z"));
        assert!(out.get("ttl").is_none() && out.get("pollInterval").is_none());
        // The shown status and message win; extras are appended; a ttl of null stays null.
        let t =
            br#"{"taskId":"task-1","status":"input_required","statusMessage":"asks","ttl":null}"#;
        let extra = [("result", br#"{"content":[]}"#.to_vec())];
        let out = v(&task_2026(
            t,
            "gw",
            "complete",
            "working",
            Some("why"),
            &extra,
        ));
        assert_eq!(out["status"].as_str(), Some("working"));
        assert_eq!(out["statusMessage"].as_str(), Some("why"));
        assert!(out["ttlMs"].is_null());
        assert!(out["result"]["content"].is_array());
    }

    #[test]
    fn the_gateways_own_failed_task_keeps_its_error_once() {
        let t = br#"{"resultType":"complete","taskId":"gw","status":"failed","ttlMs":60000,"error":{"code":-32000,"message":"lost"}}"#;
        let out = task_2026(t, "gw", "complete", "failed", None, &[]);
        let text = String::from_utf8(out.clone()).unwrap();
        assert_eq!(text.matches("\"error\"").count(), 1, "{text}");
        assert_eq!(text.matches("\"ttlMs\"").count(), 1, "{text}");
        assert_eq!(v(&out)["error"]["message"].as_str(), Some("lost"));
    }
}

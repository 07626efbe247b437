//! Task ids in what backends send, and the answers the gateway makes itself for a task whose
//! backend lost it. Called by the finisher (`route/finish.rs`) for calls that carry a
//! [`TaskCall`], and by the shard for a 2025 backend's status notifications.
//!
//! - A `CreateTaskResult` (2026: `result.taskId` with `resultType: "task"`; 2025:
//!   `result.task.taskId`) gets the gateway's id (`cluster::task_id`) in place of the
//!   backend's, minted for the call's owner from the replica and upstream that answered
//!   (`BackendReply::origin`); a 2025 session remembers it (`SessionTask`).
//! - A follow-up's answer gets the gateway id back wherever the backend wrote its own:
//!   `result.taskId`, and `_meta["io.modelcontextprotocol/related-task"].taskId` of a 2025
//!   `tasks/result` answer (result or error) and of the requests the backend sends meanwhile.
//! - A follow-up whose upstream is gone (`McpError::TaskLost`: the process or upstream
//!   session that ran the task ended), or that the backend answers "unknown task" (-32602)
//!   although the id is genuine and unexpired, ends as `failed` with an error saying so:
//!   `tasks/get` answers a failed task, 2025 `tasks/result` that error, a 2026 `tasks/cancel`
//!   or `tasks/update` the empty ack (the task is over), a 2025 `tasks/cancel` -32602 (it is
//!   terminal).

use std::rc::Rc;

use sonic_rs::JsonValueTrait;

use crate::cluster::task_id::{mint, now_ms, TaskRef};
use crate::error::McpError;
use crate::route::router::Router;
use crate::route::tables::tasks::{Follow, SessionTask, TaskCall, TaskOwner, MAX_SESSION_TASKS};
use crate::upstream::BackendReply;
use crate::wire::jsonrpc::{push_json_str, splice_tracking};

/// How long the gateway honours a task id at most (a backend's longer or unlimited `ttl`).
pub const MAX_TASK_LIFE_S: u64 = 24 * 3600;
/// Honoured this long past the backend's own `ttl`, so a poll at the edge is not "unknown".
pub(crate) const GRACE_S: u64 = 60;
pub(crate) const RELATED: &str = "io.modelcontextprotocol/related-task";

/// The call a reply belongs to.
pub(crate) struct Cx<'a> {
    pub router: &'a Rc<Router>,
    /// The backend.
    pub server: &'a str,
    /// The client's id (raw JSON).
    pub client_id: &'a [u8],
    /// The client speaks 2026-07-28.
    pub modern: bool,
}

/// What became of a reply.
pub(crate) enum Before {
    /// The client's whole answer.
    Done(Vec<u8>),
    /// The reply, ids rewritten, to finish as usual.
    Go(Result<BackendReply, McpError>),
}

/// The answer to a request naming a task this gateway does not know for this caller:
/// never issued, forged, altered, another session's or caller's, or expired. All alike.
pub fn unknown_task() -> McpError {
    McpError::InvalidParams("unknown task id".into())
}

/// Rewrites a reply of a call that carries `call` (module docs).
pub(crate) fn before(
    cx: &Cx<'_>,
    call: &TaskCall,
    result: Result<BackendReply, McpError>,
) -> Before {
    match call {
        TaskCall::Create { owner } => match result {
            Ok(reply) => created(cx, owner, reply),
            Err(e) => Before::Go(Err(e)),
        },
        TaskCall::Follow { gw_id, task, what } => followed(cx, gw_id, task, *what, result),
        TaskCall::Bridged { owner } => match result {
            Ok(reply) => crate::route::tasks::to_legacy_wire::created(cx, owner, reply),
            Err(e) => Before::Go(Err(e)),
        },
    }
}

fn created(cx: &Cx<'_>, owner: &TaskOwner, reply: BackendReply) -> Before {
    // A 2025 session's call to a backend that speaks only 2026: the bridge's own shapes.
    if !cx.modern && crate::route::tasks::to_modern::bridged(cx.router, cx.server) {
        return crate::route::tasks::to_modern::created(cx, owner, reply);
    }
    // A byte search first: most calls of a task-capable client still answer plainly.
    if memchr::memmem::find(&reply.body, b"taskId").is_none() {
        return Before::Go(Ok(reply));
    }
    let (id_path, ttl_path): (&[&str], &[&str]) = if cx.modern {
        (&["result", "taskId"], &["result", "ttlMs"])
    } else {
        (&["result", "task", "taskId"], &["result", "task", "ttl"])
    };
    let is_task = !cx.modern
        || sonic_rs::get(&reply.body[..], ["result", "resultType"])
            .is_ok_and(|t| t.as_str() == Some("task"));
    let Some((range, backend_task)) = string_at(&reply.body, id_path).filter(|_| is_task) else {
        return Before::Go(Ok(reply));
    };
    let task = new_task(cx.server, &reply, ttl_path, backend_task);
    let cluster = cx.router.snapshot.load().cluster.clone();
    let Some(gw) = mint(&cluster, &task, owner.as_owner()) else {
        return Before::Done(
            McpError::BackendProtocol {
                server: cx.server.to_string(),
                reason: format!(
                    "its task id is longer than {} bytes, which the gateway does not carry",
                    crate::cluster::task_id::MAX_BACKEND_TASK_ID
                ),
            }
            .to_response(cx.client_id),
        );
    };
    if let TaskOwner::Session(sid) = owner {
        crate::route::pushes::listen_for_status(cx.router, cx.server, task.replica, sid);
        if let Some(s) = cx.router.sessions.borrow_mut().get_mut(sid) {
            if s.tasks.len() >= MAX_SESSION_TASKS {
                s.tasks.pop_front();
            }
            s.tasks.push_back(SessionTask {
                gw_id: gw.as_str().into(),
                server: task.server.as_str().into(),
                backend_task: task.backend_task.as_str().into(),
                replica: task.replica,
                held: None,
            });
        }
    }
    let mut edits = vec![range];
    if !cx.modern {
        edits.extend(string_at(&reply.body, &["result", "_meta", RELATED, "taskId"]).map(|r| r.0));
    }
    Before::Go(Ok(with_id(reply, edits, &gw)))
}

/// The reference of a task `server` just created (`reply`: where it ran) under
/// `backend_task`: it lives as long as the backend's ttl in milliseconds at `ttl_path` says,
/// at most [`MAX_TASK_LIFE_S`], plus grace. Of the caller's own era; a bridge marks it after.
pub(crate) fn new_task(
    server: &str,
    reply: &BackendReply,
    ttl_path: &[&str],
    backend_task: String,
) -> TaskRef {
    let ttl_s = sonic_rs::get(&reply.body[..], ttl_path)
        .ok()
        .and_then(|v| v.as_u64())
        .map_or(MAX_TASK_LIFE_S, |ms| (ms / 1000).min(MAX_TASK_LIFE_S));
    let created_ms = now_ms();
    TaskRef {
        server: server.to_string(),
        replica: reply.origin.replica as u32,
        epoch: reply.origin.epoch,
        created_ms,
        expires: created_ms / 1000 + ttl_s + GRACE_S,
        backend_task,
        to_modern: false,
        bridged: None,
    }
}

/// The range (quotes included) and value of the string at `path` of `body`.
pub(crate) fn string_at(body: &[u8], path: &[&str]) -> Option<(std::ops::Range<usize>, String)> {
    let v = sonic_rs::get(body, path).ok()?;
    let s = v.as_str()?.to_string();
    let raw = v.as_raw_str();
    let start = raw.as_ptr() as usize - body.as_ptr() as usize;
    Some((start..start + raw.len(), s))
}

/// `reply` with each of the string ranges `at` replaced by `gw` (as a JSON string).
fn with_id(reply: BackendReply, at: Vec<std::ops::Range<usize>>, gw: &str) -> BackendReply {
    let mut quoted = Vec::with_capacity(gw.len() + 2);
    push_json_str(&mut quoted, gw);
    let mut edits: Vec<(std::ops::Range<usize>, &[u8])> =
        at.into_iter().map(|r| (r, &quoted[..])).collect();
    let mut out = Vec::with_capacity(reply.body.len() + gw.len());
    let id = splice_tracking(&reply.body, &mut edits, reply.id.clone(), &mut out);
    BackendReply {
        body: out,
        id,
        origin: reply.origin,
    }
}

fn followed(
    cx: &Cx<'_>,
    gw_id: &str,
    task: &TaskRef,
    what: Follow,
    result: Result<BackendReply, McpError>,
) -> Before {
    let lost = |reason: &str| Before::Done(lost_answer(cx, gw_id, task, what, reason));
    let reply = match result {
        Err(McpError::TaskLost { reason, .. }) => return lost(&reason),
        Err(e) => return Before::Go(Err(e)),
        Ok(r) => r,
    };
    let unknown_to_backend = sonic_rs::get(&reply.body[..], ["error", "code"])
        .ok()
        .and_then(|c| c.as_i64())
        == Some(-32602);
    if unknown_to_backend && matches!(what, Follow::Get | Follow::Result)
        || unknown_to_backend && cx.modern && what == Follow::Cancel
    {
        return lost("the backend no longer knows it (it restarted, or dropped it)");
    }
    let paths: [&[&str]; 3] = [
        &["result", "taskId"],
        &["result", "_meta", RELATED, "taskId"],
        &["error", "data", "_meta", RELATED, "taskId"],
    ];
    let at: Vec<_> = paths
        .iter()
        .filter_map(|p| string_at(&reply.body, p))
        .filter(|(_, s)| *s == task.backend_task)
        .map(|(r, _)| r)
        .collect();
    if at.is_empty() {
        return Before::Go(Ok(reply));
    }
    Before::Go(Ok(with_id(reply, at, gw_id)))
}

/// The client's answer to a follow-up of a task whose backend lost it (module docs).
pub(crate) fn lost_answer(
    cx: &Cx<'_>,
    gw_id: &str,
    task: &TaskRef,
    what: Follow,
    reason: &str,
) -> Vec<u8> {
    let e = McpError::TaskLost {
        server: cx.server.to_string(),
        reason: reason.to_string(),
    };
    let ack = || crate::wire::ok_result(cx.client_id, br#"{"resultType":"complete"}"#);
    match (what, cx.modern) {
        (Follow::Get, _) => {
            crate::wire::ok_result(cx.client_id, &failed_task(cx.modern, gw_id, task, &e))
        }
        (Follow::Cancel | Follow::Update, true) => ack(),
        (Follow::Cancel, false) => {
            McpError::InvalidParams(format!("the task has already ended: it failed ({e})"))
                .to_response(cx.client_id)
        }
        _ => e.to_response(cx.client_id),
    }
}

/// A `failed` task object in the client's era: its `error` is `e`.
fn failed_task(modern: bool, gw_id: &str, task: &TaskRef, e: &McpError) -> Vec<u8> {
    let msg = e.to_string();
    let ttl_ms = (task.expires * 1000).saturating_sub(task.created_ms);
    let mut out = Vec::with_capacity(256 + msg.len() * 2 + gw_id.len());
    out.extend_from_slice(if modern {
        b"{\"resultType\":\"complete\",\"taskId\":"
    } else {
        b"{\"taskId\":"
    });
    push_json_str(&mut out, gw_id);
    out.extend_from_slice(b",\"status\":\"failed\",\"statusMessage\":");
    push_json_str(&mut out, &msg);
    out.extend_from_slice(b",\"createdAt\":\"");
    out.extend_from_slice(iso8601(task.created_ms).as_bytes());
    out.extend_from_slice(b"\",\"lastUpdatedAt\":\"");
    out.extend_from_slice(iso8601(now_ms()).as_bytes());
    out.extend_from_slice(if modern {
        b"\",\"ttlMs\":"
    } else {
        b"\",\"ttl\":"
    });
    out.extend_from_slice(ttl_ms.to_string().as_bytes());
    if modern {
        out.extend_from_slice(b",\"error\":{\"code\":");
        out.extend_from_slice(e.code().to_string().as_bytes());
        out.extend_from_slice(b",\"message\":");
        push_json_str(&mut out, &msg);
        out.push(b'}');
    }
    out.push(b'}');
    out
}

/// A message the backend sent during a follow-up (a 2025 `tasks/result`'s elicitation):
/// the related-task id it carries becomes the gateway's. `None`: unchanged.
pub(crate) fn related(call: &TaskCall, msg: &[u8]) -> Option<Vec<u8>> {
    let TaskCall::Follow { gw_id, task, .. } = call else {
        return None;
    };
    // A byte search first: almost no message names a task.
    memchr::memmem::find(msg, RELATED.as_bytes())?;
    let (r, s) = string_at(msg, &["params", "_meta", RELATED, "taskId"])?;
    (s == task.backend_task).then(|| {
        let mut quoted = Vec::new();
        push_json_str(&mut quoted, gw_id);
        let mut out = Vec::with_capacity(msg.len() + quoted.len());
        crate::wire::jsonrpc::splice(msg, &[(r, &quoted[..])], &mut out);
        out
    })
}

/// `ms` (Unix milliseconds) as ISO 8601 UTC, `2026-01-02T03:04:05.678Z`.
pub fn iso8601(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_of_known_instants() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(951_782_400_005), "2000-02-29T00:00:00.005Z");
        assert_eq!(iso8601(1_767_323_045_678), "2026-01-02T03:04:05.678Z");
    }

    #[test]
    fn a_failed_task_has_every_field_of_its_era() {
        let task = TaskRef {
            server: "s".into(),
            replica: 0,
            epoch: 0,
            created_ms: 1_000,
            expires: 61,
            backend_task: "b".into(),
            to_modern: false,
            bridged: None,
        };
        let e = McpError::TaskLost {
            server: "s".into(),
            reason: "it restarted".into(),
        };
        let v: sonic_rs::Value = sonic_rs::from_slice(&failed_task(true, "gw", &task, &e)).unwrap();
        assert_eq!(v["resultType"].as_str(), Some("complete"));
        assert_eq!(v["taskId"].as_str(), Some("gw"));
        assert_eq!(v["status"].as_str(), Some("failed"));
        assert_eq!(v["ttlMs"].as_u64(), Some(60_000));
        assert_eq!(v["error"]["code"].as_i64(), Some(-32000));
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("lost the task"));
        let v: sonic_rs::Value =
            sonic_rs::from_slice(&failed_task(false, "gw", &task, &e)).unwrap();
        assert_eq!(v["ttl"].as_u64(), Some(60_000));
        assert!(v.get("error").is_none() && v.get("resultType").is_none());
        assert_eq!(v["createdAt"].as_str(), Some("1970-01-01T00:00:01.000Z"));
    }

    #[test]
    fn related_ids_are_rewritten_only_for_the_followed_task() {
        let call = TaskCall::Follow {
            gw_id: "gw.1".into(),
            task: TaskRef {
                server: "s".into(),
                replica: 0,
                epoch: 0,
                created_ms: 0,
                expires: 0,
                backend_task: "t1".into(),
                to_modern: false,
                bridged: None,
            },
            what: Follow::Result,
        };
        let ask = br#"{"jsonrpc":"2.0","id":3,"method":"elicitation/create","params":{"message":"m","_meta":{"io.modelcontextprotocol/related-task":{"taskId":"t1"}}}}"#;
        let out = related(&call, ask).unwrap();
        assert!(String::from_utf8(out)
            .unwrap()
            .contains(r#""taskId":"gw.1""#));
        let other = br#"{"jsonrpc":"2.0","id":3,"method":"elicitation/create","params":{"_meta":{"io.modelcontextprotocol/related-task":{"taskId":"t2"}}}}"#;
        assert!(related(&call, other).is_none());
    }
}

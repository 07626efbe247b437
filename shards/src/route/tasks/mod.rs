//! Tasks through the gateway: long-running tool calls answered with a task handle, in both
//! eras where the backend and the client speak the same kind of task, and for a 2026 client
//! of a 2025 backend.
//!
//! - 2026-07-28, the extension `io.modelcontextprotocol/tasks`: a 2026 client that declares
//!   it may get a `CreateTaskResult` from a 2026 backend that declares it; `tasks/get`,
//!   `tasks/update` and `tasks/cancel` follow (`tasks/result` and `tasks/list` do not exist
//!   in this era: -32601). Needs the extension in the request (-32021 otherwise).
//! - 2025-11-25 experimental tasks: a 2025 session (negotiated 2025-11-25) sends
//!   `params.task` to a tool of a 2025 backend that declared `tasks.requests.tools.call`;
//!   `tasks/get`, `tasks/result` (blocks until the task ends, within the backend's timeout),
//!   `tasks/cancel` and `tasks/list` (the session's own tasks only) follow, and the backend's
//!   `notifications/tasks/status` reach the session's GET stream.
//!
//! - A 2025 session's task on a backend that speaks only 2026 (with the extension): the
//!   gateway plays the 2026 client and shows the session 2025 tasks ([`to_modern`],
//!   `to_modern_follow.rs`, `to_modern_result.rs`).
//! - A 2026 client's task on a backend the gateway reaches through its 2025 session (a
//!   2025-only backend with experimental tasks): the client speaks the extension, the backend
//!   2025 tasks, and the backend's input requests (sent on a 2025 `tasks/result` stream)
//!   become the task's `inputRequests` through a parked call ([`to_legacy`],
//!   [`to_legacy_input`], [`to_legacy_wire`]).
//!
//! Otherwise a task of one era is not carried to a client of the other (the two are not wire
//! compatible): the catalog of each era shows `execution.taskSupport` only for backends
//! whose tasks that era carries, and hides tools that require a task elsewhere
//! (`catalog/build.rs`, `src/control/world.rs`). Task ids are the gateway's own (`cluster::task_id`): they name
//! server, replica, upstream and node, and are bound to the session or caller; the gateway
//! keeps no table of them, except that a 2025 session remembers the tasks it created
//! (`SessionTask`, for `tasks/list` and status notifications), and a shard the bridged tasks
//! whose backend waits for input (`route/tables/task_inputs.rs`).
//!
//! [`methods`]: the `tasks/*` requests; [`wire`]: ids in what backends answer, and the
//! answers for a task whose backend lost it; [`to_modern`]: the 2025-to-2026 bridge.

pub mod methods;
pub mod to_legacy;
pub mod to_legacy_input;
pub mod to_legacy_wire;
pub mod to_modern;
mod to_modern_follow;
mod to_modern_result;
pub mod wire;

use crate::error::McpError;
use crate::route::router::Router;
use crate::route::tables::tasks::Follow;
use crate::wire::jsonrpc::Envelope;

/// The only 2025 revision with tasks.
pub const TASKS_VERSION: &str = "2025-11-25";

/// Does this 2026 request declare the tasks extension in its `_meta` capabilities? A byte
/// search of that object only: the key cannot appear there for another reason.
pub fn declares_extension(body: &[u8], env: &Envelope<'_>) -> bool {
    env.meta.capabilities.clone().is_some_and(|r| {
        memchr::memmem::find(&body[r], crate::catalog::TASKS_EXTENSION.as_bytes()).is_some()
    })
}

/// Does the gateway carry tasks for clients of this era (some ready backend's)?
pub fn carried(router: &Router, modern: bool) -> bool {
    router.snapshot.load().catalog_for(modern).caps.tasks
}

/// The follow-up a method is, in a client's era.
pub fn follow_of(method: &str, modern: bool) -> Option<Follow> {
    Some(match (method, modern) {
        ("tasks/get", _) => Follow::Get,
        ("tasks/cancel", _) => Follow::Cancel,
        ("tasks/update", true) => Follow::Update,
        ("tasks/result", false) => Follow::Result,
        _ => return None,
    })
}

/// -32021 for a 2026 request that uses tasks without declaring the extension.
pub fn needs_extension(method: &str) -> McpError {
    McpError::MissingCapability {
        message: format!(
            "{method} needs the client capability extensions[\"{}\"] in _meta",
            crate::catalog::TASKS_EXTENSION
        ),
        what: format!(
            r#""extensions":{{"{}":{{}}}}"#,
            crate::catalog::TASKS_EXTENSION
        ),
    }
}

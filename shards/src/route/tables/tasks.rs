//! What a forwarded call does about tasks, and what a 2025 session remembers of the tasks it
//! created. Plain data: the functions are `route/tasks/`.
//!
//! A `tools/call` that may be answered with a `CreateTaskResult` carries
//! [`TaskCall::Create`] (a 2026 request that declared the tasks extension, a 2025 request
//! with `params.task`) or [`TaskCall::Bridged`] (such a 2026 request to a task tool of a
//! backend reached through its 2025 session); a `tasks/*` request carries [`TaskCall::Follow`] with the task its
//! id named, once verified. Calls without either pay nothing.

use std::rc::Rc;

use crate::cluster::task_id::{Owner, TaskRef};
use crate::upstream::Origin;

/// Most tasks a 2025 session remembers (for `tasks/list` and status notifications); the
/// oldest is forgotten first. Its id keeps working: only the listing forgets it.
pub const MAX_SESSION_TASKS: usize = 256;

/// Whom a task belongs to (owned form of [`Owner`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskOwner {
    /// A 2025 session.
    Session(Rc<str>),
    /// A 2026 caller.
    Principal(Rc<str>),
}

impl TaskOwner {
    /// The borrowed form the id codec takes.
    pub fn as_owner(&self) -> Owner<'_> {
        match self {
            TaskOwner::Session(s) => Owner::Session(s),
            TaskOwner::Principal(p) => Owner::Principal(p),
        }
    }
}

/// Which follow-up of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// `tasks/get`
    Get,
    /// `tasks/update` (2026)
    Update,
    /// `tasks/cancel`
    Cancel,
    /// `tasks/result` (2025)
    Result,
}

/// What a forwarded call does about tasks.
#[derive(Debug, Clone)]
pub enum TaskCall {
    /// A call that may create a task: its id is namespaced for `owner`.
    Create {
        /// Who the task will belong to.
        owner: TaskOwner,
    },
    /// A 2026 caller's call that may create a task on a backend reached through its 2025
    /// session (`route/tasks/to_legacy.rs`): the backend got `params.task`, and its 2025
    /// `CreateTaskResult` becomes the extension's.
    Bridged {
        /// Who the task will belong to.
        owner: TaskOwner,
    },
    /// A follow-up of the task the client knows as `gw_id`.
    Follow {
        /// The id the client used.
        gw_id: Rc<str>,
        /// What it names.
        task: TaskRef,
        /// Which follow-up.
        what: Follow,
    },
}

impl TaskCall {
    /// Where a follow-up must go: the task's replica and upstream.
    pub fn pin(&self) -> Option<Origin> {
        match self {
            TaskCall::Follow { task, .. } => Some(Origin {
                replica: task.replica as usize,
                epoch: task.epoch,
            }),
            TaskCall::Create { .. } | TaskCall::Bridged { .. } => None,
        }
    }

    /// The task a 2025 `tasks/result` follows, as the backend knows it (a JSON string): the
    /// backend's requests naming it go to that call. Other follow-ups carry none, so a
    /// `tasks/get` of the same task in flight meanwhile cannot take those requests' route
    /// (one route per task id) and drop it when it ends.
    pub fn backend_task_json(&self) -> Option<Vec<u8>> {
        match self {
            TaskCall::Follow {
                task,
                what: Follow::Result,
                ..
            } => {
                let mut out = Vec::with_capacity(task.backend_task.len() + 2);
                crate::wire::jsonrpc::push_json_str(&mut out, &task.backend_task);
                Some(out)
            }
            TaskCall::Follow { .. } | TaskCall::Create { .. } | TaskCall::Bridged { .. } => None,
        }
    }
}

/// A task a 2025 session created, as it remembers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionTask {
    /// The id the client knows.
    pub gw_id: Box<str>,
    /// Its backend.
    pub server: Box<str>,
    /// The backend's own id.
    pub backend_task: Box<str>,
    /// The replica (HTTP) or process (stdio `instances`) that holds it: backend ids are
    /// unique only within one.
    pub replica: u32,
    /// A plain answer the gateway holds as the result of a completed task: a 2026 backend
    /// answered a 2025 task-augmented call without a task (`route/tasks/to_modern.rs`).
    pub held: Option<Rc<[u8]>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_tasks_result_takes_the_route_of_its_tasks_requests() {
        let follow = |what| TaskCall::Follow {
            gw_id: "gw".into(),
            task: TaskRef {
                server: "s".into(),
                replica: 0,
                epoch: 1,
                created_ms: 0,
                expires: 0,
                backend_task: "t\"1".into(),
                to_modern: false,
                bridged: None,
            },
            what,
        };
        assert_eq!(
            follow(Follow::Result).backend_task_json().as_deref(),
            Some(&br#""t\"1""#[..])
        );
        for what in [Follow::Get, Follow::Cancel, Follow::Update] {
            assert!(follow(what).backend_task_json().is_none(), "{what:?}");
        }
        let owner = TaskOwner::Principal("p".into());
        assert!(TaskCall::Bridged { owner }.backend_task_json().is_none());
    }
}

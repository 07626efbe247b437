//! Tasks: the conformance fixture's long-running tool calls, in both eras
//! (`DEMO_CONFORMANCE=1` only).
//!
//! Owns the task store ([`Tasks`]: one per server, shared by both eras and
//! every session) and the jobs that run behind a task, each on its own
//! thread: `slow_compute` (sleeps `seconds`, settles to `cancelled` when
//! cancelled meanwhile), `failing_job` (a tool error after ~1 s: `completed`
//! with `isError`), `protocol_error_job` (a JSON-RPC error: `failed`),
//! `confirm_delete` (one elicitation, key `confirm`), `multi_input` (two
//! elicitations pending at once, keys `name` and `confirm`) and the task
//! half of `test_tool_with_task` (greets the name gathered by MRTR).
//!
//! The two eras see the same tasks through different wire shapes
//! (`tasks_wire.rs`): 2025-11-25 experimental tasks (`task` in the request,
//! nested `CreateTaskResult`, `ttl`/`pollInterval`, `tasks/result`,
//! `tasks/list`, `notifications/tasks/status` on the session's stream) and
//! the 2026 extension `io.modelcontextprotocol/tasks` (flat results with
//! `resultType`, `ttlMs`/`pollIntervalMs`, `inputRequests` answered by
//! `tasks/update`). A task belongs to the era that created it: the other
//! era's methods do not find it. A 2025 task remembers its session, whose
//! `tasks/list` lists it and whose standalone stream hears its status
//! changes; its input requests are sent on the stream of a `tasks/result`
//! that waits for it (with `_meta["io.modelcontextprotocol/related-task"]`).
//!
//! Tasks live for their `ttl` (5 minutes) and are then dropped; at most
//! [`MAX_TASKS`] exist at once (the oldest finished ones go first).

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime};

use sonic_rs::Value;

use super::mrtr;
use super::session::{lock, Session};
use super::tools::{ok_text, tool_error, CallToolResult};

/// How long a task is kept after it was created.
pub const TTL: Duration = Duration::from_secs(300);
/// The polling interval suggested to clients.
pub const POLL_MS: u64 = 200;
/// Most tasks kept at once.
pub const MAX_TASKS: usize = 1024;

/// The era a task was created in (its wire shape).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// 2025-11-25 experimental tasks.
    Legacy,
    /// The 2026 extension.
    Modern,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Working,
    InputRequired,
    Completed,
    Failed,
    Cancelled,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Working => "working",
            Status::InputRequired => "input_required",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
        }
    }

    pub fn terminal(self) -> bool {
        matches!(self, Status::Completed | Status::Failed | Status::Cancelled)
    }
}

/// What runs behind a task.
#[derive(Debug, Clone)]
pub enum Job {
    SlowCompute { seconds: f64, label: String },
    Failing,
    ProtocolError,
    ConfirmDelete { filename: String },
    MultiInput,
    Greeting { name: String },
}

/// One task's state.
#[derive(Debug, Clone)]
pub struct Task {
    pub id: String,
    pub era: Era,
    pub status: Status,
    pub message: Option<String>,
    pub created: SystemTime,
    pub updated: SystemTime,
    born: Instant,
    /// `completed`: the tool's result.
    pub result: Option<Value>,
    /// `failed`: the JSON-RPC error (code, message).
    pub error: Option<(i64, String)>,
    /// Input requests not answered yet, in the order asked.
    pub inputs: Vec<(String, Value)>,
    /// 2025: the input requests already sent on a `tasks/result` stream.
    pub sent: Vec<String>,
    answers: HashMap<String, Value>,
    cancel: bool,
    /// 2025: the session that created it (status notifications, `tasks/list`).
    pub session: Option<Weak<Session>>,
}

/// The server's tasks (module docs).
#[derive(Default)]
pub struct Tasks {
    map: Mutex<HashMap<String, Task>>,
    changed: Condvar,
}

/// An unguessable task id.
fn new_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let half = |salt: u64| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(n ^ salt);
        h.finish()
    };
    format!("task-{:016x}{:016x}", half(0x9e37), half(0x79b9))
}

impl Tasks {
    fn map(&self) -> MutexGuard<'_, HashMap<String, Task>> {
        lock(&self.map)
    }

    /// Creates a task for `job` and starts it; returns the task as created.
    pub fn start(self: &Arc<Self>, era: Era, job: Job, session: Option<&Arc<Session>>) -> Task {
        let now = SystemTime::now();
        let task = Task {
            id: new_id(),
            era,
            status: Status::Working,
            message: None,
            created: now,
            updated: now,
            born: Instant::now(),
            result: None,
            error: None,
            inputs: Vec::new(),
            sent: Vec::new(),
            answers: HashMap::new(),
            cancel: false,
            session: session.map(Arc::downgrade),
        };
        {
            let mut map = self.map();
            map.retain(|_, t| t.born.elapsed() < TTL);
            if map.len() >= MAX_TASKS {
                let oldest = map
                    .values()
                    .filter(|t| t.status.terminal())
                    .min_by_key(|t| t.born)
                    .or_else(|| map.values().min_by_key(|t| t.born))
                    .map(|t| t.id.clone());
                if let Some(id) = oldest {
                    map.remove(&id);
                }
            }
            map.insert(task.id.clone(), task.clone());
        }
        let me = self.clone();
        let id = task.id.clone();
        let spawned = std::thread::Builder::new()
            .name("demo-task".into())
            .spawn(move || me.run(&id, job));
        if let Err(e) = spawned {
            self.settle(
                &task.id,
                Status::Failed,
                None,
                Some((-32603, format!("cannot start the task: {e}"))),
            );
        }
        task
    }

    /// A copy of task `id` of `era`, if it exists.
    pub fn get(&self, id: &str, era: Era) -> Option<Task> {
        self.map().get(id).filter(|t| t.era == era).cloned()
    }

    /// 2025: the tasks `session` created, oldest first.
    pub fn of_session(&self, session: &Arc<Session>) -> Vec<Task> {
        let mut all: Vec<Task> = self
            .map()
            .values()
            .filter(|t| {
                t.era == Era::Legacy
                    && t.session
                        .as_ref()
                        .and_then(Weak::upgrade)
                        .is_some_and(|s| Arc::ptr_eq(&s, session))
            })
            .cloned()
            .collect();
        all.sort_by_key(|t| t.born);
        all
    }

    /// Records answers to outstanding input requests (others are ignored).
    /// `false` when there is no such task.
    pub fn update(&self, id: &str, era: Era, responses: &[(String, Value)]) -> bool {
        let mut map = self.map();
        let Some(t) = map.get_mut(id).filter(|t| t.era == era) else {
            return false;
        };
        for (key, answer) in responses {
            if let Some(at) = t.inputs.iter().position(|(k, _)| k == key) {
                t.inputs.remove(at);
                t.sent.retain(|k| k != key);
                t.answers.insert(key.clone(), answer.clone());
            }
        }
        if t.status == Status::InputRequired && t.inputs.is_empty() {
            t.status = Status::Working;
            t.updated = SystemTime::now();
        }
        drop(map);
        self.changed.notify_all();
        true
    }

    /// Asks the job behind task `id` to stop; `None` when there is no such
    /// task, else its status before the request. A 2025 task moves to
    /// `cancelled` at once (that era's cancel answers with the cancelled
    /// task); a 2026 one when its job notices.
    pub fn cancel(&self, id: &str, era: Era) -> Option<Status> {
        let mut map = self.map();
        let t = map.get_mut(id).filter(|t| t.era == era)?;
        let before = t.status;
        if !before.terminal() {
            t.cancel = true;
            if era == Era::Legacy {
                t.status = Status::Cancelled;
                t.message = Some("The task was cancelled by request.".into());
                t.updated = SystemTime::now();
            }
        }
        drop(map);
        self.changed.notify_all();
        if era == Era::Legacy && !before.terminal() {
            self.notify(id);
        }
        Some(before)
    }

    /// Waits (at most `max`) until `done(task)` holds or the task is gone;
    /// returns the task as it is then.
    pub fn wait(&self, id: &str, max: Duration, done: impl Fn(&Task) -> bool) -> Option<Task> {
        let until = Instant::now() + max;
        let mut map = self.map();
        loop {
            let t = map.get(id)?;
            let now = Instant::now();
            if done(t) || now >= until {
                return Some(t.clone());
            }
            map = self
                .changed
                .wait_timeout(map, until - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// 2025: marks input request `key` of task `id` as sent.
    pub fn mark_sent(&self, id: &str, key: &str) {
        if let Some(t) = self.map().get_mut(id) {
            t.sent.push(key.to_string());
        }
    }

    /// Moves task `id` to a terminal status (a cancelled task stays
    /// cancelled) and wakes whoever waits on it.
    fn settle(
        &self,
        id: &str,
        status: Status,
        result: Option<CallToolResult>,
        error: Option<(i64, String)>,
    ) {
        {
            let mut map = self.map();
            let Some(t) = map.get_mut(id) else {
                return;
            };
            if t.status.terminal() {
                return;
            }
            let (status, result, error) = if t.cancel {
                (Status::Cancelled, None, None)
            } else {
                (status, result, error)
            };
            t.status = status;
            t.result = result.map(|r| super::protocol::ordered_value(&r));
            t.error = error;
            t.inputs.clear();
            t.updated = SystemTime::now();
            if status == Status::Cancelled {
                t.message = Some("The task was cancelled by request.".into());
            }
        }
        self.changed.notify_all();
        self.notify(id);
    }

    /// 2025: `notifications/tasks/status` on the creating session's stream.
    fn notify(&self, id: &str) {
        let Some(task) = self.get(id, Era::Legacy) else {
            return;
        };
        if let Some(s) = task.session.as_ref().and_then(Weak::upgrade) {
            s.notify(
                "notifications/tasks/status",
                super::tasks_wire::legacy_task(&task),
            );
        }
    }

    /// Asks the client for input `requests` and waits for every answer (or
    /// a cancellation: `None`).
    fn ask(&self, id: &str, requests: Vec<(String, Value)>) -> Option<HashMap<String, Value>> {
        let keys: Vec<String> = requests.iter().map(|(k, _)| k.clone()).collect();
        {
            let mut map = self.map();
            let t = map.get_mut(id)?;
            t.inputs.extend(requests);
            t.status = Status::InputRequired;
            t.updated = SystemTime::now();
        }
        self.changed.notify_all();
        self.notify(id);
        let t = self.wait(id, TTL, |t| {
            t.cancel || keys.iter().all(|k| t.answers.contains_key(k))
        })?;
        if t.cancel {
            return None;
        }
        self.notify(id);
        Some(
            keys.iter()
                .filter_map(|k| t.answers.get(k).map(|a| (k.clone(), a.clone())))
                .collect(),
        )
    }

    /// Sleeps `d` unless the task is cancelled first (`false` then).
    fn sleep(&self, id: &str, d: Duration) -> bool {
        let t = self.wait(id, d, |t| t.cancel);
        t.is_some_and(|t| !t.cancel)
    }

    /// The job of task `id` (on its own thread).
    fn run(&self, id: &str, job: Job) {
        let done = |r: CallToolResult| self.settle(id, Status::Completed, Some(r), None);
        let cancelled = || self.settle(id, Status::Cancelled, None, None);
        match job {
            Job::SlowCompute { seconds, label } => {
                match self.sleep(id, Duration::from_secs_f64(seconds)) {
                    true => done(ok_text(format!("Computed {label} in {seconds} s"))),
                    false => cancelled(),
                }
            }
            Job::Failing => match self.sleep(id, Duration::from_secs(1)) {
                true => done(tool_error("failing_job failed, as it always does")),
                false => cancelled(),
            },
            Job::ProtocolError => match self.sleep(id, Duration::from_millis(200)) {
                true => self.settle(
                    id,
                    Status::Failed,
                    None,
                    Some((
                        -32603,
                        "protocol_error_job: internal error (by design)".into(),
                    )),
                ),
                false => cancelled(),
            },
            Job::ConfirmDelete { filename } => {
                let ask = mrtr::elicit(&format!("Delete {filename}?"), CONFIRM);
                match self.ask(id, vec![("confirm".into(), ask)]) {
                    Some(a) => {
                        let yes = a.get("confirm").is_some_and(confirmed);
                        done(ok_text(match yes {
                            true => format!("Deleted {filename}"),
                            false => format!("Kept {filename}"),
                        }))
                    }
                    None => cancelled(),
                }
            }
            Job::MultiInput => {
                let requests = vec![
                    ("name".into(), mrtr::elicit("Your name?", NAME)),
                    ("confirm".into(), mrtr::elicit("Proceed?", CONFIRM)),
                ];
                match self.ask(id, requests) {
                    Some(a) => {
                        let name = a.get("name").and_then(|r| mrtr::accepted_str(r, "name"));
                        done(ok_text(format!(
                            "multi_input done: name {}, confirmed {}",
                            name.unwrap_or("(none)"),
                            a.get("confirm").is_some_and(confirmed)
                        )))
                    }
                    None => cancelled(),
                }
            }
            Job::Greeting { name } => match self.sleep(id, Duration::from_millis(300)) {
                true => done(ok_text(format!("Hello, {name}! (from a task)"))),
                false => cancelled(),
            },
        }
    }
}

const CONFIRM: &str =
    r#"{"type":"object","properties":{"confirm":{"type":"boolean"}},"required":["confirm"]}"#;
const NAME: &str =
    r#"{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}"#;

/// An accepted elicitation whose content says `confirm: true` (or, from a
/// client that answers every form alike, carries no `confirm` at all).
fn confirmed(answer: &Value) -> bool {
    use sonic_rs::JsonValueTrait;
    mrtr::accepted(answer).is_some_and(|c| c.get("confirm").is_none_or(|v| v.is_true()))
}

/// `t` as ISO 8601 UTC with milliseconds (`2026-01-02T03:04:05.678Z`).
pub fn iso8601(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
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
        d.subsec_millis()
    )
}

//! A bridged task's input (`to_legacy.rs`): a 2025 backend asks for it on the stream of a
//! `tasks/result`, a 2026 client sees it in `tasks/get` and answers it with `tasks/update`.
//!
//! When `tasks/get` finds the backend's task `input_required`, the shard that created the
//! task calls 2025 `tasks/result` for it (pinned to the task's upstream, the related-task id
//! routing the backend's requests to that call). The backend's elicitation, sampling or
//! roots request parks that call exactly as a plain call is parked on a 2026 client's input
//! (`route/bridge.rs`: the parked call keeps running, bounded by the backend's timeout, and
//! the backend hears an error if no answer comes); this table ([`Inputs`]) remembers, per
//! gateway task id, the park and the request, which `tasks/get` shows as the task's one
//! `inputRequests` entry under the key `o1m-<park number>`. The client's `tasks/update`
//! answer under that key is handed to the parked call (`bridge::deliver`) as the backend's
//! answer; the call's next step (another request, parked the same way, or the task's end)
//! replaces the entry or removes it. A cancel, a terminal status, or a park that ended on its
//! own (its timeout passed) removes it too.
//!
//! Bounds: at most [`MAX_PER_CALLER`] tasks of one caller, and [`MAX_PER_SHARD`] in all, have
//! an entry on a shard; beyond, `tasks/get` shows the task `working` with a message saying
//! so, until one ends.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use futures_channel::oneshot;
use sonic_rs::JsonValueTrait;

use crate::cluster::task_id::TaskRef;
use crate::error::McpError;
use crate::route::call::Call;
use crate::route::router::Router;
use crate::route::tables::tasks::Follow;
use crate::route::tasks::to_legacy::{follow_era, owner_name, request, response_of};
use crate::route::tasks::wire::{string_at, RELATED};
use crate::wire::jsonrpc::{push_json_str, splice, Envelope};

/// Most bridged tasks of one caller with pending input on a shard.
pub const MAX_PER_CALLER: usize = 16;
/// Most bridged tasks with pending input on a shard.
pub const MAX_PER_SHARD: usize = 1024;
/// How long the `tasks/get` that starts a `tasks/result` waits for the backend's request.
const FIRST_ASK_WAIT: Duration = Duration::from_secs(2);
/// The prefix of the gateway's input request keys.
const KEY_PREFIX: &str = "o1m-";

/// Where a bridged task's input stands.
#[derive(Debug)]
enum State {
    /// A `tasks/result` runs; the backend's request is not in hand (yet, or again).
    Waiting,
    /// The backend's request, parked as call `n`: `{"method":…,"params":…}`.
    Asking { n: u64, request: Vec<u8> },
}

#[derive(Debug)]
struct Entry {
    owner: Rc<str>,
    state: State,
}

/// The shard's bridged tasks with pending input, by gateway task id (module docs).
#[derive(Debug, Default)]
pub struct Inputs {
    map: HashMap<Box<str>, Entry>,
}

impl Inputs {
    /// Takes task `gw` of `owner` in, waiting for its request; why not when a bound is met.
    fn admit(&mut self, gw: &str, owner: &Rc<str>) -> Result<(), String> {
        if self.map.len() >= MAX_PER_SHARD {
            return Err(format!(
                "the backend waits for input; the gateway already holds the pending input of {MAX_PER_SHARD} tasks, and will fetch this one's once one of those ends"
            ));
        }
        let mine = self.map.values().filter(|e| e.owner == *owner).count();
        if mine >= MAX_PER_CALLER {
            return Err(format!(
                "the backend waits for input; the gateway already holds the pending input of {MAX_PER_CALLER} of this caller's tasks: answer or cancel those first"
            ));
        }
        self.map.insert(
            gw.into(),
            Entry {
                owner: owner.clone(),
                state: State::Waiting,
            },
        );
        Ok(())
    }

    /// How many tasks have an entry.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// No task has an entry.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// What `tasks/get` shows of an `input_required` task.
pub(crate) enum Shown {
    /// Its `inputRequests` (raw JSON object, one entry).
    Asking(Vec<u8>),
    /// No request in hand: why (shown as the `statusMessage` of a `working` task).
    NotYet(String),
}

const NOT_YET: &str = "the backend waits for input; the gateway is fetching its request";

/// The input request of task `gw`, if the gateway holds it; a park that ended on its own
/// (its timeout) is forgotten here.
fn held(router: &Router, gw: &str) -> Option<Shown> {
    let mut t = router.task_inputs.borrow_mut();
    let e = t.map.get(gw)?;
    match &e.state {
        State::Waiting => Some(Shown::NotYet(NOT_YET.into())),
        State::Asking { n, .. } if !router.parked.borrow().contains_key(n) => {
            t.map.remove(gw);
            None
        }
        State::Asking { n, request } => {
            let mut out = b"{\"".to_vec();
            out.extend_from_slice(KEY_PREFIX.as_bytes());
            out.extend_from_slice(n.to_string().as_bytes());
            out.extend_from_slice(b"\":");
            out.extend_from_slice(request);
            out.push(b'}');
            Some(Shown::Asking(out))
        }
    }
}

/// The input request of `input_required` task `gw`: the one held, or the backend's next one,
/// fetched with a 2025 `tasks/result` started now (waiting a little for it).
pub(crate) async fn shown(call: &Call<'_>, backend: usize, gw: &str, task: &TaskRef) -> Shown {
    if let Some(s) = held(call.router, gw) {
        return s;
    }
    let caps = &call.era.client_caps;
    if !(caps.elicitation || caps.sampling || caps.roots) {
        return Shown::NotYet(
            "the backend waits for input, and this request declares no elicitation, sampling or roots capability to answer it with".into(),
        );
    }
    let owner = owner_name(call);
    if let Err(why) = call.router.task_inputs.borrow_mut().admit(gw, &owner) {
        return Shown::NotYet(why);
    }
    let mut era = follow_era(&call.era, gw, task, Follow::Result);
    era.bind = Some(crate::route::state::binding(
        "tasks/result",
        gw,
        b"",
        &owner,
    ));
    let (ready, got) = oneshot::channel();
    monoio::spawn(fetch(
        call.router.clone(),
        era,
        backend,
        gw.into(),
        task.backend_task.clone(),
        ready,
    ));
    let _ = monoio::time::timeout(FIRST_ASK_WAIT, got).await;
    held(call.router, gw).unwrap_or_else(|| Shown::NotYet(NOT_YET.into()))
}

/// Runs the 2025 `tasks/result` of task `gw` until the backend asks for input (the call
/// parks) or the call ends, and notes which.
async fn fetch(
    router: Rc<Router>,
    era: crate::route::request::Era,
    backend: usize,
    gw: Rc<str>,
    backend_task: String,
    ready: oneshot::Sender<()>,
) {
    let body = request(b"0", "tasks/result", &backend_task);
    let answer = match Envelope::parse(&body) {
        Ok(env) => {
            let call = Call {
                router: &router,
                sid: "",
                body: &body,
                env: &env,
                era,
            };
            match crate::route::forward::forward(call, backend, None).await {
                Ok(a) => response_of(a).await,
                Err(_) => None,
            }
        }
        Err(_) => None,
    };
    settle(&router, &gw, &backend_task, answer.as_deref());
    let _ = ready.send(());
}

/// The call of task `gw` took its next step: `answer` is an `input_required` (a new park:
/// held) or anything else (the entry goes).
fn settle(router: &Router, gw: &str, backend_task: &str, answer: Option<&[u8]>) {
    let asked = answer.and_then(|a| parked_request(a, gw, backend_task));
    let mut t = router.task_inputs.borrow_mut();
    match (asked, t.map.get_mut(gw)) {
        (Some((n, request)), Some(e)) => e.state = State::Asking { n, request },
        (Some((n, _)), None) => {
            // Forgotten meanwhile (cancelled, ended): nobody will answer; end the park now.
            drop(t);
            router.parked.borrow_mut().remove(&n);
        }
        (None, _) => {
            t.map.remove(gw);
        }
    }
}

/// The park number and the input request of a bridged `input_required` answer
/// (`route/bridge.rs`), with the backend's related-task id made the gateway's.
fn parked_request(answer: &[u8], gw: &str, backend_task: &str) -> Option<(u64, Vec<u8>)> {
    let result = sonic_rs::get(answer, ["result"]).ok()?;
    let result = result.as_raw_str().as_bytes();
    if sonic_rs::get(result, ["resultType"]).ok()?.as_str()? != "input_required" {
        return None;
    }
    let state = sonic_rs::get(result, ["requestState"]).ok()?;
    let n = crate::route::state::parse(state.as_str()?)?.n;
    let req = sonic_rs::get(result, ["inputRequests", "input"]).ok()?;
    let req = req.as_raw_str().as_bytes();
    let related = string_at(req, &["params", "_meta", RELATED, "taskId"]);
    let request = match related.filter(|(_, s)| s == backend_task) {
        Some((range, _)) => {
            let mut quoted = Vec::with_capacity(gw.len() + 2);
            push_json_str(&mut quoted, gw);
            let mut out = Vec::with_capacity(req.len() + quoted.len());
            splice(req, &[(range, &quoted[..])], &mut out);
            out
        }
        None => req.to_vec(),
    };
    Some((n, request))
}

/// `tasks/update` of task `gw`: the answer under the key of its held request goes to the
/// backend; other keys are ignored (the extension's rule for responses nobody asked for).
pub(crate) fn answer(call: &Call<'_>, gw: &str, task: &TaskRef) -> Result<(), McpError> {
    let router = call.router;
    let n = match router.task_inputs.borrow().map.get(gw) {
        Some(Entry {
            state: State::Asking { n, .. },
            ..
        }) => *n,
        _ => return Ok(()),
    };
    let key = format!("{KEY_PREFIX}{n}");
    let Ok(given) = sonic_rs::get(call.body, ["params", "inputResponses", key.as_str()]) else {
        return Ok(());
    };
    if !given.is_object() {
        return Err(McpError::InvalidParams(format!(
            "inputResponses[\"{key}\"] must be an object"
        )));
    }
    let given = given.as_raw_str().as_bytes().to_vec();
    let client_id = call.env.id_bytes(call.body).to_vec();
    match crate::route::bridge::deliver(router, n, client_id, Some(given)) {
        Ok(next) => {
            if let Some(e) = router.task_inputs.borrow_mut().map.get_mut(gw) {
                e.state = State::Waiting;
            }
            let (router, gw, backend_task) = (
                router.clone(),
                Rc::<str>::from(gw),
                task.backend_task.clone(),
            );
            monoio::spawn(async move {
                let answer = next.await.ok();
                settle(&router, &gw, &backend_task, answer.as_deref());
            });
        }
        // The park ended on its own meanwhile: the backend was told; nothing to deliver.
        Err(_) => {
            router.task_inputs.borrow_mut().map.remove(gw);
        }
    }
    Ok(())
}

/// Task `gw` needs no input any more (cancelled, ended): its entry goes, and a parked
/// request ends now (the backend hears an error for it).
pub(crate) fn forget(router: &Router, gw: &str) {
    let gone = router.task_inputs.borrow_mut().map.remove(gw);
    if let Some(Entry {
        state: State::Asking { n, .. },
        ..
    }) = gone
    {
        router.parked.borrow_mut().remove(&n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_caller_and_the_shard_are_bounded() {
        let mut t = Inputs::default();
        let (a, b): (Rc<str>, Rc<str>) = ("alice".into(), "bob".into());
        for i in 0..MAX_PER_CALLER {
            t.admit(&format!("a{i}"), &a).unwrap();
        }
        let why = t.admit("a-more", &a).unwrap_err();
        assert!(why.contains("this caller"), "{why}");
        t.admit("b0", &b).unwrap();
        assert_eq!(t.len(), MAX_PER_CALLER + 1);
        t.map.remove("a0");
        t.admit("a-more", &a).unwrap();
        let mut t = Inputs::default();
        for i in 0..MAX_PER_SHARD {
            let owner: Rc<str> = format!("p{i}").into();
            t.admit(&format!("t{i}"), &owner).unwrap();
        }
        assert!(t.admit("one-more", &a).is_err());
    }

    #[test]
    fn a_parked_answer_names_its_park_and_the_gateways_task() {
        let state = "o1m2._.0000002a.0.7.99.W10.00000000000000000000000000000000";
        let answer = format!(
            r#"{{"jsonrpc":"2.0","id":0,"result":{{"resultType":"input_required","inputRequests":{{"input":{{"method":"elicitation/create","params":{{"message":"m","_meta":{{"{RELATED}":{{"taskId":"task-1"}}}}}}}}}},"requestState":"{state}"}}}}"#
        );
        let (n, req) = parked_request(answer.as_bytes(), "gw.1", "task-1").unwrap();
        assert_eq!(n, 7);
        let v: sonic_rs::Value = sonic_rs::from_slice(&req).unwrap();
        assert_eq!(v["method"].as_str(), Some("elicitation/create"));
        assert_eq!(
            v["params"]["_meta"][RELATED]["taskId"].as_str(),
            Some("gw.1")
        );
        // A final answer is not a park.
        let done = br#"{"jsonrpc":"2.0","id":0,"result":{"resultType":"complete","content":[]}}"#;
        assert!(parked_request(done, "gw.1", "task-1").is_none());
    }
}

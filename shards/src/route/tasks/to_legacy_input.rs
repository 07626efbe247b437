//! A bridged task's input (`to_legacy.rs`): a 2025 backend asks for it on the stream of a
//! `tasks/result`, a 2026 client sees it in `tasks/get` and answers it with `tasks/update`.
//!
//! When `tasks/get` finds the backend's task `input_required`, the shard that created the
//! task calls 2025 `tasks/result` for it (pinned to the task's upstream, the related-task id
//! routing the backend's requests to that call). The backend's elicitation, sampling or
//! roots request parks that call exactly as a plain call is parked on a 2026 client's input
//! (`route/bridge.rs`: the parked call keeps running, bounded by the backend's timeout, and
//! the backend hears an error if no answer comes); the shard's table (`Router::task_inputs`) remembers, per
//! gateway task id, the park and the request, which `tasks/get` shows as the task's one
//! `inputRequests` entry under the key `o1m-<park number>`. The client's `tasks/update`
//! answer under that key is handed to the parked call (`bridge::deliver`) as the backend's
//! answer; the call's next step (another request, parked the same way, or the task's end)
//! replaces the entry or removes it. A cancel, a terminal status, or a park that ended on its
//! own (its timeout passed) removes it too.
//!
//! Bounds: at most `MAX_PER_CALLER` (16) tasks of one caller, and `MAX_PER_SHARD` (1024) in all, have
//! an entry on a shard (`route/tables/task_inputs.rs`); beyond, `tasks/get` shows the task `working` with a message saying
//! so, until one ends.

use std::rc::Rc;
use std::time::Duration;

use futures_channel::oneshot;
use sonic_rs::JsonValueTrait;

use crate::cluster::task_id::TaskRef;
use crate::error::McpError;
use crate::route::call::Call;
use crate::route::router::Router;
use crate::route::tables::task_inputs::InputState;
use crate::route::tables::tasks::Follow;
use crate::route::tasks::to_legacy::{follow_era, owner_name, request, response_of};
use crate::route::tasks::wire::{string_at, RELATED};
use crate::wire::jsonrpc::{push_json_str, splice, Envelope};

/// How long the `tasks/get` that starts a `tasks/result` waits for the backend's request.
const FIRST_ASK_WAIT: Duration = Duration::from_secs(2);
/// The prefix of the gateway's input request keys.
const KEY_PREFIX: &str = "o1m-";

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
    let state = router.task_inputs.borrow().get(gw).cloned()?;
    match state {
        InputState::Waiting => Some(Shown::NotYet(NOT_YET.into())),
        InputState::Asking { n, .. } if !router.parked.borrow().contains_key(&n) => {
            router.task_inputs.borrow_mut().remove(gw);
            None
        }
        InputState::Asking { n, request } => {
            let mut out = b"{\"".to_vec();
            out.extend_from_slice(KEY_PREFIX.as_bytes());
            out.extend_from_slice(n.to_string().as_bytes());
            out.extend_from_slice(b"\":");
            out.extend_from_slice(&request);
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
    {
        let parked = call.router.parked.borrow();
        let mut inputs = call.router.task_inputs.borrow_mut();
        inputs.forget_ended(|n| parked.contains_key(&n));
    }
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
    match asked {
        Some((n, request)) => {
            if !t.set(gw, InputState::Asking { n, request }) {
                // Forgotten meanwhile (cancelled, ended): nobody will answer; end the park.
                drop(t);
                router.parked.borrow_mut().remove(&n);
            }
        }
        None => {
            t.remove(gw);
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
    let n = match router.task_inputs.borrow().get(gw) {
        Some(InputState::Asking { n, .. }) => *n,
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
            router.task_inputs.borrow_mut().set(gw, InputState::Waiting);
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
            router.task_inputs.borrow_mut().remove(gw);
        }
    }
    Ok(())
}

/// Task `gw` needs no input any more (cancelled, ended): its entry goes, and a parked
/// request ends now (the backend hears an error for it).
pub(crate) fn forget(router: &Router, gw: &str) {
    let gone = router.task_inputs.borrow_mut().remove(gw);
    if let Some(InputState::Asking { n, .. }) = gone {
        router.parked.borrow_mut().remove(&n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

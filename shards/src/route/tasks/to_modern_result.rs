//! 2025 `tasks/result` of a task carried to a backend that speaks only 2026-07-28
//! (`to_modern.rs`). The 2025 method blocks until the task ends; the 2026 extension has no
//! such method, so the gateway polls the backend's `tasks/get` (at the task's
//! `pollIntervalMs`, clamped to [`POLL_MIN`]..[`POLL_MAX`]) and answers once the task is
//! terminal: `completed` → its `result`, `failed` → its `error`, `cancelled` → -32603 "the
//! task was cancelled", each with `_meta` (the error's `data._meta`)
//! `io.modelcontextprotocol/related-task` naming the gateway's id, as 2025 requires.
//!
//! The answer is an SSE stream: while the task is `input_required`, each of its
//! `inputRequests` the client has not been sent yet goes to it as a server-to-client request
//! on this stream, its params' `_meta` naming the task, by the same relay as a 2026 call's
//! input (`route/relay_input.rs::ask_client`: only what the session declared at initialize,
//! -32021 otherwise; answers bounded by `server.max_body_bytes`; an answer that is not a
//! result ends the wait with an error; unanswered requests are cancelled when it ends). The
//! answers go back with `tasks/update` (`inputResponses` keyed as the backend asked), and
//! polling resumes. Keys already answered are not asked again (a 2026 server's status may
//! lag behind its ack); at most `MAX_ROUNDS` rounds.
//!
//! Bounds: the whole wait, input included, ends at the backend's `timeout_ms` (-32001; the
//! task runs on and may be asked for again); the client's `notifications/cancelled` for
//! its request ends it at once, without an answer. However it ends, nothing stays behind:
//! the poller is one task that ends with it, and its table entries leave with it.

use std::rc::Rc;
use std::time::{Duration, Instant};

use sonic_rs::JsonValueTrait;

use crate::cluster::task_id::TaskRef;
use crate::error::{code, McpError};
use crate::route::call::Call;
use crate::route::forward::{Answer, Era, Finisher};
use crate::route::input_required::{Ask, Input};
use crate::route::relay_input::{ask_client, Asked, MAX_ROUNDS};
use crate::route::tables::calls::inflight_key_rc;
use crate::route::tables::tasks::Follow;
use crate::route::tasks::to_modern::{status_of, with_related, POLL_MAX, POLL_MIN};
use crate::route::tasks::to_modern_follow::{ask, result_of};
use crate::rt::feed::{feed, FeedTx, SSE_QUEUE_BYTES};
use crate::wire::jsonrpc::push_json_str;

/// One `tasks/result` waiting for its task.
struct Waiter {
    finish: Finisher,
    era: Era,
    gw_id: Rc<str>,
    task: TaskRef,
    /// When the wait ends.
    until: Instant,
}

/// Starts the wait (module docs); the client's answer is the stream it writes.
pub(crate) fn start(call: Call<'_>, gw_id: Rc<str>, task: TaskRef) -> Result<Answer, McpError> {
    let Call {
        router,
        sid,
        body,
        env,
        era,
    } = call;
    let (timeout, per_client) = {
        let snap = router.snapshot.load();
        let b = snap.backend_index(&task.server).ok_or_else(|| {
            crate::upstream::task_lost(&task.server, "its server is no longer configured")
        })?;
        let spec = &snap.backends[b];
        (spec.timeout, spec.per_client.then(|| spec.clone()))
    };
    // The session's own upstream of a per-client backend, as `route/forward.rs` picks it.
    let handle = match per_client {
        Some(spec) => crate::route::per_client::handle_for(router, sid, &spec),
        None => router
            .upstreams
            .backends
            .borrow()
            .get(&task.server)
            .cloned(),
    }
    .ok_or_else(|| McpError::BackendUnavailable {
        server: task.server.clone(),
        reason: "not started on this shard".into(),
    })?;
    let client_id = env.id_bytes(body).to_vec();
    let until = Instant::now() + timeout;
    let mut finisher_era = era.clone();
    finisher_era.task = None;
    let finish = Finisher {
        router: router.clone(),
        sid: sid.into(),
        handle,
        client_id: client_id.as_slice().into(),
        client_token: None,
        backend_id: task.server.as_str().into(),
        method: crate::stats::method_label("tasks/result"),
        prefixed: false,
        relayed: Default::default(),
        era: finisher_era,
        deadline: (crate::upstream::deadline_in(timeout), timeout, until),
    };
    // The client's `notifications/cancelled` for its request reaches the wait here.
    let key = inflight_key_rc(sid, &client_id);
    let (cancel_tx, cancel_rx) = finish.deadline.0.cancel_pair();
    router
        .calls
        .inflight
        .borrow_mut()
        .insert(key.clone(), cancel_tx);
    let (tx, rx) = feed(SSE_QUEUE_BYTES);
    let waiter = Waiter {
        finish,
        era,
        gw_id,
        task,
        until,
    };
    monoio::spawn(async move {
        let end = monoio::select! {
            m = wait(&waiter, &tx) => Some(m),
            _ = crate::upstream::cancelled(Some(cancel_rx)) => None,
        };
        waiter
            .finish
            .router
            .calls
            .inflight
            .borrow_mut()
            .remove(&key);
        if let Some(m) = end {
            let _ = tx.send(m);
        }
    });
    Ok(Answer::Stream(rx))
}

/// Polls until the task ends, relaying its input requests; the client's final answer.
async fn wait(w: &Waiter, tx: &FeedTx) -> Vec<u8> {
    let client_id = &w.finish.client_id;
    match poll(w, tx).await {
        Ok(answer) => answer,
        Err(e) => e.to_response(client_id),
    }
}

async fn poll(w: &Waiter, tx: &FeedTx) -> Result<Vec<u8>, McpError> {
    let router = &w.finish.router;
    let server = &w.task.server;
    let timed_out = || McpError::BackendTimeout {
        server: server.clone(),
        ms: w.finish.deadline.1.as_millis() as u64,
    };
    let mut answered: Vec<String> = Vec::new();
    let mut rounds = 0;
    loop {
        let left = w.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timed_out());
        }
        let id = format!("\"o1m.{}.{}\"", router.id, router.calls.mint()).into_bytes();
        let get = ask(
            router,
            &w.finish.sid,
            &w.era,
            &w.gw_id,
            &w.task,
            "tasks/get",
            b"",
            Follow::Result,
            &id,
        );
        let resp = monoio::time::timeout(left, get)
            .await
            .map_err(|_| timed_out())??;
        let Some(obj) = result_of(&resp) else {
            // An error (the task lost, the backend's own): the client's, under its id.
            return Ok(reid(&resp, &w.finish.client_id));
        };
        let pause = sonic_rs::get(obj, ["pollIntervalMs"])
            .ok()
            .and_then(|v| v.as_u64())
            .map_or(POLL_MIN, Duration::from_millis)
            .clamp(POLL_MIN, POLL_MAX);
        match status_of(obj) {
            Some("completed") => {
                let result = sonic_rs::get(obj, ["result"])
                    .ok()
                    .filter(|r| r.is_object())
                    .ok_or_else(|| McpError::BackendProtocol {
                        server: server.clone(),
                        reason: "its completed task has no result".into(),
                    })?;
                let result = with_related(Some(result.as_raw_str().as_bytes()), &w.gw_id);
                return Ok(crate::wire::ok_result(&w.finish.client_id, &result));
            }
            Some("failed") => return Ok(failed(w, obj)),
            Some("cancelled") => {
                return Ok(error_answer(
                    w,
                    code::INTERNAL_ERROR as i64,
                    "the task was cancelled",
                ))
            }
            Some("input_required") => {
                let asked = match Ask::parse(server, &resp) {
                    Ok(asked) => asked,
                    // Requests the backend sent but the gateway cannot relay (too many, an
                    // unknown method, bad params): its fault, said now rather than waited out.
                    Err(e) if sonic_rs::get(&resp[..], ["result", "inputRequests"]).is_ok() => {
                        return Ok(error_answer(w, e.code() as i64, &e.to_string()));
                    }
                    // No input request (yet): poll again.
                    Err(_) => {
                        monoio::time::sleep(pause.min(left)).await;
                        continue;
                    }
                };
                let fresh: Vec<Input> = asked
                    .inputs
                    .into_iter()
                    .filter(|i| !answered.contains(&i.key))
                    .map(|mut i| {
                        i.params = Some(with_related(i.params.as_deref(), &w.gw_id));
                        i
                    })
                    .collect();
                if fresh.is_empty() {
                    monoio::time::sleep(pause.min(left)).await;
                    continue;
                }
                rounds += 1;
                if rounds > MAX_ROUNDS {
                    return Err(McpError::BackendProtocol {
                        server: server.clone(),
                        reason: format!("its task asked for input more than {MAX_ROUNDS} times"),
                    });
                }
                let ask_now = Ask {
                    inputs: fresh,
                    state: None,
                };
                let never = std::pin::pin!(std::future::pending::<()>());
                let answers = match ask_client(&w.finish, &ask_now, tx, never).await {
                    Asked::Answers(a) => a,
                    Asked::Failed(e) => return Err(e),
                    Asked::Cancelled => return Err(McpError::Cancelled),
                };
                update(w, &ask_now, &answers).await?;
                answered.extend(ask_now.inputs.into_iter().map(|i| i.key));
            }
            Some(_) => monoio::time::sleep(pause.min(left)).await,
            None => {
                return Err(McpError::BackendProtocol {
                    server: server.clone(),
                    reason: "its task has no status the tasks extension names".into(),
                })
            }
        }
    }
}

/// Gives the backend the client's `answers` to `asked` with `tasks/update`.
async fn update(w: &Waiter, asked: &Ask, answers: &[Vec<u8>]) -> Result<(), McpError> {
    let size: usize = answers.iter().map(Vec::len).sum::<usize>()
        + asked
            .inputs
            .iter()
            .map(|i| i.key_json.len() + 1)
            .sum::<usize>();
    let mut more = Vec::with_capacity(size + 24);
    more.extend_from_slice(br#","inputResponses":{"#);
    for (n, (input, answer)) in asked.inputs.iter().zip(answers).enumerate() {
        if n > 0 {
            more.push(b',');
        }
        more.extend_from_slice(&input.key_json);
        more.push(b':');
        more.extend_from_slice(answer);
    }
    more.push(b'}');
    let router = &w.finish.router;
    let id = format!("\"o1m.{}.{}\"", router.id, router.calls.mint()).into_bytes();
    let left = w.until.saturating_duration_since(Instant::now());
    let update = ask(
        router,
        &w.finish.sid,
        &w.era,
        &w.gw_id,
        &w.task,
        "tasks/update",
        &more,
        Follow::Update,
        &id,
    );
    let resp =
        monoio::time::timeout(left, update)
            .await
            .map_err(|_| McpError::BackendTimeout {
                server: w.task.server.clone(),
                ms: w.finish.deadline.1.as_millis() as u64,
            })??;
    if result_of(&resp).is_some() {
        return Ok(());
    }
    let message = sonic_rs::get(&resp[..], ["error", "message"])
        .ok()
        .and_then(|m| m.as_str().map(|s| s.chars().take(256).collect::<String>()))
        .unwrap_or_default();
    Err(McpError::BackendProtocol {
        server: w.task.server.clone(),
        reason: format!("it refused the client's input (tasks/update): {message}"),
    })
}

/// A failed task's answer: its `error`, or -32603 with its status message.
fn failed(w: &Waiter, obj: &[u8]) -> Vec<u8> {
    let code = sonic_rs::get(obj, ["error", "code"])
        .ok()
        .and_then(|c| c.as_i64())
        .unwrap_or(code::INTERNAL_ERROR as i64);
    let message = sonic_rs::get(obj, ["error", "message"])
        .or_else(|_| sonic_rs::get(obj, ["statusMessage"]))
        .ok()
        .and_then(|m| m.as_str().map(str::to_string))
        .unwrap_or_else(|| "the task failed".into());
    error_answer(w, code, &message)
}

/// `{"jsonrpc","id","error":{code,message,data:{_meta:{related-task}}}}` for the client.
fn error_answer(w: &Waiter, code: i64, message: &str) -> Vec<u8> {
    let data = with_related(None, &w.gw_id);
    let mut out = Vec::with_capacity(96 + message.len() + data.len());
    out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    out.extend_from_slice(&w.finish.client_id);
    out.extend_from_slice(br#","error":{"code":"#);
    out.extend_from_slice(code.to_string().as_bytes());
    out.extend_from_slice(br#","message":"#);
    push_json_str(&mut out, message);
    out.extend_from_slice(br#","data":"#);
    out.extend_from_slice(&data);
    out.extend_from_slice(b"}}");
    out
}

/// An error response `resp` under the client's id.
fn reid(resp: &[u8], client_id: &[u8]) -> Vec<u8> {
    let error = sonic_rs::get(resp, ["error"])
        .ok()
        .map(|e| e.as_raw_str().as_bytes().to_vec())
        .unwrap_or_else(|| br#"{"code":-32603,"message":"no answer"}"#.to_vec());
    let mut out = Vec::with_capacity(32 + client_id.len() + error.len());
    out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    out.extend_from_slice(client_id);
    out.extend_from_slice(br#","error":"#);
    out.extend_from_slice(&error);
    out.push(b'}');
    out
}

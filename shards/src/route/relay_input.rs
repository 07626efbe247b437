//! Bridging a 2026-07-28 backend's `input_required` to a 2025-era client.
//!
//! A 2026 backend sends no requests to the client: it answers `tools/call`, `prompts/get` or
//! `resources/read` with `{"resultType":"input_required","inputRequests":{key:{method,
//! params}},"requestState":…}` and expects the same request again carrying `inputResponses`
//! (keyed alike) and its `requestState`, echoed. A 2025-era client knows nothing of that: it
//! answers server-to-client requests sent on the call's stream. So for a 2025 session's call
//! the gateway plays the 2026 client. It declares the session's own `elicitation`,
//! `sampling` and `roots` capabilities to the backend (`CallOpts::client_caps`); when the
//! answer asks for input, the client's answer becomes an SSE stream on which each input
//! request goes out as a server-to-client request under a gateway id (`"o1m.<shard>.<n>"`,
//! held in `LocalCalls::inputs` under the session, so only that session's answer reaches
//! it). The client's answers (POSTed responses, routed by `client_msgs::client_answer`) become
//! `inputResponses`, the request is sent again with them and the backend's `requestState`,
//! and so on, round after round, until the backend's final answer, which goes to the client
//! under its own id.
//!
//! Bounds: everything happens within the call's deadline (its timeout, pushed back by
//! progress up to `max_timeout_ms`); at most [`MAX_ROUNDS`] rounds of at most
//! [`MAX_INPUTS`](crate::route::input_required::MAX_INPUTS) requests; one round's answers
//! at most `server.max_body_bytes` together (what a 2026 client could send itself). An
//! input request the client did not declare the capability for ends the call with -32021;
//! a client that does not answer in time with -32001 (after a `notifications/cancelled` for
//! each request it left unanswered); a client that answers with an error with that error's
//! code. A client's `notifications/cancelled` for its request ends the call at once, with no
//! answer (a backend call in flight is cancelled as the first one would have been). However
//! the call ends, its requests leave the table.

use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::rc::Rc;

use futures_channel::mpsc;
use sonic_rs::JsonValueTrait;

use crate::error::{code, McpError};
use crate::route::forward::{BusyGuard, Finisher};
use crate::route::input_required::{again, asks_input, request_message, Ask, Input};
use crate::route::router::Router;
use crate::route::tables::calls::{inflight_key, InputSlot};
use crate::rt::feed::{feed, FeedRx, FeedTx, SSE_QUEUE_BYTES};
use crate::rt::next;
use crate::upstream::{BackendReply, CallOpts};
use crate::wire::jsonrpc::push_json_str;

/// Most rounds of input one call may ask for.
pub const MAX_ROUNDS: usize = 16;
/// Most characters of a client's error message quoted back to it.
const MAX_QUOTED: usize = 256;

/// What a bridge needs to send a forwarded call again.
pub(crate) struct Resend {
    /// The request as first sent, its id the transport's placeholder at `ph`.
    pub(crate) base: Vec<u8>,
    pub(crate) ph: Range<usize>,
    /// The call's key in the in-flight table (the client's cancellation finds it there).
    pub(crate) key: Vec<u8>,
    /// The gateway's progress token the request carries.
    pub(crate) progress: Option<Vec<u8>>,
    pub(crate) affinity: u64,
    pub(crate) tool_headers: Option<std::sync::Arc<crate::catalog::params::ToolHeaders>>,
    pub(crate) client_caps: Option<std::sync::Arc<[u8]>>,
    pub(crate) max_inflight: usize,
    pub(crate) series: crate::stats::LocalSeries,
    /// The first send's trace context (its `_meta` one is in `base` already).
    pub(crate) trace: Option<crate::trace::Outgoing>,
}

/// The backend asked for input after answering nothing else on the call (`early` holds
/// what it said meanwhile): the client's answer becomes a stream, and the bridge runs.
pub(crate) fn start(
    finish: Finisher,
    resend: Resend,
    first: BackendReply,
    early: Vec<Vec<u8>>,
) -> FeedRx {
    let (tx, rx) = feed(SSE_QUEUE_BYTES);
    for m in early {
        let _ = tx.send(m);
    }
    monoio::spawn(run(finish, resend, first, tx));
    rx
}

/// Runs the rounds of a call whose answer `first` asks for input, writing the relayed
/// requests, the backend's notifications and the final answer to `tx`.
pub(crate) async fn run(finish: Finisher, resend: Resend, first: BackendReply, tx: FeedTx) {
    let router = finish.router.clone();
    let (cancel_tx, cancel_rx) = crate::upstream::Deadline::none().cancel_pair();
    router
        .calls
        .inflight
        .borrow_mut()
        .insert(resend.key.as_slice().into(), cancel_tx);
    let _registered = Registered {
        router: &router,
        key: &resend.key,
    };
    let mut cancelled = std::pin::pin!(crate::upstream::cancelled(Some(cancel_rx)));
    let mut reply = first;
    let mut round = 0;
    let end = loop {
        round += 1;
        if round > MAX_ROUNDS {
            break Some(Err(McpError::BackendProtocol {
                server: finish.backend_id.to_string(),
                reason: format!("asked for input more than {MAX_ROUNDS} times in one call"),
            }));
        }
        let ask = match Ask::parse(&finish.backend_id, &reply.body) {
            Ok(a) => a,
            Err(e) => break Some(Err(e)),
        };
        let answers = match ask_client(&finish, &ask, &tx, cancelled.as_mut()).await {
            Asked::Answers(a) => a,
            Asked::Failed(e) => break Some(Err(e)),
            Asked::Cancelled => break None,
        };
        let (body, ph) = match again(&resend.base, resend.ph.clone(), &ask, &answers) {
            Ok(b) => b,
            Err(e) => break Some(Err(e)),
        };
        match call_again(&finish, &resend, body, ph, &tx, cancelled.as_mut()).await {
            r if asks_input(&r) => reply = r.expect("asks_input holds only for Ok"),
            r => break Some(r),
        }
    };
    match end {
        Some(Err(McpError::Cancelled)) | None => {}
        Some(r) => {
            let _ = tx.send(finish.reply(r));
        }
    }
}

/// Removes the call's cancellation entry however the bridge ends.
struct Registered<'a> {
    router: &'a Router,
    key: &'a [u8],
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.router.calls.inflight.borrow_mut().remove(self.key);
    }
}

/// How asking the client ended.
pub(crate) enum Asked {
    /// Every answer's `result`, in the order of the requests.
    Answers(Vec<Vec<u8>>),
    /// The call ends with this error.
    Failed(McpError),
    /// The client cancelled its request.
    Cancelled,
}

/// The relayed requests of one round still waiting for their answer; they leave the table
/// however the round ends.
struct Pending<'a> {
    router: &'a Router,
    sid: &'a str,
    keys: Vec<Vec<u8>>,
}

impl Pending<'_> {
    /// Tells the client that the requests it has not answered are void, with `reason`.
    fn cancel_unanswered(&self, tx: &FeedTx, reason: &str) {
        let table = self.router.calls.inputs.borrow();
        for k in self.keys.iter().filter(|k| table.contains_key(*k)) {
            let mut m =
                br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"#
                    .to_vec();
            m.extend_from_slice(&k[self.sid.len() + 1..]);
            m.extend_from_slice(br#","reason":"#);
            push_json_str(&mut m, reason);
            m.extend_from_slice(b"}}");
            let _ = tx.send(m);
        }
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        let mut table = self.router.calls.inputs.borrow_mut();
        for k in &self.keys {
            table.remove(k);
        }
    }
}

/// Sends the round's input requests to the client and collects its answers (also for a
/// 2026 task's input requests on a 2025 `tasks/result` stream, `route/tasks/to_modern.rs`).
pub(crate) async fn ask_client(
    finish: &Finisher,
    ask: &Ask,
    tx: &FeedTx,
    cancelled: Pin<&mut impl Future<Output = ()>>,
) -> Asked {
    let router = &finish.router;
    let caps = router.sessions.borrow().get(&finish.sid).map(|s| s.caps);
    let Some(caps) = caps else {
        return Asked::Failed(McpError::InvalidRequest(
            "the session ended while its call waited for input".into(),
        ));
    };
    if let Some(i) = ask.inputs.iter().find(|i| !caps.allows(i.method)) {
        return Asked::Failed(finish.client_input(
            code::MISSING_CLIENT_CAPABILITY,
            format!(
                "it asks for {} (input `{}`), and this session did not declare the `{}` capability at initialize",
                i.method, i.key, i.capability
            ),
        ));
    }
    let (atx, mut arx) = mpsc::unbounded();
    let mut pending = Pending {
        router,
        sid: &finish.sid,
        keys: Vec::with_capacity(ask.inputs.len()),
    };
    for (slot, input) in ask.inputs.iter().enumerate() {
        let gw_id = format!("\"o1m.{}.{}\"", router.id, router.calls.mint()).into_bytes();
        let key = inflight_key(&finish.sid, &gw_id);
        let entry = InputSlot {
            tx: atx.clone(),
            slot,
        };
        router.calls.inputs.borrow_mut().insert(key.clone(), entry);
        pending.keys.push(key);
        let _ = tx.send(request_message(&gw_id, input));
    }
    drop(atx);
    let limit = router.snapshot.load().config.server.max_body_bytes;
    let mut answers: Vec<Option<Vec<u8>>> = vec![None; ask.inputs.len()];
    let collect = async {
        let (mut left, mut bytes) = (ask.inputs.len(), 0usize);
        while left > 0 {
            let Some((slot, msg)) = next(&mut arx).await else {
                return Err(McpError::Gateway(
                    "the input table dropped a request".into(),
                ));
            };
            let input = &ask.inputs[slot];
            let result = finish.answer_of(&msg, input)?;
            bytes += result.len();
            if bytes > limit {
                return Err(finish.client_input(
                    code::INVALID_PARAMS,
                    format!("its answers are larger than {limit} bytes together"),
                ));
            }
            answers[slot] = Some(result);
            left -= 1;
        }
        Ok(())
    };
    let (d, timeout, _) = &finish.deadline;
    let got = monoio::select! {
        r = crate::upstream::within(*timeout, Some(d), collect) => r,
        _ = cancelled => return Asked::Cancelled,
    };
    match got {
        Ok(Ok(())) => Asked::Answers(answers.into_iter().flatten().collect()),
        Ok(Err(e)) => {
            pending.cancel_unanswered(tx, "the call ended without this input");
            Asked::Failed(e)
        }
        Err(()) => {
            pending.cancel_unanswered(tx, "the call's timeout passed");
            let names: Vec<String> = ask
                .inputs
                .iter()
                .map(|i| format!("{} (input `{}`)", i.method, i.key))
                .collect();
            Asked::Failed(finish.client_input(
                code::BACKEND_TIMEOUT,
                format!(
                    "the client did not answer {} within the call's timeout ({} ms)",
                    names.join(", "),
                    timeout.as_millis()
                ),
            ))
        }
    }
}

impl Finisher {
    fn client_input(&self, code: i32, reason: String) -> McpError {
        McpError::ClientInput {
            server: self.backend_id.to_string(),
            code,
            reason,
        }
    }

    /// The `result` of the client's answer `msg` to `input`, or why the call ends.
    fn answer_of(&self, msg: &[u8], input: &Input) -> Result<Vec<u8>, McpError> {
        if let Ok(r) = sonic_rs::get(msg, ["result"]) {
            if r.is_object() {
                return Ok(r.as_raw_str().as_bytes().to_vec());
            }
            return Err(self.client_input(
                code::INVALID_PARAMS,
                format!(
                    "its answer to {} (input `{}`) is not an object",
                    input.method, input.key
                ),
            ));
        }
        let err_code = sonic_rs::get(msg, ["error", "code"])
            .ok()
            .and_then(|c| c.as_i64())
            .and_then(|c| i32::try_from(c).ok())
            .unwrap_or(code::INTERNAL_ERROR);
        let message = sonic_rs::get(msg, ["error", "message"])
            .ok()
            .and_then(|m| m.as_str().map(|s| s.chars().take(MAX_QUOTED).collect()))
            .unwrap_or_else(|| String::from("(no message)"));
        Err(self.client_input(
            err_code,
            format!(
                "it answered {} (input `{}`) with an error: {message}",
                input.method, input.key
            ),
        ))
    }
}

/// Sends the request again; relays the backend's notifications meanwhile. The client's
/// cancellation reaches the backend the way the first call's did (the transport's own
/// cancel), and the call then ends `Cancelled`.
async fn call_again(
    finish: &Finisher,
    resend: &Resend,
    body: Vec<u8>,
    ph: Range<usize>,
    tx: &FeedTx,
    mut cancelled: Pin<&mut impl Future<Output = ()>>,
) -> Result<BackendReply, McpError> {
    let router: &Rc<Router> = &finish.router;
    let _guard = BusyGuard::enter(router, &finish.backend_id, resend.max_inflight)?;
    // This round's events and its own stop (the client's cancel is `cancelled`); its time
    // limit is the call's deadline.
    let link = crate::upstream::Deadline::none();
    let (ev_tx, mut ev_rx) = link.events();
    let (stop, stop_rx) = link.cancel_pair();
    let started = crate::rt::clock::now();
    let opts = CallOpts {
        timeout: finish.deadline.1,
        events: Some(ev_tx),
        progress: resend.progress.clone(),
        cancel: Some(stop_rx),
        started: Some(started),
        wait_first_start: true,
        modern: false,
        affinity: resend.affinity,
        deadline: Some(finish.deadline.0.clone()),
        retry_safe: false,
        tool_headers: resend.tool_headers.clone(),
        client_caps: resend.client_caps.clone(),
        listen: false,
        // A 2025 client's call to a 2026 backend never creates a task (no extension).
        pin: None,
        related_task: None,
        trace: resend.trace.clone(),
    };
    let mut call = std::pin::pin!(finish.handle.call(body, ph, opts));
    let mut stop = Some(stop);
    let r = loop {
        monoio::select! {
            r = call.as_mut() => break r,
            ev = next(&mut ev_rx) => match ev {
                Some(ev) => {
                    if let Some(m) = finish.event(ev) {
                        let _ = tx.send(m);
                    }
                }
                None => break call.as_mut().await,
            },
            _ = cancelled.as_mut(), if stop.is_some() => {
                if let Some(s) = stop.take() {
                    s.cancel();
                }
            }
        }
    };
    resend.series.borrow_mut().add(
        crate::stats::Outcome::of(&r),
        crate::rt::clock::since(started),
    );
    while let Some(ev) = ev_rx.try_recv() {
        if let Some(m) = finish.event(ev) {
            let _ = tx.send(m);
        }
    }
    r
}

//! Bridging a 2025-era backend's server-to-client request to a 2026-07-28 client.
//!
//! A 2026 client cannot receive requests; it receives an `input_required` result and retries
//! the original request with `inputResponses` and the `requestState` it was given. When a
//! 2025 backend sends `elicitation/create`, `sampling/createMessage` or `roots/list` during a
//! 2026 client's call, the gateway answers that call with an `input_required` result carrying
//! the backend's request as the one input request, and **parks** the backend call (it keeps
//! waiting for its answer). The `requestState` ([`crate::route::state`]) names the shard and the
//! parked call and is bound by an HMAC to the request's method, name, arguments and caller
//! and to an expiry, so a tampered or replayed state, or one sent with another request or by
//! another caller, is refused with a JSON-RPC error (-32602) and the parked call stays
//! parked. The retry (which may land on any shard and is handed to the owner) delivers the
//! client's input as the backend's answer, and the backend's next step — its result, or
//! another request, i.e. another round — answers it. A parked call the client never resumes
//! is given up after [`PARK_TTL`].
//!
//! In a fleet the retry may land on another node, or on this node after a restart, where no
//! call is parked. The state is signed with the cluster key and carries the client's earlier
//! answers, so that node **replays** the call on its own backend connection: it sends the
//! request again and answers each of the backend's input requests from the carried answers
//! and then the retry's `inputResponses`, in order; if the backend asks for more, the call
//! parks here and the client gets a new `input_required`. The first node's parked call ends
//! by its timeout. A replay runs the tool again up to where it asked, so a server whose tools
//! are not safe to run twice sets `bridge_replay = false` and such a retry is refused with a
//! clear error instead (`docs/fleet.md`).

use std::rc::Rc;
use std::time::Duration;

use futures_channel::oneshot;
use sonic_rs::JsonValueTrait;

use crate::error::McpError;
use crate::http::response::Reply;
use crate::route::forward::{CallFut, Finisher};
use crate::route::router::Router;
use crate::route::tables::parked::{InputLog, LocalParked, Retry};
use crate::rt::next;
use crate::upstream::{BackendEvent, EventRx};
use crate::wire::jsonrpc::{Envelope, Kind};

/// How long a parked call waits for the client's retry.
pub const PARK_TTL: Duration = Duration::from_secs(300);
/// The key of the single input request in a bridged `input_required` result.
const INPUT_KEY: &str = "input";

/// Should this backend event park the call: a server-to-client request, during a 2026
/// client's call, of a kind that client declared it can answer? (Other requests are refused
/// to the backend by the normal event path.)
pub(crate) fn wants_park(finish: &Finisher, ev: &BackendEvent) -> bool {
    finish.era.modern
        && finish.era.bind.is_some()
        && Envelope::parse(&ev.msg).is_ok_and(|e| {
            e.kind == Kind::Request
                && finish
                    .era
                    .client_caps
                    .allows(e.method.as_deref().unwrap_or(""))
        })
}

/// Parks the call on a backend request `ev` and returns the `input_required` answer for the
/// client (to its current request id).
pub(crate) fn park(call: CallFut, ev_rx: EventRx, finish: Finisher, ev: BackendEvent) -> Vec<u8> {
    let router = finish.router.clone();
    let (method, params, backend_req_id) = {
        let env = match Envelope::parse(&ev.msg) {
            Ok(e) => e,
            Err(e) => return e.to_response(&finish.client_id),
        };
        let params = env
            .params
            .clone()
            .map(|r| ev.msg[r].to_vec())
            .unwrap_or_else(|| b"{}".to_vec());
        (
            env.method.as_deref().unwrap_or("").to_string(),
            params,
            env.id_bytes(&ev.msg).to_vec(),
        )
    };
    let n = router.calls.mint();
    let (tx, rx) = oneshot::channel();
    router.parked.borrow_mut().insert(n, LocalParked { tx });
    let bind = finish.era.bind.unwrap_or_default();
    let state = crate::route::state::mint(
        &router.snapshot.load().cluster,
        router.id,
        n,
        &bind,
        &finish.era.inputs.given,
        PARK_TTL,
    );
    let mut irr = br#"{"resultType":"input_required","inputRequests":{""#.to_vec();
    irr.extend_from_slice(INPUT_KEY.as_bytes());
    irr.extend_from_slice(br#"":{"method":"#);
    crate::wire::jsonrpc::push_json_str(&mut irr, &method);
    irr.extend_from_slice(br#","params":"#);
    irr.extend_from_slice(&params);
    irr.extend_from_slice(br#"}},"requestState":"#);
    crate::wire::jsonrpc::push_json_str(&mut irr, &state);
    irr.push(b'}');
    let answer = crate::wire::ok_result(&finish.client_id, &irr);
    // The call moves to the parking task: its deadline timer must wake that one.
    let mut call = call;
    call.as_mut().moved();
    let parking = Parking {
        router,
        n,
        call,
        ev_rx,
        finish,
        replica: ev.replica,
        backend_req_id,
    };
    monoio::spawn(parked(parking, rx));
    answer
}

/// A backend request the 2026 client can answer arrived ([`wants_park`]): a replay answers
/// it from the client's earlier answers and runs on to the call's next step; otherwise the
/// call parks. Returns the answer for the client's current request.
pub(crate) async fn on_input_request(
    call: CallFut,
    ev_rx: EventRx,
    mut finish: Finisher,
    ev: BackendEvent,
) -> Vec<u8> {
    let Some(answer) = finish.era.inputs.next_answer() else {
        return park(call, ev_rx, finish, ev);
    };
    answer_backend(&finish, &ev, &answer);
    let (tx, done) = oneshot::channel();
    let client_id = finish.client_id.clone();
    drive(call, ev_rx, finish, tx).await;
    done.await.unwrap_or_else(|_| {
        McpError::Gateway("the replayed call ended without an answer".into())
            .to_response(&client_id)
    })
}

/// Answers the backend's server-to-client request `ev` with the client's `answer`.
fn answer_backend(finish: &Finisher, ev: &BackendEvent, answer: &[u8]) {
    let Ok(env) = Envelope::parse(&ev.msg) else {
        return;
    };
    let mut out = b"{\"jsonrpc\":\"2.0\",\"id\":".to_vec();
    out.extend_from_slice(env.id_bytes(&ev.msg));
    out.extend_from_slice(b",\"result\":");
    out.extend_from_slice(answer);
    out.push(b'}');
    finish.handle.respond(ev.replica, out);
}

async fn drive(
    mut call: CallFut,
    mut ev_rx: EventRx,
    mut finish: Finisher,
    done: oneshot::Sender<Vec<u8>>,
) {
    loop {
        monoio::select! {
            r = &mut call => {
                let _ = done.send(finish.reply(r));
                return;
            }
            ev = next(&mut ev_rx) => match ev {
                Some(ev) if wants_park(&finish, &ev) => {
                    // A replay answers from what the client already gave.
                    if let Some(answer) = finish.era.inputs.next_answer() {
                        answer_backend(&finish, &ev, &answer);
                        continue;
                    }
                    let _ = done.send(park(call, ev_rx, finish, ev));
                    return;
                }
                // Notifications cannot reach a JSON answer; other requests are refused.
                Some(ev) => drop(finish.event(ev)),
                None => {
                    let _ = done.send(finish.reply(call.await));
                    return;
                }
            },
        }
    }
}

/// A call being parked: the call itself, where its events and its answer go, and the
/// backend request it waits to answer.
struct Parking {
    router: Rc<Router>,
    /// Its park number.
    n: u64,
    call: CallFut,
    ev_rx: EventRx,
    finish: Finisher,
    /// The replica and the backend's id of the request the client is asked to answer.
    replica: usize,
    backend_req_id: Vec<u8>,
}

/// Keeps a parked call running until the client's retry brings its input (`rx`), the park
/// times out, or the call ends on its own.
async fn parked(parking: Parking, rx: oneshot::Receiver<Retry>) {
    let Parking {
        router,
        n,
        mut call,
        ev_rx,
        mut finish,
        replica,
        backend_req_id,
    } = parking;
    // The call keeps being polled while parked, so its own timeout (or the backend giving
    // up) ends it and frees what it holds (its backend slot, its event sink) on time.
    // (the retry if it came, whether the call is still running)
    let (waited, running) = monoio::select! {
        r = monoio::time::timeout(PARK_TTL, rx) => (r.ok().and_then(Result::ok), true),
        _ = &mut call => (None, false),
    };
    let Some(retry) = waited else {
        router.parked.borrow_mut().remove(&n);
        let mut out = b"{\"jsonrpc\":\"2.0\",\"id\":".to_vec();
        out.extend_from_slice(&backend_req_id);
        out.extend_from_slice(br#","error":{"code":-32603,"message":"the client did not provide the input in time"}}"#);
        finish.handle.respond(replica, out);
        // Finish the call (it ends soon without its input) rather than drop it mid-way, so
        // its own clean-up runs; the result has no one to go to.
        if running {
            let _ = call.await;
        }
        return;
    };
    let mut out = b"{\"jsonrpc\":\"2.0\",\"id\":".to_vec();
    out.extend_from_slice(&backend_req_id);
    match &retry.input {
        Some(result) => {
            out.extend_from_slice(b",\"result\":");
            out.extend_from_slice(result);
            out.push(b'}');
            finish.era.inputs.given.push(result.clone());
        }
        None => out.extend_from_slice(
            br#","error":{"code":-32602,"message":"the client sent no input response"}}"#,
        ),
    }
    finish.handle.respond(replica, out);
    finish.client_id = retry.client_id.as_slice().into();
    let (tx, done) = oneshot::channel();
    drive(call, ev_rx, finish, tx).await;
    if let Ok(answer) = done.await {
        let _ = retry.reply.send(answer);
    }
}

/// Hands the client's `input` (under its request id `client_id`) to call `n` parked on this
/// shard. The call's next step (its answer, or another `input_required`) comes on the
/// returned receiver. Also how a bridged task's input reaches its backend
/// (`route/tasks/to_legacy_input.rs`).
pub(crate) fn deliver(
    router: &Router,
    n: u64,
    client_id: Vec<u8>,
    input: Option<Vec<u8>>,
) -> Result<oneshot::Receiver<Vec<u8>>, &'static str> {
    let Some(p) = router.parked.borrow_mut().remove(&n) else {
        return Err("requestState is unknown, already used, or its call has ended");
    };
    let (tx, rx) = oneshot::channel();
    p.tx.send(Retry {
        client_id,
        input,
        reply: tx,
    })
    .map_err(|_| "the parked call is gone")?;
    Ok(rx)
}

/// A replay (see the module doc) may run on `backend` only if its server allows it.
pub(crate) fn may_replay(
    snap: &crate::snapshot::SharedSnapshot,
    backend: usize,
    era: &crate::route::request::Era,
) -> Result<(), McpError> {
    match snap.backends.get(backend) {
        Some(b) if era.inputs.replaying() && !b.bridge_replay => Err(McpError::InvalidParams(format!(
            "requestState was issued by another gateway node, and server `{}` does not allow its calls to be replayed (bridge_replay = false); send the request again without requestState",
            b.id
        ))),
        _ => Ok(()),
    }
}

/// What to do with a retry that carries one of our `requestState`s.
pub enum Resumed {
    /// Answered: the parked call's next step, or why the state was refused.
    Reply(Reply),
    /// The call is not parked in this process: run it again, answering the backend's input
    /// requests from these.
    Replay(InputLog),
}

/// A 2026 retry carrying one of our `requestState`s: hand its input to the parked call (on
/// its shard) and answer with the call's next step, or, when the call was parked by another
/// node or an earlier life of this one, say how to replay it.
pub async fn resume(
    router: &Rc<Router>,
    req: &crate::route::request::McpHttpRequest,
    env: &Envelope<'_>,
    state: &str,
) -> Resumed {
    let id = env.id_bytes(&req.body).to_vec();
    let bad = |why: &str| {
        Resumed::Reply(Reply::json(
            200,
            McpError::InvalidParams(why.to_string()).to_response(&id),
        ))
    };
    let Some(parsed) = crate::route::state::parse(state) else {
        return bad("requestState is not valid");
    };
    // Checked on whichever node and shard the retry landed on (every node holds the keys).
    let bind = crate::route::state::binding_of(&req.body, env, &req.principal.name);
    let cluster = router.snapshot.load().cluster.clone();
    if let Err(why) = crate::route::state::verify(&cluster, &parsed, &bind) {
        return bad(why.message());
    }
    let input = sonic_rs::get(&req.body[..], ["params", "inputResponses", INPUT_KEY])
        .ok()
        .filter(|v| v.is_object())
        .map(|v| v.as_raw_str().as_bytes().to_vec());
    if !parsed.parked_here(&cluster) {
        return match parsed.carried() {
            crate::route::state::Carried::Answers(carried) => {
                Resumed::Replay(InputLog::replay(carried, input))
            }
            crate::route::state::Carried::TooBig => bad(
                "requestState was issued by another gateway node and carries too much input to be replayed here; send the request again without it",
            ),
        };
    }
    Resumed::Reply(resume_parked(router, req, &id, parsed, input).await)
}

/// The retry of a call parked in this process: handed to the owner shard, whose parked call
/// gets the input.
async fn resume_parked(
    router: &Rc<Router>,
    req: &crate::route::request::McpHttpRequest,
    id: &[u8],
    parsed: crate::route::state::Parsed,
    input: Option<Vec<u8>>,
) -> Reply {
    let bad = |why: &str| {
        Reply::json(
            200,
            McpError::InvalidParams(why.to_string()).to_response(id),
        )
    };
    let (owner, n) = (parsed.shard, parsed.n);
    if owner != router.id {
        if owner >= router.shards {
            return bad("requestState is not valid");
        }
        let (tx, rx) = oneshot::channel();
        let handoff = req.stateless_copy();
        if router.peers.hand_off(owner, handoff, tx).is_err() {
            return bad("requestState names a shard that is not running");
        }
        return rx.await.unwrap_or_else(|_| bad("the parked call is gone"));
    }
    let rx = match deliver(router, n, id.to_vec(), input) {
        Ok(rx) => rx,
        Err(why) => return bad(why),
    };
    match rx.await {
        Ok(answer) => Reply::json(200, answer),
        Err(_) => bad("the parked call ended without an answer"),
    }
}

//! JSON-RPC batches for sessions that negotiated MCP 2025-03-26.
//!
//! That revision says implementations "MUST support receiving JSON-RPC batches" (basic,
//! "Batching"), and its Streamable HTTP transport takes a POST body that is "an array batching
//! one or more requests and/or notifications" or "an array batching one or more responses".
//! 2025-06-18 removed batching, so a batch is served only when the session it names
//! negotiated 2025-03-26 and the `MCP-Protocol-Version` header, when sent, says the same;
//! anything else (no session, a later revision's session or header, a 2026-07-28 request) is
//! refused exactly as a single unreadable body is (400, -32600).
//!
//! A batch is split ([`crate::wire::batch::split`]: at most [`MAX_BATCH`] elements, sliced
//! out of the body, never re-serialized) and each element is dispatched as if it had come
//! alone ([`crate::route::dispatch::serve`]: rate limit, session checks, RBAC, routing, cache,
//! backend `max_inflight`), concurrently, on the session's owner shard (the whole batch is
//! handed there first, so each element is rate-limited once, there). Before anything runs,
//! each element is read: one that is not a message (a number, a nested array) and an
//! `initialize` ("MUST NOT be part of a JSON-RPC batch", lifecycle) get their own error
//! response; a batch mixing requests or notifications with responses is refused whole (the
//! transport allows one kind or the other).
//!
//! The answer: 202 without a body when no element is a request; one `application/json` array
//! of the responses when every element answered with plain JSON; an SSE stream as soon as
//! one element streams (progress, server-to-client requests): the responses already in are
//! sent first, then every element's messages and responses as they come, and the stream ends
//! when every element is done. That stream is not resumable (its events carry no ids).

use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use futures_core::Stream;

use crate::error::McpError;
use crate::http::response::{untag_event, Reply};
use crate::route::request::{rpc_error, McpHttpRequest};
use crate::route::router::Router;
use crate::rt::feed::{feed, FeedTx, SSE_QUEUE_BYTES};
use crate::wire::jsonrpc::{Envelope, Kind};

/// The most messages one batch may hold (more: refused whole, before any runs).
pub const MAX_BATCH: usize = 64;

/// The one revision that has batches.
pub const BATCH_VERSION: &str = "2025-03-26";

/// One element of a batch, as read before anything runs.
enum Element {
    /// Answered without running: an error response.
    Refused(Vec<u8>),
    /// Dispatched; `request` when it expects a response, `id` its id's range in the body.
    Run { request: bool, id: Range<usize> },
}

/// Serves the batch `req`, or answers `refused` (the single-message refusal) when its session
/// cannot have batches. `may_hand_off`: this shard received it from the client.
pub(crate) async fn serve(
    router: &Rc<Router>,
    req: McpHttpRequest,
    may_hand_off: bool,
    refused: Reply,
) -> Reply {
    if !matches!(req.protocol_version.as_deref(), None | Some(BATCH_VERSION)) {
        return refused;
    }
    let Some(sid) = req.session_id.as_deref() else {
        return refused;
    };
    if may_hand_off {
        if let Some(owner) = crate::route::phases::elsewhere(router, sid) {
            return router.hand_off(owner, req).await;
        }
    }
    let version = {
        let sessions = router.sessions.borrow();
        sessions
            .get(sid)
            .filter(|s| s.owned_by(&req.principal.name))
            .map(|s| s.version)
    };
    match version {
        None => return crate::route::lifecycle::refuse_session(router, sid, b"null"),
        Some(v) if v != BATCH_VERSION => return refused,
        Some(_) => {}
    }
    let ranges = match crate::wire::batch::split(&req.body, MAX_BATCH) {
        Ok(r) => r,
        Err(e) => return rpc_error(400, &e, b"null"),
    };
    let elements = match read(&req.body, &ranges) {
        Ok(e) => e,
        Err(e) => return rpc_error(400, &e, b"null"),
    };
    let mut set = JoinSet::default();
    for (i, (el, range)) in elements.iter().zip(&ranges).enumerate() {
        if let Element::Run { .. } = el {
            let one = element(&req, req.body[range.clone()].to_vec());
            let router = router.clone();
            set.push(i, async move {
                crate::route::dispatch::serve(&router, one, true, false).await
            });
        }
    }
    let mut answers: Vec<Option<Vec<u8>>> = elements
        .iter()
        .map(|e| match e {
            Element::Refused(r) => Some(r.clone()),
            Element::Run { .. } => None,
        })
        .collect();
    let mut req = req;
    let body = Rc::new(std::mem::take(&mut req.body));
    while let Some((i, reply)) = set.next().await {
        if reply.stream.is_some() {
            // From here on the answer is a stream: what is in goes first.
            let (tx, rx) = feed(SSE_QUEUE_BYTES);
            for a in answers.iter_mut().filter_map(Option::take) {
                let _ = tx.send(a);
            }
            let merge = Merge {
                set,
                streams: vec![reply],
                elements,
                body,
                tx,
            };
            monoio::spawn(merge.run());
            return Reply::sse(rx);
        }
        answers[i] = answer(&elements[i], &body, reply);
    }
    let mut out = Vec::new();
    for a in answers.into_iter().flatten() {
        out.push(if out.is_empty() { b'[' } else { b',' });
        out.extend_from_slice(&a);
    }
    if out.is_empty() {
        return Reply::empty(202);
    }
    out.push(b']');
    Reply::json(200, out)
}

/// Reads each element: which run, which are answered at once. A batch of both requests (or
/// notifications) and responses is refused whole.
fn read(body: &[u8], ranges: &[Range<usize>]) -> Result<Vec<Element>, McpError> {
    let (mut calls, mut answers) = (false, false);
    let mut out = Vec::with_capacity(ranges.len());
    for r in ranges {
        let one = &body[r.clone()];
        let el = match Envelope::parse(one) {
            Err(e) => Element::Refused(e.to_response(Envelope::id_hint(one))),
            Ok(env) if env.kind == Kind::Request && env.method.as_deref() == Some("initialize") => {
                Element::Refused(
                    McpError::InvalidRequest("initialize must not be batched".into())
                        .to_response(env.id_bytes(one)),
                )
            }
            Ok(env) => {
                calls |= env.kind != Kind::Response;
                answers |= env.kind == Kind::Response;
                let id = env.id.map_or(0..0, |i| r.start + i.start..r.start + i.end);
                Element::Run {
                    request: env.kind == Kind::Request,
                    id,
                }
            }
        };
        out.push(el);
    }
    if calls && answers {
        return Err(McpError::InvalidRequest(
            "a batch holds requests and notifications, or responses, never both (MCP 2025-03-26 transports)".into(),
        ));
    }
    Ok(out)
}

/// An element as a request of its own: the batch's headers, its own body.
fn element(batch: &McpHttpRequest, body: Vec<u8>) -> McpHttpRequest {
    McpHttpRequest {
        method: batch.method,
        session_id: batch.session_id.clone(),
        protocol_version: batch.protocol_version.clone(),
        accepts_sse: batch.accepts_sse,
        last_event_id: None,
        mcp_method: None,
        mcp_name: None,
        mcp_params: None,
        affinity: batch.affinity.clone(),
        principal: batch.principal.clone(),
        discovery: batch.discovery,
        // Each element is traced as a request of its own, under the batch's incoming context.
        trace: batch.trace.clone(),
        body,
    }
}

/// What a non-streamed element contributes to the batch's answer: a request's response
/// (an error with its id when the dispatcher answered without one); nothing for the rest.
fn answer(el: &Element, body: &[u8], reply: Reply) -> Option<Vec<u8>> {
    let Element::Run { request, id } = el else {
        return None;
    };
    if !request {
        if reply.status >= 400 {
            tracing::debug!(
                status = reply.status,
                "batched notification or response refused"
            );
        }
        return None;
    }
    if reply.body_len() > 0 && reply.content_type == Some("application/json") {
        return Some(match reply.shared.is_some() {
            true => reply.body_bytes().into_owned(),
            false => reply.body,
        });
    }
    if reply.status < 400 {
        return None;
    }
    let id = if id.is_empty() {
        &b"null"[..]
    } else {
        &body[id.clone()]
    };
    let why = format!("batched request answered HTTP {}", reply.status);
    Some(McpError::Gateway(why).to_response(id))
}

/// The rest of a batch that streams: the elements still running and the element streams
/// open, merged into one feed until all are done (or the client is gone).
struct Merge {
    set: JoinSet,
    /// Replies whose stream is still open (each kept whole: its `on_end` goes with it).
    streams: Vec<Reply>,
    elements: Vec<Element>,
    body: Rc<Vec<u8>>,
    tx: FeedTx,
}

enum Step {
    Message(Vec<u8>),
    Ended(usize),
    Done(usize, Reply),
    Finished,
}

impl Merge {
    async fn run(mut self) {
        loop {
            let step = std::future::poll_fn(|cx| self.poll_step(cx)).await;
            let sent = match step {
                Step::Message(item) => {
                    let (_, msg) = untag_event(&item);
                    // Priming events (empty) are not sent: this stream is not resumable.
                    if msg.is_empty() {
                        continue;
                    }
                    self.tx.send(msg.to_vec())
                }
                Step::Ended(k) => {
                    self.streams.swap_remove(k);
                    continue;
                }
                Step::Done(_, reply) if reply.stream.is_some() => {
                    self.streams.push(reply);
                    continue;
                }
                Step::Done(i, reply) => match answer(&self.elements[i], &self.body, reply) {
                    Some(a) => self.tx.send(a),
                    None => continue,
                },
                Step::Finished => return,
            };
            if sent.is_err() {
                // The client is gone (or fell too far behind): what still runs is dropped,
                // as a single request's would be.
                return;
            }
        }
    }

    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<Step> {
        for (k, reply) in self.streams.iter_mut().enumerate() {
            let Some(rx) = reply.stream.as_mut() else {
                return Poll::Ready(Step::Ended(k));
            };
            match Pin::new(rx).poll_next(cx) {
                Poll::Ready(Some(m)) => return Poll::Ready(Step::Message(m)),
                Poll::Ready(None) => return Poll::Ready(Step::Ended(k)),
                Poll::Pending => {}
            }
        }
        match self.set.poll_next(cx) {
            Poll::Ready(Some((i, r))) => Poll::Ready(Step::Done(i, r)),
            Poll::Ready(None) if self.streams.is_empty() => Poll::Ready(Step::Finished),
            _ => Poll::Pending,
        }
    }
}

type ElementFut = Pin<Box<dyn Future<Output = Reply>>>;

/// The elements still running, each with its index in the batch (at most [`MAX_BATCH`], so
/// polling every one on each wake-up is cheap).
#[derive(Default)]
struct JoinSet {
    running: Vec<(usize, ElementFut)>,
}

impl JoinSet {
    fn push(&mut self, i: usize, f: impl Future<Output = Reply> + 'static) {
        self.running.push((i, Box::pin(f)));
    }

    /// The next element to finish, or `None` when none is left.
    async fn next(&mut self) -> Option<(usize, Reply)> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<(usize, Reply)>> {
        if self.running.is_empty() {
            return Poll::Ready(None);
        }
        for k in 0..self.running.len() {
            if let Poll::Ready(r) = self.running[k].1.as_mut().poll(cx) {
                let (i, _) = self.running.swap_remove(k);
                return Poll::Ready(Some((i, r)));
            }
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(body: &[u8]) -> Result<Vec<Element>, McpError> {
        let ranges = crate::wire::batch::split(body, MAX_BATCH).unwrap();
        read(body, &ranges)
    }

    #[test]
    fn bad_elements_and_initialize_are_answered_alone() {
        let body = br#"[1,[2],{"jsonrpc":"2.0","id":7,"method":"initialize","params":{}},{"jsonrpc":"2.0","id":"x","method":"ping"},{"jsonrpc":"2.0","method":"notifications/x"}]"#;
        let els = kinds(body).unwrap();
        let refused: Vec<String> = els
            .iter()
            .filter_map(|e| match e {
                Element::Refused(r) => Some(String::from_utf8_lossy(r).into_owned()),
                _ => None,
            })
            .collect();
        assert_eq!(refused.len(), 3);
        assert!(refused[0].contains("-32600") && refused[0].contains(r#""id":null"#));
        assert!(
            refused[2].contains("initialize must not be batched")
                && refused[2].contains(r#""id":7"#)
        );
        match &els[3] {
            Element::Run { request, id } => {
                assert!(*request);
                assert_eq!(&body[id.clone()], br#""x""#);
            }
            _ => panic!("ping runs"),
        }
        assert!(matches!(els[4], Element::Run { request: false, .. }));
    }

    #[test]
    fn requests_and_responses_never_share_a_batch() {
        let mixed =
            br#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"result":{}}]"#;
        assert!(
            matches!(kinds(mixed), Err(McpError::InvalidRequest(m)) if m.contains("never both"))
        );
        let answers = br#"[{"jsonrpc":"2.0","id":1,"result":{}},{"jsonrpc":"2.0","id":2,"error":{"code":1,"message":"m"}}]"#;
        assert!(kinds(answers)
            .unwrap()
            .iter()
            .all(|e| matches!(e, Element::Run { request: false, .. })));
    }
}

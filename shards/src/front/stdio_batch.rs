//! A batch's answer on the stdio front (MCP 2025-03-26 sessions; `route/batch.rs` serves the
//! batch itself).
//!
//! stdio has no response stream to hold a batch's messages apart, so its answer is shaped
//! here: what an element's backend sends before its response (progress, server-to-client
//! requests) is written as it comes, one line per message, and the responses are held and
//! written together as one line holding their array once every element is done (a batch of
//! notifications only writes nothing). A refusal of the whole batch is its one error line.

use std::rc::Rc;

use crate::front::LocalFront;
use crate::http::response::{untag_event, Reply};
use crate::wire::jsonrpc::{Envelope, Kind};

/// Writes the answer to a batch line.
pub(crate) async fn deliver(fr: &Rc<LocalFront>, mut reply: Reply) {
    let Some(front) = &fr.stdio else {
        return;
    };
    let Some(mut rx) = reply.stream.take() else {
        // Plain JSON: already the array of responses (or one error for the whole batch).
        if reply.body_len() > 0 && reply.content_type == Some("application/json") {
            front.write(reply.body_bytes().into_owned());
        }
        return;
    };
    let mut responses = Vec::new();
    while let Some(item) = crate::rt::next(&mut rx).await {
        let (_, msg) = untag_event(&item);
        if msg.is_empty() {
            continue;
        }
        if Envelope::parse(msg).is_ok_and(|e| e.kind == Kind::Response) {
            responses.push(if responses.is_empty() { b'[' } else { b',' });
            responses.extend_from_slice(msg);
        } else {
            front.write(msg.to_vec());
        }
    }
    if !responses.is_empty() {
        responses.push(b']');
        front.write(responses);
    }
}

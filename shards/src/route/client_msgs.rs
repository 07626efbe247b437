//! What a client sends about calls already in flight, outside any call of its own: its
//! answer to a server-to-client request the gateway relayed (back to the backend that asked,
//! with the backend's own id), and its `notifications/cancelled` for one of its requests
//! (through the shard's in-flight table to the call, which cancels toward its backend).
//! Apart from `forward.rs`, which runs the calls, because these arrive as separate messages.

use std::rc::Rc;

use crate::route::router::Router;
use crate::route::tables::calls::inflight_key;
use crate::wire::jsonrpc::{splice, Envelope};

/// A client answered a server-to-client request we relayed: back to the backend it came from,
/// with the backend's own id. Unknown ids (late, or never ours) are dropped.
pub fn client_answer(router: &Rc<Router>, sid: &str, body: &[u8], env: &Envelope<'_>) {
    let Some(id) = env.id.clone() else {
        return;
    };
    let key = inflight_key(sid, &body[id.clone()]);
    let route = router.calls.s2c.borrow_mut().remove(&key);
    let Some(route) = route else {
        // Or an answer to a 2026 backend's input request the gateway relayed itself.
        let slot = router.calls.inputs.borrow_mut().remove(&key);
        match slot {
            Some(s) => drop(s.tx.unbounded_send((s.slot, body.to_vec()))),
            None => tracing::debug!(
                session = sid,
                "answer to an unknown server-to-client request dropped"
            ),
        }
        return;
    };
    let mut out = Vec::with_capacity(body.len() + 8);
    splice(body, &[(id, &route.backend_request_id)], &mut out);
    route.handle.respond(route.replica, out);
}

/// A client cancelled request `request_id` (raw JSON) of session `sid`: signal its call.
pub fn cancel(router: &Rc<Router>, sid: &str, request_id: &[u8]) {
    if let Some(tx) = router
        .calls
        .inflight
        .borrow_mut()
        .remove(&inflight_key(sid, request_id)[..])
    {
        tx.cancel();
    }
}

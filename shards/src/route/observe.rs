//! The bookkeeping of one answered request, in one step: the shard's statistics, token
//! accounting of the answers the router built itself, the audit line, and the server span. Both eras and the
//! handshake report here once per request, with the reply as the client gets it. (A 2025
//! request refused before its method runs, such as a missing or unknown session, is not
//! counted; a 2026 one is, as before the redesign.)

use std::rc::Rc;
use std::time::Instant;

use crate::auth::verify::Principal;
use crate::http::response::Reply;
use crate::route::router::Router;
use crate::stats::Outcome;

/// What one request was and how it ended, as the route layer saw it.
pub(crate) struct Observed<'a> {
    /// Who sent it.
    pub principal: &'a Principal,
    /// Its 2025 session (empty: none).
    pub session: &'a str,
    /// JSON-RPC method.
    pub method: &'a str,
    /// The tool or prompt name, or the resource URI, it named.
    pub name: Option<&'a str>,
    /// The method was dispatched (not refused before): its answer is one a model may read,
    /// for token accounting.
    pub dispatched: bool,
    /// A search-mode meta tool answered it (`search_tools`, `get_tool_schema`): its name.
    pub meta: Option<&'a str>,
    /// How it ended.
    pub outcome: Outcome,
    /// When it arrived.
    pub started: Instant,
    /// Request body bytes.
    pub bytes_in: usize,
    /// Its server span, when tracing is on.
    pub trace: Option<crate::route::trace::Traced<'a>>,
}

/// Counts the request, taps the answer for token accounting when the gateway built it (a
/// list, a meta tool; forwarded calls are tapped where their response is finished, which
/// also covers streamed ones), and writes the audit line.
pub(crate) fn observe(router: &Rc<Router>, o: Observed<'_>, reply: &Reply) {
    // The request's end: read, since its path may have ended on a wait with no reading of
    // its own, and the shard's latest reading may be another request's (`rt/clock.rs`).
    let took = crate::rt::clock::now().saturating_duration_since(o.started);
    router.stats.request(o.method, o.outcome, took);
    if let Some(t) = &o.trace {
        let end = crate::route::trace::ServerEnd {
            method: o.method,
            name: o.name,
            session: o.session,
            end: o.started + took,
        };
        crate::route::trace::server(router, t, end, reply);
    }
    if o.dispatched && o.outcome == Outcome::Ok && router.tokens.is_enabled() {
        crate::route::tokens::tap_gateway_reply(&router.tokens, o.method, o.meta, reply);
    }
    crate::route::audit::served(
        router,
        crate::route::audit::Served {
            principal: o.principal,
            session: o.session,
            method: o.method,
            name: o.name,
            outcome: o.outcome,
            status: reply.status,
            started: o.started,
            bytes_in: o.bytes_in,
            bytes_out: reply.body_len(),
        },
    );
}

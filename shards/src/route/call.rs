//! One client request on its way to a backend (`Call`: the router, the session, the bytes
//! and their envelope, what the client's era asks of the answer). Every function on the way
//! to the backend (`route/by_name.rs`, `route/meta.rs`, `complete` in `route/methods.rs`,
//! `route/cached.rs`, `route/forward.rs`) takes the same `Call`, instead of six arguments.

use std::rc::Rc;

use crate::route::request::Era;
use crate::route::router::Router;
use crate::wire::jsonrpc::Envelope;

/// One client request on its way to a backend.
pub(crate) struct Call<'a> {
    /// The shard's router.
    pub router: &'a Rc<Router>,
    /// The 2025 session (empty for a stateless 2026 request).
    pub sid: &'a str,
    /// The request's bytes.
    pub body: &'a [u8],
    /// Their envelope.
    pub env: &'a Envelope<'a>,
    /// What the client's era asks of the answer, and who the client is.
    pub era: Era,
}

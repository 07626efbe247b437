//! The fronts: how clients reach the router. The HTTP front serves `/mcp`, `/health`,
//! `/metrics`, the OAuth metadata, and (in [`admin`]) `/ready` and the drain endpoints over
//! HTTP/1.1 (plain or TLS); the stdio front serves one
//! client over stdin/stdout (`only1mcp-uring stdio`); [`guard`] checks Host and Origin;
//! [`gzip`] sends large list pages gzip to HTTP clients that accept it.
//!
//! A front owns the connection-side state ([`LocalFront`]: limits, the Host/Origin policy,
//! connection and in-flight counts, contained panics, TLS, the rendered metrics text) and
//! names the router and the layers below it, never the shard: the composition root builds a
//! front around the shard's [`Router`] and hands it the connections it accepts.

pub mod admin;
pub mod guard;
pub mod gzip;
pub mod http;
pub mod stdio;
pub mod stdio_batch;

use std::cell::Cell;
use std::rc::Rc;

use crate::http::request::Limits;
use crate::route::router::Router;
use guard::OriginPolicy;

/// The Prometheus exposition text, rendered by the control thread every 500 ms from every
/// shard's figures and read by whichever shard serves a `/metrics` request.
pub type SharedMetricsText = std::sync::Arc<arc_swap::ArcSwap<bytes::Bytes>>;

/// Reports a token whose key id the key set lacks (the shard asks the control thread for a
/// JWKS refetch). Called at most once a second per shard.
pub type UnknownKid = Rc<dyn Fn(&str)>;

/// One shard's front.
pub struct LocalFront {
    /// The router requests go to.
    pub router: Rc<Router>,
    /// HTTP limits.
    pub limits: Limits,
    /// Host/Origin policy.
    pub policy: OriginPolicy,
    /// Open client connections.
    pub connections: Cell<usize>,
    /// `server.max_connections_per_shard`.
    pub max_connections: usize,
    /// Requests being served right now.
    pub inflight: Cell<usize>,
    /// The shard is stopping its backends (its drain grace and the wait for requests in
    /// flight are over): an MCP request that still arrives on an open connection is refused
    /// with 503 rather than sent to them.
    pub stopped: Cell<bool>,
    /// Panics contained to one connection or one handed-off request (`rt::contain`).
    pub panics: Cell<u64>,
    /// TLS handshakes for this shard's listener, when `[server.tls]` is set.
    pub tls: Option<monoio_rustls::TlsAcceptor>,
    /// The latest Prometheus text the control thread rendered (served at `/metrics`).
    pub metrics_text: SharedMetricsText,
    /// stdio mode: the client's stdout, and its one session once initialized.
    pub stdio: Option<stdio::LocalStdioFront>,
    /// Where an unknown key id is reported.
    pub unknown_kid: UnknownKid,
}

//! The router (layer 3): the MCP server side the gateway presents to clients, both protocol
//! eras on one `/mcp` (2025-11-25 sessions over Streamable HTTP, stateless 2026-07-28),
//! whichever front the request came through. It names the upstream layer and below, never a
//! front or the shard; its state is one [`router::Router`] per shard.
//!
//! # Key Components
//! - [`router`]: the [`router::Router`] and the [`router::Peers`] trait handoffs go through;
//!   [`tables`]: the state it holds; [`request`]: a request as the fronts hand it over.
//! - [`call`]: one request on its way to a backend; [`by_name`]: routing it by name or URI.
//! - [`batch`]: a 2025-03-26 session's JSON-RPC batch, each element dispatched alone.
//! - Admission: [`phases`] (every check before a method runs, both eras, in order),
//!   [`dispatch`] (session checks, handoff to the owner shard, method routing),
//!   [`modern`] (the 2026 era's checks and methods), [`params`] (`Mcp-Param-*` headers
//!   against the called tool's `x-mcp-header` arguments).
//! - 2025 sessions: [`lifecycle`] (initialize, GET stream, DELETE), [`session`] and
//!   [`session_table`] (ids that land on their shard, caps), [`resume`] (`Last-Event-ID`),
//!   [`streams`] (what goes on a session's GET stream), [`pushes`] (what backends push
//!   unasked: which of their streams a shard listens on, and whose session each message is).
//! - Serving: [`lists`] and [`meta`] (merged lists, search mode), [`methods`] (completion,
//!   subscriptions, logging level; [`resource_listen`] for 2026-only backends), [`cached`] (cache and single-flight), [`forward`] and
//!   [`finish`] (one call to its backend and back; [`client_msgs`]: a client's answers and
//!   cancellations for calls in flight), [`bridge`] and [`state`] (multi-round-trip
//!   input across eras: a 2025 backend's requests for a 2026 client), [`relay_input`] and
//!   [`input_required`] (a 2026 backend's `input_required` for a 2025 client), [`listen`]
//!   (`subscriptions/listen`), [`per_client`] (a session's own upstream sessions,
//!   `session = "per_client"`).
//! - Bookkeeping: [`observe`], once per answered request (stats, [`tokens`], [`audit`],
//!   the server span of [`trace`], whose client spans [`forward`] opens).

pub mod audit;
pub mod batch;
pub mod bridge;
pub mod by_name;
pub mod cached;
pub mod call;
pub mod client_msgs;
pub mod dispatch;
pub mod finish;
pub mod forward;
pub mod input_required;
pub mod lifecycle;
pub mod listen;
pub mod listen_resources;
pub mod lists;
pub mod lists_gz;
pub mod meta;
pub mod methods;
pub mod modern;
pub mod observe;
pub mod params;
pub mod per_client;
pub mod phases;
pub mod pushes;
pub mod relay_input;
pub mod request;
pub mod resource_listen;
pub mod resume;
pub mod router;
pub mod session;
pub mod session_table;
pub mod state;
pub mod streams;
pub mod tables;
pub mod tasks;
pub mod tokens;
pub mod trace;

/// Versions served statelessly (2026-07-28 era).
pub const MODERN_VERSIONS: &[&str] = &["2026-07-28"];

/// Protocol versions served to clients, newest first.
pub const SUPPORTED_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26"];

/// The version assumed when a client sends no `MCP-Protocol-Version` header.
pub const DEFAULT_HEADER_VERSION: &str = "2025-03-26";

#[cfg(test)]
mod router_tests;

#[cfg(test)]
mod phases_tests;

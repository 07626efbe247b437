//! only1mcp-shards: the per-core data plane of only1mcp-uring.
//!
//! Each shard is one monoio runtime pinned to one core. It owns its SO_REUSEPORT listener,
//! its HTTP front, the MCP sessions the consistent-hash ring assigns to it, its backend
//! connection pools and the stdio children it owns. Nothing here takes a lock or blocks:
//! what crosses threads is an immutable snapshot (`Shared*`, behind `ArcSwap`) or a message in
//! a shard's mailbox (lock-free queue plus a waker).
//!
//! # Key Components
//! - [`config`]: the TOML model and its strict validation.
//! - [`rt`]: runtime construction (io_uring with explicit epoll fallback), pinning, mailboxes.
//! - [`http`]: the HTTP/1.1 codec (httparse), client side and backend side.
//! - [`wire`]: JSON-RPC envelope reading and byte splicing (the bottom layer).
//! - [`route`]: the router: sessions, the method dispatcher, forwarding, both protocol eras.
//! - [`front`]: the HTTP and stdio fronts.
//! - [`shard`]: the composition root that holds every layer.
//! - [`upstream`]: backends: Streamable HTTP pools and supervised stdio children.
//! - [`catalog`]: the merged, namespaced tool catalog.
//! - [`cluster`]: this node's id and the cluster keys (session ids, `requestState`).
//! - [`ring`]: the consistent-hash ring that pins sessions and stdio children to shards.
//! - [`trace`]: OpenTelemetry spans' shard side (W3C context, sampling, the span queue).
//! - [`readiness`]: whether the node takes new sessions (`/ready`), shared with the control
//!   thread.
#![warn(missing_docs)]

pub mod audit;
pub mod auth;
pub mod balance;
pub mod cache;
pub mod catalog;
pub mod cluster;
pub mod config;
pub mod error;
pub mod front;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod readiness;
pub mod ring;
pub mod route;
pub mod rt;
pub mod shard;
pub mod snapshot;
pub mod stats;
pub mod trace;
pub mod upstream;
pub mod wire;

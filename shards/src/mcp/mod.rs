//! The MCP server side the gateway presents to clients (2025-era Streamable HTTP).
//!
//! # Key Components
//! - [`jsonrpc`]: lazy envelope reading and byte splicing.
//! - [`session`]: the shard-local session table and ids minted to land on their shard.
//! - [`guard`]: Host/Origin validation against DNS rebinding.
//! - [`dispatch`]: the per-request logic: initialize, ping, tools/list, tools/call, DELETE.

pub mod audit;
pub mod bridge;
pub mod cached;
pub mod dispatch;
pub mod finish;
pub mod forward;
pub mod guard;
pub mod jsonrpc;
pub mod lifecycle;
pub mod listen;
pub mod lists;
pub mod meta;
pub mod methods;
pub mod modern;
pub mod resume;
pub mod scan;
pub mod session;
pub mod session_table;
pub mod state;
pub mod stdio_front;
pub mod streams;

/// Protocol versions served to clients, newest first.
pub const SUPPORTED_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26"];

/// The version assumed when a client sends no `MCP-Protocol-Version` header.
pub const DEFAULT_HEADER_VERSION: &str = "2025-03-26";

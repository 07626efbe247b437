//! HTTP/1.1 on both sides of the gateway.
//!
//! The front ([`request`], [`response`], [`server`]) reads client requests with `httparse`
//! into a per-connection buffer that is reused across keep-alive requests, enforces head and
//! body limits and read/idle timeouts, and writes JSON or SSE responses. The backend side
//! ([`client`]) is a small keep-alive client for Streamable HTTP MCP servers; [`sse`] decodes
//! event streams for it. Parsing is httparse's; framing (Content-Length, chunked) is ours
//! because it is a dozen lines around `httparse::parse_chunk_size`.

pub mod client;
pub mod framing;
pub mod request;
pub mod response;
pub mod server;
pub mod sse;
pub mod url;

//! The HTTP/1.1 codec, both sides of the gateway (part of the bottom layer: it names no
//! layer above it).
//!
//! The client side ([`request`], [`framing`], [`response`]) reads requests with `httparse`
//! into a per-connection buffer that is reused across keep-alive requests, enforces head and
//! body limits, and encodes JSON or SSE responses; serving a connection is the front's
//! (`front/http.rs`). The backend side
//! ([`client`]) is a small keep-alive client for Streamable HTTP MCP servers; [`sse`] decodes
//! event streams for it. [`gzip`], [`gzip_slot`] and [`coding`] compress large list answers for clients that
//! accept it. Parsing is httparse's; framing (Content-Length, chunked) is ours
//! because it is a dozen lines around `httparse::parse_chunk_size`.

pub mod client;
pub mod coding;
pub mod framing;
pub mod gzip;
pub mod gzip_slot;
pub mod request;
pub mod response;
pub mod sse;
pub mod url;

//! The bottom layer of the data plane: reading and writing JSON-RPC bytes.
//!
//! Every layer above (upstream, router, front) reads messages from outside and answers them;
//! this layer is what they share, and it names nothing above it (only [`crate::error`], the
//! data plane's error type). Messages are never parsed into a tree here: the envelope is read
//! lazily into byte ranges and rewritten by splicing, so a body the gateway only routes is
//! never re-serialized.
//!
//! # Key Components
//! - [`jsonrpc`]: the lazy [`jsonrpc::Envelope`], refusals of hostile shapes, splices.
//! - [`batch`]: a 2025-03-26 batch split into its elements' byte ranges.
//! - [`scan`]: the nesting bound and the allocation-free walk over an object's members.
//! - [`header`]: MCP header values, `=?base64?…?=` decoded and encoded.
//! - [`args`]: a `tools/call`'s arguments as its `Mcp-Param-*` headers see them.
//! - [`short`]: short ids and strings kept inline (no allocation per call).
//! - [`ok_result`]: a success answer around a result that is already JSON.
//!
//! The other codecs live beside it at the same level: HTTP/1.1 in `http/` (except
//! `front/http.rs`, the front), SSE in `http/sse.rs`, and the runtime glue in `rt/`.

pub mod args;
pub mod batch;
pub mod header;
pub mod jsonrpc;
pub mod scan;
pub mod short;

/// `{"jsonrpc":"2.0","id":<id>,"result":<result>}`.
pub fn ok_result(id: &[u8], result: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(40 + id.len() + result.len());
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    out.extend_from_slice(id);
    out.extend_from_slice(b",\"result\":");
    out.extend_from_slice(result);
    out.push(b'}');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn ok_result_wraps_raw_json_without_reading_it() {
        let out = super::ok_result(br#""a""#, br#"{"x":[1,2]}"#);
        assert_eq!(out, br#"{"jsonrpc":"2.0","id":"a","result":{"x":[1,2]}}"#);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["result"]["x"][1], 2);
    }
}

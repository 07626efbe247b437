//! Splitting a JSON-RPC batch (a JSON array of messages) into its elements' byte ranges.
//!
//! MCP 2025-03-26 requires servers to receive batches; later revisions removed them. The
//! router serves a batch by dispatching each element as if it had arrived alone, so all it
//! needs from this layer is where each element starts and ends in the body: the elements are
//! sliced out, never re-serialized. The walk is bounded before anything is dispatched: the
//! nesting bound and a validating pass over the whole body first (as for a single message,
//! [`super::jsonrpc::Envelope::parse`]), then at most `max` elements, counted as they are
//! found, so a batch of 10,000 elements is refused after at most `max + 1` of them are seen.
//!
//! Whether an element is a valid message is not this module's concern: each element is read
//! by `Envelope::parse` on its own, and one that is not (a number, a nested array) gets its
//! own error response, as JSON-RPC 2.0 orders.

use std::ops::Range;

use crate::error::McpError;
use crate::wire::scan;

/// Does `body` hold a JSON array (its first non-whitespace byte is `[`)? Only called once a
/// body failed to read as one message, so a single message never pays for it.
pub fn is_array(body: &[u8]) -> bool {
    body.get(scan::skip_ws(body, 0)) == Some(&b'[')
}

/// The byte ranges of the elements of the JSON array `body`, in order; at most `max` of them.
///
/// Errors, each answered once for the whole batch (JSON-RPC 2.0, "Batch"): invalid JSON is a
/// parse error (-32700), an empty array and an array of more than `max` elements are invalid
/// requests (-32600).
pub fn split(body: &[u8], max: usize) -> Result<Vec<Range<usize>>, McpError> {
    match scan::check(body, scan::max_depth()) {
        Ok(()) => {}
        Err(scan::Defect::TooDeep(n)) => {
            return Err(McpError::InvalidRequest(format!(
                "JSON nests deeper than {n} levels (server.max_json_depth)"
            )))
        }
        Err(scan::Defect::BadEscape | scan::Defect::LoneSurrogate) => {
            return Err(McpError::Parse(
                "batch is not valid JSON: a bad escape".into(),
            ))
        }
    }
    if let Err(e) = sonic_rs::from_slice::<serde::de::IgnoredAny>(body) {
        return Err(McpError::Parse(format!("batch is not valid JSON: {e}")));
    }
    let start = scan::skip_ws(body, 0);
    if body.get(start) != Some(&b'[') {
        return Err(McpError::InvalidRequest(
            "a batch must be a JSON array".into(),
        ));
    }
    let mut out = Vec::new();
    let mut i = scan::skip_ws(body, start + 1);
    if body.get(i) == Some(&b']') {
        return Err(McpError::InvalidRequest(
            "empty batch: a batch holds at least one message".into(),
        ));
    }
    // Valid JSON (checked above): elements are separated by commas and end at `]`.
    while i < body.len() {
        let end = scan::value_end(body, i);
        if end <= i {
            break;
        }
        if out.len() == max {
            return Err(McpError::InvalidRequest(format!(
                "batch of more than {max} messages refused; send fewer per request"
            )));
        }
        out.push(i..end);
        i = scan::skip_ws(body, end);
        match body.get(i) {
            Some(b',') => i = scan::skip_ws(body, i + 1),
            _ => break,
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(body: &[u8], max: usize) -> Vec<&[u8]> {
        split(body, max)
            .unwrap()
            .into_iter()
            .map(|r| &body[r])
            .collect()
    }

    #[test]
    fn elements_are_sliced_out_unchanged() {
        let body = br#" [ {"a":"x]","b":[1,{"c":2}]} , 3,"s\"]",[ ],null ,{"id":1} ] "#;
        assert_eq!(
            parts(body, 64),
            vec![
                &br#"{"a":"x]","b":[1,{"c":2}]}"#[..],
                b"3",
                br#""s\"]""#,
                b"[ ]",
                b"null",
                br#"{"id":1}"#,
            ]
        );
    }

    #[test]
    fn empty_invalid_and_oversized_batches_are_refused_whole() {
        for empty in [&b"[]"[..], b" [ \n ] "] {
            assert!(
                matches!(split(empty, 64), Err(McpError::InvalidRequest(m)) if m.contains("empty"))
            );
        }
        assert!(matches!(split(b"[{}, ", 64), Err(McpError::Parse(_))));
        assert!(matches!(split(b"[1] x", 64), Err(McpError::Parse(_))));
        let many = format!("[{}1]", "1,".repeat(10_000));
        assert!(
            matches!(split(many.as_bytes(), 64), Err(McpError::InvalidRequest(m)) if m.contains("more than 64"))
        );
        let exactly = format!("[{}1]", "1,".repeat(63));
        assert_eq!(split(exactly.as_bytes(), 64).unwrap().len(), 64);
        let deep = format!("[{}{}]", "[".repeat(500), "]".repeat(500));
        assert!(
            matches!(split(deep.as_bytes(), 64), Err(McpError::InvalidRequest(m)) if m.contains("nests"))
        );
    }

    #[test]
    fn only_arrays_are_batches() {
        assert!(is_array(b"  \r\n[1]"));
        assert!(!is_array(br#"{"a":[1]}"#));
        assert!(!is_array(b""));
    }
}

//! Fuzz target bodies: one plain function per parser that reads bytes from outside the
//! gateway (clients, backends, identity providers, the config file).
//!
//! Each function takes arbitrary bytes, must never panic, hang or grow without bound, and
//! asserts what its parser promises (ranges in bounds, splices that keep the rest of a body
//! byte-identical, the same result whatever the read boundaries, agreement with a full JSON
//! parse). They live here, in the product crate, so that `fuzz/` (cargo-fuzz, nightly,
//! libFuzzer) and the stable corpus replay (`tests/fuzz_corpora.rs`, part of
//! `cargo test --workspace`) run the very same code. [`TARGETS`] names them all; the corpora
//! are `fuzz/corpus/<name>/` and the minimised crashes `fuzz/regressions/<name>/`.
//!
//! Not a hot path: the targets allocate freely and panic on a broken invariant, which is
//! what a fuzzer reports.

mod auth;
mod config;
mod encoding;
mod http;
mod ids;
mod json;
mod lists;
mod streams;

pub use auth::{jwks, jwt};
pub use config::config;
pub use encoding::{accept_encoding, gzip_frame, unix_url};
pub use http::{http_head, http_request, http_response};
pub use ids::{cursor, mcp_headers, request_state, session_id};
pub use json::{backend_message, batch, envelope, envelope_differential, scan_members};
pub use lists::backend_lists;
pub use streams::{sse, stdio_lines};

/// A target's body.
pub type Target = fn(&[u8]);

/// Every target: its name (the directory of its corpus) and its body.
pub const TARGETS: &[(&str, Target)] = &[
    ("http_head", http_head),
    ("http_request", http_request),
    ("http_response", http_response),
    ("envelope", envelope),
    ("envelope_differential", envelope_differential),
    ("scan_members", scan_members),
    ("batch", batch),
    ("backend_message", backend_message),
    ("backend_lists", backend_lists),
    ("sse", sse),
    ("stdio_lines", stdio_lines),
    ("mcp_headers", mcp_headers),
    ("session_id", session_id),
    ("cursor", cursor),
    ("request_state", request_state),
    ("jwt", jwt),
    ("jwks", jwks),
    ("config", config),
    ("accept_encoding", accept_encoding),
    ("unix_url", unix_url),
    ("gzip_frame", gzip_frame),
];

/// Splits a stream target's input into the pieces successive reads return: the first byte
/// seeds the piece sizes (0: everything in one read), the rest is the stream.
pub(crate) fn pieces(data: &[u8]) -> (Vec<&[u8]>, &[u8]) {
    let Some((&seed, stream)) = data.split_first() else {
        return (Vec::new(), data);
    };
    if seed == 0 {
        return (vec![stream], stream);
    }
    let max = usize::from(seed % 64) + 1;
    let mut state = u32::from(seed) | 0x9e37_0000;
    let mut out = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        // xorshift: deterministic sizes from the seed.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = (state as usize % max + 1).min(rest.len());
        let (a, b) = rest.split_at(n);
        out.push(a);
        rest = b;
    }
    (out, stream)
}

/// Is `r` a range inside `len` bytes?
pub(crate) fn in_bounds(r: &std::ops::Range<usize>, len: usize) -> bool {
    r.start <= r.end && r.end <= len
}

/// Is `bytes` one well-formed JSON text (checked by serde_json, independently of sonic-rs)?
pub(crate) fn valid_json(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
}

/// A serde_json error that comes from its own limits, not from the text being invalid JSON:
/// nesting deeper than 128, or a number outside f64.
pub(crate) fn serde_limit(e: &serde_json::Error) -> bool {
    let m = e.to_string();
    m.contains("recursion limit") || m.contains("number out of range")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_the_stream_in_order() {
        let data = b"\x07abcdefghijklmnopqrstuvwxyz";
        let (p, s) = pieces(data);
        assert_eq!(s, &data[1..]);
        assert!(p.len() > 1 && p.iter().all(|x| !x.is_empty() && x.len() <= 8));
        assert_eq!(p.concat(), s);
        let (p, _) = pieces(b"\x00abc");
        assert_eq!(p, [b"abc"]);
    }

    #[test]
    fn every_target_survives_empty_and_tiny_inputs() {
        for (name, f) in TARGETS {
            for input in [&b""[..], b"\x00", b"{", b"\x01\r\n\r\n"] {
                let r = std::panic::catch_unwind(|| f(input));
                assert!(r.is_ok(), "{name} panicked on {input:?}");
            }
        }
    }
}

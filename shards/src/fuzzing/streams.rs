//! Byte streams from backends: Server-Sent Events (Streamable HTTP responses and the legacy
//! HTTP+SSE stream, whose `endpoint` event names where to POST) and a stdio child's stdout
//! split into lines. Both must give the same messages whatever the read boundaries.

use super::pieces;
use crate::http::sse::{Event, SseDecoder};
use crate::http::url::BackendUrl;
use crate::upstream::sse_legacy::endpoint_url;
use crate::upstream::stdio::LineSplitter;

fn decode(reads: &[&[u8]]) -> Vec<Event> {
    let mut dec = SseDecoder::default();
    let mut out = Vec::new();
    for r in reads {
        dec.push(r);
        while let Some(ev) = dec.next_event() {
            out.push(ev);
        }
    }
    out
}

/// SSE decoded over reads cut at fuzzed boundaries gives the events one read gives; an
/// `endpoint` event yields a same-origin path that is safe to put in a request line.
pub fn sse(data: &[u8]) {
    let (reads, stream) = pieces(data);
    let cut = decode(&reads);
    let whole = decode(&[stream]);
    assert_eq!(cut, whole, "read boundaries changed the events");
    assert!(whole.len() <= stream.len() / 2 + 1);
    let base = BackendUrl {
        raw: "http://127.0.0.1:9/sse".into(),
        authority: "127.0.0.1:9".into(),
        path: "/sse".into(),
        addrs: Vec::new(),
        unix: None,
    };
    for ev in &whole {
        assert!(ev.data.len() <= stream.len());
        if ev.event.as_deref() == Some("endpoint") {
            let data = String::from_utf8_lossy(&ev.data);
            if let Some(url) = endpoint_url(&base, &data) {
                assert_eq!(url.authority, base.authority);
                assert!(url.path.starts_with('/'), "{:?}", url.path);
                assert!(
                    url.path.bytes().all(|b| b > b' ' && b != 0x7f),
                    "endpoint path with whitespace or a control byte: {:?}",
                    url.path
                );
            }
        }
    }
}

/// The longest line kept in this target (the reader keeps 64 MiB).
const MAX: usize = 256;

/// A child's stdout split into lines over reads cut at fuzzed boundaries: every line up to
/// the limit arrives, whole and in order; a longer one is dropped whole or kept whole,
/// never cut into pieces that could read as messages.
pub fn stdio_lines(data: &[u8]) {
    let (reads, stream) = pieces(data);
    let mut split = LineSplitter::new(MAX);
    let mut buf = Vec::new();
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut biggest = 0;
    for r in &reads {
        biggest = biggest.max(r.len());
        buf.extend_from_slice(r);
        split.split(&mut buf, |l| got.push(l.to_vec()));
        assert!(
            buf.len() <= MAX,
            "kept {} bytes of a partial line",
            buf.len()
        );
    }
    let mut complete: Vec<&[u8]> = stream.split(|&b| b == b'\n').collect();
    complete.pop();
    let mut at = 0;
    for line in complete {
        if got.get(at).is_some_and(|g| g == line) {
            at += 1;
        } else {
            assert!(line.len() > MAX, "a short line was lost: {line:?}");
        }
    }
    assert_eq!(
        at,
        got.len(),
        "a line that is not in the stream: {:?}",
        got.get(at)
    );
    assert!(got.iter().all(|l| l.len() <= MAX + biggest));
}

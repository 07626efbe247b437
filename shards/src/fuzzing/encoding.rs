//! Issue 20's new readers and framer of outside bytes: a client's `Accept-Encoding`, a
//! configured `unix:` backend URL, and the gzip answer framed around a shared compressed run.

use std::io::Read;

use crate::http::coding::accepts_gzip;
use crate::http::gzip::{assemble, GzRun};
use crate::http::url::{parse_unix, MAX_UNIX_PATH};

/// `Accept-Encoding` as a client sends it: never panics, and a value that names neither
/// gzip nor `*` never accepts gzip.
pub fn accept_encoding(data: &[u8]) {
    let yes = accepts_gzip(Some(data));
    let lower = data.to_ascii_lowercase();
    let names_it = lower.windows(4).any(|w| w == b"gzip") || lower.contains(&b'*');
    assert!(!yes || names_it, "accepted gzip from {data:?}");
}

/// A `unix:` URL from the config: what parses is an absolute socket path within the
/// `sockaddr_un` bound and an HTTP path that starts with `/`, with no control characters.
pub fn unix_url(data: &[u8]) {
    let raw = String::from_utf8_lossy(data);
    if let Ok(u) = parse_unix(&raw) {
        assert!(u.socket.starts_with('/'), "{u:?}");
        assert!(u.socket.len() <= MAX_UNIX_PATH, "{u:?}");
        assert!(u.path.starts_with('/'), "{u:?}");
        assert!(
            !u.socket
                .chars()
                .chain(u.path.chars())
                .any(|c| c.is_control()),
            "{u:?}"
        );
    }
}

/// The per-request gzip framing: the first two bytes pick how much of the rest is the head
/// and the tail, the middle is the shared run; whatever the sizes (empty parts, heads over
/// a stored block's 65,535 bytes are beyond a fuzz input but covered by unit tests), the
/// framed answer decodes to exactly head + run + tail.
pub fn gzip_frame(data: &[u8]) {
    let (sizes, rest) = data.split_at(data.len().min(2));
    let h = sizes.first().map_or(0, |b| usize::from(*b)).min(rest.len());
    let t = sizes
        .get(1)
        .map_or(0, |b| usize::from(*b))
        .min(rest.len() - h);
    let (head, rest) = rest.split_at(h);
    let (tail, run) = rest.split_at(t);
    let compressed = GzRun::compress(run);
    let mut pre = head.to_vec();
    let mut post = tail.to_vec();
    assemble(&mut pre, &compressed, &mut post);
    let mut wire = pre;
    wire.extend_from_slice(&compressed.deflate);
    wire.extend_from_slice(&post);
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&wire[..])
        .read_to_end(&mut out)
        .expect("the framed answer is valid gzip");
    let mut want = head.to_vec();
    want.extend_from_slice(run);
    want.extend_from_slice(tail);
    assert_eq!(out, want);
}

//! The HTTP front's content coding step: a large list page (a reply that carries a gzip
//! slot, `route/lists_gz.rs`) goes gzip to a client whose `Accept-Encoding` takes it.
//!
//! Runs after routing and before the reply is encoded, on the connection's task. Reading the
//! header is [`crate::http::coding`]'s, the slot and its helper thread
//! [`crate::http::gzip_slot`]'s, the framing [`crate::http::gzip`]'s; this module counts
//! what it did on the shard (`only1mcp_list_gzip_builds_total`, `..._answers_total`).

use std::time::Duration;

use crate::front::http::Counted;
use crate::front::LocalFront;
use crate::http::gzip_slot::{apply, slot_for};
use crate::http::request::{ConnBuffers, Request};
use crate::http::response::Reply;

/// The longest a request waits for its page's copy to be compressed before it is answered
/// uncompressed (the copy is still kept for the next ones). Compressing a multi-MB page takes
/// about 100 ms.
const BUILD_WAIT: Duration = Duration::from_secs(2);

/// Sends a large list page gzip when the client accepts it (`server.compress_lists`): from
/// the page's copy, made by a helper thread on the first such request, which waits for it
/// (the shard serves on; the wait counts as a request in flight, so a drain waits for it too);
/// a request that finds the copy being made is answered uncompressed.
pub async fn encode(front: &LocalFront, req: &Request, bufs: &ConnBuffers, reply: &mut Reply) {
    let header = req.headers.accept_encoding.clone().map(|r| &bufs.buf[r]);
    let accepts = crate::http::coding::accepts_gzip(header);
    let Some((slot, shared)) = slot_for(reply, accepts) else {
        return;
    };
    let pages = &front.router.gz_pages;
    if slot.get().is_none() {
        let Some(done) = slot.build(shared) else {
            return;
        };
        // Counted when started: a build the request stops waiting for still fills the slot.
        pages.built.set(pages.built.get() + 1);
        let _busy = Counted::enter(&front.inflight);
        let waited = monoio::time::timeout(BUILD_WAIT.min(front.limits.idle_timeout), done).await;
        if !matches!(waited, Ok(Ok(()))) {
            return;
        }
    }
    if let Some(run) = slot.get() {
        if apply(reply, run) {
            pages.served.set(pages.served.get() + 1);
        }
    }
}

//! The HTTP front's content coding step: a large list page (a reply that carries a gzip
//! slot, `route/lists_gz.rs`) goes gzip to a client whose `Accept-Encoding` takes it.
//!
//! Runs after routing and before the reply is encoded, on the connection's task. Reading the
//! header is [`crate::http::coding`]'s, the slot and its helper thread
//! [`crate::http::gzip_slot`]'s, the framing [`crate::http::gzip`]'s; this module counts
//! what it did on the shard (`only1mcp_list_gzip_builds_total`, `..._answers_total`).

use crate::front::LocalFront;
use crate::http::gzip_slot::{apply, slot_for};
use crate::http::request::{ConnBuffers, Request};
use crate::http::response::Reply;

/// Sends a large list page gzip when the client accepts it (`server.compress_lists`): from
/// the page's copy, made by a helper thread on the first such request, which waits for it
/// (the shard serves on); a request that finds the copy being made is answered uncompressed.
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
        let waited = monoio::time::timeout(front.limits.idle_timeout, done).await;
        if !matches!(waited, Ok(Ok(()))) {
            return;
        }
        pages.built.set(pages.built.get() + 1);
    }
    if let Some(run) = slot.get() {
        if apply(reply, run) {
            pages.served.set(pages.served.get() + 1);
        }
    }
}

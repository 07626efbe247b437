//! The gateway's own GET stream toward a Streamable HTTP backend.
//!
//! A backend sends what is not tied to a request (list changes, resource updates) on its
//! standalone GET stream. Each shard that needs those opens one per backend replica on its own
//! upstream session there: the owner shard on replica 0 for list changes (re-discovery), any
//! shard whose clients subscribed to a resource on every replica (a subscribe may land on any),
//! and a shard whose 2025 session created a task on the replica that holds the task (its status
//! notifications come from there). A backend that answers the GET with 405 has no such
//! stream; the listener then stops and says so once. Other failures retry with backoff.

use std::rc::Rc;
use std::time::Duration;

use crate::http::client::LocalHttpConn;
use crate::http::sse::SseDecoder;
use crate::upstream::http::LocalHttpBackend;

/// Called with each message the backend pushes on its GET stream.
pub type OnPush = Rc<dyn Fn(Vec<u8>)>;

/// Listens on replica `replica`'s GET stream until the shard drains or the backend refuses.
pub async fn listen(
    backend: Rc<LocalHttpBackend>,
    replica: usize,
    on_push: OnPush,
    draining: Rc<std::cell::Cell<bool>>,
) {
    let mut backoff = Duration::from_millis(500);
    while !draining.get() && !backend.retired() {
        // A reload that retires the backend also ends a stream that is still open.
        let ran = monoio::select! {
            r = once(&backend, replica, &on_push) => r,
            _ = retired(&backend) => return,
        };
        match ran {
            Ok(Some(405)) | Ok(Some(404)) => {
                tracing::info!(server = %backend.id(), "backend offers no GET stream; list changes from it arrive only on reconnect");
                return;
            }
            Ok(_) => backoff = Duration::from_millis(500),
            Err(e) => tracing::debug!(server = %backend.id(), "GET stream ended: {e}"),
        }
        monoio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// Resolves once the backend is retired (polled: retirement is rare and not urgent).
async fn retired(backend: &LocalHttpBackend) {
    while !backend.retired() {
        monoio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One GET stream; returns the refusing status, or `None` when a stream ran and ended.
async fn once(
    backend: &Rc<LocalHttpBackend>,
    i: usize,
    on_push: &OnPush,
) -> Result<Option<u16>, String> {
    // Boxed: it may run the session handshake, a large future not needed while streaming.
    let (replica, headers) = Box::pin(backend.get_stream_target(i))
        .await
        .map_err(|e| e.to_string())?;
    let mut conn = LocalHttpConn::connect(&replica, Duration::from_secs(5))
        .await
        .map_err(|e| e.to_string())?;
    let hdrs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    conn.send_get(&replica.path, &replica.authority, &hdrs)
        .await
        .map_err(|e| e.to_string())?;
    let mut head = conn.read_head().await.map_err(|e| e.to_string())?;
    if head.status != 200 || !head.sse {
        return Ok(Some(head.status));
    }
    let mut dec = SseDecoder::default();
    // Grows to the largest piece read: most streams stay silent for their whole life.
    let mut piece = Vec::new();
    loop {
        piece.clear();
        let more = conn
            .read_body_piece(&mut head, &mut piece)
            .await
            .map_err(|e| e.to_string())?;
        dec.push(&piece);
        while let Some(ev) = dec.next_event() {
            on_push(ev.data);
        }
        if dec.take_dropped() > 0 {
            return Err("the backend sent an SSE event larger than 64 MiB".into());
        }
        if !more {
            return Ok(None);
        }
        crate::rt::fair::yield_now().await;
    }
}

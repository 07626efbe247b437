//! The rest of an SSE answer after its response event: read to the stream's end so the
//! connection can go back to the pool, without delaying the caller.
//!
//! A backend that answers a POST on `text/event-stream` (the Python and TypeScript SDKs'
//! default) sends the response event and then ends the stream (the chunked terminator, or
//! the end of its Content-Length), often in a later packet. The caller has its answer at the
//! response event; if the end is already buffered the connection is pooled at once,
//! otherwise a task on this shard keeps the connection (and its pool slot) and reads on,
//! bounded by [`DRAIN_BYTES`] and [`DRAIN_FOR`], then pools it. Anything unexpected (the
//! bound hit, framing or event garbage, more than [`MAX_TRAILING`] messages after the
//! response, an error) closes it: a connection in an unknown state is never reused.
//!
//! Messages after the response have no caller left to relay them to: they are dropped, as
//! before, and counted in a debug log line.

use std::rc::Rc;
use std::time::Duration;

use crate::http::client::{ClientError, ResponseHead};
use crate::http::sse::SseDecoder;
use crate::wire::jsonrpc::Envelope;

use super::pool::{Leased, LocalPool, OwnedLease};

/// The most body bytes read after the response event.
pub(super) const DRAIN_BYTES: usize = 64 * 1024;
/// How long the rest of the stream may take to arrive.
pub(super) const DRAIN_FOR: Duration = Duration::from_secs(1);
/// The most JSON-RPC messages tolerated after the response (the spec says the stream
/// should end with the response; a few late notifications are tolerated).
pub(super) const MAX_TRAILING: usize = 4;

/// Where a stream stands after the bytes already received.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Settled {
    /// The stream ended cleanly: the connection may be reused.
    Reusable,
    /// The stream cannot end cleanly, or the connection is not keep-alive: close it.
    Close(&'static str),
    /// The end has not arrived yet.
    Pending,
}

/// Decodes what is already buffered on `conn` after the response event, without I/O.
/// `trailing` counts the messages seen after the response so far.
pub(super) fn settle(
    conn: &mut crate::http::client::LocalHttpConn,
    head: &mut ResponseHead,
    dec: &mut SseDecoder,
    trailing: &mut usize,
    server: &str,
) -> Settled {
    if !head.keep_alive() {
        return Settled::Close("not keep-alive");
    }
    let mut piece = Vec::new();
    let ended = match conn.decode_buffered(head, &mut piece) {
        Ok(ended) => ended,
        Err(_) => return Settled::Close("malformed framing"),
    };
    if piece.len() > DRAIN_BYTES {
        return Settled::Close("too many bytes after the response");
    }
    dec.push(&piece);
    if let Err(why) = trailing_events(dec, trailing, server) {
        return Settled::Close(why);
    }
    match ended {
        true if conn.reusable(head) => Settled::Reusable,
        true => Settled::Close("bytes after the end of the response"),
        false => Settled::Pending,
    }
}

/// Pops the complete events after the response: JSON-RPC messages are counted (and
/// dropped), anything else is an error.
fn trailing_events(
    dec: &mut SseDecoder,
    trailing: &mut usize,
    server: &str,
) -> Result<(), &'static str> {
    while let Some(ev) = dec.next_event() {
        let Ok(env) = Envelope::parse(&ev.data) else {
            return Err("a non-JSON-RPC event after the response");
        };
        *trailing += 1;
        tracing::debug!(server, method = ?env.method, "backend message after the response on its SSE stream; dropped");
        if *trailing > MAX_TRAILING {
            return Err("too many messages after the response");
        }
    }
    if dec.take_dropped() > 0 {
        return Err("an oversized event after the response");
    }
    Ok(())
}

/// Gives `conn` back to the pool once its SSE stream ended: at once when the end is
/// already buffered, else from a task on this shard within the bounds. Never awaits.
pub(super) fn finish_sse(
    mut conn: Leased<'_>,
    pool: &Rc<LocalPool>,
    mut head: ResponseHead,
    mut dec: SseDecoder,
    server: &str,
) {
    let mut trailing = 0;
    match settle(&mut conn, &mut head, &mut dec, &mut trailing, server) {
        Settled::Reusable => conn.put_back(),
        Settled::Close(why) => {
            tracing::debug!(
                server,
                trailing,
                "backend connection closed after an SSE answer: {why}"
            )
        }
        Settled::Pending => {
            let conn = conn.detach(pool);
            let server = server.to_string();
            monoio::spawn(async move {
                let read = drain(conn, head, dec, trailing, &server);
                match monoio::time::timeout(DRAIN_FOR, read).await {
                    Ok(Ok((conn, trailing))) => {
                        if trailing > 0 {
                            tracing::debug!(server, trailing, "backend messages after the response dropped");
                        }
                        conn.put_back();
                    }
                    Ok(Err(why)) => {
                        tracing::debug!(server, "backend connection closed after an SSE answer: {why}")
                    }
                    Err(_) => tracing::debug!(
                        server,
                        "backend connection closed: its SSE stream did not end within {DRAIN_FOR:?} of the response"
                    ),
                }
            });
        }
    }
}

/// Reads the rest of the stream; the connection (reusable) and the messages dropped, or
/// why it must be closed (dropping the lease closes it and frees its slot).
async fn drain(
    mut conn: OwnedLease,
    mut head: ResponseHead,
    mut dec: SseDecoder,
    mut trailing: usize,
    server: &str,
) -> Result<(OwnedLease, usize), &'static str> {
    let mut piece = Vec::new();
    let mut total = 0usize;
    loop {
        piece.clear();
        let more = conn
            .read_body_piece(&mut head, &mut piece)
            .await
            .map_err(|e| match e {
                ClientError::Io(_) => "the backend closed it or it failed",
                ClientError::Protocol(_) => "malformed framing",
            })?;
        total = total.saturating_add(piece.len());
        if total > DRAIN_BYTES {
            return Err("too many bytes after the response");
        }
        dec.push(&piece);
        trailing_events(&mut dec, &mut trailing, server)?;
        if !more {
            return match conn.reusable(&head) {
                true => Ok((conn, trailing)),
                false => Err("bytes after the end of the response"),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(bytes: &[u8]) -> (Result<(), &'static str>, usize) {
        let mut dec = SseDecoder::default();
        dec.push(bytes);
        let mut n = 0;
        (trailing_events(&mut dec, &mut n, "t"), n)
    }

    #[test]
    fn late_messages_are_counted_up_to_a_bound_and_garbage_is_refused() {
        let note = b"data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/x\"}\n\n";
        assert_eq!(events(b""), (Ok(()), 0));
        assert_eq!(events(b": keep-alive comment\n\n"), (Ok(()), 0));
        assert_eq!(events(note), (Ok(()), 1));
        assert_eq!(events(&note.repeat(MAX_TRAILING)), (Ok(()), MAX_TRAILING));
        let (r, n) = events(&note.repeat(MAX_TRAILING + 1));
        assert_eq!((r.is_err(), n), (true, MAX_TRAILING + 1));
        assert!(events(b"data: not json\n\n").0.is_err());
        // An incomplete event is kept for the next read, not judged.
        assert_eq!(events(b"data: {\"jsonrpc\""), (Ok(()), 0));
    }
}

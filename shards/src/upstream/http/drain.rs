//! The rest of an SSE answer after its response event: read to the stream's end so the
//! connection can go back to the pool, without delaying the caller.
//!
//! A backend that answers a POST on `text/event-stream` (the Python and TypeScript SDKs'
//! default) sends the response event and then ends the stream (the chunked terminator, or
//! the end of its Content-Length), often in a later packet. The caller has its answer at the
//! response event; if the end is already buffered the connection is pooled at once,
//! otherwise a task on this shard keeps the connection and reads on, bounded by
//! [`DRAIN_BYTES`] (one budget from the response event on, what was buffered included) and
//! [`DRAIN_FOR`], then pools it. Anything unexpected (the bound hit, framing or event
//! garbage, more than [`MAX_TRAILING`] messages after the response, an error) closes it: a
//! connection in an unknown state is never reused.
//!
//! The pool slot: the task holds it for at most [`HOLD_FOR`], the time an SDK's end of
//! stream takes to follow its response (then the connection is pooled in its own slot, no
//! connect). A stream slower than that gives the slot up (`pool::Slot`): a call queued for it
//! opens a connection of its own instead of waiting up to [`DRAIN_FOR`], and the drained
//! connection is pooled only if the bound has room by then, else closed. A backend that
//! never ends its streams thus costs each queued call [`HOLD_FOR`], and keeps at most about
//! `pool_size × DRAIN_FOR / HOLD_FOR` connections draining per shard and replica.
//!
//! Messages after the response have no caller left to relay them to: they are dropped, as
//! before, and counted in a debug log line.

use std::rc::Rc;
use std::time::Duration;

use crate::http::client::{ClientError, LocalHttpConn, ResponseHead};
use crate::http::sse::SseDecoder;
use crate::wire::jsonrpc::Envelope;

use super::pool::{Leased, LocalPool, OwnedLease};

/// The most body bytes read after the response event (buffered and read, together).
pub(super) const DRAIN_BYTES: usize = 64 * 1024;
/// How long the rest of the stream may take to arrive.
pub(super) const DRAIN_FOR: Duration = Duration::from_secs(1);
/// How long a draining connection keeps its pool slot (see the module docs).
pub(super) const HOLD_FOR: Duration = Duration::from_millis(50);
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
    conn: &mut LocalHttpConn,
    head: &mut ResponseHead,
    dec: &mut SseDecoder,
    trailing: &mut usize,
    server: &str,
) -> Settled {
    let mut left = DRAIN_BYTES;
    settle_within(conn, head, dec, trailing, &mut left, server)
}

/// [`settle`], taking what it decodes from `left`, the rest of [`DRAIN_BYTES`] that
/// [`read_rest`] then goes on with.
fn settle_within(
    conn: &mut LocalHttpConn,
    head: &mut ResponseHead,
    dec: &mut SseDecoder,
    trailing: &mut usize,
    left: &mut usize,
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
    if let Err(why) = spend(left, piece.len()) {
        return Settled::Close(why);
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

/// Takes `n` bytes from what is left of the budget, or says it is spent.
fn spend(left: &mut usize, n: usize) -> Result<(), &'static str> {
    *left = left
        .checked_sub(n)
        .ok_or("too many bytes after the response")?;
    Ok(())
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
    let mut left = DRAIN_BYTES;
    match settle_within(
        &mut conn,
        &mut head,
        &mut dec,
        &mut trailing,
        &mut left,
        server,
    ) {
        Settled::Reusable => conn.put_back(),
        Settled::Close(why) => {
            tracing::debug!(
                server,
                trailing,
                "backend connection closed after an SSE answer: {why}"
            )
        }
        Settled::Pending => {
            // The lease is uncounted from here; its slot is `slot` (on every path the task
            // takes, including its drop at shutdown, the slot is rejoined or released).
            let (conn, mut slot) = conn.detach(pool);
            let server = server.to_string();
            monoio::spawn(async move {
                let mut read = std::pin::pin!(drain(conn, head, dec, trailing, left, &server));
                let ended = match monoio::time::timeout(HOLD_FOR, read.as_mut()).await {
                    Ok(ended) => Some(ended),
                    Err(_) => {
                        // Slow to end: a call queued for the slot gets it now.
                        drop(slot.take());
                        monoio::time::timeout(DRAIN_FOR - HOLD_FOR, read).await.ok()
                    }
                };
                match ended {
                    Some(Ok((mut conn, trailing))) => {
                        if trailing > 0 {
                            tracing::debug!(server, trailing, "backend messages after the response dropped");
                        }
                        if let Some(slot) = slot {
                            slot.rejoin(&mut conn);
                        }
                        conn.put_back();
                    }
                    Some(Err(why)) => {
                        tracing::debug!(server, "backend connection closed after an SSE answer: {why}")
                    }
                    None => tracing::debug!(
                        server,
                        "backend connection closed: its SSE stream did not end within {DRAIN_FOR:?} of the response"
                    ),
                }
            });
        }
    }
}

/// Reads the rest of the stream; the connection (reusable) and the messages dropped, or
/// why it must be closed (dropping the lease closes it).
async fn drain(
    mut conn: OwnedLease,
    mut head: ResponseHead,
    mut dec: SseDecoder,
    mut trailing: usize,
    mut left: usize,
    server: &str,
) -> Result<(OwnedLease, usize), &'static str> {
    read_rest(
        &mut conn,
        &mut head,
        &mut dec,
        &mut trailing,
        &mut left,
        server,
    )
    .await?;
    Ok((conn, trailing))
}

/// Reads `conn` to the end of the stream within the `left` bytes of the budget: `Ok` once it
/// ended cleanly with nothing after it (the connection is reusable).
async fn read_rest(
    conn: &mut LocalHttpConn,
    head: &mut ResponseHead,
    dec: &mut SseDecoder,
    trailing: &mut usize,
    left: &mut usize,
    server: &str,
) -> Result<(), &'static str> {
    let mut piece = Vec::new();
    loop {
        piece.clear();
        let more = conn
            .read_body_piece(head, &mut piece)
            .await
            .map_err(|e| match e {
                ClientError::Io(_) => "the backend closed it or it failed",
                ClientError::Protocol(_) => "malformed framing",
            })?;
        spend(left, piece.len())?;
        dec.push(&piece);
        trailing_events(dec, trailing, server)?;
        if !more {
            return match conn.reusable(head) {
                true => Ok(()),
                false => Err("bytes after the end of the response"),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// `n` bytes of SSE comments (no events), as one chunk.
    fn padding(n: usize) -> Vec<u8> {
        let line = b": 0123456789abcdef\n\n";
        assert_eq!(n % line.len(), 0);
        let mut out = format!("{n:x}\r\n").into_bytes();
        out.extend(line.repeat(n / line.len()));
        out.extend_from_slice(b"\r\n");
        out
    }

    /// A stream whose first `buffered` bytes after the response are already received when
    /// it is settled and whose `later` bytes come after, then its end: what the drain says.
    fn drained(buffered: usize, later: usize) -> Result<(), &'static str> {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        rt.block_on(async {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            let mut conn = LocalHttpConn::connect_tcp(&[addr], Duration::from_secs(2))
                .await
                .unwrap();
            let (mut peer, _) = l.accept().unwrap();
            let mut first = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
            first.extend(padding(buffered));
            peer.write_all(&first).unwrap();
            let mut head = conn.read_head().await.unwrap();
            let (mut dec, mut trailing, mut left) = (SseDecoder::default(), 0, DRAIN_BYTES);
            let settled = settle_within(&mut conn, &mut head, &mut dec, &mut trailing, &mut left, "t");
            assert_eq!(settled, Settled::Pending);
            assert_eq!(left, DRAIN_BYTES - buffered, "the buffered bytes were counted");
            let writer = std::thread::spawn(move || {
                let mut rest = padding(later);
                rest.extend_from_slice(b"0\r\n\r\n");
                let _ = peer.write_all(&rest);
                peer
            });
            let read = read_rest(&mut conn, &mut head, &mut dec, &mut trailing, &mut left, "t");
            let r = monoio::time::timeout(Duration::from_secs(5), read)
                .await
                .expect("bounded");
            drop(conn);
            drop(writer.join().unwrap());
            r
        })
    }

    #[test]
    fn the_byte_bound_is_one_budget_for_the_buffered_and_the_read_bytes() {
        // 5 000 bytes buffered when settled (one read of at most 8 KiB), the rest later.
        const { assert!(5_000 + 60_000 <= DRAIN_BYTES && 5_000 + 61_000 > DRAIN_BYTES) };
        assert_eq!(drained(5_000, 60_000), Ok(()));
        // Each part alone is under the bound, together they are over it: closed (counted
        // apart, as they were, up to twice the bound could be read).
        assert_eq!(
            drained(5_000, 61_000),
            Err("too many bytes after the response")
        );
    }

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

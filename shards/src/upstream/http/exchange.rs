//! One HTTP exchange with a replica: send the request on a pooled (or new) keep-alive
//! connection, read the answer as JSON or as an SSE stream (relaying related messages and
//! progress while waiting for the response), and tell the caller whether to retry on a
//! fresh connection (a stale pooled one) or re-initialize (404: the upstream session
//! expired). After an SSE answer the connection goes to `drain.rs`, which pools it once
//! the stream has ended.

use std::ops::Range;

use super::*;

impl LocalHttpBackend {
    pub(super) async fn attempt(
        &self,
        replica: &LocalReplica,
        body: &[u8],
        id: &Range<usize>,
        t: Try<'_>,
    ) -> Attempt {
        let Try {
            our_id,
            attempt,
            events,
            modern: use_modern,
            pin,
            tool_headers,
            client_caps,
            trace,
        } = t;
        let session = match self.session(replica).await {
            Ok(s) => s,
            Err(e) => return Attempt::Done(Err(e)),
        };
        // Formatted on the stack: no allocation per call.
        let mut id_buf = itoa::Buffer::new();
        let id_text: &str = id_buf.format(our_id);
        let modern = session.modern_ok && (!session.legacy || use_modern);
        // The upstream session a task follow-up must find: the one that created the task.
        let epoch = match (&session.id, modern) {
            (Some(sid), false) => crate::upstream::epoch_of(sid),
            _ => 0,
        };
        if pin.is_some_and(|p| p.epoch != 0 && p.epoch != epoch) {
            return Attempt::Done(Err(crate::upstream::task_lost(
                &self.spec.id,
                "the upstream session that ran it has ended (the replica restarted or expired it)",
            )));
        }
        let (body, id) = if modern {
            match crate::upstream::modern::to_modern(body, id.clone(), client_caps) {
                Ok((b, i)) => (std::borrow::Cow::Owned(b), i),
                Err(e) => return Attempt::Done(Err(e)),
            }
        } else {
            (std::borrow::Cow::Borrowed(body), id.clone())
        };
        // From the shard's list, and back to it once sent (`rt/bufs.rs`).
        let mut wire = crate::rt::bufs::take();
        splice(&body, &[(id, id_text.as_bytes())], &mut wire);
        let (mut conn, reused) = match self.take_conn(replica).await {
            Ok(c) => c,
            Err(e) => return Attempt::Done(Err(e)),
        };
        let extra = match modern {
            true => crate::upstream::modern::request_headers(&wire, tool_headers),
            false => Vec::new(),
        };
        let mut hdrs = self.header_refs(&session, modern, &extra);
        if let Some(t) = trace {
            // Borrowed, not copied: the context is ASCII by construction.
            hdrs.push((
                "traceparent",
                std::str::from_utf8(&t.traceparent).unwrap_or(""),
            ));
            if let Some(ts) = &t.tracestate {
                hdrs.push(("tracestate", ts));
            }
        }
        let mut reused = reused;
        let mut head = loop {
            let sent = conn
                .send_post(&replica.url.path, &replica.url.authority, &hdrs, &wire)
                .await;
            let head = match sent {
                Ok(()) => conn.read_head().await,
                Err(e) => Err(ClientError::Io(e)),
            };
            match head {
                Ok(h) => break h,
                // A pooled connection the backend closed meanwhile (its keep-alive timeout):
                // send again once on a fresh connection in the same slot. Not on another pooled
                // one: those idled as long and are likely closed too.
                Err(ClientError::Io(_)) if reused => {
                    let connect = || LocalHttpConn::connect(&replica.url, self.connect_timeout);
                    // Boxed: a connect is a large future this rare path must not add to
                    // every call's.
                    if let Err(e) = Box::pin(conn.reconnect(connect)).await {
                        return Attempt::Done(Err(self.cannot_connect(replica, e)));
                    }
                    reused = false;
                }
                Err(e) => return Attempt::Done(Err(self.unavailable(e))),
            }
        };
        crate::rt::bufs::give(wire);
        if head.status == 404 && !modern && session.id.is_some() && pin.is_some() {
            // A task's upstream session expired: the task went with it.
            let mut st = replica.session.borrow_mut();
            if matches!(&*st, SessionState::Ready(s) if s.id == session.id) {
                *st = SessionState::None;
            }
            return Attempt::Done(Err(crate::upstream::task_lost(
                &self.spec.id,
                "the upstream session that ran it has expired",
            )));
        }
        if head.status == 404 && !modern && session.id.is_some() && attempt < 2 {
            // The upstream session expired: forget it and initialize again (unless another
            // call already did and a new session is being or has been made).
            let mut st = replica.session.borrow_mut();
            if matches!(&*st, SessionState::Ready(s) if s.id == session.id) {
                *st = SessionState::None;
            }
            return Attempt::Retry;
        }
        if head.status != 200 {
            let mut snippet = Vec::new();
            let _ = conn.read_body_all(&mut head, &mut snippet, 65536).await;
            // A 2026 backend answers its JSON-RPC errors with 400/404: that error is the
            // backend's answer to relay, not a transport failure.
            if let Ok(reply) = BackendReply::from_message(&self.spec.id, snippet.clone()) {
                if reply.body[reply.id.clone()] == *id_text.as_bytes() {
                    return Attempt::Done(Ok(reply));
                }
            }
            snippet.truncate(200);
            return Attempt::Done(Err(self.protocol(format!(
                "HTTP {} from {}: {}",
                head.status,
                replica.url.raw,
                String::from_utf8_lossy(&snippet).trim()
            ))));
        }
        let (mut reply, tail) = match self.read_reply(&mut conn, &mut head, id_text, events).await {
            Ok(r) => r,
            Err(e) => return Attempt::Done(Err(e)),
        };
        reply.origin.epoch = epoch;
        match tail {
            // An SSE answer: the rest of its stream is read after the caller has its answer.
            Some(dec) => super::drain::finish_sse(conn, &replica.pool, head, dec, &self.spec.id),
            None if conn.reusable(&head) => conn.put_back(),
            None => {}
        }
        Attempt::Done(Ok(reply))
    }

    pub(super) async fn read_reply(
        &self,
        conn: &mut LocalHttpConn,
        head: &mut ResponseHead,
        id_text: &str,
        events: Option<(&EventTx, usize)>,
    ) -> Result<(BackendReply, Option<SseDecoder>), McpError> {
        if !head.sse {
            // Given back once the client's answer is spliced from it (`route/finish.rs`).
            let mut body = crate::rt::bufs::take();
            conn.read_body_all(head, &mut body, MAX_RESPONSE)
                .await
                .map_err(|e| self.unavailable(e))?;
            let reply = BackendReply::from_message(&self.spec.id, body)?;
            if &reply.body[reply.id.clone()] != id_text.as_bytes() {
                return Err(self.protocol("response id does not match the request"));
            }
            return Ok((reply, None));
        }
        let mut dec = SseDecoder::default();
        let mut piece = Vec::with_capacity(8192);
        loop {
            piece.clear();
            let more = conn
                .read_body_piece(head, &mut piece)
                .await
                .map_err(|e| self.unavailable(e))?;
            dec.push(&piece);
            // Give way to the task draining the events (`rt::fair`).
            crate::rt::fair::yield_now().await;
            while let Some(ev) = dec.next_event() {
                let Ok(env) = Envelope::parse(&ev.data) else {
                    tracing::warn!(server = %self.spec.id, "backend sent a non-JSON-RPC SSE event; ignored");
                    continue;
                };
                if env.kind == Kind::Response
                    && env.id.as_ref().map(|r| &ev.data[r.clone()]) == Some(id_text.as_bytes())
                {
                    let id = env.id.clone().unwrap_or_default();
                    // The rest of the stream (and what `dec` holds of it) is the caller's
                    // to read to its end before the connection is reused (`drain.rs`).
                    let reply = BackendReply {
                        body: ev.data,
                        id,
                        origin: Default::default(),
                    };
                    return Ok((reply, Some(dec)));
                }
                match events {
                    Some((tx, replica)) if env.kind != Kind::Response => {
                        let _ = tx.unbounded_send(BackendEvent {
                            msg: ev.data,
                            replica,
                        });
                    }
                    _ => {
                        tracing::debug!(server = %self.spec.id, method = ?env.method, "backend message on response stream not relayed")
                    }
                }
            }
            if dec.take_dropped() > 0 {
                return Err(self.protocol("an SSE event larger than 64 MiB"));
            }
            if !more {
                return Err(self.protocol("SSE stream ended without a response"));
            }
        }
    }
}

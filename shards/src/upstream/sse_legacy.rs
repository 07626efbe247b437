//! The deprecated HTTP+SSE transport (2024-11-05) toward old backends.
//!
//! The gateway GETs the backend's SSE endpoint; the first `endpoint` event names the URI to
//! POST messages to. Every answer then arrives as a `message` event on that one GET stream,
//! so the stream is read by one task per upstream session that routes messages exactly like
//! a stdio child's stdout ([`crate::upstream::routes`]): replies by the gateway's ids,
//! progress by its tokens. Calls POST with their own id and wait (timeout, cancellation).
//! When the stream ends the session is dead: pending calls fail at once and the next call
//! opens a new one. Tried only after `server/discover` and Streamable HTTP `initialize` fail.

use std::cell::Cell;
use std::ops::Range;
use std::rc::Rc;
use std::time::Duration;

use crate::error::McpError;
use crate::http::client::LocalHttpConn;
use crate::http::sse::SseDecoder;
use crate::http::url::BackendUrl;
use crate::upstream::routes::{handle_message, register, LocalRoutes};
use crate::upstream::{request_body, BackendReply, CallOpts};
use crate::wire::jsonrpc::splice;

/// Where messages are POSTed.
#[derive(Clone)]
struct PostTarget {
    server: String,
    url: BackendUrl,
    headers: Vec<(String, String)>,
    connect_timeout: Duration,
}

impl PostTarget {
    async fn post(&self, msg: &[u8]) -> Result<(), McpError> {
        let unavailable = |e: String| McpError::BackendUnavailable {
            server: self.server.clone(),
            reason: e,
        };
        let mut conn = LocalHttpConn::connect(&self.url, self.connect_timeout)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let hdrs: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        conn.send_post(&self.url.path, &self.url.authority, &hdrs, msg)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let mut head = conn
            .read_head()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let mut sink = Vec::new();
        let _ = conn.read_body_all(&mut head, &mut sink, 65536).await;
        if (200..300).contains(&head.status) {
            Ok(())
        } else {
            Err(McpError::BackendProtocol {
                server: self.server.clone(),
                reason: format!(
                    "POST to the HTTP+SSE message endpoint answered HTTP {}",
                    head.status
                ),
            })
        }
    }
}

/// One HTTP+SSE upstream session on one shard.
pub struct LocalSseSession {
    target: PostTarget,
    routes: Rc<LocalRoutes>,
    alive: Rc<Cell<bool>>,
    next_id: crate::upstream::ids::LocalIdMint,
}

pub(crate) fn endpoint_url(base: &BackendUrl, data: &str) -> Option<BackendUrl> {
    let data = data.trim();
    // It goes into a request line: no whitespace or control bytes (two `data:` lines of the
    // event join with a newline, which would end the line early).
    if data.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return None;
    }
    let path = if let Some(rest) = data.strip_prefix("http://") {
        // Same origin only: the gateway resolves DNS on the control thread, never here.
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority != base.authority {
            return None;
        }
        if path.is_empty() {
            "/".to_string()
        } else {
            path.to_string()
        }
    } else if data.starts_with('/') {
        data.to_string()
    } else {
        let dir = &base.path[..base.path.rfind('/').map_or(0, |i| i + 1)];
        format!("{dir}{data}")
    };
    // Same socket or addresses as the base (a `unix:` base keeps its socket).
    Some(base.with_path(path))
}

impl LocalSseSession {
    /// Opens the GET stream, waits for the `endpoint` event, starts the reader, and runs the
    /// `initialize` handshake with `init_params`. Returns the session and the backend's
    /// `initialize` reply.
    pub async fn open(
        server: &str,
        url: &BackendUrl,
        headers: Vec<(String, String)>,
        connect_timeout: Duration,
        init_params: &[u8],
        timeout: Duration,
    ) -> Result<(Rc<Self>, BackendReply), McpError> {
        let fail = |reason: String| McpError::BackendUnavailable {
            server: server.to_string(),
            reason,
        };
        let mut conn = LocalHttpConn::connect(url, connect_timeout)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let hdrs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        conn.send_get(&url.path, &url.authority, &hdrs)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let mut head = conn.read_head().await.map_err(|e| fail(e.to_string()))?;
        if head.status != 200 || !head.sse {
            return Err(fail(format!(
                "not an HTTP+SSE endpoint either (GET answered HTTP {})",
                head.status
            )));
        }
        let mut dec = SseDecoder::default();
        let mut piece = Vec::with_capacity(4096);
        let endpoint = loop {
            if let Some(ev) = dec.next_event() {
                if ev.event.as_deref() == Some("endpoint") {
                    break String::from_utf8_lossy(&ev.data).into_owned();
                }
                continue;
            }
            piece.clear();
            let more =
                monoio::time::timeout(connect_timeout, conn.read_body_piece(&mut head, &mut piece))
                    .await
                    .map_err(|_| fail("no endpoint event in time".into()))?
                    .map_err(|e| fail(e.to_string()))?;
            dec.push(&piece);
            if !more && dec.next_event().is_none() {
                return Err(fail("SSE stream ended before its endpoint event".into()));
            }
        };
        let post_url = endpoint_url(url, &endpoint).ok_or_else(|| {
            fail(format!(
                "endpoint {endpoint:?} is not a path on the same origin"
            ))
        })?;
        let target = PostTarget {
            server: server.to_string(),
            url: post_url,
            headers,
            connect_timeout,
        };
        let session = Rc::new(LocalSseSession {
            target: target.clone(),
            routes: Rc::new(LocalRoutes::default()),
            alive: Rc::new(Cell::new(true)),
            next_id: crate::upstream::ids::LocalIdMint::new(),
        });
        monoio::spawn(reader(
            target,
            conn,
            head,
            dec,
            session.routes.clone(),
            session.alive.clone(),
        ));
        let (body, id) = request_body("initialize", init_params);
        let reply = session.call(&body, id, CallOpts::timeout(timeout)).await?;
        session.target.post(crate::upstream::INITIALIZED).await?;
        tracing::info!(server = %server, url = %url.raw, "backend speaks the deprecated HTTP+SSE transport");
        Ok((session, reply))
    }

    /// The GET stream is still open.
    pub fn alive(&self) -> bool {
        self.alive.get()
    }

    /// Sends a request and awaits its answer on the GET stream.
    pub async fn call(
        &self,
        body: &[u8],
        id: Range<usize>,
        opts: CallOpts,
    ) -> Result<BackendReply, McpError> {
        if !self.alive.get() {
            return Err(McpError::BackendUnavailable {
                server: self.target.server.clone(),
                reason: "its SSE stream closed".into(),
            });
        }
        let our_id = self.next_id.mint();
        let mut wire = Vec::with_capacity(body.len() + 16);
        splice(body, &[(id, our_id.to_string().as_bytes())], &mut wire);
        // Released however the call ends, dropped included (the client went away).
        let (mut reg, rx) = register(
            &self.routes,
            our_id,
            opts.events.as_ref(),
            opts.progress.as_deref(),
            opts.related_task.as_deref(),
            opts.listen,
        );
        let outcome = async {
            self.target.post(&wire).await?;
            match crate::upstream::within(opts.timeout, opts.deadline.as_ref(), rx).await {
                Ok(Ok(r)) => r,
                Ok(Err(_)) => Err(McpError::BackendUnavailable {
                    server: self.target.server.clone(),
                    reason: "its SSE stream closed before the answer".into(),
                }),
                Err(_) => Err(McpError::BackendTimeout {
                    server: self.target.server.clone(),
                    ms: opts.timeout.as_millis() as u64,
                }),
            }
        };
        let cancel = crate::upstream::cancelled(opts.cancel);
        let result = monoio::select! {
            r = outcome => r,
            _ = cancel => Err(McpError::Cancelled),
        };
        reg.release();
        if matches!(
            result,
            Err(McpError::Cancelled) | Err(McpError::BackendTimeout { .. })
        ) {
            let note = format!(
                r#"{{"jsonrpc":"2.0","method":"notifications/cancelled","params":{{"requestId":{our_id}}}}}"#
            );
            let target = self.target.clone();
            monoio::spawn(async move {
                let _ = target.post(note.as_bytes()).await;
            });
        }
        result
    }

    /// POSTs an answer to a server-to-client request (its own task).
    pub fn respond(&self, msg: Vec<u8>) {
        self.routes.answered(&msg);
        let target = self.target.clone();
        monoio::spawn(async move {
            let _ = target.post(&msg).await;
        });
    }
}

async fn reader(
    target: PostTarget,
    mut conn: LocalHttpConn,
    mut head: crate::http::client::ResponseHead,
    mut dec: SseDecoder,
    routes: Rc<LocalRoutes>,
    alive: Rc<Cell<bool>>,
) {
    let send = |m: Vec<u8>| {
        let t = target.clone();
        monoio::spawn(async move {
            let _ = t.post(&m).await;
        });
    };
    let mut piece = Vec::with_capacity(8192);
    loop {
        while let Some(ev) = dec.next_event() {
            if matches!(ev.event.as_deref(), None | Some("message")) {
                handle_message(&target.server, &ev.data, &routes, &send, "SSE stream");
            }
        }
        if dec.take_dropped() > 0 {
            tracing::warn!(server = %target.server, "backend sent an SSE event larger than 64 MiB; dropped");
        }
        piece.clear();
        match conn.read_body_piece(&mut head, &mut piece).await {
            Ok(true) => {
                dec.push(&piece);
                crate::rt::fair::yield_now().await;
            }
            _ => break,
        }
    }
    alive.set(false);
    tracing::warn!(server = %target.server, "HTTP+SSE stream closed");
    let waiters: Vec<_> = routes.pending.borrow_mut().drain().collect();
    for (_, tx) in waiters {
        let _ = tx.send(Err(McpError::BackendUnavailable {
            server: target.server.clone(),
            reason: "its SSE stream closed before the answer".into(),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> BackendUrl {
        BackendUrl::resolve("http://127.0.0.1:9/sse").unwrap()
    }

    #[test]
    fn endpoint_forms() {
        assert_eq!(
            endpoint_url(&base(), "/messages/?session_id=1")
                .unwrap()
                .path,
            "/messages/?session_id=1"
        );
        assert_eq!(
            endpoint_url(&base(), "messages?x").unwrap().path,
            "/messages?x"
        );
        assert_eq!(
            endpoint_url(&base(), "http://127.0.0.1:9/m").unwrap().path,
            "/m"
        );
        assert!(endpoint_url(&base(), "http://elsewhere/m").is_none());
    }

    #[test]
    fn a_unix_socket_base_keeps_its_socket_for_the_endpoint() {
        let base = BackendUrl::resolve("unix:/nonexistent-o1/b.sock:/sse").unwrap();
        for data in [
            "/messages/?s=1",
            "messages/?s=1",
            "http://localhost/messages/?s=1",
        ] {
            let e = endpoint_url(&base, data).unwrap();
            assert_eq!(e.path, "/messages/?s=1", "{data}");
            assert_eq!(e.unix, base.unix, "{data}");
            assert_eq!(e.raw, "unix:/nonexistent-o1/b.sock:/messages/?s=1");
        }
    }

    #[test]
    fn an_endpoint_that_would_break_the_request_line_is_refused() {
        // Two `data:` lines join with a newline (found by the `sse` fuzz target).
        for bad in [
            "/messages?x\nmessages?x",
            "/m\r\nhost: elsewhere",
            "/a b",
            "m\u{7f}",
            "http://127.0.0.1:9/m\tx",
        ] {
            assert!(endpoint_url(&base(), bad).is_none(), "{bad:?}");
        }
        assert!(endpoint_url(&base(), "  /m?a=%20  ").is_some());
    }
}

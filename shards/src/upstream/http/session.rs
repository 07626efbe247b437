//! The upstream MCP session of one replica on one shard: created lazily by the first call,
//! with concurrent first calls waiting for that one handshake instead of racing N of them;
//! a handshake abandoned mid-way (its caller timed out) resets the state and wakes the
//! waiters. A ready session is taken without an await; the handshake path is boxed so it
//! does not size every call's future.

use super::*;

struct InitGuard<'a> {
    replica: &'a LocalReplica,
}

impl Drop for InitGuard<'_> {
    fn drop(&mut self) {
        finish_init(self.replica, SessionState::None);
    }
}

impl LocalReplica {
    /// A ready Streamable HTTP session (not legacy HTTP+SSE): calls need no session work.
    /// Borrows only; no clone of the session on the hot path.
    pub(super) fn ready_without_sse(&self) -> bool {
        matches!(&*self.session.borrow(), SessionState::Ready(s) if s.sse.is_none())
    }

    pub(super) fn ready_session(&self) -> Option<UpstreamSession> {
        match &*self.session.borrow() {
            SessionState::Ready(s) => Some(s.clone()),
            _ => None,
        }
    }
}

fn finish_init(replica: &LocalReplica, next: SessionState) {
    let prev = std::mem::replace(&mut *replica.session.borrow_mut(), next);
    if let SessionState::Initializing(waiters) = prev {
        for w in waiters {
            let _ = w.send(());
        }
    }
}

impl LocalHttpBackend {
    /// For an HTTP+SSE backend, its live session (a dead one is replaced); `None` for the
    /// other transports. Bounded by `timeout`.
    pub(super) async fn sse_session(
        &self,
        replica: &LocalReplica,
        timeout: Duration,
    ) -> Result<Option<Rc<crate::upstream::sse_legacy::LocalSseSession>>, McpError> {
        for _ in 0..2 {
            let session = match monoio::time::timeout(timeout, self.ensure_session(replica)).await {
                Ok(s) => s?,
                Err(_) => {
                    return Err(McpError::BackendTimeout {
                        server: self.spec.id.clone(),
                        ms: timeout.as_millis() as u64,
                    })
                }
            };
            match session.sse {
                Some(sse) if sse.alive() => return Ok(Some(sse)),
                Some(_) => *replica.session.borrow_mut() = SessionState::None,
                None => return Ok(None),
            }
        }
        Err(self.unavailable("its SSE stream keeps closing"))
    }

    /// The replica's upstream session when it is ready (no await), else a boxed
    /// [`Self::ensure_session`]: the handshake path is too large to inline into every call.
    pub(super) async fn session(
        &self,
        replica: &LocalReplica,
    ) -> Result<UpstreamSession, McpError> {
        match replica.ready_session() {
            Some(s) => Ok(s),
            None => Box::pin(self.ensure_session(replica)).await,
        }
    }

    pub(super) async fn ensure_session(
        &self,
        replica: &LocalReplica,
    ) -> Result<UpstreamSession, McpError> {
        loop {
            let waiter = {
                let mut st = replica.session.borrow_mut();
                match &mut *st {
                    SessionState::Ready(s) => return Ok(s.clone()),
                    SessionState::Initializing(waiters) => {
                        let (tx, rx) = oneshot::channel();
                        waiters.push(tx);
                        Some(rx)
                    }
                    SessionState::None => {
                        *st = SessionState::Initializing(Vec::new());
                        None
                    }
                }
            };
            match waiter {
                Some(rx) => {
                    let _ = rx.await;
                    if matches!(&*replica.session.borrow(), SessionState::None) {
                        return Err(self.unavailable("upstream initialize failed"));
                    }
                }
                None => {
                    // If this future is dropped mid-handshake (the caller timed out), the
                    // guard puts the state back to None and wakes the waiters.
                    let guard = InitGuard { replica };
                    let res = self.handshake(replica).await;
                    std::mem::forget(guard);
                    finish_init(
                        replica,
                        match &res {
                            Ok(s) => SessionState::Ready(s.clone()),
                            Err(_) => SessionState::None,
                        },
                    );
                    return res;
                }
            }
        }
    }
}

//! Opening an upstream session with an HTTP backend: the era probe (`server/discover`), the
//! Streamable HTTP `initialize` handshake, and the HTTP+SSE fallback.

use super::{LocalHttpBackend, LocalReplica, UpstreamSession};
use crate::error::McpError;
use crate::upstream::{initialize_params, negotiated_version, request_body, INITIALIZED};
use crate::wire::jsonrpc::splice;

impl LocalHttpBackend {
    /// Probes both eras: `server/discover`, then `initialize`. A dual-era backend keeps a
    /// 2025 session for 2025 clients (their sampling, logging levels and subscriptions work
    /// natively) and is spoken to statelessly for 2026 clients and discovery.
    pub(super) async fn handshake(
        &self,
        replica: &LocalReplica,
    ) -> Result<UpstreamSession, McpError> {
        let modern = self.probe_modern(replica).await;
        match (self.handshake_2025(replica).await, modern) {
            (Ok(mut s), Some(caps)) => {
                tracing::info!(server = %self.spec.id, url = %replica.url.raw, "backend speaks both eras");
                s.modern_ok = true;
                // Its 2025 session's experimental tasks stay known beside the 2026 caps.
                s.caps = crate::catalog::BackendCaps {
                    tasks_legacy: s.caps.tasks_legacy,
                    ..caps
                };
                Ok(s)
            }
            (Ok(s), None) => Ok(s),
            (Err(_), Some(mut caps)) => {
                tracing::info!(server = %self.spec.id, url = %replica.url.raw, "backend speaks 2026-07-28 only (stateless)");
                caps.modern_only = true;
                Ok(UpstreamSession {
                    id: None,
                    version: crate::upstream::modern::MODERN.into(),
                    caps,
                    legacy: false,
                    modern_ok: true,
                    sse: None,
                })
            }
            (Err(e), None) => match self.handshake_sse(replica).await {
                Ok(s) => Ok(s),
                Err(sse_err) => {
                    tracing::debug!(server = %self.spec.id, "HTTP+SSE fallback failed too: {sse_err}");
                    Err(e)
                }
            },
        }
    }

    /// `server/discover` on a fresh exchange; `Some(caps)` for a 2026-07-28 backend. Any
    /// other answer (a 2025 server says 400 or 404 without a session) means legacy.
    async fn probe_modern(&self, replica: &LocalReplica) -> Option<crate::catalog::BackendCaps> {
        let (mut conn, _) = self.take_conn(replica).await.ok()?;
        let mut hdrs: Vec<(&str, &str)> = vec![
            ("mcp-protocol-version", crate::upstream::modern::MODERN),
            ("mcp-method", "server/discover"),
        ];
        hdrs.extend(
            self.spec
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        let (body, _) = crate::upstream::modern::discover_body();
        conn.send_post(&replica.url.path, &replica.url.authority, &hdrs, &body)
            .await
            .ok()?;
        let mut head = conn.read_head().await.ok()?;
        if head.status != 200 {
            let mut sink = Vec::new();
            let _ = conn.read_body_all(&mut head, &mut sink, 65536).await;
            if conn.reusable(&head) {
                conn.put_back();
            }
            return None;
        }
        let (reply, tail) = self
            .read_reply(&mut conn, &mut head, "0", None)
            .await
            .ok()?;
        match tail {
            Some(dec) => super::drain::finish_sse(conn, &replica.pool, head, dec, &self.spec.id),
            None if conn.reusable(&head) => conn.put_back(),
            None => {}
        }
        crate::upstream::modern::parse_discover(&self.spec.id, &reply)
    }

    /// The last resort: the deprecated HTTP+SSE transport on the same URL.
    async fn handshake_sse(&self, replica: &LocalReplica) -> Result<UpstreamSession, McpError> {
        let params = match &self.client_caps {
            Some(c) => crate::upstream::initialize_params_for(c),
            None => initialize_params(),
        };
        let (sse, reply) = crate::upstream::sse_legacy::LocalSseSession::open(
            &self.spec.id,
            &replica.url,
            self.spec.headers.clone(),
            self.connect_timeout,
            &params,
            self.spec.timeout,
        )
        .await?;
        let (version, caps) = negotiated_version(&self.spec.id, &reply)?;
        Ok(UpstreamSession {
            id: None,
            version: version.into(),
            caps,
            legacy: true,
            modern_ok: false,
            sse: Some(sse),
        })
    }

    async fn handshake_2025(&self, replica: &LocalReplica) -> Result<UpstreamSession, McpError> {
        let params = match &self.client_caps {
            Some(c) => crate::upstream::initialize_params_for(c),
            None => initialize_params(),
        };
        let (body, id) = request_body("initialize", &params);
        let mut wire = Vec::new();
        splice(&body, &[(id, b"0")], &mut wire);
        let (mut conn, _) = self.take_conn(replica).await?;
        let static_h: Vec<(&str, &str)> = self
            .spec
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        conn.send_post(&replica.url.path, &replica.url.authority, &static_h, &wire)
            .await
            .map_err(|e| self.unavailable(e))?;
        let mut head = conn.read_head().await.map_err(|e| self.unavailable(e))?;
        if head.status != 200 {
            return Err(self.protocol(format!("initialize answered HTTP {}", head.status)));
        }
        let session_id = head.session_id.clone();
        let (reply, tail) = self.read_reply(&mut conn, &mut head, "0", None).await?;
        let (version, caps) = negotiated_version(&self.spec.id, &reply)?;
        // An SSE answer whose end is already here leaves the connection reusable for the
        // notification below; one still streaming is closed (once per session, no drain).
        let settled = match tail {
            Some(mut dec) => {
                let mut n = 0;
                super::drain::settle(&mut conn, &mut head, &mut dec, &mut n, &self.spec.id)
            }
            None => super::drain::Settled::Reusable,
        };
        let session = UpstreamSession {
            id: session_id.map(Into::into),
            version: version.into(),
            caps,
            legacy: true,
            modern_ok: false,
            sse: None,
        };
        // notifications/initialized on a fresh exchange; expect 202 (200 tolerated).
        if settled != super::drain::Settled::Reusable || !conn.reusable(&head) {
            // Give its slot back first: with `pool_size = 1` this call would otherwise wait
            // for the slot it holds.
            drop(conn);
            let (c, _) = self.take_conn(replica).await?;
            conn = c;
        }
        let hdrs = self.header_refs(&session, false, &[]);
        conn.send_post(
            &replica.url.path,
            &replica.url.authority,
            &hdrs,
            INITIALIZED,
        )
        .await
        .map_err(|e| self.unavailable(e))?;
        drop(hdrs);
        let mut head = conn.read_head().await.map_err(|e| self.unavailable(e))?;
        let mut sink = Vec::new();
        conn.read_body_all(&mut head, &mut sink, 65536)
            .await
            .map_err(|e| self.unavailable(e))?;
        if !(200..300).contains(&head.status) {
            return Err(self.protocol(format!(
                "notifications/initialized answered HTTP {}",
                head.status
            )));
        }
        if conn.reusable(&head) {
            conn.put_back();
        }
        tracing::info!(server = %self.spec.id, url = %replica.url.raw, version = %session.version, "upstream session ready");
        Ok(session)
    }
}

//! The gateway's `subscriptions/listen` toward a 2026 HTTP backend (see
//! `upstream/subscribe.rs`): a long-lived POST on a connection of its own (never one of the
//! pool's: it would hold a call slot for its whole life), answered with SSE.
//!
//! One per backend per gateway, on replica 0 (like the 2025 GET stream), started by the
//! shard that discovers the backend once discovery found it speaking 2026-07-28 and
//! announcing list changes. Every message it carries is read by `subscribe::hear`: list
//! changes poke the re-list signal, the rest is ignored. When the stream ends it is opened
//! again after a jittered, doubling delay (500 ms to 30 s; back to 500 ms after a stream the
//! backend acknowledged), and once acknowledged again the backend is re-listed. It stops for
//! good when the backend refuses the method (a 2025 server again, or one without listens),
//! when the shard drains, and when a reload retires the backend.
//!
//! [`LocalHttpBackend::listen_stream`] opens a listen of the route layer's own the same way
//! (its resource subscriptions, `route/resource_listen.rs`) and hands it every message.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::LocalHttpBackend;
use crate::catalog::ListsChanged;
use crate::http::client::{LocalHttpConn, ResponseHead};
use crate::http::sse::SseDecoder;
use crate::upstream::relist::RelistTx;
use crate::upstream::subscribe::{hear, listen_body, Backoff, Heard, Streak, HEALTHY};
use crate::upstream::{BackendEvent, EventTx};

/// How one listen stream ended.
enum Ended {
    /// The stream ran (acknowledged or not) and ended: open it again.
    Closed,
    /// The backend does not serve listens: stop.
    Refused(String),
}

impl LocalHttpBackend {
    /// Starts this shard's upstream listen once (a later call while it runs does nothing).
    pub fn ensure_subscribed(self: &Rc<Self>, relist: RelistTx, draining: Rc<Cell<bool>>) {
        if self.subscribed.replace(true) {
            return;
        }
        let this = self.clone();
        monoio::spawn(async move {
            // A reload that retires the backend also ends a stream that is still open.
            monoio::select! {
                _ = this.subscribe_loop(&relist, &draining) => {},
                _ = retired(&this) => {},
            }
            this.subscribed.set(false);
        });
    }

    async fn subscribe_loop(&self, relist: &RelistTx, draining: &Cell<bool>) {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let mut streak = Streak::default();
        let mut first = true;
        while !draining.get() && !self.retired() {
            let mut acked = false;
            let opened = Instant::now();
            let ran = self
                .subscribe_once(relist, &mut acked, |relist| {
                    if std::mem::replace(&mut first, false) {
                        tracing::info!(server = %self.spec.id, "upstream subscriptions/listen open");
                    } else {
                        streak.acknowledged(&self.spec.id);
                        // Announcements made while no listen was open are lost: look again.
                        relist.poke(ListsChanged::NONE);
                    }
                })
                .await;
            let what = match ran {
                Ok(Ended::Refused(why)) => {
                    tracing::info!(server = %self.spec.id, "the backend refused subscriptions/listen ({why}); its list changes reach clients only when it is re-listed for another reason");
                    return;
                }
                Ok(Ended::Closed) => "the backend ended the stream".to_string(),
                Err(e) => e,
            };
            if acked && opened.elapsed() >= HEALTHY {
                // A stream that served a good while and ended (a proxy's timeout, a
                // restart) is routine: reopened soon, without a warning.
                backoff.reset();
                streak.healthy();
                let wait = backoff.delay();
                tracing::debug!(server = %self.spec.id, "upstream subscriptions/listen: {what} after {:?}; reopening in {wait:?}", opened.elapsed());
                monoio::time::sleep(wait).await;
            } else {
                let wait = backoff.delay();
                streak.failed(&self.spec.id, &what, wait);
                monoio::time::sleep(wait).await;
            }
        }
    }

    /// One listen stream, read to its end. `on_ack` runs when the backend acknowledges it.
    async fn subscribe_once(
        &self,
        relist: &RelistTx,
        acked: &mut bool,
        mut on_ack: impl FnMut(&RelistTx),
    ) -> Result<Ended, String> {
        let (mut conn, mut head) = match self.open_listen(&listen_body()).await? {
            Opened::Stream(conn, head) => (conn, head),
            Opened::Answered(status, mut text) => {
                return Ok(match hear(&text, relist) {
                    Heard::Ended(Err(why)) => Ended::Refused(why),
                    Heard::Ended(Ok(())) => Ended::Closed,
                    _ if matches!(status, 404 | 405) => Ended::Refused(format!("HTTP {status}")),
                    _ => {
                        text.truncate(200);
                        return Err(format!(
                            "HTTP {status} to subscriptions/listen: {}",
                            String::from_utf8_lossy(&text).trim()
                        ));
                    }
                });
            }
        };
        read_stream(&mut conn, &mut head, |data| match hear(data, relist) {
            Heard::Acknowledged => {
                *acked = true;
                on_ack(relist);
                None
            }
            Heard::Ended(Ok(())) => Some(Ended::Closed),
            Heard::Ended(Err(why)) => Some(Ended::Refused(why)),
            Heard::Changed(_) | Heard::Other => None,
        })
        .await
    }

    /// A listen of the route layer's own (`body`: a `subscriptions/listen` with
    /// `resourceSubscriptions`, `route/resource_listen.rs`) on a connection of its own, read
    /// to its end: every message on it goes to `events`. `Err` says why it ended early (a
    /// refusal included).
    pub async fn listen_stream(&self, body: &[u8], events: &EventTx) -> Result<(), String> {
        let (mut conn, mut head) = match self.open_listen(body).await? {
            Opened::Stream(conn, head) => (conn, head),
            Opened::Answered(status, mut text) => {
                text.truncate(200);
                return Err(format!(
                    "HTTP {status} to subscriptions/listen: {}",
                    String::from_utf8_lossy(&text).trim()
                ));
            }
        };
        let ended = read_stream(&mut conn, &mut head, |data| {
            let msg = BackendEvent {
                msg: data.to_vec(),
                replica: 0,
            };
            events.unbounded_send(msg).err().map(|_| Ended::Closed)
        });
        ended.await.map(drop)
    }

    /// Sends a listen request on a new connection to replica 0 and reads the head: a stream,
    /// or an answer that is not one (a refusal, read whole).
    async fn open_listen(&self, body: &[u8]) -> Result<Opened, String> {
        let replica = &self.replicas[0];
        let mut conn = LocalHttpConn::connect(&replica.url, self.connect_timeout)
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", replica.url.raw))?;
        let mut hdrs: Vec<(&str, &str)> = vec![
            ("mcp-protocol-version", crate::upstream::modern::MODERN),
            ("mcp-method", "subscriptions/listen"),
        ];
        hdrs.extend(
            self.spec
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        // The head is bounded (a backend that accepts and never answers would hold the
        // listener forever); the stream after it is not: it is meant to stay open.
        let head = async {
            conn.send_post(&replica.url.path, &replica.url.authority, &hdrs, body)
                .await
                .map_err(|e| e.to_string())?;
            conn.read_head().await.map_err(|e| e.to_string())
        };
        let mut head = monoio::time::timeout(self.spec.timeout, head)
            .await
            .map_err(|_| "no answer to subscriptions/listen within the timeout".to_string())??;
        if head.status != 200 || !head.sse {
            let mut text = Vec::new();
            let _ = conn.read_body_all(&mut head, &mut text, 65536).await;
            return Ok(Opened::Answered(head.status, text));
        }
        Ok(Opened::Stream(conn, head))
    }
}

/// What a listen request was answered with.
enum Opened {
    /// An SSE stream, to be read.
    Stream(LocalHttpConn, ResponseHead),
    /// Anything else: the status and the body.
    Answered(u16, Vec<u8>),
}

/// Reads a listen's SSE stream to its end, handing each event's data to `on_event` until it
/// says how the stream ended.
async fn read_stream(
    conn: &mut LocalHttpConn,
    head: &mut ResponseHead,
    mut on_event: impl FnMut(&[u8]) -> Option<Ended>,
) -> Result<Ended, String> {
    let mut dec = SseDecoder::default();
    // Grows to the largest piece read: a listen stays silent most of its life.
    let mut piece = Vec::new();
    loop {
        piece.clear();
        let more = conn
            .read_body_piece(head, &mut piece)
            .await
            .map_err(|e| format!("the stream broke: {e}"))?;
        dec.push(&piece);
        while let Some(ev) = dec.next_event() {
            if let Some(end) = on_event(&ev.data) {
                return Ok(end);
            }
        }
        if dec.take_dropped() > 0 {
            return Err("the backend sent an SSE event larger than 64 MiB".into());
        }
        if !more {
            return Ok(Ended::Closed);
        }
        // A backend that floods the stream must not hold the shard (`rt::fair`).
        crate::rt::fair::yield_now().await;
    }
}

/// Resolves once the backend is retired (polled: retirement is rare and not urgent).
async fn retired(backend: &LocalHttpBackend) {
    while !backend.retired() {
        monoio::time::sleep(Duration::from_millis(100)).await;
    }
}

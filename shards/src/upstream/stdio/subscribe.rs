//! The gateway's `subscriptions/listen` toward a 2026 stdio child (see `upstream/subscribe.rs`).
//!
//! On stdio the listen is a request on the child's one channel whose answer comes only when
//! the child ends the subscription; its notifications arrive on the same channel, tagged with
//! the listen's id, and the reader already routes every `list_changed` there to the re-list
//! signal (`upstream/routes.rs`). So this task only keeps the request open for the life of
//! the process it was started for: it asks again when the child answers it (a graceful end),
//! after a [`Backoff`]; it renews it once a day (the call's timeout, which tells the child
//! `notifications/cancelled` first); it stops for good when the child refuses it, and when
//! the process exits (the supervisor starts a new task with the next process).

use std::rc::Rc;
use std::time::Duration;

use super::LocalStdioSlot;
use crate::catalog::ListsChanged;
use crate::error::McpError;
use crate::upstream::relist::RelistTx;
use crate::upstream::subscribe::{listen_body, Backoff, Streak, HEALTHY};
use crate::upstream::CallOpts;

/// How long one listen request stays open before it is renewed.
const RENEW: Duration = Duration::from_secs(24 * 3600);

/// Holds the listen of process `pid` of `slot` open (module docs).
pub(super) async fn listen(slot: Rc<LocalStdioSlot>, pid: i32, relist: RelistTx) {
    let server = slot.spec.id.clone();
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    let mut streak = Streak::default();
    let mut first = true;
    while !slot.stopping.get() && slot.pid() == Some(pid) {
        let body = listen_body();
        let id = crate::wire::jsonrpc::Envelope::parse(&body)
            .ok()
            .and_then(|e| e.id)
            .unwrap_or_default();
        if !first {
            // Announcements made while no listen was open are lost: look again.
            relist.poke(ListsChanged::NONE);
        }
        first = false;
        let opts = CallOpts {
            modern: true,
            ..CallOpts::timeout(RENEW)
        };
        // `call_inner`: a day-long request is no call for the slot's latency figures.
        let opened = std::time::Instant::now();
        let r = slot.call_inner(&body, id, opts).await;
        if slot.stopping.get() {
            return;
        }
        match r.as_ref().map(|reply| reply.result(&server)) {
            Ok(Err(why)) => {
                tracing::info!(server = %server, "the backend refused subscriptions/listen ({why}); its list changes reach clients only when it is re-listed for another reason");
                return;
            }
            Ok(Ok(_)) => {
                if opened.elapsed() >= HEALTHY {
                    backoff.reset();
                    streak.healthy();
                }
                let wait = backoff.delay();
                streak.failed(&server, "the backend ended the listen", wait);
                monoio::time::sleep(wait).await;
            }
            Err(McpError::BackendTimeout { .. }) => {
                backoff.reset();
                streak.healthy();
            }
            // The process is gone (or going): the next one gets its own listen.
            Err(_) => return,
        }
    }
}

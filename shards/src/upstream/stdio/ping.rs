//! The health check of a running stdio child: it must answer `ping`.
//!
//! A process can be alive with its pipes open and still answer nothing (a deadlock, a
//! blocked event loop). The supervisor only sees exits, so this task pings the child every
//! `health_interval_ms`; `unhealthy_threshold` unanswered pings in a row kill its process
//! group, and the supervisor then reaps and restarts it like any other exit. One task per
//! child process; it ends when that process is gone.

use std::rc::Rc;

use super::child::kill_group;
use super::LocalStdioSlot;
use crate::error::McpError;
use crate::upstream::CallOpts;

const PING: &[u8] = br#"{"jsonrpc":"2.0","id":0,"method":"ping"}"#;

/// Pings child `pid` of `slot` until it is replaced, stopped, or killed for not answering.
pub(super) async fn ping_task(slot: Rc<LocalStdioSlot>, pid: i32) {
    let health = slot.spec.health.clone();
    if health.interval.is_zero() {
        return;
    }
    let id_at = PING.windows(4).position(|w| w == b"\"id\"").unwrap_or(0) + 5;
    let mut missed = 0u32;
    loop {
        monoio::time::sleep(health.interval).await;
        let same = slot.current.borrow().as_ref().map(|p| p.pid) == Some(pid);
        if slot.stopping.get() || !same {
            return;
        }
        match slot
            .call(PING, id_at..id_at + 1, CallOpts::timeout(health.timeout))
            .await
        {
            // Any answer, even a JSON-RPC error, shows the process reads and writes.
            Ok(_) | Err(McpError::BackendProtocol { .. }) => missed = 0,
            Err(McpError::BackendTimeout { .. }) => {
                missed += 1;
                tracing::warn!(server = %slot.spec.id, pid, missed, "stdio backend did not answer ping");
                if missed >= health.unhealthy_threshold.max(1) {
                    tracing::error!(server = %slot.spec.id, pid, "stdio backend stopped answering ping; killing it for a restart");
                    kill_group(pid, libc::SIGKILL);
                    return;
                }
            }
            // Unavailable: the process is going away; the supervisor has it.
            Err(_) => return,
        }
    }
}

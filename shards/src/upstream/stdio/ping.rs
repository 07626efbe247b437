//! The health check of a running stdio child: it must answer `ping` (and the canary call,
//! when the server has a `health_canary`).
//!
//! A process can be alive with its pipes open and still answer nothing (a deadlock, a
//! blocked event loop), or answer `ping` while every real call fails (its database is gone).
//! The supervisor only sees exits, so this task pings the child every `health_interval_ms`,
//! then makes the canary call; `unhealthy_threshold` failed checks in a row kill its process
//! group, and the supervisor then reaps and restarts it like any other exit (a server whose
//! fresh processes keep failing this way is parked by the crash-loop detector). One task per
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
    let canary = health.canary.as_ref().map(|(tool, args)| {
        let name = sonic_rs::to_string(tool).unwrap_or_default();
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":0,"method":"tools/call","params":{{"name":{name},"arguments":{args}}}}}"#
        );
        (tool.clone(), body.into_bytes())
    });
    let mut missed = 0u32;
    loop {
        monoio::time::sleep(health.interval).await;
        let same = slot.current.borrow().as_ref().map(|p| p.pid) == Some(pid);
        if slot.stopping.get() || !same {
            return;
        }
        let ping = slot
            .call(PING, id_at..id_at + 1, CallOpts::timeout(health.timeout))
            .await;
        let failed = match ping {
            // Any answer, even a JSON-RPC error, shows the process reads and writes.
            Ok(_) | Err(McpError::BackendProtocol { .. }) => match &canary {
                Some((tool, body)) => canary_call(&slot, tool, body, health.timeout).await,
                None => None,
            },
            Err(McpError::BackendTimeout { .. }) => Some("did not answer ping".to_string()),
            // Unavailable: the process is going away; the supervisor has it.
            Err(_) => return,
        };
        let Some(why) = failed else {
            missed = 0;
            continue;
        };
        missed += 1;
        tracing::warn!(server = %slot.spec.id, pid, missed, "stdio backend health check failed: {why}");
        if missed >= health.unhealthy_threshold.max(1) {
            tracing::error!(server = %slot.spec.id, pid, "stdio backend failed {missed} health checks in a row ({why}); killing it for a restart");
            kill_group(pid, libc::SIGKILL);
            return;
        }
    }
}

/// The canary call; `Some(why)` when it failed: no answer, a JSON-RPC error, or a result
/// with `isError: true`.
async fn canary_call(
    slot: &LocalStdioSlot,
    tool: &str,
    body: &[u8],
    timeout: std::time::Duration,
) -> Option<String> {
    let id_at = body.windows(4).position(|w| w == b"\"id\"").unwrap_or(0) + 5;
    match slot
        .call(body, id_at..id_at + 1, CallOpts::timeout(timeout))
        .await
    {
        Ok(reply) => {
            if sonic_rs::get(reply.body.as_slice(), ["error"]).is_ok() {
                return Some(format!("canary tool `{tool}` answered a JSON-RPC error"));
            }
            let is_error = sonic_rs::get(reply.body.as_slice(), ["result", "isError"])
                .ok()
                .and_then(|v| v.as_raw_str().parse::<bool>().ok());
            (is_error == Some(true)).then(|| format!("canary tool `{tool}` answered isError"))
        }
        Err(e) => Some(format!("canary tool `{tool}`: {e}")),
    }
}

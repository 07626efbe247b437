//! A stdio backend's start-up conversation: the era probe (`server/discover`), `initialize`
//! when the server speaks the 2025 era, and the first lists. Owns the rule for servers slower
//! to start than the short probe (they are asked again before being called broken).

use std::rc::Rc;
use std::time::Duration;

use super::LocalStdioSlot;
use crate::error::McpError;

/// The era probe again, with the whole `timeout` (see `handshake_and_list`).
async fn reprobe(
    slot: &Rc<LocalStdioSlot>,
    timeout: Duration,
) -> Option<crate::catalog::BackendCaps> {
    let (probe, id) = crate::upstream::modern::discover_body();
    let reply = slot
        .call(&probe, id, crate::upstream::CallOpts::timeout(timeout))
        .await
        .ok()?;
    let found = crate::upstream::modern::parse_discover(&slot.spec.id, &reply);
    if found.is_some() {
        tracing::info!(server = %slot.spec.id, "the era probe timed out while the server started; asked again: it speaks 2026-07-28");
    }
    found
}

pub(super) async fn handshake_and_list(
    slot: &Rc<LocalStdioSlot>,
    timeout: Duration,
) -> Result<crate::catalog::Discovery, McpError> {
    // The era probe: a 2026-07-28 server answers server/discover; a 2025 one errors (or is
    // silent: a short timeout). Its process stays the same either way.
    slot.modern.set(false);
    let (probe, probe_id) = crate::upstream::modern::discover_body();
    let probe_timeout = timeout.min(Duration::from_secs(3));
    let opts = crate::upstream::CallOpts::timeout(probe_timeout);
    let (mut modern, mut probe_timed_out) = (None, false);
    match slot.call(&probe, probe_id, opts).await {
        Ok(reply) => modern = crate::upstream::modern::parse_discover(&slot.spec.id, &reply),
        Err(McpError::BackendUnavailable { server, reason }) => {
            return Err(McpError::BackendUnavailable { server, reason })
        }
        Err(McpError::BackendTimeout { .. }) => probe_timed_out = true,
        Err(_) => {}
    }
    slot.legacy.set(false);
    slot.modern.set(modern.is_some());
    let params = match &slot.client_caps {
        Some(c) => crate::upstream::initialize_params_for(c),
        None => crate::upstream::initialize_params(),
    };
    let (body, id) = crate::upstream::request_body("initialize", &params);
    let legacy = match slot
        .call(&body, id, crate::upstream::CallOpts::timeout(timeout))
        .await
        .and_then(|reply| crate::upstream::negotiated_version(&slot.spec.id, &reply))
    {
        Ok((_, caps)) => {
            if let Some(p) = slot.current.borrow().as_ref() {
                let mut n = crate::upstream::INITIALIZED.to_vec();
                n.push(b'\n');
                let _ = p.writer.unbounded_send(n);
            }
            slot.legacy.set(true);
            Some(caps)
        }
        Err(e) if modern.is_none() => {
            // A server slower to start than the short probe, that then refuses `initialize`,
            // may be 2026-07-28 only (its late answer to the probe was dropped): ask again,
            // now that it is up, with the whole timeout, before giving up.
            modern = match probe_timed_out {
                true => reprobe(slot, timeout).await,
                false => None,
            };
            if modern.is_none() {
                return Err(e);
            }
            slot.modern.set(true);
            None
        }
        Err(_) => None,
    };
    let caps = match (modern, legacy) {
        (Some(m), Some(l)) => {
            tracing::info!(server = %slot.spec.id, "backend speaks both eras");
            // Its 2025 session's experimental tasks stay known beside the 2026 caps.
            crate::catalog::BackendCaps {
                tasks_legacy: l.tasks_legacy,
                ..m
            }
        }
        (Some(mut m), None) => {
            tracing::info!(server = %slot.spec.id, "backend speaks 2026-07-28 only (stateless)");
            m.modern_only = true;
            m
        }
        (None, Some(l)) => l,
        (None, None) => {
            return Err(McpError::BackendProtocol {
                server: slot.spec.id.clone(),
                reason: "answered neither server/discover nor initialize".into(),
            })
        }
    };
    let backend = crate::upstream::LocalBackend::Stdio(slot.clone());
    crate::upstream::discover(&slot.spec.id, &backend, caps, timeout).await
}

//! The response cache and single-flight in front of `forward` (policy in `cache/mod.rs`).
//!
//! A cacheable request (a `resources/read`, or a `tools/call` of a read-only idempotent tool
//! with `[cache] tools` on) is answered from the shard's cache when a live entry exists for
//! its key, under the client's own id; otherwise it joins an identical request in flight, or
//! leads one: it is forwarded, its result stored, and every request that joined gets it.
//! Everything else goes straight to `forward`.

use std::cell::Cell;
use std::ops::Range;
use std::rc::Rc;
use std::time::{Duration, Instant};

use sonic_rs::JsonValueTrait;

use crate::cache::{Cacheable, Shared};
use crate::error::McpError;
use crate::route::call::Call;
use crate::route::forward::{forward, Answer};
use crate::wire::ok_result;

/// What the caller resolved: the request kind and the gateway name or URI.
pub(crate) struct Target<'a> {
    pub what: Cacheable,
    pub name: &'a str,
}

/// Forwards `body` to `backend`, through the cache when `target` is cacheable and the
/// config and backend allow it.
pub(crate) async fn forward_cached(
    call: Call<'_>,
    backend: usize,
    edit: Option<(Range<usize>, &[u8])>,
    target: Option<Target<'_>>,
) -> Result<Answer, McpError> {
    let Call {
        router,
        sid,
        body,
        env,
        mut era,
    } = call;
    let snap = router.snapshot.load();
    let c = &snap.config.cache;
    let wanted = target.filter(|t| {
        c.enabled
            && !snap.backends[backend].per_client
            && match t.what {
                Cacheable::Read => c.resources,
                Cacheable::Call => c.tools,
            }
    });
    let Some(t) = wanted else {
        drop(snap);
        return forward(
            Call {
                router,
                sid,
                body,
                env,
                era,
            },
            backend,
            edit,
        )
        .await;
    };
    let (version, bounds, ttl_cap) = (
        snap.version,
        (c.max_entries, c.max_bytes),
        Duration::from_millis(c.ttl_ms),
    );
    let (coalesce, window) = (c.coalesce, Duration::from_millis(c.coalesce_window_ms));
    let server = snap.backends[backend].id.clone();
    drop(snap);
    // The backend's own tool name (token accounting of answers not forwarded).
    let tool = era.tool.clone().unwrap_or_default();
    let id = env.id_bytes(body);
    let args = match t.what {
        Cacheable::Call => sonic_rs::get(body, ["params", "arguments"])
            .map(|v| v.as_raw_str().as_bytes().to_vec())
            .unwrap_or_else(|_| b"{}".to_vec()),
        Cacheable::Read => Vec::new(),
    };
    let view = era.principal.as_ref().map_or("", |p| &*p.view);
    let principal = era.principal.as_ref().map(|p| p.name.clone());
    let (mut public, mut private) = (Vec::new(), Vec::new());
    let k = |out: &mut Vec<u8>, p: Option<&str>| {
        crate::cache::key(out, t.what, era.modern, backend, t.name, &args, view, p)
    };
    k(&mut public, None);
    k(&mut private, principal.as_deref().or(Some("")));

    let cache = &router.cache;
    let now = Instant::now();
    let hit = cache
        .get(&public, version, now)
        .or_else(|| cache.get(&private, version, now));
    cache.looked_up(t.what, hit.is_some());
    if let Some(result) = hit {
        let resp = ok_result(id, &result);
        router.tokens.served(t.what.method(), &server, &tool, &resp);
        return Ok(Answer::Json(resp));
    }
    let flight = if coalesce {
        match cache.join(&public) {
            Some(rx) => match rx.await {
                Ok(Shared::Result(result)) => {
                    let resp = ok_result(id, &result);
                    router.tokens.served(t.what.method(), &server, &tool, &resp);
                    return Ok(Answer::Json(resp));
                }
                Ok(Shared::Error(e)) => return Err(e),
                // The leader could not share (a stream, a tool error, a private result, a
                // cancelled call): call the backend ourselves.
                Err(_) => None,
            },
            None => Some(cache.lead(&public)),
        }
    } else {
        None
    };
    if flight.is_some() && !window.is_zero() {
        monoio::time::sleep(window).await;
    }
    let hints = Rc::new(Cell::new(None));
    era.hints = Some(hints.clone());
    let call = Call {
        router,
        sid,
        body,
        env,
        era,
    };
    let answer = forward(call, backend, edit).await;
    let result = match &answer {
        Ok(Answer::Json(resp)) => cacheable_result(resp, t.what),
        _ => None,
    };
    let (ttl_ms, private_scope) = hints.get().unwrap_or((None, false));
    let ttl = ttl_ms.map_or(ttl_cap, |ms| ttl_cap.min(Duration::from_millis(ms)));
    if let Some(r) = &result {
        if !ttl.is_zero() {
            let key = if private_scope { &private } else { &public };
            cache.put(key, r.clone(), version, Instant::now() + ttl, bounds);
        }
    }
    if let Some(f) = flight {
        match (&answer, result) {
            (Ok(_), Some(r)) if !private_scope => f.land(t.what, Shared::Result(r)),
            (Err(e), _) if !matches!(e, McpError::Cancelled) => {
                f.land(t.what, Shared::Error(e.clone()))
            }
            // Dropping the flight sends the waiters on their own way.
            _ => drop(f),
        }
    }
    answer
}

/// The `result` of a response worth keeping: not an error, not a tool's `isError` result,
/// not a 2026 `input_required` round.
fn cacheable_result(resp: &[u8], what: Cacheable) -> Option<Rc<[u8]>> {
    let raw = sonic_rs::get(resp, ["result"]).ok()?;
    let raw = raw.as_raw_str().as_bytes();
    let flag = |k: &str| sonic_rs::get(raw, [k]).ok();
    if what == Cacheable::Call && flag("isError").is_some_and(|v| v.as_bool() == Some(true)) {
        return None;
    }
    if flag("resultType").is_some_and(|v| v.as_str() == Some("input_required")) {
        return None;
    }
    Some(Rc::from(raw))
}

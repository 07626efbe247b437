//! Forwarding one client request to its backend, and relaying what the backend says meanwhile.
//!
//! The request is rewritten by splicing only: the id becomes the transport's own, the name or
//! URI becomes the backend's, and a progress token becomes a gateway token unique on this
//! shard (tokens are only unique per client session, so raw tokens must never meet in a
//! shared backend). The answer is JSON when the backend answers before saying anything else;
//! as soon as the backend sends a related message first (progress, a log line), the answer
//! switches to an SSE stream that carries those messages, with the client's own token spliced
//! back, and ends with the response. A client's `notifications/cancelled` reaches the call
//! through the shard's in-flight table and becomes a cancel for the backend's id.

use std::ops::Range;
use std::pin::Pin;
use std::rc::Rc;

use crate::error::McpError;
use crate::route::call::Call;
pub(crate) use crate::route::finish::Finisher;
use crate::route::router::Router;
use crate::route::tables::calls::{inflight_key, inflight_key_rc};
use crate::route::{input_required, relay_input};
use crate::rt::feed::{feed, NotSent, SSE_QUEUE_BYTES};
use crate::rt::next;
use crate::upstream::{BackendReply, CallOpts};
use crate::wire::jsonrpc::splice_placeholder;
use crate::wire::short::{ShortBytes, ShortStr};

pub use crate::route::request::Answer;

pub use crate::route::request::{CacheHints, Era};

/// RFC 5424 severities in MCP's order.
pub fn log_severity(level: &str) -> Option<u8> {
    const LEVELS: [&str; 8] = [
        "debug",
        "info",
        "notice",
        "warning",
        "error",
        "critical",
        "alert",
        "emergency",
    ];
    LEVELS.iter().position(|l| *l == level).map(|p| p as u8)
}

/// Counts a call against its backend's `max_inflight` on this shard for as long as the
/// backend call lives (it may outlive the client's request when streamed or parked).
pub(crate) struct BusyGuard {
    router: Rc<Router>,
    /// The backend's id, allocated once per shard: the call's [`Finisher`] shares it.
    pub(crate) backend: Rc<str>,
}

impl BusyGuard {
    pub(crate) fn enter(
        router: &Rc<Router>,
        backend: &str,
        max: usize,
    ) -> Result<BusyGuard, McpError> {
        let mut map = router.upstreams.inflight.borrow_mut();
        // The key is allocated once per backend; every later call clones the `Rc`.
        let key: Rc<str> = match map.get_key_value(backend) {
            Some((k, _)) => k.clone(),
            None => {
                let k: Rc<str> = backend.into();
                map.insert(k.clone(), 0);
                k
            }
        };
        let n = map.get_mut(backend).expect("inserted above");
        if *n >= max {
            return Err(McpError::BackendUnavailable {
                server: backend.to_string(),
                reason: format!(
                    "busy: {n} calls in flight on this shard (max_inflight); retry shortly"
                ),
            });
        }
        *n += 1;
        Ok(BusyGuard {
            router: router.clone(),
            backend: key,
        })
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        if let Some(n) = self
            .router
            .upstreams
            .inflight
            .borrow_mut()
            .get_mut(&*self.backend)
        {
            *n = n.saturating_sub(1);
        }
    }
}

/// A backend call in flight.
pub(crate) type CallFut = Pin<
    Box<
        crate::upstream::rewake::Rewake<
            dyn std::future::Future<Output = Result<BackendReply, McpError>>,
        >,
    >,
>;

/// Forwards a request of session `sid` to backend `backend` (snapshot index), with one
/// optional splice of a params field (the name or URI, already the backend's own).
pub(crate) async fn forward(
    call: Call<'_>,
    backend: usize,
    edit: Option<(Range<usize>, &[u8])>,
) -> Result<Answer, McpError> {
    let Call {
        router,
        sid,
        body,
        env,
        era,
    } = call;
    let id_range = env
        .id
        .clone()
        .ok_or_else(|| McpError::InvalidRequest("missing id".into()))?;
    // The backend's handle and its in-flight slot, found by its id borrowed from the
    // snapshot (the guard keeps the shard's own `Rc<str>` of it for the call).
    let (handle, guard, timeout, prefixed, max_inflight, max_timeout, key_id) = {
        let snap = router.snapshot.load();
        let spec = &snap.backends[backend];
        let timeout = era
            .tool
            .as_deref()
            .and_then(|t| spec.tool_timeouts.iter().find(|(n, _)| **n == *t))
            .map_or(spec.timeout, |(_, d)| *d);
        let handle = match spec.per_client && !sid.is_empty() {
            true => crate::route::per_client::handle_for(router, sid, spec),
            false => router.upstreams.backends.borrow().get(&spec.id).cloned(),
        }
        .ok_or_else(|| McpError::BackendUnavailable {
            server: spec.id.clone(),
            reason: "not started on this shard".into(),
        })?;
        let guard = BusyGuard::enter(router, &spec.id, spec.max_inflight)?;
        (
            handle,
            guard,
            timeout,
            snap.catalog.uri_prefix_of(backend),
            spec.max_inflight,
            spec.max_timeout.max(timeout),
            spec.balance_key.id(),
        )
    };
    // The call's one clock reading on its way out: its deadline, its cap and its latency
    // count from it, and the balancer takes it as its `now` (`rt/clock.rs`). Read here, not
    // taken from the request's arrival: a task woken by a timer forwards too.
    let started = crate::rt::clock::now();
    let deadline = crate::upstream::Deadline::at(started + timeout);
    let cap = started + max_timeout;
    let token = env.progress_token.clone().map(|r| {
        let n = router.calls.mint();
        (r, format!("\"o1m.{}.{n}\"", router.id).into_bytes())
    });
    let method = env.method.as_deref().unwrap_or("");
    // Tracing on: the call's own span, whose context the backend gets in `_meta` (and as
    // headers over HTTP).
    let (trace_out, client_span) = match era.trace.as_ref() {
        Some(a) => {
            let named = || match method {
                "tools/call" => era.tool.clone(),
                "prompts/get" => edit
                    .as_ref()
                    .and_then(|(_, w)| sonic_rs::from_slice::<String>(w).ok())
                    .map(Into::into),
                _ => None,
            };
            let named = a.ctx.sampled().then(named).flatten();
            let (ctx, span) = crate::route::trace::ClientSpan::open(
                router,
                a,
                backend,
                method,
                named.as_deref(),
                env.id_bytes(body),
            );
            let out = crate::trace::Outgoing {
                traceparent: ctx.traceparent(),
                tracestate: a.tracestate.clone(),
            };
            (Some(out), span)
        }
        None => (None, None),
    };
    let trace_edit = trace_out.as_ref().and_then(|o| {
        crate::trace::inject::meta_edit(body, env, &o.traceparent, o.tracestate.as_deref())
    });
    // The name (and progress token, and trace context) rewritten and the id made the 1-byte
    // placeholder, in one pass into one buffer.
    let mut others: [(Range<usize>, &[u8]); 3] = [(0..0, b""), (0..0, b""), (0..0, b"")];
    let mut n = 0;
    for (r, with) in [
        edit.as_ref().map(|(r, w)| (r, *w)),
        token.as_ref().map(|(r, w)| (r, &w[..])),
        trace_edit.as_ref().map(|(r, w)| (r, &w[..])),
    ]
    .into_iter()
    .flatten()
    {
        others[n] = (r.clone(), with);
        n += 1;
    }
    // From the shard's list; the transport gives it back once sent (`rt/bufs.rs`).
    let mut wire = crate::rt::bufs::take();
    let ph = splice_placeholder(body, id_range.clone(), &others[..n], &mut wire);
    // A 2025 session's call may meet a 2026 backend that asks for input: the backend is told
    // what the client can answer, and the bridge may send the call again
    // (`route/relay_input.rs`).
    let bridged = !era.modern && !sid.is_empty() && input_required::may_ask(method);
    let client_caps = bridged
        .then(|| router.sessions.borrow().get(sid)?.input_caps.clone())
        .flatten();
    // A 2025 session's task call declares the tasks extension too: a 2026 backend makes
    // tasks only for a client that does (`route/tasks/to_modern.rs`; a 2025 backend never
    // reads these). `None` for every other call.
    let client_caps = match &era.task {
        Some(_) if !era.modern && !sid.is_empty() => {
            Some(crate::route::tasks::to_modern::caps(router, sid))
        }
        _ => client_caps,
    };

    let client_id = ShortBytes::from_slice(env.id_bytes(body));
    // The deadline, the cancel signal and the event queue: one allocation (`upstream/link.rs`).
    let (cancel_tx, cancel_rx) = deadline.cancel_pair();
    // A 2025 call can be cancelled by its session's `notifications/cancelled`: it goes in the
    // table under (session, id). A stateless 2026 call has no session, and two clients may
    // use the same id, so it never enters the table; it keeps its own cancel signal.
    let mut own_cancel = None;
    let key = if sid.is_empty() {
        own_cancel = Some(cancel_tx);
        None
    } else {
        let key = inflight_key_rc(sid, &client_id);
        router
            .calls
            .inflight
            .borrow_mut()
            .insert(key.clone(), cancel_tx);
        Some(key)
    };
    let mut entry = InflightEntry {
        router: router.clone(),
        key,
    };
    let (ev_tx, mut ev_rx) = deadline.events();
    let opts = CallOpts {
        timeout,
        events: Some(ev_tx),
        progress: token.as_ref().map(|(_, t)| t.clone()),
        cancel: Some(cancel_rx),
        started: Some(started),
        wait_first_start: true,
        modern: era.modern,
        // The configured header or claim when the request has it, else the session.
        affinity: era.affinity.get(key_id).unwrap_or_else(|| {
            crate::balance::affinity(if sid.is_empty() {
                &client_id
            } else {
                sid.as_bytes()
            })
        }),
        deadline: Some(deadline.clone()),
        retry_safe: era.retry_safe,
        pin: era.task.as_ref().and_then(|t| t.pin()),
        related_task: era.task.as_ref().and_then(|t| t.backend_task_json()),
        tool_headers: era.tool_headers.clone(),
        client_caps: client_caps.clone(),
        listen: false,
        trace: trace_out.clone(),
    };
    let affinity = opts.affinity;
    let finish = Finisher {
        router: router.clone(),
        sid: ShortStr::new(sid),
        handle: handle.clone(),
        relayed: Default::default(),
        deadline: (deadline, timeout, cap),
        era,
        client_id,
        client_token: env.progress_token.clone().map(|r| body[r].to_vec()),
        backend_id: guard.backend.clone(),
        method: crate::stats::method_label(env.method.as_deref().unwrap_or("")),
        prefixed,
    };
    let series = router.stats.series(
        &finish.backend_id,
        method,
        finish.era.tool.as_deref().unwrap_or(""),
    );
    // What the bridge needs to send the call again: built when the answer asks for input, or
    // when a 2025 session's call turns into a stream (its body is gone by its answer).
    let resend = |series| {
        let mut base = Vec::new();
        let ph = splice_placeholder(body, id_range.clone(), &others[..n], &mut base);
        relay_input::Resend {
            base,
            ph,
            // Only a 2025 session's call is resent (rare: built when asked for input).
            key: inflight_key(sid, env.id_bytes(body)),
            progress: token.as_ref().map(|(_, t)| t.clone()),
            affinity,
            tool_headers: finish.era.tool_headers.clone(),
            client_caps: client_caps.clone(),
            max_inflight,
            series,
            trace: trace_out.clone(),
        }
    };
    let resend_series = series.clone();
    // Wrapped so the call still meets its timeout after moving to another task (see
    // `upstream::rewake`): the task that keeps it running after its first event, or a park.
    let call_deadline = finish.deadline.0.clone();
    let mut call: CallFut = Box::pin(crate::upstream::rewake::Rewake::new(
        async move {
            let _guard = guard;
            let r = handle.call(wire, ph, opts).await;
            // The transport read the clock at the answer (`rt/clock.rs`).
            let took = crate::rt::clock::since(started);
            series.borrow_mut().add(crate::stats::Outcome::of(&r), took);
            if let Some(span) = client_span {
                span.close(&r, started, started + took);
            }
            r
        },
        call_deadline,
    ));
    let first = monoio::select! {
        r = &mut call => Ok(r),
        ev = next(&mut ev_rx) => match ev {
            Some(ev) => Err(ev),
            // Every event sender is gone (the owner shard finished the call): the reply is
            // on its way and no event can come any more.
            None => Ok(call.as_mut().await),
        },
    };
    match first {
        Ok(result) => {
            entry.release();
            let mut early = Vec::new();
            while let Some(ev) = ev_rx.try_recv() {
                early.extend(finish.event(ev));
            }
            if matches!(result, Err(McpError::Cancelled)) {
                return Err(McpError::Cancelled);
            }
            if bridged && input_required::asks_input(&result) {
                let resend = resend(resend_series);
                let first = result.expect("asks_input holds only for Ok");
                return Ok(Answer::Stream(relay_input::start(
                    finish, resend, first, early,
                )));
            }
            if early.is_empty() {
                return Ok(Answer::Json(finish.reply(result)));
            }
            // All of it is in memory already: queueing it costs nothing more, so no bound.
            let (tx, rx) = feed(usize::MAX);
            for ev in early {
                let _ = tx.send(ev);
            }
            let _ = tx.send(finish.reply(result));
            Ok(Answer::Stream(rx))
        }
        Err(first_event) if crate::route::bridge::wants_park(&finish, &first_event) => {
            // A 2025 backend asks a 2026 client for input: answer with input_required and
            // park the call until the client retries with the input.
            entry.release();
            Ok(Answer::Json(
                crate::route::bridge::on_input_request(call, ev_rx, finish, first_event).await,
            ))
        }
        Err(first_event) => {
            let resend = bridged.then(|| resend(resend_series));
            let (tx, rx) = feed(SSE_QUEUE_BYTES);
            if let Some(m) = finish.event(first_event) {
                let _ = tx.send(m);
            }
            let router = router.clone();
            // The call moves to the task below: its deadline timer must wake that one.
            call.as_mut().moved();
            monoio::spawn(async move {
                // A stateless client so far behind that its feed overflowed is cut off as one
                // that left before its answer: its own call is cancelled, freeing the
                // backend's slot. A 2025 session's stream is detached by its relay instead
                // (`route/resume.rs`), and the call runs on (a disconnect is not a
                // cancellation there).
                let mut own_cancel = own_cancel;
                let mut overflowed = |sent: Result<(), NotSent>| {
                    if sent == Err(NotSent::Overflow) {
                        if let Some(c) = own_cancel.take() {
                            c.cancel();
                            router.clients_gone.set(router.clients_gone.get() + 1);
                        }
                    }
                };
                // A client that disconnects does not cancel the call (2025 transport rules):
                // it runs to completion and what cannot be delivered is dropped.
                let result = loop {
                    monoio::select! {
                        r = &mut call => break r,
                        ev = next(&mut ev_rx) => match ev {
                            Some(ev) if crate::route::bridge::wants_park(&finish, &ev) => {
                                entry.release();
                                let irr = crate::route::bridge::on_input_request(call, ev_rx, finish, ev).await;
                                let _ = tx.send(irr);
                                return;
                            }
                            Some(ev) => {
                                if let Some(m) = finish.event(ev) {
                                    overflowed(tx.send(m));
                                }
                            }
                            None => break call.await,
                        },
                    }
                };
                entry.release();
                while let Some(ev) = ev_rx.try_recv() {
                    if let Some(m) = finish.event(ev) {
                        let _ = tx.send(m);
                    }
                }
                if let Some(resend) = resend.filter(|_| input_required::asks_input(&result)) {
                    let first = result.expect("asks_input holds only for Ok");
                    return relay_input::run(finish, resend, first, tx).await;
                }
                if !matches!(result, Err(McpError::Cancelled)) {
                    let _ = tx.send(finish.reply(result));
                }
            });
            Ok(Answer::Stream(rx))
        }
    }
}

/// A session's call in [`LocalCalls::inflight`](crate::route::tables::calls::LocalCalls):
/// removed when the call is answered ([`release`](Self::release)) and, whatever else ends it
/// (its future dropped by a caller that stopped waiting: a client's cancel, a timeout), when
/// this is dropped, so no entry outlives its call.
pub(crate) struct InflightEntry {
    pub(crate) router: Rc<Router>,
    /// `None` for a stateless call (never in the table) and once released.
    pub(crate) key: Option<Rc<[u8]>>,
}

impl InflightEntry {
    pub(crate) fn release(&mut self) {
        if let Some(k) = self.key.take() {
            if let Ok(mut table) = self.router.calls.inflight.try_borrow_mut() {
                table.remove(&k);
            }
        }
    }
}

impl Drop for InflightEntry {
    fn drop(&mut self) {
        self.release();
    }
}

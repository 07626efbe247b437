//! The spans of one request, route side: the server span a client request opens (its
//! parent read from `params._meta` or the HTTP `traceparent`), the client span of each
//! backend call, and their MCP semantic-convention attributes (`docs/observability.md`).
//!
//! Parent choice follows the OpenTelemetry MCP conventions: the context in `params._meta`
//! is the parent ("MCP and transport contexts are independent"), and the HTTP header's
//! context, when it differs, is recorded as a link; without a valid `_meta` context the
//! header's is the parent. Everything here runs only when tracing is on, and the attribute
//! work only for sampled spans.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use sonic_rs::JsonValueTrait;

use crate::error::McpError;
use crate::http::response::Reply;
use crate::route::request::McpHttpRequest;
use crate::route::router::Router;
use crate::trace::context::tracestate_ok;
use crate::trace::sample::unix_nanos;
use crate::trace::{Active, SpanContext, SpanKind, SpanRecord, Value};
use crate::upstream::BackendReply;
use crate::wire::jsonrpc::Envelope;

/// A traced request as the observe step sees it.
pub(crate) struct Traced<'a> {
    /// Its server span.
    pub active: &'a Active,
    /// The JSON-RPC id, raw.
    pub request_id: &'a [u8],
    /// The MCP protocol version it was served in.
    pub version: Option<&'a str>,
    /// It came through the stdio front.
    pub stdio: bool,
}

/// The inside of a JSON string literal at `r` of `body` (no escapes), if it is one.
fn string_at<'a>(body: &'a [u8], r: &std::ops::Range<usize>) -> Option<&'a [u8]> {
    let raw = &body[r.clone()];
    (raw.len() >= 2 && raw[0] == b'"' && raw[raw.len() - 1] == b'"' && !raw.contains(&b'\\'))
        .then(|| &raw[1..raw.len() - 1])
}

/// Opens the server span of a request arriving at `start`; `None` when tracing is off.
pub(crate) fn start(
    router: &Router,
    req: &McpHttpRequest,
    env: &Envelope<'_>,
    start: Instant,
) -> Option<Rc<Active>> {
    if !router.trace.is_enabled() {
        return None;
    }
    let body = &req.body[..];
    let meta = env
        .meta
        .traceparent
        .as_ref()
        .and_then(|r| string_at(body, r))
        .and_then(SpanContext::parse);
    let (parent, state, link) = match meta {
        Some(m) => {
            let state = env
                .meta
                .tracestate
                .as_ref()
                .and_then(|r| string_at(body, r))
                .filter(|v| tracestate_ok(v))
                .and_then(|v| std::str::from_utf8(v.trim_ascii()).ok())
                .map(Arc::from);
            (Some(m), state, req.trace.traceparent)
        }
        None => (req.trace.traceparent, req.trace.tracestate.clone(), None),
    };
    Some(Rc::new(router.trace.start(parent, state, link, start)))
}

/// `{method} {target}`, target being the tool or prompt name (never a resource URI: the
/// conventions keep span names low-cardinality).
fn span_name(method: &str, target: Option<&str>) -> String {
    match target {
        Some(t) => format!("{method} {t}"),
        None => method.to_string(),
    }
}

/// The method's target attributes: tool, prompt or resource.
fn target_attrs(attrs: &mut Vec<(&'static str, Value)>, method: &str, name: Option<&str>) {
    let Some(n) = name else {
        return;
    };
    match method {
        "tools/call" => {
            attrs.push(("gen_ai.tool.name", Value::Str(n.into())));
            attrs.push(("gen_ai.operation.name", Value::Str("execute_tool".into())));
        }
        "prompts/get" => attrs.push(("gen_ai.prompt.name", Value::Str(n.into()))),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
            attrs.push(("mcp.resource.uri", Value::Str(n.into())))
        }
        _ => {}
    }
}

/// The name a span's target is, for the span name (tools and prompts only).
fn target_of<'a>(method: &str, name: Option<&'a str>) -> Option<&'a str> {
    matches!(method, "tools/call" | "prompts/get")
        .then_some(name)
        .flatten()
}

/// A JSON-RPC id as the `jsonrpc.request.id` attribute (`None` for `null` or none).
fn request_id(raw: &[u8]) -> Option<String> {
    let raw = raw.trim_ascii();
    if raw.is_empty() || raw == b"null" {
        return None;
    }
    if raw[0] == b'"' {
        return sonic_rs::from_slice::<String>(raw).ok();
    }
    std::str::from_utf8(raw).ok().map(str::to_string)
}

/// How a JSON-RPC response body ended: an error (its code and message) or a tool result
/// with `isError`; sets `error.type` (and `rpc.response.status_code`) and returns the status
/// description.
fn body_error(attrs: &mut Vec<(&'static str, Value)>, body: &[u8]) -> Option<String> {
    // Looked up only when the body names them: a lookup that fails builds an error value.
    let has = |key: &[u8]| memchr::memmem::find(body, key).is_some();
    if !has(b"\"error\"") && !has(b"\"isError\"") {
        return None;
    }
    if let Ok(code) = sonic_rs::get(body, ["error", "code"]) {
        let code = code
            .as_i64()
            .map_or_else(|| "_OTHER".into(), |c| c.to_string());
        let message = sonic_rs::get(body, ["error", "message"])
            .ok()
            .and_then(|m| m.as_str().map(str::to_string))
            .unwrap_or_default();
        attrs.push(("error.type", Value::Str(code.clone())));
        attrs.push(("rpc.response.status_code", Value::Str(code)));
        return Some(message);
    }
    let is_error = sonic_rs::get(body, ["result", "isError"])
        .ok()
        .and_then(|v| v.as_bool());
    if is_error == Some(true) {
        attrs.push(("error.type", Value::Str("tool_error".into())));
        return Some(String::new());
    }
    None
}

/// What the server span of one request needs from the observe step.
pub(crate) struct ServerEnd<'a> {
    /// JSON-RPC method.
    pub method: &'a str,
    /// The tool or prompt name, or the resource URI.
    pub name: Option<&'a str>,
    /// The 2025 session (empty: none).
    pub session: &'a str,
    /// When the answer was ready.
    pub end: Instant,
}

/// Closes a request's server span (exported when sampled).
pub(crate) fn server(router: &Router, t: &Traced<'_>, s: ServerEnd<'_>, reply: &Reply) {
    let a = t.active;
    if !a.ctx.sampled() {
        return;
    }
    let mut attrs = Vec::with_capacity(10);
    attrs.push(("mcp.method.name", Value::Str(s.method.into())));
    if !s.session.is_empty() {
        attrs.push(("mcp.session.id", Value::Str(s.session.into())));
    }
    if let Some(v) = t.version {
        attrs.push(("mcp.protocol.version", Value::Str(v.into())));
    }
    if let Some(id) = request_id(t.request_id) {
        attrs.push(("jsonrpc.request.id", Value::Str(id)));
    }
    target_attrs(&mut attrs, s.method, s.name);
    if t.stdio {
        attrs.push(("network.transport", Value::Str("pipe".into())));
    } else {
        attrs.push(("network.transport", Value::Str("tcp".into())));
        attrs.push(("network.protocol.name", Value::Str("http".into())));
    }
    let mut error = None;
    if reply.stream.is_none() && reply.shared.is_none() {
        error = body_error(&mut attrs, &reply.body);
    }
    if error.is_none() && reply.status >= 400 {
        attrs.push(("error.type", Value::Str(reply.status.to_string())));
        error = Some(String::new());
    }
    router.trace.export(SpanRecord {
        trace_id: a.ctx.trace_id,
        span_id: a.ctx.span_id,
        parent: a.parent,
        trace_state: a.tracestate.clone(),
        name: span_name(s.method, target_of(s.method, s.name)),
        kind: SpanKind::Server,
        start_ns: unix_nanos(a.start),
        end_ns: unix_nanos(s.end),
        attrs,
        error,
        link: a.link,
    });
}

/// The client span of one backend call, made before it is sent (its id is the parent the
/// backend is given) and closed when its answer or failure is in.
pub(crate) struct ClientSpan {
    router: Rc<Router>,
    ctx: SpanContext,
    parent: [u8; 8],
    tracestate: Option<Arc<str>>,
    method: String,
    tool: Option<String>,
    request_id: Option<String>,
    backend: usize,
}

impl ClientSpan {
    /// The span of a call to backend `backend` (snapshot index) in request `a`'s trace:
    /// its context (what the backend is told) and, when sampled, the span to close.
    pub(crate) fn open(
        router: &Rc<Router>,
        a: &Active,
        backend: usize,
        method: &str,
        tool: Option<&str>,
        client_id: &[u8],
    ) -> (SpanContext, Option<ClientSpan>) {
        let ctx = router.trace.child(&a.ctx);
        let span = ctx.sampled().then(|| ClientSpan {
            router: router.clone(),
            ctx,
            parent: a.ctx.span_id,
            tracestate: a.tracestate.clone(),
            method: method.to_string(),
            tool: tool.map(str::to_string),
            request_id: request_id(client_id),
            backend,
        });
        (ctx, span)
    }

    /// Closes the span: the call started at `start`, ended at `end` with `r`.
    pub(crate) fn close(self, r: &Result<BackendReply, McpError>, start: Instant, end: Instant) {
        let mut attrs = Vec::with_capacity(10);
        attrs.push(("mcp.method.name", Value::Str(self.method.clone())));
        if let Some(id) = self.request_id {
            attrs.push(("jsonrpc.request.id", Value::Str(id)));
        }
        target_attrs(&mut attrs, &self.method, self.tool.as_deref());
        {
            let snap = self.router.snapshot.load();
            if let Some(spec) = snap.backends.get(self.backend) {
                attrs.push(("only1mcp.server.id", Value::Str(spec.id.clone())));
                match spec.transport {
                    crate::config::Transport::Stdio => {
                        attrs.push(("network.transport", Value::Str("pipe".into())));
                    }
                    crate::config::Transport::Http => {
                        let replica = match r {
                            Ok(b) => Some(b.origin.replica),
                            Err(_) => (spec.urls.len() == 1).then_some(0),
                        };
                        let url = replica.and_then(|i| spec.urls.get(i));
                        // A `unix:` replica: the socket is the address (OTel's convention).
                        let unix = url.and_then(|u| u.unix.as_ref());
                        let transport = if unix.is_some() { "unix" } else { "tcp" };
                        attrs.push(("network.transport", Value::Str(transport.into())));
                        attrs.push(("network.protocol.name", Value::Str("http".into())));
                        if let Some(path) = unix {
                            let path = path.to_string_lossy().into_owned();
                            attrs.push(("server.address", Value::Str(path)));
                        } else if let Some(u) = url {
                            if let Some((host, port)) = split_authority(&u.authority) {
                                attrs.push(("server.address", Value::Str(host.into())));
                                attrs.push(("server.port", Value::Int(i64::from(port))));
                            }
                        }
                    }
                }
            }
        }
        let error = match r {
            Ok(b) => body_error(&mut attrs, &b.body),
            Err(e) => {
                let kind = match e {
                    McpError::BackendTimeout { .. } => "timeout".to_string(),
                    McpError::BackendUnavailable { .. } => "unavailable".to_string(),
                    McpError::Cancelled => "cancelled".to_string(),
                    other => other.code().to_string(),
                };
                attrs.push(("error.type", Value::Str(kind)));
                Some(e.to_string())
            }
        };
        let name = span_name(&self.method, target_of(&self.method, self.tool.as_deref()));
        self.router.trace.export(SpanRecord {
            trace_id: self.ctx.trace_id,
            span_id: self.ctx.span_id,
            parent: Some(self.parent),
            trace_state: self.tracestate,
            name,
            kind: SpanKind::Client,
            start_ns: unix_nanos(start),
            end_ns: unix_nanos(end),
            attrs,
            error,
            link: None,
        });
    }
}

/// `host` and port of a `host:port` authority (IPv6 in brackets).
fn split_authority(a: &str) -> Option<(&str, u16)> {
    let (host, port) = a.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host, port.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_names_and_targets_follow_the_conventions() {
        assert_eq!(span_name("tools/call", Some("get")), "tools/call get");
        assert_eq!(
            span_name(
                "resources/read",
                target_of("resources/read", Some("file:///x"))
            ),
            "resources/read"
        );
        let mut a = Vec::new();
        target_attrs(&mut a, "tools/call", Some("echo"));
        assert_eq!(
            a,
            vec![
                ("gen_ai.tool.name", Value::Str("echo".into())),
                ("gen_ai.operation.name", Value::Str("execute_tool".into()))
            ]
        );
        assert_eq!(request_id(b"\"r-7\"").as_deref(), Some("r-7"));
        assert_eq!(request_id(b"10").as_deref(), Some("10"));
        assert_eq!(request_id(b"null"), None);
        assert_eq!(split_authority("[::1]:9001"), Some(("::1", 9001)));
        assert_eq!(split_authority("h:80"), Some(("h", 80)));
    }

    #[test]
    fn errors_are_read_from_the_answer() {
        let mut a = Vec::new();
        let m = body_error(
            &mut a,
            br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"bad"}}"#,
        );
        assert_eq!(m.as_deref(), Some("bad"));
        assert!(a.contains(&("error.type", Value::Str("-32602".into()))));
        assert!(a.contains(&("rpc.response.status_code", Value::Str("-32602".into()))));
        let mut a = Vec::new();
        let m = body_error(
            &mut a,
            br#"{"jsonrpc":"2.0","id":1,"result":{"content":[],"isError":true}}"#,
        );
        assert_eq!(m.as_deref(), Some(""));
        assert_eq!(a, vec![("error.type", Value::Str("tool_error".into()))]);
        let mut a = Vec::new();
        assert!(body_error(&mut a, br#"{"jsonrpc":"2.0","id":1,"result":{}}"#).is_none());
        assert!(a.is_empty());
    }
}

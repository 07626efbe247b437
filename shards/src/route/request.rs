//! A request as the fronts hand it to the router, and what the router answers; the error
//! shapes every method shares. Near the bottom of the route layer: it names only the session
//! and `requestState` types below it, never the router or a method.

use crate::auth::verify::Principal;
use crate::error::McpError;
use crate::http::request::Method;
use crate::http::response::Reply;
use crate::route::session::LocalSession;
use crate::route::SUPPORTED_VERSIONS;
use crate::rt::feed::FeedRx;

/// An `/mcp` request, owned so it can be handed to another shard.
#[derive(Debug)]
pub struct McpHttpRequest {
    /// HTTP method.
    pub method: Method,
    /// `Mcp-Session-Id` (inline: no allocation per request, `wire/short.rs`).
    pub session_id: Option<crate::wire::short::ShortStr>,
    /// `MCP-Protocol-Version` (inline).
    pub protocol_version: Option<crate::wire::short::ShortStr>,
    /// `Accept` includes `text/event-stream`.
    pub accepts_sse: bool,
    /// `Last-Event-ID` (resuming an SSE stream).
    pub last_event_id: Option<String>,
    /// `Mcp-Method` (2026-07-28).
    pub mcp_method: Option<String>,
    /// `Mcp-Name` (2026-07-28).
    pub mcp_name: Option<String>,
    /// `Mcp-Param-*` (2026-07-28), when the request has any.
    pub mcp_params: Option<crate::http::request::SentParams>,
    /// Header and claim values for `consistent_hash` balance keys (usually empty).
    pub affinity: crate::balance::AffinityValues,
    /// Who sent it (authenticated by the front; `anonymous` when auth is off).
    pub principal: Principal,
    /// How the client discovers tools (its `X-MCP-Discovery` header, else the config's).
    pub discovery: crate::config::Discovery,
    /// Its HTTP trace headers, read only when tracing is on.
    pub trace: crate::trace::Incoming,
    /// Body.
    pub body: Vec<u8>,
}

impl McpHttpRequest {
    /// A copy of this stateless (2026-07-28) request to hand to another shard: it carries no
    /// session and resumes no stream.
    pub fn stateless_copy(&self) -> McpHttpRequest {
        McpHttpRequest {
            method: self.method,
            session_id: None,
            protocol_version: self.protocol_version.clone(),
            accepts_sse: self.accepts_sse,
            last_event_id: None,
            mcp_method: self.mcp_method.clone(),
            mcp_name: self.mcp_name.clone(),
            mcp_params: self.mcp_params.clone(),
            affinity: self.affinity.clone(),
            principal: self.principal.clone(),
            discovery: self.discovery,
            trace: self.trace.clone(),
            body: self.body.clone(),
        }
    }
}

/// What a forwarded request produced.
pub enum Answer {
    /// One JSON-RPC response.
    Json(Vec<u8>),
    /// An SSE stream of JSON-RPC messages ending with the response, bounded in bytes queued
    /// toward the client ([`crate::rt::feed`]).
    Stream(FeedRx),
    /// One JSON-RPC response in three parts, written back to back: a head, bytes shared with
    /// a pre-rendered list (not copied), and a tail; with the page's slot for its gzip copy
    /// when it has one ([`crate::route::lists_gz`]).
    Parts(
        Vec<u8>,
        bytes::Bytes,
        Vec<u8>,
        Option<crate::http::gzip_slot::LazyGz>,
    ),
}

/// Is session `s` usable by `p`? A session belongs to the principal that created it; when
/// auth is off everyone is `anonymous` and this always holds.
pub(crate) fn owned_by(s: &LocalSession, p: &Principal) -> bool {
    s.owned_by(&p.name)
}

/// A JSON-RPC error answer with HTTP status `status`.
pub(crate) fn rpc_error(status: u16, err: &McpError, id: &[u8]) -> Reply {
    Reply::json(status, err.to_response(id))
}

/// The error for a session id this shard does not know (or the caller does not own).
pub(crate) fn unknown_session() -> McpError {
    McpError::InvalidRequest(
        "unknown or ended session; send initialize without Mcp-Session-Id".into(),
    )
}

/// A `MCP-Protocol-Version` header, when sent, names a version this gateway serves.
pub(crate) fn check_version_header(v: Option<&str>) -> Result<(), McpError> {
    match v {
        None => Ok(()),
        Some(v) if SUPPORTED_VERSIONS.contains(&v) => Ok(()),
        Some(v) => Err(McpError::InvalidRequest(format!(
            "unsupported MCP-Protocol-Version `{v}`; supported: {}",
            SUPPORTED_VERSIONS.join(", ")
        ))),
    }
}

/// The owned half of a call (`route/call.rs` borrows the rest from the request): how the
/// client speaks (the 2025 era, or 2026-07-28 and what it asks of each answer), who it is,
/// and what the backend call needs beyond the bytes. Owned because it outlives the request's
/// borrow: it moves into the finisher of a streamed or parked call, on its own task.
#[derive(Debug, Clone, Default)]
pub struct Era {
    /// The client is a 2026-07-28 client.
    pub modern: bool,
    /// Modern: `_meta` logLevel as a severity (0 = debug .. 7 = emergency); `None` = no logs.
    pub log_level: Option<u8>,
    /// Modern: the result is cacheable (`resources/read`): stamp `ttlMs`/`cacheScope`.
    pub cacheable: bool,
    /// Modern: the requested URI, for mapping a backend's -32002 to -32602 with `data.uri`.
    pub uri: Option<String>,
    /// Modern: what this request's `_meta` says the client can answer.
    pub client_caps: crate::route::session::ClientCaps,
    /// The backend's own tool name, when the call is a `tools/call` (per-tool timeouts).
    pub tool: Option<std::sync::Arc<str>>,
    /// A failed attempt may be retried on another replica: reads, prompts, completions,
    /// and tools annotated idempotent.
    pub retry_safe: bool,
    /// The request's header/claim values for `consistent_hash` balance keys.
    pub affinity: crate::balance::AffinityValues,
    /// Who sent it (RBAC checks before anything is forwarded).
    pub principal: Option<crate::auth::verify::Principal>,
    /// Where the response cache wants the backend's own cache hints (`ttlMs`, private).
    pub hints: Option<std::rc::Rc<std::cell::Cell<Option<CacheHints>>>>,
    /// Modern: what a `requestState` minted for this request is bound to (set when the
    /// client can answer server-to-client requests, so the call may be parked).
    pub bind: Option<crate::route::state::Binding>,
    /// Modern: the client's answers to this call's bridged input requests (given so far, and
    /// still to give when the call is a replay of one parked on another node).
    pub inputs: crate::route::tables::parked::InputLog,
    /// The call may create a task, or follows one up (`route/tasks/`); `None` for almost
    /// every call.
    pub task: Option<std::rc::Rc<crate::route::tables::tasks::TaskCall>>,
    /// Whether, and against what, the called tool's `x-mcp-header` arguments are checked.
    pub params: ParamCheck,
    /// The called tool's `x-mcp-header` arguments: the backend gets their `Mcp-Param-*`
    /// headers computed from the body it is sent (`upstream/modern.rs`).
    pub tool_headers: Option<std::sync::Arc<crate::catalog::params::ToolHeaders>>,
    /// The request's server span, when tracing is on: its backend calls are its children.
    /// Behind an `Rc` so that the era (copied into every call's finisher) grows by one word.
    pub trace: Option<std::rc::Rc<crate::trace::Active>>,
}

/// What the `Mcp-Param-*` check (`route/params.rs`) sees of a request.
#[derive(Debug, Clone, Default)]
pub enum ParamCheck {
    /// No check: a 2025-era request, or a meta tool's inner call (the client's headers were
    /// computed for the meta tool, which mirrors nothing).
    #[default]
    Off,
    /// A 2026-07-28 request over HTTP and the `Mcp-Param-*` headers it carried (`None`:
    /// none, which is what a tool call without mirrored arguments sends).
    On(Option<crate::http::request::SentParams>),
}

/// A backend result's `ttlMs` and whether its `cacheScope` is private.
pub type CacheHints = (Option<u64>, bool);

impl Drop for McpHttpRequest {
    /// The body's buffer goes back to the shard's list for the next request
    /// (`rt/bufs.rs`); a body moved out or handed to another shard is not here any more.
    fn drop(&mut self) {
        crate::rt::bufs::give(std::mem::take(&mut self.body));
    }
}

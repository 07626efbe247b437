//! JSON-RPC parsing and MCP method dispatch, shared by both transports.
//!
//! Owns everything that does not depend on how bytes travel: classifying an
//! incoming message (request / notification / response / invalid), the
//! `initialize` version negotiation, `ping`, paginated `tools/list`,
//! `tools/call` routing and every JSON-RPC error code. The transports only
//! move bytes and decide how to deliver a [`Reply`]; keeping the logic here
//! guarantees stdio and HTTP behave identically.
//!
//! Notifications produced while handling a request (progress) are passed to
//! a caller-supplied sink *as they happen* rather than collected, so a
//! transport can deliver the "start" progress before the tool finishes.
//!
//! Outgoing messages are serde structs serialized straight to a `String`:
//! field order is then fixed (`jsonrpc`, `id`, `result`), whereas objects
//! built with `sonic_rs::json!` serialize in hash order.

use serde::Serialize;
use sonic_rs::{json, JsonValueMutTrait, JsonValueTrait, Value};

use super::tools::{self, CallToolResult, ToolOutcome};
use super::DemoOptions;

/// Protocol versions this server speaks, oldest first; the last is preferred.
pub const SUPPORTED_VERSIONS: [&str; 3] = ["2025-03-26", "2025-06-18", "2025-11-25"];
const LATEST_VERSION: &str = "2025-11-25";

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;

/// Which transport is serving; a few tools (`garbage`, `crash`) differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Stdio,
    Http,
}

/// One classified incoming JSON-RPC message.
#[derive(Debug)]
pub enum Message {
    /// A request: must be answered.
    Request {
        id: Value,
        method: String,
        /// `params`, or `Null` when absent.
        params: Value,
    },
    /// A notification (no `id`): never answered.
    Notification { method: String },
    /// A response to a server→client request; this server sends none, so
    /// these are accepted and dropped.
    Response,
}

impl Message {
    pub fn is_request(&self) -> bool {
        matches!(self, Message::Request { .. })
    }

    pub fn method(&self) -> Option<&str> {
        match self {
            Message::Request { method, .. } | Message::Notification { method } => Some(method),
            Message::Response => None,
        }
    }

    /// True for a `tools/call` that will emit progress notifications (the
    /// `sleep` tool with a `_meta.progressToken`). The HTTP transport answers
    /// those with an SSE stream when the client accepts one.
    pub fn streams_progress(&self) -> bool {
        match self {
            Message::Request { method, params, .. } if method == "tools/call" => {
                params.get("name").and_then(|n| n.as_str()) == Some("sleep")
                    && progress_token(params).is_some()
            }
            _ => false,
        }
    }
}

/// What the transport should do after a message was handled.
#[derive(Debug)]
pub enum Reply {
    /// Nothing to send (notifications and responses).
    Silent,
    /// Send this serialized JSON-RPC response; `error` tells a JSON-RPC error
    /// from a result (HTTP mints a session only for a successful initialize).
    Send { json: String, error: bool },
    /// stdio only: write this raw, non-JSON line first, then the response.
    GarbageThen(&'static str, String),
    /// stdio only: exit the process immediately with this status, unanswered.
    Exit(i32),
}

#[derive(Serialize)]
struct ResultMsg<'a, T: Serialize> {
    jsonrpc: &'static str,
    id: &'a Value,
    result: T,
}

#[derive(Serialize)]
struct ErrorMsg<'a> {
    jsonrpc: &'static str,
    id: &'a Value,
    error: ErrorObj<'a>,
}

#[derive(Serialize)]
struct ErrorObj<'a> {
    code: i64,
    message: &'a str,
}

#[derive(Serialize)]
struct NotificationMsg<T: Serialize> {
    jsonrpc: &'static str,
    method: &'static str,
    params: T,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProgressParams<'a> {
    progress_token: &'a Value,
    progress: u64,
    total: u64,
    message: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InitializeResult<'a> {
    protocol_version: &'a str,
    capabilities: Value,
    server_info: ServerInfo<'a>,
    instructions: &'static str,
}

#[derive(Serialize)]
struct ServerInfo<'a> {
    name: &'a str,
    version: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListToolsResult {
    tools: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

#[derive(Serialize)]
struct Empty {}

/// Serializes a message. Our types only contain strings, integers, finite
/// floats and parsed JSON, so this cannot fail in practice; if it ever did,
/// the fallback is still a valid JSON-RPC error (with id null).
fn to_json<T: Serialize>(msg: &T) -> String {
    sonic_rs::to_string(msg).unwrap_or_else(|_| {
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"Internal error: serialization failed"}}"#
            .to_string()
    })
}

/// Builds a serialized JSON-RPC error response.
pub fn error_response(id: &Value, code: i64, message: &str) -> String {
    to_json(&ErrorMsg {
        jsonrpc: "2.0",
        id,
        error: ErrorObj { code, message },
    })
}

fn result_response<T: Serialize>(id: &Value, result: T) -> String {
    to_json(&ResultMsg {
        jsonrpc: "2.0",
        id,
        result,
    })
}

fn send_error(id: &Value, code: i64, message: &str) -> Reply {
    Reply::Send {
        json: error_response(id, code, message),
        error: true,
    }
}

fn send_result<T: Serialize>(id: &Value, result: T) -> Reply {
    Reply::Send {
        json: result_response(id, result),
        error: false,
    }
}

/// Parses and classifies raw bytes. `Err` carries the error response to send
/// (-32700 for malformed JSON, -32600 for a structurally invalid message).
pub fn parse(bytes: &[u8]) -> Result<Message, String> {
    let value: Value = match sonic_rs::from_slice(bytes) {
        Ok(v) => v,
        Err(_) => return Err(error_response(&Value::new(), PARSE_ERROR, "Parse error")),
    };
    classify(value)
}

fn classify(mut value: Value) -> Result<Message, String> {
    let invalid = |id: Option<&Value>, what: &str| {
        let id = id.cloned().unwrap_or_default();
        error_response(&id, INVALID_REQUEST, &format!("Invalid Request: {what}"))
    };
    if !value.is_object() {
        let what = match value.is_array() {
            true => "batches are not supported",
            false => "expected a JSON object",
        };
        return Err(invalid(None, what));
    }
    let has = |key: &str| value.get(key).is_some();
    if !has("method") && (has("result") || has("error")) {
        return Ok(Message::Response);
    }
    // A usable id is a string or a number; a bad one is reported with id null.
    let id = match value.get("id") {
        None => None,
        Some(id) if id.is_str() || id.is_number() => Some(id.clone()),
        Some(_) => return Err(invalid(None, "id must be a string or a number")),
    };
    if value.get("jsonrpc").and_then(|v| v.as_str()) != Some("2.0") {
        return Err(invalid(id.as_ref(), "jsonrpc must be \"2.0\""));
    }
    let Some(method) = value
        .get("method")
        .and_then(|m| m.as_str())
        .map(str::to_owned)
    else {
        return Err(invalid(id.as_ref(), "method must be a string"));
    };
    let Some(id) = id else {
        return Ok(Message::Notification { method });
    };
    let params = value
        .as_object_mut()
        .and_then(|o| o.remove(&"params"))
        .unwrap_or_default();
    Ok(Message::Request { id, method, params })
}

/// Returns `params._meta.progressToken` if it is a string or an integer.
pub fn progress_token(params: &Value) -> Option<Value> {
    let token = params.get("_meta")?.get("progressToken")?;
    (token.is_str() || token.is_i64() || token.is_u64()).then(|| token.clone())
}

/// Protocol state shared by all requests of one server (immutable, so it
/// can be used from many threads at once).
pub struct Server {
    name: String,
    transport: Transport,
}

impl Server {
    pub fn new(opts: DemoOptions, transport: Transport) -> Self {
        Self {
            name: opts.name,
            transport,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Handles one message. Notifications the request produces (progress)
    /// are handed to `notify` as they happen, before the reply is returned.
    pub fn handle(&self, msg: Message, notify: &mut dyn FnMut(String)) -> Reply {
        let (id, method, params) = match msg {
            Message::Request { id, method, params } => (id, method, params),
            Message::Notification { .. } | Message::Response => return Reply::Silent,
        };
        if !params.is_null() && !params.is_object() {
            return send_error(&id, INVALID_PARAMS, "Invalid params: expected an object");
        }
        match method.as_str() {
            "initialize" => self.initialize(&id, &params),
            "ping" => send_result(&id, Empty {}),
            "tools/list" => list_tools(&id, &params),
            "tools/call" => self.call_tool(&id, &params, notify),
            other => send_error(&id, METHOD_NOT_FOUND, &format!("Method not found: {other}")),
        }
    }

    fn initialize(&self, id: &Value, params: &Value) -> Reply {
        let Some(requested) = params.get("protocolVersion").and_then(|v| v.as_str()) else {
            let msg = "Invalid params: protocolVersion must be a string";
            return send_error(id, INVALID_PARAMS, msg);
        };
        let version = if SUPPORTED_VERSIONS.contains(&requested) {
            requested
        } else {
            LATEST_VERSION
        };
        send_result(
            id,
            InitializeResult {
                protocol_version: version,
                // Single-key objects: hash order cannot vary.
                capabilities: json!({"tools": {"listChanged": false}}),
                server_info: ServerInfo {
                    name: &self.name,
                    version: env!("CARGO_PKG_VERSION"),
                },
                instructions: "only1mcp demo server: test tools (echo, add, sleep, big, ...).",
            },
        )
    }

    fn call_tool(&self, id: &Value, params: &Value, notify: &mut dyn FnMut(String)) -> Reply {
        let Some(name) = params.get("name").and_then(|n| n.as_str()) else {
            return send_error(id, INVALID_PARAMS, "Invalid params: name must be a string");
        };
        let empty = json!({});
        let args = match params.get("arguments").filter(|a| !a.is_null()) {
            None => &empty,
            Some(a) if a.is_object() => a,
            Some(_) => {
                let msg = "Invalid params: arguments must be an object";
                return send_error(id, INVALID_PARAMS, msg);
            }
        };
        let token = progress_token(params);
        let mut progress = |progress: u64, total: u64, message: &str| {
            if let Some(token) = &token {
                notify(to_json(&NotificationMsg {
                    jsonrpc: "2.0",
                    method: "notifications/progress",
                    params: ProgressParams {
                        progress_token: token,
                        progress,
                        total,
                        message,
                    },
                }));
            }
        };
        let ctx = tools::Ctx {
            server_name: &self.name,
            transport: self.transport,
            progress: &mut progress,
        };
        match tools::call(name, args, ctx) {
            None => send_error(id, INVALID_PARAMS, &format!("Unknown tool: {name}")),
            Some(ToolOutcome::Result(r)) => send_result::<CallToolResult>(id, r),
            Some(ToolOutcome::GarbageThen(line, r)) => {
                Reply::GarbageThen(line, result_response(id, r))
            }
            Some(ToolOutcome::Crash(code)) => Reply::Exit(code),
        }
    }
}

fn list_tools(id: &Value, params: &Value) -> Reply {
    let page = match params.get("cursor").filter(|c| !c.is_null()) {
        None => tools::page(None),
        Some(c) => c.as_str().and_then(|c| tools::page(Some(c))),
    };
    match page {
        Some((tools, next_cursor)) => send_result(id, ListToolsResult { tools, next_cursor }),
        None => send_error(id, INVALID_PARAMS, "Invalid params: invalid cursor"),
    }
}

//! JSON-RPC parsing and message serialization, shared by every module.
//!
//! Owns the wire shapes only: classifying an incoming message (request /
//! notification / response / invalid), the JSON-RPC error codes, and
//! building outgoing results, errors and notifications. MCP semantics live
//! in `server.rs` and the feature modules; transports only move bytes.
//!
//! Outgoing messages are serde structs serialized straight to a `String`:
//! field order is then fixed (`jsonrpc`, `id`, `result`), whereas objects
//! built with `sonic_rs::json!` serialize in hash order.

use serde::Serialize;
use sonic_rs::{JsonValueMutTrait, JsonValueTrait, Value};

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
/// Legacy-era (≤ 2025-11-25) "resource not found".
pub const RESOURCE_NOT_FOUND: i64 = -32002;

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
    /// A notification (no `id`): never answered. `params`, or `Null`.
    Notification { method: String, params: Value },
    /// A response to a server→client request (`id` may be null for errors);
    /// `body` is the whole message.
    Response { id: Value, body: Value },
}

impl Message {
    pub fn is_request(&self) -> bool {
        matches!(self, Message::Request { .. })
    }

    pub fn method(&self) -> Option<&str> {
        match self {
            Message::Request { method, .. } | Message::Notification { method, .. } => Some(method),
            Message::Response { .. } => None,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Value>,
}

#[derive(Serialize)]
struct NotificationMsg<'a, T: Serialize> {
    jsonrpc: &'static str,
    method: &'a str,
    params: T,
}

/// An empty object (`{}`), e.g. the result of `ping`.
#[derive(Serialize)]
pub struct Empty {}

/// Serializes a message. Our types only contain strings, integers, finite
/// floats and parsed JSON, so this cannot fail in practice; if it ever did,
/// the fallback is still a valid JSON-RPC error (with id null).
pub fn to_json<T: Serialize>(msg: &T) -> String {
    sonic_rs::to_string(msg).unwrap_or_else(|_| {
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"Internal error: serialization failed"}}"#
            .to_string()
    })
}

/// `msg` as a [`Value`] whose objects keep their field order (a round trip
/// through text: `sonic_rs::to_value` and mutated objects do not).
pub fn ordered_value<T: Serialize>(msg: &T) -> Value {
    sonic_rs::from_str(&to_json(msg)).unwrap_or_default()
}

/// Builds a serialized JSON-RPC error response.
pub fn error_response(id: &Value, code: i64, message: &str) -> String {
    error_with_data(id, code, message, None)
}

pub fn error_with_data(id: &Value, code: i64, message: &str, data: Option<&Value>) -> String {
    to_json(&ErrorMsg {
        jsonrpc: "2.0",
        id,
        error: ErrorObj {
            code,
            message,
            data,
        },
    })
}

pub fn result_response<T: Serialize>(id: &Value, result: T) -> String {
    to_json(&ResultMsg {
        jsonrpc: "2.0",
        id,
        result,
    })
}

/// A serialized notification.
pub fn notification<P: Serialize>(method: &str, params: P) -> String {
    to_json(&NotificationMsg {
        jsonrpc: "2.0",
        method,
        params,
    })
}

pub fn send_error(id: &Value, code: i64, message: &str) -> Reply {
    Reply::Send {
        json: error_response(id, code, message),
        error: true,
    }
}

pub fn send_error_data(id: &Value, code: i64, message: &str, data: &Value) -> Reply {
    Reply::Send {
        json: error_with_data(id, code, message, Some(data)),
        error: true,
    }
}

pub fn send_result<T: Serialize>(id: &Value, result: T) -> Reply {
    Reply::Send {
        json: result_response(id, result),
        error: false,
    }
}

/// `params[key]` as a string, or the -32602 reply to send.
pub fn str_param<'a>(id: &Value, params: &'a Value, key: &str) -> Result<&'a str, Reply> {
    params.get(key).and_then(|v| v.as_str()).ok_or_else(|| {
        send_error(
            id,
            INVALID_PARAMS,
            &format!("Invalid params: {key} must be a string"),
        )
    })
}

/// Rejects a `cursor` on lists that always fit one page.
pub fn no_cursor(id: &Value, params: &Value) -> Result<(), Reply> {
    match params.get("cursor").filter(|c| !c.is_null()) {
        None => Ok(()),
        Some(_) => Err(send_error(
            id,
            INVALID_PARAMS,
            "Invalid params: invalid cursor",
        )),
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
        let id = value.get("id").cloned().unwrap_or_default();
        return Ok(Message::Response { id, body: value });
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
    let params = value
        .as_object_mut()
        .and_then(|o| o.remove(&"params"))
        .unwrap_or_default();
    match id {
        Some(id) => Ok(Message::Request { id, method, params }),
        None => Ok(Message::Notification { method, params }),
    }
}

/// Returns `params._meta.progressToken` if it is a string or an integer.
pub fn progress_token(params: &Value) -> Option<Value> {
    let token = params.get("_meta")?.get("progressToken")?;
    (token.is_str() || token.is_i64() || token.is_u64()).then(|| token.clone())
}

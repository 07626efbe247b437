//! Data-plane errors: who caused them, which JSON-RPC code and HTTP status they map to.
//!
//! Every error a client can see says who is to blame (the client, a named backend, or the
//! gateway itself) and is rendered as a JSON-RPC error carrying the request's own id, so a
//! client can tell "you sent a bad request" from "backend `search` is down" at a glance.
//! `anyhow` stays out of this crate's hot path: these are plain enums, cheap to build.

use thiserror::Error;

/// Who caused an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// The calling client sent something wrong.
    Client,
    /// A backend failed, timed out or broke the protocol.
    Backend,
    /// The gateway itself (overload, shutdown, internal fault).
    Gateway,
}

impl Blame {
    /// Lower-case name used in error `data.blame`.
    pub fn as_str(self) -> &'static str {
        match self {
            Blame::Client => "client",
            Blame::Backend => "backend",
            Blame::Gateway => "gateway",
        }
    }
}

/// JSON-RPC standard codes.
pub mod code {
    /// Invalid JSON.
    pub const PARSE_ERROR: i32 = -32700;
    /// Not a valid request object.
    pub const INVALID_REQUEST: i32 = -32600;
    /// Unknown method.
    pub const METHOD_NOT_FOUND: i32 = -32601;
    /// Bad params (also: unknown tool).
    pub const INVALID_PARAMS: i32 = -32602;
    /// The request was cancelled (LSP's code; MCP sends no response, HTTP needs one).
    pub const REQUEST_CANCELLED: i32 = -32800;
    /// Gateway-internal failure.
    pub const INTERNAL_ERROR: i32 = -32603;
    /// 2026-07-28: request headers disagree with the body.
    pub const HEADER_MISMATCH: i32 = -32020;
    /// 2026-07-28: a client capability the request needs was not declared.
    pub const MISSING_CLIENT_CAPABILITY: i32 = -32021;
    /// 2026-07-28: unsupported protocol version.
    pub const UNSUPPORTED_VERSION: i32 = -32022;
    /// Resource not found (2025 era; 2026-07-28 uses -32602).
    pub const RESOURCE_NOT_FOUND: i32 = -32002;
    /// The backend could not be reached or died.
    pub const BACKEND_UNAVAILABLE: i32 = -32000;
    /// The backend did not answer within its timeout.
    pub const BACKEND_TIMEOUT: i32 = -32001;
    /// The backend answered something that is not valid MCP.
    pub const BACKEND_PROTOCOL: i32 = -32003;
}

/// An error while serving one MCP request.
#[derive(Debug, Clone, Error)]
pub enum McpError {
    /// The body is not JSON.
    #[error("parse error: {0}")]
    Parse(String),
    /// The body is JSON but not a valid JSON-RPC 2.0 message.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The method is not served.
    #[error("method not found: {0}")]
    MethodNotFound(String),
    /// Params are missing or malformed.
    #[error("invalid params: {0}")]
    InvalidParams(String),
    /// No tool with this name in the catalog.
    #[error("unknown tool: {0}")]
    UnknownTool(String),
    /// No backend offers this resource URI.
    #[error("resource not found: {0}")]
    ResourceNotFound(String),
    /// The backend is down, not started yet, or its connection broke.
    #[error("backend `{server}` unavailable: {reason}")]
    BackendUnavailable {
        /// Backend id.
        server: String,
        /// What went wrong.
        reason: String,
    },
    /// The backend did not answer in time.
    #[error("backend `{server}` did not answer within {ms} ms")]
    BackendTimeout {
        /// Backend id.
        server: String,
        /// The timeout that expired.
        ms: u64,
    },
    /// The backend broke the protocol.
    #[error("backend `{server}` sent an invalid response: {reason}")]
    BackendProtocol {
        /// Backend id.
        server: String,
        /// What was wrong.
        reason: String,
    },
    /// The client cancelled the request.
    #[error("request cancelled")]
    Cancelled,
    /// 2026-07-28: a request header disagrees with the body, or is missing.
    #[error("header mismatch: {0}")]
    HeaderMismatch(String),
    /// 2026-07-28: the requested protocol version is not served.
    #[error("unsupported protocol version `{requested}`")]
    UnsupportedVersion {
        /// What the client asked for.
        requested: String,
    },
    /// The gateway cannot serve the request (shutting down, internal fault).
    #[error("gateway error: {0}")]
    Gateway(String),
    /// A task's backend no longer has it: the process or upstream session that ran it
    /// ended (a stdio restart, an HTTP replica that re-initialized), or the backend says it
    /// does not know a task the gateway saw it create.
    #[error("backend `{server}` lost the task: {reason}")]
    TaskLost {
        /// Backend id.
        server: String,
        /// What happened to it.
        reason: String,
    },
    /// 2026-07-28: the request needs a client capability it did not declare; `data`
    /// carries `requiredCapabilities` with `what` (a JSON object member, e.g.
    /// `"extensions":{"io.modelcontextprotocol/tasks":{}}`).
    #[error("missing required client capability: {message}")]
    MissingCapability {
        /// The human-readable part.
        message: String,
        /// The members of `requiredCapabilities`, as JSON text.
        what: String,
    },
    /// A 2026 backend asked a 2025-era client for input (`input_required`, relayed as
    /// server-to-client requests) and the client did not provide it: it lacks the
    /// capability (-32021), did not answer in time (-32001), or answered with an error (its
    /// own code) or something that is not a result (-32602).
    #[error("backend `{server}` needs input from the client: {reason}")]
    ClientInput {
        /// Backend id.
        server: String,
        /// The JSON-RPC code.
        code: i32,
        /// What the client did not provide, and why.
        reason: String,
    },
}

impl McpError {
    /// The message without the backend's name, for texts that name it already (a down
    /// backend's reason is later shown as "backend `x` unavailable: \<this\>").
    pub fn reason_for_backend(&self) -> String {
        match self {
            McpError::BackendUnavailable { reason, .. } => reason.clone(),
            McpError::BackendTimeout { ms, .. } => format!("did not answer within {ms} ms"),
            McpError::BackendProtocol { reason, .. } => {
                format!("sent an invalid response: {reason}")
            }
            other => other.to_string(),
        }
    }

    /// Who caused it.
    pub fn blame(&self) -> Blame {
        match self {
            McpError::Parse(_)
            | McpError::InvalidRequest(_)
            | McpError::MethodNotFound(_)
            | McpError::InvalidParams(_)
            | McpError::UnknownTool(_)
            | McpError::ResourceNotFound(_)
            | McpError::Cancelled
            | McpError::HeaderMismatch(_)
            | McpError::UnsupportedVersion { .. }
            | McpError::MissingCapability { .. }
            | McpError::ClientInput { .. } => Blame::Client,
            McpError::BackendUnavailable { .. }
            | McpError::BackendTimeout { .. }
            | McpError::BackendProtocol { .. }
            | McpError::TaskLost { .. } => Blame::Backend,
            McpError::Gateway(_) => Blame::Gateway,
        }
    }

    /// The JSON-RPC error code.
    pub fn code(&self) -> i32 {
        match self {
            McpError::Parse(_) => code::PARSE_ERROR,
            McpError::InvalidRequest(_) => code::INVALID_REQUEST,
            McpError::MethodNotFound(_) => code::METHOD_NOT_FOUND,
            McpError::InvalidParams(_) | McpError::UnknownTool(_) => code::INVALID_PARAMS,
            McpError::ResourceNotFound(_) => code::RESOURCE_NOT_FOUND,
            McpError::BackendUnavailable { .. } | McpError::TaskLost { .. } => {
                code::BACKEND_UNAVAILABLE
            }
            McpError::MissingCapability { .. } => code::MISSING_CLIENT_CAPABILITY,
            McpError::BackendTimeout { .. } => code::BACKEND_TIMEOUT,
            McpError::BackendProtocol { .. } => code::BACKEND_PROTOCOL,
            McpError::Gateway(_) => code::INTERNAL_ERROR,
            McpError::Cancelled => code::REQUEST_CANCELLED,
            McpError::HeaderMismatch(_) => code::HEADER_MISMATCH,
            McpError::UnsupportedVersion { .. } => code::UNSUPPORTED_VERSION,
            McpError::ClientInput { code, .. } => *code,
        }
    }

    /// The backend this error names, if any.
    pub fn server(&self) -> Option<&str> {
        match self {
            McpError::BackendUnavailable { server, .. }
            | McpError::BackendTimeout { server, .. }
            | McpError::BackendProtocol { server, .. }
            | McpError::TaskLost { server, .. }
            | McpError::ClientInput { server, .. } => Some(server),
            _ => None,
        }
    }

    /// Like [`McpError::to_response`], with `data.uri` (2026 resource-not-found shape).
    pub fn to_response_with_uri(&self, raw_id: &[u8], uri: &str) -> Vec<u8> {
        let msg = sonic_rs::to_string(&self.to_string()).unwrap_or_else(|_| "\"error\"".into());
        let mut out = Vec::with_capacity(128 + msg.len() + uri.len());
        out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
        out.extend_from_slice(if raw_id.is_empty() { b"null" } else { raw_id });
        out.extend_from_slice(b",\"error\":{\"code\":");
        out.extend_from_slice(self.code().to_string().as_bytes());
        out.extend_from_slice(b",\"message\":");
        out.extend_from_slice(msg.as_bytes());
        out.extend_from_slice(b",\"data\":{\"uri\":");
        crate::wire::jsonrpc::push_json_str(&mut out, uri);
        out.extend_from_slice(b"}}}");
        out
    }

    /// Renders `{"jsonrpc":"2.0","id":<raw_id>,"error":{...}}`; `raw_id` is the id's JSON
    /// text exactly as the client sent it (`null` when unknown).
    pub fn to_response(&self, raw_id: &[u8]) -> Vec<u8> {
        let msg = sonic_rs::to_string(&self.to_string()).unwrap_or_else(|_| "\"error\"".into());
        let mut out = Vec::with_capacity(128 + msg.len());
        out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
        out.extend_from_slice(if raw_id.is_empty() { b"null" } else { raw_id });
        out.extend_from_slice(b",\"error\":{\"code\":");
        out.extend_from_slice(self.code().to_string().as_bytes());
        out.extend_from_slice(b",\"message\":");
        out.extend_from_slice(msg.as_bytes());
        if let McpError::UnsupportedVersion { requested } = self {
            // The spec's exact data shape (schema-validated by clients).
            out.extend_from_slice(b",\"data\":{\"supported\":[\"2026-07-28\"],\"requested\":");
            crate::wire::jsonrpc::push_json_str(&mut out, requested);
            out.extend_from_slice(b"}}}");
            return out;
        }
        if let McpError::MissingCapability { what, .. } = self {
            out.extend_from_slice(b",\"data\":{\"requiredCapabilities\":{");
            out.extend_from_slice(what.as_bytes());
            out.extend_from_slice(b"},\"blame\":\"client\"}}}");
            return out;
        }
        if let McpError::ResourceNotFound(uri) = self {
            out.extend_from_slice(b",\"data\":{\"uri\":");
            crate::wire::jsonrpc::push_json_str(&mut out, uri);
            out.extend_from_slice(b",\"blame\":\"client\"}}}");
            return out;
        }
        out.extend_from_slice(b",\"data\":{\"blame\":\"");
        out.extend_from_slice(self.blame().as_str().as_bytes());
        out.push(b'"');
        if let Some(s) = self.server() {
            out.extend_from_slice(b",\"server\":");
            out.extend_from_slice(sonic_rs::to_string(s).unwrap_or_default().as_bytes());
        }
        out.extend_from_slice(b"}}}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_response_carries_id_blame_and_server() {
        let e = McpError::BackendTimeout {
            server: "search".into(),
            ms: 100,
        };
        let out = e.to_response(b"\"abc\"");
        let v: sonic_rs::Value = sonic_rs::from_slice(&out).unwrap();
        use sonic_rs::JsonValueTrait;
        assert_eq!(v["id"].as_str(), Some("abc"));
        assert_eq!(v["error"]["code"].as_i64(), Some(-32001));
        assert_eq!(v["error"]["data"]["blame"].as_str(), Some("backend"));
        assert_eq!(v["error"]["data"]["server"].as_str(), Some("search"));
    }

    #[test]
    fn a_missing_capability_names_what_is_required() {
        let e = McpError::MissingCapability {
            message: "tasks/get needs the tasks extension".into(),
            what: r#""extensions":{"io.modelcontextprotocol/tasks":{}}"#.into(),
        };
        let v: sonic_rs::Value = sonic_rs::from_slice(&e.to_response(b"4")).unwrap();
        use sonic_rs::JsonValueTrait;
        assert_eq!(v["error"]["code"].as_i64(), Some(-32021));
        let ext = &v["error"]["data"]["requiredCapabilities"]["extensions"];
        assert!(ext["io.modelcontextprotocol/tasks"].is_object());
    }

    #[test]
    fn quotes_in_messages_are_escaped() {
        let out = McpError::UnknownTool("a\"b".into()).to_response(b"");
        let v: sonic_rs::Value = sonic_rs::from_slice(&out).unwrap();
        use sonic_rs::JsonValueTrait;
        assert!(v["id"].is_null());
        assert!(v["error"]["message"].as_str().unwrap().contains("a\"b"));
    }
}

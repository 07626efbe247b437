//! The 2026-07-28 ("modern", stateless) protocol path, shared by both
//! transports.
//!
//! Owns era classification, per-request validation and the modern method
//! table; the transports add what is theirs (HTTP headers and statuses,
//! SSE; stdio lines) and both serve `subscriptions/listen` with
//! `subscriptions.rs`.
//!
//! * **Era** ([`is_modern_http`], [`is_modern_stdio`]): HTTP follows the
//!   reference fixture's rule (no `Mcp-Session-Id`, and an
//!   `MCP-Protocol-Version` header or a `params._meta`, unless it is a
//!   legacy version header without `_meta`); on stdio a request is modern
//!   when its `_meta` names a protocol version or it is `server/discover`.
//!   `initialize` without `_meta` always stays legacy.
//! * **Validation** ([`check`]), in this order, every error echoing the
//!   request id: missing `MCP-Protocol-Version` header (HTTP) → 400/-32020;
//!   `_meta` missing or without `protocolVersion` / `clientCapabilities`,
//!   or a bad `logLevel` → 400/-32602; header ≠ `_meta` version →
//!   400/-32020; unsupported version → 400/-32022 with `data {supported,
//!   requested}`. HTTP then checks `Mcp-Method`/`Mcp-Name`/`Mcp-Param-*`
//!   (`headers.rs`). [`handle`] answers unimplemented methods (the removed
//!   `initialize`, `ping`, `logging/setLevel`, `resources/(un)subscribe`,
//!   and the fixture's methods without the fixture) with 404/-32601, and a
//!   call that needs an undeclared client capability with 400/-32021
//!   `data {requiredCapabilities: {<cap>: {}}}`.
//! * **Requests** run on a throwaway [`Session::modern`] built from
//!   `_meta`: capabilities are never remembered, logs are sent only at or
//!   above `_meta["io.modelcontextprotocol/logLevel"]` (none without it),
//!   progress goes to the request's own stream, and there are no
//!   server→client requests: tools that need client input answer an
//!   `InputRequiredResult` (`fixture2026.rs`, `mrtr.rs`).
//! * **Results** all carry `resultType` and `_meta` with
//!   `io.modelcontextprotocol/serverInfo`; cacheable ones (`server/discover`,
//!   the four lists, `resources/read`) also `ttlMs` and `cacheScope`.
//!   A missing resource is -32602 with `data {uri}`.

use serde::Serialize;
use sonic_rs::{JsonValueTrait, Value};

use super::fixture2026;
use super::protocol::{
    error_with_data, ordered_value, send_error, send_result, to_json, Reply, INTERNAL_ERROR,
    INVALID_PARAMS, METHOD_NOT_FOUND,
};
use super::server::Server;
use super::session::{level_index, Related, Session, LEVELS};
use super::tools;
use super::{modern_calls, prompts, resources};

/// The one modern revision this server speaks.
pub const VERSION: &str = "2026-07-28";
/// `server/discover.supportedVersions`, and `data.supported` of -32022.
pub const SUPPORTED: [&str; 1] = [VERSION];
/// Header values that mark legacy (session) traffic on HTTP.
pub const LEGACY_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

pub const HEADER_MISMATCH: i64 = -32020;
pub const MISSING_CAPABILITY: i64 = -32021;
pub const UNSUPPORTED_VERSION: i64 = -32022;

const PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
const LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";

const CAPABILITIES: &str = r#"{"tools":{"listChanged":false}}"#;
const FIXTURE_CAPABILITIES: &str = r#"{"tools":{"listChanged":true},"resources":{"subscribe":true,"listChanged":true},"prompts":{"listChanged":true},"logging":{},"completions":{}}"#;

/// Methods served on the modern path, and those only with the fixture.
const METHODS: [&str; 4] = [
    "server/discover",
    "tools/list",
    "tools/call",
    "subscriptions/listen",
];
const FIXTURE_METHODS: [&str; 6] = [
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "prompts/list",
    "prompts/get",
    "completion/complete",
];

/// HTTP: is this POST modern traffic? (module docs)
pub fn is_modern_http(has_session: bool, version_header: Option<&str>, has_meta: bool) -> bool {
    let version = version_header.map(str::trim);
    let legacy_traffic = !has_meta && version.is_some_and(|v| LEGACY_VERSIONS.contains(&v));
    !has_session && (version.is_some() || has_meta) && !legacy_traffic
}

/// stdio: is this request modern? (module docs)
pub fn is_modern_stdio(method: &str, params: &Value) -> bool {
    let versioned = params
        .get("_meta")
        .is_some_and(|m| m.get(PROTOCOL_VERSION).is_some());
    method != "initialize" && (versioned || method == "server/discover")
}

/// A modern reply and the HTTP status that goes with it.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub reply: Reply,
}

impl Answer {
    pub fn ok(reply: Reply) -> Self {
        Answer { status: 200, reply }
    }

    pub fn error(status: u16, id: &Value, code: i64, message: &str, data: Option<&Value>) -> Self {
        let json = error_with_data(id, code, message, data);
        Answer {
            status,
            reply: Reply::Send { json, error: true },
        }
    }

    /// The serialized message (a `Reply::Send`), for the transports.
    pub fn json(&self) -> Option<&str> {
        match &self.reply {
            Reply::Send { json, .. } | Reply::GarbageThen(_, json) => Some(json),
            Reply::Silent | Reply::Exit(_) => None,
        }
    }
}

/// What a valid `_meta` declares.
#[derive(Debug, Clone)]
pub struct Meta {
    pub capabilities: Value,
    /// Index into `LEVELS` of `logLevel`; `LEVELS.len()` (no logs) without it.
    pub min_level: usize,
}

impl Meta {
    /// The request's throwaway session (see [`Session::modern`]).
    pub fn session(&self) -> Session {
        Session::modern(VERSION, self.capabilities.clone(), self.min_level)
    }
}

/// Validation steps 1 to 4 (module docs). `header` is `None` on stdio, else
/// the `MCP-Protocol-Version` header (`Some(None)` when it is missing).
pub fn check(id: &Value, params: &Value, header: Option<Option<&str>>) -> Result<Meta, Answer> {
    let fail =
        |code, message: &str, data: Option<&Value>| Answer::error(400, id, code, message, data);
    if let Some(None) = header {
        return Err(fail(
            HEADER_MISMATCH,
            "Missing MCP-Protocol-Version header",
            None,
        ));
    }
    let invalid = |what: &str| fail(INVALID_PARAMS, &format!("Invalid params: {what}"), None);
    let Some(meta) = params.get("_meta").filter(|m| m.is_object()) else {
        return Err(invalid("missing _meta"));
    };
    let Some(version) = meta.get(PROTOCOL_VERSION).and_then(|v| v.as_str()) else {
        return Err(invalid(&format!("_meta has no {PROTOCOL_VERSION}")));
    };
    let Some(capabilities) = meta.get(CLIENT_CAPABILITIES).filter(|c| c.is_object()) else {
        return Err(invalid(&format!(
            "_meta has no {CLIENT_CAPABILITIES} object"
        )));
    };
    let min_level = match meta.get(LOG_LEVEL) {
        None => LEVELS.len(),
        Some(level) => match level.as_str().and_then(level_index) {
            Some(index) => index,
            None => return Err(invalid(&format!("_meta {LOG_LEVEL} is not a log level"))),
        },
    };
    if let Some(Some(header)) = header {
        if header.trim() != version {
            let msg = format!(
                "Header mismatch: MCP-Protocol-Version header value '{}' does not match _meta value '{version}'",
                header.trim()
            );
            return Err(fail(HEADER_MISMATCH, &msg, None));
        }
    }
    if !SUPPORTED.contains(&version) {
        #[derive(Serialize)]
        struct Data<'a> {
            supported: [&'a str; 1],
            requested: &'a str,
        }
        let data = ordered_value(&Data {
            supported: SUPPORTED,
            requested: version,
        });
        return Err(fail(
            UNSUPPORTED_VERSION,
            "Unsupported protocol version",
            Some(&data),
        ));
    }
    Ok(Meta {
        capabilities: capabilities.clone(),
        min_level,
    })
}

/// The answer of a 2026-only server (`DEMO_LEGACY=0`) to a legacy request such as
/// `initialize`: -32022, naming the version it speaks.
pub fn legacy_refused(id: &Value) -> String {
    #[derive(Serialize)]
    struct Data<'a> {
        supported: [&'a str; 1],
    }
    let data = ordered_value(&Data {
        supported: SUPPORTED,
    });
    error_with_data(
        id,
        UNSUPPORTED_VERSION,
        "Unsupported protocol version: this server speaks 2026-07-28 only",
        Some(&data),
    )
}

/// Whether the modern path serves `method` on this server.
pub fn implemented(server: &Server, method: &str) -> bool {
    METHODS.contains(&method) || (server.config().conformance && FIXTURE_METHODS.contains(&method))
}

/// A result's `_meta`.
#[derive(Serialize)]
pub struct ResultMeta {
    #[serde(rename = "io.modelcontextprotocol/serverInfo")]
    pub server_info: Value,
}

/// `{name, version}` stamped on every result's `_meta`.
pub fn server_info(server: &Server) -> Value {
    #[derive(Serialize)]
    struct Implementation<'a> {
        name: &'a str,
        version: &'static str,
    }
    let info = Implementation {
        name: server.name(),
        version: env!("CARGO_PKG_VERSION"),
    };
    ordered_value(&info)
}

/// The modern tool catalogue: the demo tools, then with the fixture its
/// legacy tools (without the timed dynamic one) and the 2026 tools.
pub fn tool_definitions(server: &Server) -> Vec<Value> {
    let fixture = server.config().conformance;
    let mut all = tools::definitions(fixture, false);
    if fixture {
        all.extend(fixture2026::definitions());
    }
    all
}

/// Serves one validated modern request (not `subscriptions/listen`, which
/// the transports stream themselves).
pub fn handle(
    server: &Server,
    id: &Value,
    method: &str,
    params: &Value,
    meta: &Meta,
    related: &mut dyn Related,
) -> Answer {
    if !implemented(server, method) {
        return Answer::error(
            404,
            id,
            METHOD_NOT_FOUND,
            &format!("Method not found: {method}"),
            None,
        );
    }
    let reply = match method {
        "server/discover" => discover(server, id),
        "tools/list" => list_tools(server, id, params),
        "tools/call" => return modern_calls::call_tool(server, id, params, meta, related),
        "prompts/get" => return modern_calls::get_prompt(server, id, params, meta),
        "resources/list" => resources::list(&meta.session(), id, params),
        "resources/templates/list" => resources::templates(id, params),
        "resources/read" => resources::read(&meta.session(), id, params, INVALID_PARAMS),
        "prompts/list" => prompts::list(&meta.session(), id, params, true),
        "completion/complete" => prompts::complete(&meta.session(), id, params),
        _ => send_error(id, INTERNAL_ERROR, "Internal error: not dispatched here"),
    };
    Answer::ok(stamp(server, method, id, reply))
}

/// `ttlMs` and `cacheScope` of a cacheable method's result.
fn cache_hints(method: &str) -> Option<(u64, &'static str)> {
    match method {
        "server/discover"
        | "tools/list"
        | "prompts/list"
        | "resources/list"
        | "resources/templates/list" => Some((60_000, "public")),
        "resources/read" => Some((0, "private")),
        _ => None,
    }
}

/// Adds `resultType`, the cache hints and `_meta.serverInfo` to the result
/// of `reply`, a response to `id` (errors pass through). Done on the text:
/// our results are objects without those fields, and the result is the
/// last member of the response (`protocol::result_response`).
pub fn stamp(server: &Server, method: &str, id: &Value, reply: Reply) -> Reply {
    let Reply::Send { json, error: false } = reply else {
        return reply;
    };
    let prefix = format!(r#"{{"jsonrpc":"2.0","id":{},"result":{{"#, to_json(id));
    let Some(inner) = json
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix("}}"))
    else {
        return Reply::Send { json, error: false };
    };
    let mut out = format!(r#"{prefix}"resultType":"complete""#);
    if !inner.is_empty() {
        out.push(',');
        out.push_str(inner);
    }
    if let Some((ttl, scope)) = cache_hints(method) {
        out.push_str(&format!(r#","ttlMs":{ttl},"cacheScope":"{scope}""#));
    }
    let meta = ResultMeta {
        server_info: server_info(server),
    };
    out.push_str(&format!(r#","_meta":{}}}}}"#, to_json(&meta)));
    Reply::Send {
        json: out,
        error: false,
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DiscoverResult<'a> {
    supported_versions: [&'a str; 1],
    capabilities: Value,
    instructions: &'static str,
}

fn discover(server: &Server, id: &Value) -> Reply {
    let capabilities = match server.config().conformance {
        true => FIXTURE_CAPABILITIES,
        false => CAPABILITIES,
    };
    let result = DiscoverResult {
        supported_versions: SUPPORTED,
        capabilities: sonic_rs::from_str(capabilities).unwrap_or_default(),
        instructions: "only1mcp demo server: test tools (echo, add, sleep, big, ...).",
    };
    send_result(id, result)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListToolsResult {
    tools: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

fn list_tools(server: &Server, id: &Value, params: &Value) -> Reply {
    let all = tool_definitions(server);
    let size = server.config().page_size;
    let page = match params.get("cursor").filter(|c| !c.is_null()) {
        None => tools::page(all, None, size),
        Some(c) => c.as_str().and_then(|c| tools::page(all, Some(c), size)),
    };
    match page {
        Some((tools, next_cursor)) => send_result(id, ListToolsResult { tools, next_cursor }),
        None => send_error(id, INVALID_PARAMS, "Invalid params: invalid cursor"),
    }
}

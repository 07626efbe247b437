//! MCP method dispatch, shared by both transports.
//!
//! Owns the server-wide state ([`Server`]: name, transport, [`Config`], the
//! fixture's [`Ticker`], the 2026 listen [`Hub`]) and the mapping from
//! legacy-era (session) method names to handlers:
//! `initialize` version negotiation and capabilities, `ping`, paginated
//! `tools/list`, `tools/call` routing, and, with the conformance fixture
//! enabled, `logging/setLevel` plus the resource, prompt and completion
//! methods (implemented in `resources.rs` and `prompts.rs`). Keeping the
//! logic here guarantees stdio and HTTP behave identically; the transports
//! only decide how to deliver a [`Reply`] and the messages sent meanwhile.
//! The 2026-07-28 (stateless) dispatch is `modern.rs`; it reuses the
//! handlers here and in the feature modules.

use std::sync::Arc;

use serde::Serialize;
use sonic_rs::{JsonValueTrait, Value};

use super::protocol::{
    progress_token, result_response, send_error, send_result, str_param, Empty, Message, Reply,
    INVALID_PARAMS, METHOD_NOT_FOUND, RESOURCE_NOT_FOUND,
};
use super::session::{level_index, Call, Related, Session, Sink, Ticker};
use super::subscriptions::Hub;
use super::tasks::Tasks;
use super::tasks_methods;
use super::tools::{self, CallToolResult, ToolOutcome};
use super::{fixture, prompts, resources, Config, DemoOptions};

/// Protocol versions this server speaks, oldest first; the last is preferred.
pub const SUPPORTED_VERSIONS: [&str; 3] = ["2025-03-26", "2025-06-18", "2025-11-25"];
const LATEST_VERSION: &str = "2025-11-25";

/// Capabilities without the fixture (single-key objects: stable order).
const CAPABILITIES: &str = r#"{"tools":{"listChanged":false}}"#;
/// Capabilities with the conformance fixture: exactly what it implements.
const FIXTURE_CAPABILITIES: &str = r#"{"tools":{"listChanged":true},"resources":{"subscribe":true,"listChanged":true},"prompts":{"listChanged":true},"logging":{},"completions":{}}"#;

/// Which transport is serving; a few tools (`garbage`, `crash`) differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Stdio,
    Http,
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

/// Protocol state shared by all sessions of one server.
pub struct Server {
    name: String,
    transport: Transport,
    config: Config,
    ticker: Arc<Ticker>,
    /// The 2026-07-28 `subscriptions/listen` streams (both transports).
    hub: Hub,
    /// The fixture's tasks (both eras).
    tasks: Arc<Tasks>,
}

impl Server {
    pub fn new(opts: DemoOptions, transport: Transport, config: Config) -> Self {
        Self {
            name: opts.name,
            transport,
            config,
            ticker: Arc::default(),
            hub: Hub::default(),
            tasks: Arc::default(),
        }
    }

    pub fn tasks(&self) -> &Arc<Tasks> {
        &self.tasks
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn transport(&self) -> Transport {
        self.transport
    }

    pub fn config(&self) -> Config {
        self.config
    }

    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// A new session whose unsolicited messages go to `standalone`.
    pub fn new_session(&self, standalone: Arc<dyn Sink>) -> Arc<Session> {
        let session = Arc::new_cyclic(|me| Session::new_in(standalone, me.clone()));
        if self.config.conformance {
            self.ticker.register(&session);
        }
        session
    }

    /// Handles one message of `session`. Messages related to a request
    /// (progress, logs, requests to the client) go to `related` as they
    /// happen, before the reply is returned. A client's response to a
    /// server→client request wakes the tool waiting for it.
    pub fn handle(&self, session: &Session, msg: Message, related: &mut dyn Related) -> Reply {
        let (id, method, params) = match msg {
            Message::Request { id, method, params } => (id, method, params),
            Message::Response { id, body } => {
                session.deliver(&id, body);
                return Reply::Silent;
            }
            Message::Notification { .. } => return Reply::Silent,
        };
        if !params.is_null() && !params.is_object() {
            return send_error(&id, INVALID_PARAMS, "Invalid params: expected an object");
        }
        let fixture = self.config.conformance;
        match method.as_str() {
            "initialize" => self.initialize(session, &id, &params),
            "ping" => send_result(&id, Empty {}),
            "tools/list" => self.list_tools(session, &id, &params),
            "tools/call" => self.call_tool(session, &id, &params, related),
            "logging/setLevel" if fixture => set_level(session, &id, &params),
            "resources/list" if fixture => resources::list(session, &id, &params),
            "resources/templates/list" if fixture => resources::templates(&id, &params),
            "resources/read" if fixture => {
                resources::read(session, &id, &params, RESOURCE_NOT_FOUND)
            }
            "resources/subscribe" if fixture => resources::subscribe(session, &id, &params, true),
            "resources/unsubscribe" if fixture => {
                resources::subscribe(session, &id, &params, false)
            }
            "prompts/list" if fixture => prompts::list(session, &id, &params, false),
            "prompts/get" if fixture => prompts::get(session, &id, &params),
            "completion/complete" if fixture => prompts::complete(session, &id, &params),
            "tasks/get" | "tasks/result" | "tasks/cancel" | "tasks/list" if fixture => {
                tasks_methods::legacy_method(self, session, &id, &method, &params, related)
            }
            other => send_error(&id, METHOD_NOT_FOUND, &format!("Method not found: {other}")),
        }
    }

    fn initialize(&self, session: &Session, id: &Value, params: &Value) -> Reply {
        let Some(requested) = params.get("protocolVersion").and_then(|v| v.as_str()) else {
            let msg = "Invalid params: protocolVersion must be a string";
            return send_error(id, INVALID_PARAMS, msg);
        };
        let version = if SUPPORTED_VERSIONS.contains(&requested) {
            requested
        } else {
            LATEST_VERSION
        };
        let caps = params
            .get("capabilities")
            .filter(|c| c.is_object())
            .cloned();
        session.initialized(version, caps);
        // The fixture's tasks exist from 2025-11-25 on.
        let capabilities = match self.config.conformance {
            true if version == LATEST_VERSION => format!(
                "{},{}}}",
                &FIXTURE_CAPABILITIES[..FIXTURE_CAPABILITIES.len() - 1],
                tasks_methods::legacy_capability()
            ),
            true => FIXTURE_CAPABILITIES.to_string(),
            false => CAPABILITIES.to_string(),
        };
        send_result(
            id,
            InitializeResult {
                protocol_version: version,
                // Parsed constants keep their source order.
                capabilities: sonic_rs::from_str(&capabilities).unwrap_or_default(),
                server_info: ServerInfo {
                    name: &self.name,
                    version: env!("CARGO_PKG_VERSION"),
                },
                instructions: "only1mcp demo server: test tools (echo, add, sleep, big, ...).",
            },
        )
    }

    fn list_tools(&self, session: &Session, id: &Value, params: &Value) -> Reply {
        let mut all = tools::definitions(self.config.conformance, session.dynamic_visible());
        if self.config.conformance {
            // Before the fixture's dynamic tool, which stays last.
            let dynamic = Some("test_dynamic_tool");
            let at = all
                .iter()
                .position(|t| t.get("name").and_then(|n| n.as_str()) == dynamic)
                .unwrap_or(all.len());
            all.splice(at..at, tasks_methods::definitions(false));
        }
        let page = match params.get("cursor").filter(|c| !c.is_null()) {
            None => tools::page(all, None, self.config.page_size),
            Some(c) => c
                .as_str()
                .and_then(|c| tools::page(all, Some(c), self.config.page_size)),
        };
        match page {
            Some((tools, next_cursor)) => send_result(id, ListToolsResult { tools, next_cursor }),
            None => send_error(id, INVALID_PARAMS, "Invalid params: invalid cursor"),
        }
    }

    fn call_tool(
        &self,
        session: &Session,
        id: &Value,
        params: &Value,
        related: &mut dyn Related,
    ) -> Reply {
        let name = match str_param(id, params, "name") {
            Ok(name) => name,
            Err(reply) => return reply,
        };
        let empty = Value::new_object();
        let args = match params.get("arguments").filter(|a| !a.is_null()) {
            None => &empty,
            Some(a) if a.is_object() => a,
            Some(_) => {
                let msg = "Invalid params: arguments must be an object";
                return send_error(id, INVALID_PARAMS, msg);
            }
        };
        if self.config.conformance {
            if let Some(reply) = tasks_methods::call_legacy(self, session, id, name, args, params) {
                return reply;
            }
        }
        let mut call = Call {
            session,
            related,
            progress_token: progress_token(params),
            input: None,
        };
        let ctx = tools::Ctx {
            server_name: &self.name,
            transport: self.transport,
            fixture: self.config.conformance,
            dynamic: session.dynamic_visible(),
            call: &mut call,
        };
        match tools::call(name, args, ctx) {
            None => send_error(id, INVALID_PARAMS, &format!("Unknown tool: {name}")),
            Some(ToolOutcome::Result(r)) => send_result::<CallToolResult>(id, r),
            Some(ToolOutcome::GarbageThen(line, r)) => {
                Reply::GarbageThen(line, result_response(id, r))
            }
            Some(ToolOutcome::Crash(code)) => Reply::Exit(code),
            Some(ToolOutcome::MissingCapability(caps)) => {
                send_result(id, fixture::missing_capability_result(&caps))
            }
            // Only the 2026 path produces these.
            Some(ToolOutcome::InputRequired(_) | ToolOutcome::Invalid(_)) => {
                send_error(id, INVALID_PARAMS, "Invalid params: not available")
            }
        }
    }
}

fn set_level(session: &Session, id: &Value, params: &Value) -> Reply {
    let level = match str_param(id, params, "level") {
        Ok(level) => level,
        Err(reply) => return reply,
    };
    let Some(index) = level_index(level) else {
        let msg = format!("Invalid params: unknown log level {level}");
        return send_error(id, INVALID_PARAMS, &msg);
    };
    session.set_level(index);
    session.log_standalone("info", &format!("Log level set to: {level}"));
    send_result(id, Empty {})
}

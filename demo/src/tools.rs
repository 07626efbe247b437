//! Tool definitions (name, description, JSON Schemas) and implementations.
//!
//! Owns the catalogue the demo server exposes and what each tool does. The
//! tools exist to exercise a gateway, so several are about transport edge
//! cases rather than functionality:
//!
//! | tool      | arguments                 | result                                               |
//! |-----------|---------------------------|------------------------------------------------------|
//! | `echo`    | `message: string`         | text + `structuredContent {message}`                 |
//! | `add`     | `a: number, b: number`    | text `"<sum>"` + `structuredContent {sum}`           |
//! | `now`     | -                         | current UNIX time (seconds) as text                  |
//! | `fail`    | `message?: string`        | `isError: true` result                               |
//! | `image`   | -                         | image, audio, resource_link and embedded resource    |
//! | `sleep`   | `ms: 0..=600000`          | sleeps, progress at start and end if requested       |
//! | `big`     | `kb: 1..=16384`           | `kb * 1024` `'x'` characters of text                 |
//! | `garbage` | -                         | stdio: a non-JSON line before the response           |
//! | `crash`   | -                         | stdio: exit status 3 without answering               |
//! | `whoami`  | -                         | the server name, to tell replicas apart              |
//! | `headers` | -                         | HTTP request headers received (JSON; stdio: `{}`)    |
//!
//! With the conformance fixture enabled (`DEMO_CONFORMANCE=1`), the `test_*`
//! tools of `fixture.rs` follow these eleven in `tools/list`, and calls this
//! file does not know are passed on to it.
//!
//! With `DEMO_EXTRA_TOOLS=N` (benchmarks: big catalogues) N more tools
//! `t0` .. `t{N-1}` follow them, each an `echo` (same arguments, same result).
//!
//! Argument validation failures are reported as tool execution errors
//! (`isError: true`), as the 2025-11-25 spec asks; an unknown tool name is a
//! protocol error, mapped to -32602 by the caller.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sonic_rs::{json, JsonValueTrait, Value};

use super::mrtr::InputRequired;
use super::server::Transport;
use super::session::Call;
use super::{fixture, tool_headers};

use super::tools_paging::extra_definitions;
pub(crate) use super::tools_paging::{extra_tools, is_extra, page};

const MAX_SLEEP_MS: u64 = 600_000;
const MAX_BIG_KB: u64 = 16_384;

/// A 1x1 RGB PNG.
pub const PNG_B64: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4n8YAAAPNAWbDbP9aAAAAAElFTkSuQmCC";
/// A 1 ms, 8 kHz, 8-bit mono PCM WAV of silence.
pub const WAV_B64: &str =
    "UklGRiwAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQgAAACAgICAgICAgA==";
/// The non-JSON line the `garbage` tool writes on stdio.
pub const GARBAGE_LINE: &str = "this is not json {{{";

/// The tool catalogue, in `tools/list` order. Kept as JSON text (not built
/// with `json!`) because sonic-rs serializes objects it parsed in source
/// order but objects it built in hash order; tests and byte-level
/// comparisons want stable output. It is parsed (not sent raw), so its
/// line breaks never reach the wire. `tests::catalogue_is_consistent` checks
/// it against the limits above and [`call`].
const CATALOGUE: &str = r#"[
{"name":"echo","title":"Echo","description":"Returns the message it is given.",
 "inputSchema":{"type":"object","properties":{"message":{"type":"string","description":"Text to echo back."}},"required":["message"]},
 "outputSchema":{"type":"object","properties":{"message":{"type":"string"}},"required":["message"]},
 "annotations":{"readOnlyHint":true,"idempotentHint":true,"openWorldHint":false}},
{"name":"add","title":"Add","description":"Adds two numbers.",
 "inputSchema":{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}},"required":["a","b"]},
 "outputSchema":{"type":"object","properties":{"sum":{"type":"number"}},"required":["sum"]},
 "annotations":{"readOnlyHint":true,"idempotentHint":true,"openWorldHint":false}},
{"name":"now","description":"Returns the current UNIX time in seconds.",
 "inputSchema":{"type":"object","properties":{}},
 "annotations":{"readOnlyHint":true,"openWorldHint":false}},
{"name":"fail","description":"Always returns a tool error (isError: true).",
 "inputSchema":{"type":"object","properties":{"message":{"type":"string","description":"Error text."}}}},
{"name":"image","description":"Returns one block of every content type: image, audio, resource_link, resource.",
 "inputSchema":{"type":"object","properties":{}},
 "annotations":{"readOnlyHint":true,"idempotentHint":true}},
{"name":"sleep","description":"Sleeps for ms milliseconds; reports progress if a progressToken is given.",
 "inputSchema":{"type":"object","properties":{"ms":{"type":"integer","minimum":0,"maximum":600000}},"required":["ms"]},
 "annotations":{"readOnlyHint":true}},
{"name":"big","description":"Returns kb KiB of text, to test large messages; after delay_ms, to test coalescing.",
 "inputSchema":{"type":"object","properties":{"kb":{"type":"integer","minimum":1,"maximum":16384},"delay_ms":{"type":"integer","minimum":0,"maximum":60000}},"required":["kb"]},
 "annotations":{"readOnlyHint":true,"idempotentHint":true}},
{"name":"garbage","description":"stdio: writes a non-JSON line to stdout before answering.",
 "inputSchema":{"type":"object","properties":{}}},
{"name":"crash","description":"stdio: exits the server with status 3 without answering.",
 "inputSchema":{"type":"object","properties":{}},
 "annotations":{"destructiveHint":true}},
{"name":"whoami","description":"Returns this server's name.",
 "inputSchema":{"type":"object","properties":{}},
 "annotations":{"readOnlyHint":true,"idempotentHint":true}},
{"name":"headers","description":"Returns the HTTP request headers this server received with this call, as a JSON object (names lowercased). Over stdio there are none: {}.",
 "inputSchema":{"type":"object","properties":{}},
 "annotations":{"readOnlyHint":true}}
]"#;

/// All tool definitions, in the fixed order `tools/list` returns them: the
/// demo tools, then (with the fixture) the `test_*` tools, with
/// `test_dynamic_tool` once `dynamic` is true.
pub fn definitions(fixture: bool, dynamic: bool) -> Vec<Value> {
    // The catalogues are compile-time constants covered by unit tests.
    let mut all: Vec<Value> = sonic_rs::from_str(CATALOGUE).unwrap_or_default();
    if fixture {
        all.extend(fixture::definitions(dynamic));
    }
    all.extend(extra_definitions(extra_tools()));
    all
}

/// A `CallToolResult`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallToolResult {
    pub content: Vec<Content>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub structured_content: Option<Value>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub is_error: bool,
}

/// One content block; `type` is the serde tag, written first.
#[derive(Serialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum Content {
    Text {
        text: String,
    },
    Image {
        data: &'static str,
        mime_type: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        annotations: Option<Annotations>,
    },
    Audio {
        data: &'static str,
        mime_type: &'static str,
    },
    ResourceLink {
        uri: &'static str,
        name: &'static str,
        description: &'static str,
        mime_type: &'static str,
    },
    Resource {
        resource: ResourceContents,
    },
}

#[derive(Serialize)]
pub struct Annotations {
    audience: &'static [&'static str],
    priority: f64,
}

/// Resource contents (`resources/read`, embedded resources): text or blob.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceContents {
    pub uri: String,
    pub mime_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Base64.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blob: Option<&'static str>,
}

impl ResourceContents {
    pub fn text(uri: impl Into<String>, mime_type: &'static str, text: impl Into<String>) -> Self {
        Self {
            uri: uri.into(),
            mime_type,
            text: Some(text.into()),
            blob: None,
        }
    }
}

/// What a tool call produced.
pub enum ToolOutcome {
    Result(CallToolResult),
    /// stdio only: write the raw line, then answer with the result.
    GarbageThen(&'static str, CallToolResult),
    /// stdio only: exit the process with this status without answering.
    Crash(i32),
    /// 2026-07-28 only: an `InputRequiredResult` (MRTR).
    InputRequired(InputRequired),
    /// The call needs these client capabilities, which the client did not
    /// declare (-32021 on the 2026 path, an `isError` result before).
    MissingCapability(Vec<&'static str>),
    /// 2026-07-28 only: malformed MRTR input or state (-32602).
    Invalid(String),
}

/// What a tool may use from its environment.
pub struct Ctx<'a, 'c> {
    pub server_name: &'a str,
    pub transport: Transport,
    /// The conformance fixture is enabled.
    pub fixture: bool,
    /// The fixture's dynamic tool exists for this session.
    pub dynamic: bool,
    /// Progress, logs and requests to the client, on the request's stream.
    pub call: &'a mut Call<'c>,
}

pub fn text(s: impl Into<String>) -> Content {
    Content::Text { text: s.into() }
}

pub fn ok_text(s: impl Into<String>) -> CallToolResult {
    CallToolResult {
        content: vec![text(s)],
        structured_content: None,
        is_error: false,
    }
}

pub fn tool_error(s: impl Into<String>) -> CallToolResult {
    CallToolResult {
        is_error: true,
        ..ok_text(s)
    }
}

pub fn bad_args(msg: &str) -> ToolOutcome {
    ToolOutcome::Result(tool_error(format!("Invalid arguments: {msg}")))
}

/// Runs tool `name` with `args` (always a JSON object). `None` means no such
/// tool.
pub fn call(name: &str, args: &Value, ctx: Ctx<'_, '_>) -> Option<ToolOutcome> {
    let outcome = match name {
        "echo" => echo(args),
        "add" => add(args),
        "now" => {
            let secs = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            ToolOutcome::Result(ok_text(secs.to_string()))
        }
        "fail" => {
            let msg = args
                .get("message")
                .and_then(|m| m.as_str())
                .unwrap_or("this tool always fails");
            ToolOutcome::Result(tool_error(msg))
        }
        "image" => ToolOutcome::Result(all_content_types()),
        "sleep" => sleep(args, ctx.call),
        "big" => big(args),
        "garbage" => match ctx.transport {
            Transport::Stdio => ToolOutcome::GarbageThen(GARBAGE_LINE, ok_text("garbage sent")),
            Transport::Http => ToolOutcome::Result(ok_text("garbage sent")),
        },
        "crash" => match ctx.transport {
            Transport::Stdio => ToolOutcome::Crash(3),
            Transport::Http => ToolOutcome::Result(tool_error("crash only works on stdio")),
        },
        "whoami" => ToolOutcome::Result(ok_text(ctx.server_name)),
        "headers" => ToolOutcome::Result(tool_headers::result(ctx.call.related.request_headers())),
        _ if is_extra(name, extra_tools()) => echo(args),
        _ if ctx.fixture => return fixture::call(name, args, ctx.dynamic, ctx.call),
        _ => return None,
    };
    Some(outcome)
}

fn echo(args: &Value) -> ToolOutcome {
    let Some(message) = args.get("message").and_then(|m| m.as_str()) else {
        return bad_args("'message' must be a string");
    };
    ToolOutcome::Result(CallToolResult {
        content: vec![text(message)],
        structured_content: Some(json!({"message": message})),
        is_error: false,
    })
}

fn add(args: &Value) -> ToolOutcome {
    let (Some(a), Some(b)) = (args.get("a"), args.get("b")) else {
        return bad_args("'a' and 'b' are required numbers");
    };
    // Integers stay exact; anything else (or an overflow) is added as f64.
    let sum: Value = match (a.as_i64(), b.as_i64()) {
        (Some(x), Some(y)) if x.checked_add(y).is_some() => Value::from(x + y),
        _ => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) if (x + y).is_finite() => Value::new_f64(x + y).unwrap_or_default(),
            (Some(_), Some(_)) => {
                return ToolOutcome::Result(tool_error("sum is not a finite number"))
            }
            _ => return bad_args("'a' and 'b' must be numbers"),
        },
    };
    let text_sum = sonic_rs::to_string(&sum).unwrap_or_default();
    ToolOutcome::Result(CallToolResult {
        content: vec![text(text_sum)],
        structured_content: Some(json!({"sum": sum})),
        is_error: false,
    })
}

fn sleep(args: &Value, call: &mut Call<'_>) -> ToolOutcome {
    let ms = match args.get("ms").and_then(|v| v.as_u64()) {
        Some(ms) if ms <= MAX_SLEEP_MS => ms,
        _ => return bad_args("'ms' must be an integer in 0..=600000"),
    };
    // Progress counts steps (0 of 1, then 1 of 1) so it strictly increases
    // even for ms = 0.
    call.progress(0, 1, &format!("sleeping {ms}ms"));
    std::thread::sleep(Duration::from_millis(ms));
    call.progress(1, 1, "done");
    ToolOutcome::Result(ok_text(format!("slept {ms}ms")))
}

fn big(args: &Value) -> ToolOutcome {
    let kb = match args.get("kb").and_then(|v| v.as_u64()) {
        Some(kb) if (1..=MAX_BIG_KB).contains(&kb) => kb as usize,
        _ => return bad_args("'kb' must be an integer in 1..=16384"),
    };
    match args.get("delay_ms").map(|v| v.as_u64()) {
        None => {}
        Some(Some(ms)) if ms <= 60_000 => std::thread::sleep(Duration::from_millis(ms)),
        Some(_) => return bad_args("'delay_ms' must be an integer in 0..=60000"),
    }
    ToolOutcome::Result(ok_text("x".repeat(kb * 1024)))
}

fn all_content_types() -> CallToolResult {
    const URI: &str = "demo://files/hello.txt";
    CallToolResult {
        content: vec![
            Content::Image {
                data: PNG_B64,
                mime_type: "image/png",
                annotations: Some(Annotations {
                    audience: &["user"],
                    priority: 0.5,
                }),
            },
            Content::Audio {
                data: WAV_B64,
                mime_type: "audio/wav",
            },
            Content::ResourceLink {
                uri: URI,
                name: "hello.txt",
                description: "A linked text file.",
                mime_type: "text/plain",
            },
            Content::Resource {
                resource: ResourceContents::text(URI, "text/plain", "hello from the demo server"),
            },
        ],
        structured_content: None,
        is_error: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{Session, Sink};

    struct NoSink;
    impl Sink for NoSink {
        fn send(&self, _: &str) -> bool {
            false
        }
    }

    #[test]
    fn catalogue_is_consistent() {
        let tools: Vec<Value> = sonic_rs::from_str(CATALOGUE).expect("catalogue is valid JSON");
        assert_eq!(tools.len(), 11);
        assert_eq!(definitions(false, true).len(), tools.len());
        let with_fixture = definitions(true, true);
        assert!(with_fixture.len() > tools.len() + 10);
        let session = Session::new(std::sync::Arc::new(NoSink));
        for tool in &with_fixture {
            let name = tool.get("name").and_then(|n| n.as_str()).expect("name");
            assert!(
                tool.get("description").is_some_and(|d| d.is_str()),
                "{name}"
            );
            let schema = tool.get("inputSchema").expect("inputSchema");
            assert_eq!(
                schema.get("type").and_then(|t| t.as_str()),
                Some("object"),
                "{name}"
            );
            let mut related = |_: String| false;
            let mut peer = Call {
                session: &session,
                related: &mut related,
                progress_token: None,
                input: None,
            };
            let ctx = Ctx {
                server_name: "t",
                transport: Transport::Http,
                fixture: true,
                dynamic: true,
                call: &mut peer,
            };
            // Every listed tool is callable (args may be rejected, but the tool exists).
            assert!(
                call(name, &json!({"ms": 0, "kb": 1}), ctx).is_some(),
                "{name}"
            );
        }
        let sleep_max = tools[5].pointer(["inputSchema", "properties", "ms", "maximum"]);
        assert_eq!(sleep_max.and_then(|v| v.as_u64()), Some(MAX_SLEEP_MS));
        let big_max = tools[6].pointer(["inputSchema", "properties", "kb", "maximum"]);
        assert_eq!(big_max.and_then(|v| v.as_u64()), Some(MAX_BIG_KB));
    }

    #[test]
    fn extra_tools_are_echoes() {
        let defs = extra_definitions(50);
        assert_eq!(defs.len(), 50);
        assert_eq!(defs[0].get("name").and_then(|n| n.as_str()), Some("t0"));
        assert_eq!(defs[49].get("name").and_then(|n| n.as_str()), Some("t49"));
        let schema = defs[7].get("inputSchema").expect("inputSchema");
        assert_eq!(schema.get("type").and_then(|t| t.as_str()), Some("object"));
        assert!(extra_definitions(0).is_empty());
        assert!(is_extra("t0", 50) && is_extra("t49", 50));
        for name in [
            "t50",
            "t",
            "t00",
            "t01",
            "t-1",
            "t+1",
            "echo",
            "tx",
            "test_simple_text",
        ] {
            assert!(!is_extra(name, 50), "{name}");
        }
        assert!(!is_extra("t0", 0));
        // An extra tool answers like echo.
        let ToolOutcome::Result(r) = echo(&json!({"message": "hi"})) else {
            panic!("echo answers with a result");
        };
        assert_eq!(
            sonic_rs::to_string(&r).unwrap(),
            r#"{"content":[{"type":"text","text":"hi"}],"structuredContent":{"message":"hi"}}"#
        );
    }
}

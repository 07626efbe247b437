//! The conformance fixture's tools (enabled by `DEMO_CONFORMANCE=1`).
//!
//! Owns the `test_*` tools that `npx @modelcontextprotocol/conformance
//! server` calls by name, modelled on the suite's reference fixture
//! (`examples/servers/typescript/everything-server.ts` in
//! modelcontextprotocol/conformance): fixed content of every type, logging
//! and progress during a call, a tool error, server→client requests
//! (`sampling/createMessage`, three `elicitation/create` schemas), the SSE
//! polling tool, the JSON Schema 2020-12 tool (with the SEP-2106 keywords:
//! `$anchor`, `allOf`/`anyOf`, `if`/`then`/`else`) and a tool that appears
//! [`DYNAMIC_DELAY`](super::session::DYNAMIC_DELAY) after `initialize`.
//!
//! Unlike the reference, a server→client request is only sent if the client
//! declared the capability in `initialize`; otherwise the tool returns an
//! `isError` result saying so (-32021 on the 2026 path). Every failure of
//! such a request (error, timeout, no stream) is an `isError` result too.
//! On the 2026-07-28 path the same tools run unchanged: their requests to
//! the client become MRTR input requests (`mrtr::InputBridge`).

use std::time::Duration;

use serde::Serialize;
use sonic_rs::{JsonValueTrait, Value};

use super::session::Call;
use super::tools::{
    bad_args, text, tool_error, CallToolResult, Content, ResourceContents, ToolOutcome, PNG_B64,
    WAV_B64,
};

/// The fixture's tools, in `tools/list` order (parsed, so the order holds).
const CATALOGUE: &str = r##"[
{"name":"test_simple_text","description":"Tests simple text content response","inputSchema":{"type":"object","properties":{}}},
{"name":"test_image_content","description":"Tests image content response","inputSchema":{"type":"object","properties":{}}},
{"name":"test_audio_content","description":"Tests audio content response","inputSchema":{"type":"object","properties":{}}},
{"name":"test_embedded_resource","description":"Tests embedded resource content response","inputSchema":{"type":"object","properties":{}}},
{"name":"test_multiple_content_types","description":"Tests response with multiple content types (text, image, resource)","inputSchema":{"type":"object","properties":{}}},
{"name":"test_tool_with_logging","description":"Tests tool that emits log messages during execution","inputSchema":{"type":"object","properties":{}}},
{"name":"test_tool_with_progress","description":"Tests tool that reports progress notifications","inputSchema":{"type":"object","properties":{}}},
{"name":"test_error_handling","description":"Tests error response handling","inputSchema":{"type":"object","properties":{}}},
{"name":"test_reconnection","description":"Tests SSE stream disconnection and client reconnection (SEP-1699): on HTTP the server closes the stream mid-call and sends the result after the client reconnects.","inputSchema":{"type":"object","properties":{}}},
{"name":"test_sampling","description":"Tests server-initiated sampling (LLM completion request)","inputSchema":{"type":"object","properties":{"prompt":{"type":"string","description":"The prompt to send to the LLM"}},"required":["prompt"]}},
{"name":"test_elicitation","description":"Tests server-initiated elicitation (user input request)","inputSchema":{"type":"object","properties":{"message":{"type":"string","description":"The message to show the user"}},"required":["message"]}},
{"name":"test_elicitation_sep1034_defaults","description":"Tests elicitation with default values per SEP-1034","inputSchema":{"type":"object","properties":{}}},
{"name":"test_elicitation_sep1330_enums","description":"Tests elicitation with enum schema improvements per SEP-1330","inputSchema":{"type":"object","properties":{}}},
{"name":"json_schema_2020_12_tool","description":"Tool with JSON Schema 2020-12 features for conformance testing (SEP-1613, SEP-2106)",
 "inputSchema":{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","$defs":{"address":{"$anchor":"addressDef","type":"object","properties":{"street":{"type":"string"},"city":{"type":"string"}}}},
  "properties":{"name":{"type":"string"},"address":{"$ref":"#/$defs/address"},"contactMethod":{"type":"string","enum":["phone","email"]},"phone":{"type":"string"},"email":{"type":"string"}},
  "allOf":[{"anyOf":[{"required":["phone"]},{"required":["email"]}]}],
  "if":{"properties":{"contactMethod":{"const":"phone"}},"required":["contactMethod"]},"then":{"required":["phone"]},"else":{"required":["email"]},
  "additionalProperties":false}}
]"##;

const DYNAMIC_TOOL: &str = r#"{"name":"test_dynamic_tool","description":"A tool that was added dynamically, 2 s after initialize","inputSchema":{"type":"object","properties":{}}}"#;

const ELICIT_SIMPLE: &str = r#"{"type":"object","properties":{"response":{"type":"string","description":"User's response"}},"required":["response"]}"#;

const ELICIT_DEFAULTS: &str = r#"{"type":"object","properties":{
"name":{"type":"string","description":"User name","default":"John Doe"},
"age":{"type":"integer","description":"User age","default":30},
"score":{"type":"number","description":"User score","default":95.5},
"status":{"type":"string","description":"User status","enum":["active","inactive","pending"],"default":"active"},
"verified":{"type":"boolean","description":"Verification status","default":true}},"required":[]}"#;

const ELICIT_ENUMS: &str = r#"{"type":"object","properties":{
"untitledSingle":{"type":"string","description":"Select one option","enum":["option1","option2","option3"]},
"titledSingle":{"type":"string","description":"Select one option with titles","oneOf":[{"const":"value1","title":"First Option"},{"const":"value2","title":"Second Option"},{"const":"value3","title":"Third Option"}]},
"legacyEnum":{"type":"string","description":"Select one option (legacy)","enum":["opt1","opt2","opt3"],"enumNames":["Option One","Option Two","Option Three"]},
"untitledMulti":{"type":"array","description":"Select multiple options","minItems":1,"maxItems":3,"items":{"type":"string","enum":["option1","option2","option3"]}},
"titledMulti":{"type":"array","description":"Select multiple options with titles","minItems":1,"maxItems":3,"items":{"anyOf":[{"const":"value1","title":"First Choice"},{"const":"value2","title":"Second Choice"},{"const":"value3","title":"Third Choice"}]}}},"required":[]}"#;

const STEP: Duration = Duration::from_millis(50);

/// The fixture's tool definitions; `test_dynamic_tool` last, if `dynamic`.
pub fn definitions(dynamic: bool) -> Vec<Value> {
    let mut all: Vec<Value> = sonic_rs::from_str(CATALOGUE).unwrap_or_default();
    if dynamic {
        all.extend(sonic_rs::from_str::<Value>(DYNAMIC_TOOL));
    }
    all
}

fn result(content: Vec<Content>) -> ToolOutcome {
    ToolOutcome::Result(CallToolResult {
        content,
        structured_content: None,
        is_error: false,
    })
}

fn image() -> Content {
    Content::Image {
        data: PNG_B64,
        mime_type: "image/png",
        annotations: None,
    }
}

/// Runs fixture tool `name`; `None` if there is no such tool (the dynamic
/// one included, until `dynamic`).
pub fn call(name: &str, args: &Value, dynamic: bool, call: &mut Call<'_>) -> Option<ToolOutcome> {
    let outcome = match name {
        "test_simple_text" => result(vec![text("This is a simple text response for testing.")]),
        "test_image_content" => result(vec![image()]),
        "test_audio_content" => result(vec![Content::Audio {
            data: WAV_B64,
            mime_type: "audio/wav",
        }]),
        "test_embedded_resource" => result(vec![Content::Resource {
            resource: ResourceContents::text(
                "test://embedded-resource",
                "text/plain",
                "This is an embedded resource content.",
            ),
        }]),
        "test_multiple_content_types" => result(vec![
            text("Multiple content types test:"),
            image(),
            Content::Resource {
                resource: ResourceContents::text(
                    "test://mixed-content-resource",
                    "application/json",
                    r#"{"test":"data","value":123}"#,
                ),
            },
        ]),
        "test_tool_with_logging" => {
            call.log("info", "Tool execution started");
            std::thread::sleep(STEP);
            call.log("info", "Tool processing data");
            std::thread::sleep(STEP);
            call.log("info", "Tool execution completed");
            result(vec![text("Tool with logging executed successfully")])
        }
        "test_tool_with_progress" => {
            for (i, step) in [0, 50, 100].into_iter().enumerate() {
                if i > 0 {
                    std::thread::sleep(STEP);
                }
                call.progress(step, 100, &format!("Completed step {step} of 100"));
            }
            let token = match &call.progress_token {
                Some(t) => t.as_str().map_or_else(
                    || sonic_rs::to_string(t).unwrap_or_default(),
                    str::to_string,
                ),
                None => "no progress token".to_string(),
            };
            result(vec![text(token)])
        }
        "test_error_handling" => ToolOutcome::Result(tool_error(
            "This tool intentionally returns an error for testing",
        )),
        "test_reconnection" => {
            if call.disconnect() {
                // Give the client time to notice and reconnect (it honours `retry`).
                std::thread::sleep(Duration::from_millis(100));
            }
            result(vec![text(
                "Reconnection test completed successfully. If you received this, the client properly reconnected after stream closure.",
            )])
        }
        "test_sampling" => sampling(args, call),
        "test_elicitation" => match args.get("message").and_then(|m| m.as_str()) {
            Some(message) => elicit(call, message, ELICIT_SIMPLE, "User response"),
            None => bad_args("'message' must be a string"),
        },
        "test_elicitation_sep1034_defaults" => elicit(
            call,
            "Please review and update the form fields with defaults",
            ELICIT_DEFAULTS,
            "Elicitation completed",
        ),
        "test_elicitation_sep1330_enums" => elicit(
            call,
            "Please select options from the enum fields",
            ELICIT_ENUMS,
            "Elicitation completed",
        ),
        "json_schema_2020_12_tool" => {
            let args = sonic_rs::to_string(args).unwrap_or_default();
            result(vec![text(format!(
                "JSON Schema 2020-12 tool called with: {args}"
            ))])
        }
        "test_dynamic_tool" if dynamic => result(vec![text("This tool was added dynamically.")]),
        _ => return None,
    };
    Some(outcome)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SamplingParams<'a> {
    messages: [SamplingMessage<'a>; 1],
    max_tokens: u32,
}

#[derive(Serialize)]
struct SamplingMessage<'a> {
    role: &'static str,
    content: SamplingText<'a>,
}

#[derive(Serialize)]
struct SamplingText<'a> {
    r#type: &'static str,
    text: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ElicitParams<'a> {
    /// Only from 2025-11-25 on (older schemas have no `mode`).
    #[serde(skip_serializing_if = "Option::is_none")]
    mode: Option<&'static str>,
    message: &'a str,
    requested_schema: Value,
}

/// The legacy answer to a missing client capability: an `isError` result.
pub fn missing_capability_result(caps: &[&str]) -> CallToolResult {
    let what = caps.join("', '");
    tool_error(format!(
        "The client does not support {what}: it declared no '{what}' capability in initialize"
    ))
}

fn sampling(args: &Value, call: &mut Call<'_>) -> ToolOutcome {
    let Some(prompt) = args.get("prompt").and_then(|p| p.as_str()) else {
        return bad_args("'prompt' must be a string");
    };
    if call.session.client_capability("sampling").is_none() {
        return ToolOutcome::MissingCapability(vec!["sampling"]);
    }
    let params = SamplingParams {
        messages: [SamplingMessage {
            role: "user",
            content: SamplingText {
                r#type: "text",
                text: prompt,
            },
        }],
        max_tokens: 100,
    };
    match call.request("sampling/createMessage", &params) {
        Ok(answer) => {
            // `content` is one block, or (2025-11-25, with tools) an array.
            let content = answer.get("content");
            let reply = content
                .and_then(|c| {
                    c.get("text")
                        .or_else(|| c.get(0).and_then(|b| b.get("text")))
                })
                .and_then(|t| t.as_str())
                .unwrap_or("No response");
            result(vec![text(format!("LLM response: {reply}"))])
        }
        Err(e) => ToolOutcome::Result(tool_error(format!("sampling/createMessage failed: {e}"))),
    }
}

/// True if the client's `elicitation` capability covers form mode (an
/// empty object means form only, for backwards compatibility).
fn supports_form(cap: &Value) -> bool {
    cap.is_object() && (cap.get("form").is_some() || cap.get("url").is_none())
}

fn elicit(call: &mut Call<'_>, message: &str, schema: &str, label: &str) -> ToolOutcome {
    if !call
        .session
        .client_capability("elicitation")
        .is_some_and(|c| supports_form(&c))
    {
        return ToolOutcome::MissingCapability(vec!["elicitation"]);
    }
    let params = ElicitParams {
        mode: (call.session.version().as_deref() == Some("2025-11-25")).then_some("form"),
        message,
        requested_schema: sonic_rs::from_str(schema).unwrap_or_default(),
    };
    match call.request("elicitation/create", &params) {
        Ok(answer) => {
            let action = answer.get("action").and_then(|a| a.as_str()).unwrap_or("");
            let content = answer.get("content").map_or_else(
                || "{}".to_string(),
                |c| sonic_rs::to_string(c).unwrap_or_default(),
            );
            result(vec![text(format!(
                "{label}: action={action}, content={content}"
            ))])
        }
        Err(e) => ToolOutcome::Result(tool_error(format!("elicitation/create failed: {e}"))),
    }
}

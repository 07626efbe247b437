//! `tools/call` and `prompts/get` on the 2026-07-28 path.
//!
//! Owns how a modern call runs and what it answers: the MRTR parameters
//! (`inputResponses` must be an object, `requestState` a string, else
//! -32602), a throwaway session built from the request's `_meta`, the 2026
//! fixture's tools first (`fixture2026.rs`), then the demo and legacy
//! fixture tools with their client requests bridged to input requests
//! (`mrtr::InputBridge`), and the mapping of a tool's outcome to an answer:
//! a stamped result, an `InputRequiredResult` (`resultType:
//! "input_required"`, no cache hints), -32602 for malformed input or a
//! tampered state, or 400/-32021 with `data.requiredCapabilities` (an object
//! keyed by capability) when the request did not declare what the call
//! needs. The MRTR prompt `test_input_required_result_prompt` is served
//! here too; other prompts go to `prompts.rs`.

use serde::Serialize;
use sonic_rs::{JsonValueTrait, Value};

use super::fixture2026;
use super::modern::{server_info, stamp, Answer, Meta, ResultMeta, MISSING_CAPABILITY};
use super::mrtr::{Cx, InputBridge, InputRequired, Requests};
use super::prompts;
use super::protocol::{progress_token, send_error, send_result, str_param, Reply, INVALID_PARAMS};
use super::server::Server;
use super::session::{Call, Related};
use super::tools::{self, ToolOutcome};

fn invalid(id: &Value, message: &str) -> Answer {
    Answer::ok(send_error(id, INVALID_PARAMS, message))
}

/// `params.inputResponses` (an object) and `params.requestState` (a string).
fn mrtr_params(params: &Value) -> Result<(Option<&Value>, Option<&str>), &'static str> {
    let responses = match params.get("inputResponses") {
        None => None,
        Some(r) if r.is_object() => Some(r),
        Some(_) => return Err("Invalid params: inputResponses must be an object"),
    };
    let state = match params.get("requestState") {
        None => None,
        Some(s) => Some(
            s.as_str()
                .ok_or("Invalid params: requestState must be a string")?,
        ),
    };
    Ok((responses, state))
}

pub fn call_tool(
    server: &Server,
    id: &Value,
    params: &Value,
    meta: &Meta,
    related: &mut dyn Related,
) -> Answer {
    let name = match str_param(id, params, "name") {
        Ok(name) => name,
        Err(reply) => return Answer::ok(reply),
    };
    let empty = Value::new_object();
    let args = match params.get("arguments").filter(|a| !a.is_null()) {
        None => &empty,
        Some(a) if a.is_object() => a,
        Some(_) => return invalid(id, "Invalid params: arguments must be an object"),
    };
    let (responses, state) = match mrtr_params(params) {
        Ok(found) => found,
        Err(msg) => return invalid(id, msg),
    };
    if server.config().conformance {
        if let Some(answer) =
            super::tasks_methods::call_modern(server, id, name, args, params, meta)
        {
            return answer;
        }
    }
    let session = meta.session();
    let mut bridge = InputBridge::new(responses);
    let mut call = Call {
        session: &session,
        related,
        progress_token: progress_token(params),
        input: Some(&mut bridge),
    };
    let fixture = server.config().conformance;
    let mut outcome = None;
    if fixture {
        let mut cx = Cx {
            call: &mut call,
            responses,
            state,
            hub: server.hub(),
        };
        outcome = fixture2026::call(name, args, &mut cx);
    }
    if outcome.is_none() {
        let ctx = tools::Ctx {
            server_name: server.name(),
            transport: server.transport(),
            fixture,
            dynamic: false,
            call: &mut call,
        };
        outcome = tools::call(name, args, ctx);
    }
    let Some(outcome) = outcome else {
        return invalid(id, &format!("Unknown tool: {name}"));
    };
    if let Some(msg) = bridge.invalid.take() {
        return invalid(id, &msg);
    }
    if !bridge.asked.requests.is_empty() {
        return input_required(server, id, &bridge.asked);
    }
    outcome_answer(server, id, outcome)
}

fn outcome_answer(server: &Server, id: &Value, outcome: ToolOutcome) -> Answer {
    match outcome {
        ToolOutcome::Result(r) => Answer::ok(stamp(server, "tools/call", id, send_result(id, r))),
        ToolOutcome::GarbageThen(line, r) => {
            match stamp(server, "tools/call", id, send_result(id, r)) {
                Reply::Send { json, .. } => Answer::ok(Reply::GarbageThen(line, json)),
                other => Answer::ok(other),
            }
        }
        ToolOutcome::Crash(code) => Answer::ok(Reply::Exit(code)),
        ToolOutcome::InputRequired(request) => input_required(server, id, &request),
        ToolOutcome::Invalid(msg) => invalid(id, &msg),
        ToolOutcome::MissingCapability(caps) => {
            let inner: Vec<String> = caps.iter().map(|c| format!("\"{c}\":{{}}")).collect();
            let data = format!("{{\"requiredCapabilities\":{{{}}}}}", inner.join(","));
            let data: Value = sonic_rs::from_str(&data).unwrap_or_default();
            let msg = format!("Missing required client capability: {}", caps.join(", "));
            Answer::error(400, id, MISSING_CAPABILITY, &msg, Some(&data))
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InputRequiredResult<'a> {
    result_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    input_requests: Option<Requests<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_state: Option<&'a str>,
    #[serde(rename = "_meta")]
    meta: ResultMeta,
}

fn input_required(server: &Server, id: &Value, request: &InputRequired) -> Answer {
    let result = InputRequiredResult {
        result_type: "input_required",
        input_requests: (!request.requests.is_empty()).then_some(Requests(&request.requests)),
        request_state: request.state.as_deref(),
        meta: ResultMeta {
            server_info: server_info(server),
        },
    };
    Answer::ok(send_result(id, result))
}

#[derive(Serialize)]
struct PromptText<'a> {
    r#type: &'static str,
    text: &'a str,
}

#[derive(Serialize)]
struct PromptMessage<'a> {
    role: &'static str,
    content: PromptText<'a>,
}

#[derive(Serialize)]
struct GetPromptResult<'a> {
    description: &'static str,
    messages: [PromptMessage<'a>; 1],
}

pub fn get_prompt(server: &Server, id: &Value, params: &Value, meta: &Meta) -> Answer {
    let session = meta.session();
    let is_mrtr = params.get("name").and_then(|n| n.as_str()) == Some(fixture2026::PROMPT_NAME);
    if !is_mrtr {
        return Answer::ok(stamp(
            server,
            "prompts/get",
            id,
            prompts::get(&session, id, params),
        ));
    }
    let (responses, state) = match mrtr_params(params) {
        Ok(found) => found,
        Err(msg) => return invalid(id, msg),
    };
    let mut related = |_: String| false;
    let mut call = Call {
        session: &session,
        related: &mut related,
        progress_token: None,
        input: None,
    };
    let cx = Cx {
        call: &mut call,
        responses,
        state,
        hub: server.hub(),
    };
    match fixture2026::prompt(&cx) {
        Ok(text) => {
            let result = GetPromptResult {
                description: "A prompt that asks the client for context (MRTR) before rendering",
                messages: [PromptMessage {
                    role: "user",
                    content: PromptText {
                        r#type: "text",
                        text: &text,
                    },
                }],
            };
            Answer::ok(stamp(server, "prompts/get", id, send_result(id, result)))
        }
        Err(outcome) => outcome_answer(server, id, outcome),
    }
}

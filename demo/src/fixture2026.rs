//! The conformance fixture's 2026-07-28 tools and MRTR prompt
//! (`DEMO_CONFORMANCE=1`, modern path only).
//!
//! Owns the tools and the prompt that `npx @modelcontextprotocol/conformance
//! server --requirements 2026-07-28` calls by name, with the names, input
//! request keys and behaviour of the suite's reference fixture
//! (`everything-server.ts` / `sep-2322-mrtr-server.ts` in
//! modelcontextprotocol/conformance):
//!
//! | tool / prompt                                   | input requests (keys)                        |
//! |-------------------------------------------------|----------------------------------------------|
//! | `test_input_required_result_elicitation`        | `user_name` (elicitation)                    |
//! | `test_input_required_result_sampling`           | `sample_request` (sampling)                  |
//! | `test_input_required_result_list_roots`         | `roots_request` (roots/list)                 |
//! | `test_input_required_result_request_state`      | `confirm` + sealed `requestState`            |
//! | `test_input_required_result_multiple_inputs`    | `user_name`, `greeting`, `client_roots` + state |
//! | `test_input_required_result_multi_round`        | `step1`, then `step2`, state per round       |
//! | `test_input_required_result_tampered_state`     | `confirm` + sealed state; tampering → -32602 |
//! | `test_input_required_result_capabilities`       | `sample_input` / `elicit_input`, declared only |
//! | `test_missing_capability`                       | -32021 without `sampling`, else `sample_request` |
//! | `test_streaming_elicitation`                    | `user_input`; nothing but notifications on the stream |
//! | prompt `test_input_required_result_prompt`      | `user_context` (elicitation)                 |
//!
//! plus `test_logging_tool` (logs only at the request's `_meta` logLevel),
//! `test_trigger_tool_change` / `test_trigger_prompt_change` (announce a
//! list change to listen streams; the lists themselves are static) and
//! `test_header_param` (a string property with `x-mcp-header: Region`).
//!
//! Every call is independent (no server memory): a retry is judged only by
//! its `inputResponses` and its `requestState`, which is sealed
//! (`mrtr::seal`) and names its tool. Missing answers are asked for again;
//! unknown keys are ignored; a malformed answer or a state that fails its
//! integrity check is -32602; an input kind the client did not declare is
//! never requested (-32021 instead).

use sonic_rs::{JsonValueTrait, Value};

use super::mrtr::{self, state, Cx, InputRequired};
use super::subscriptions::List;
use super::tools::{bad_args, ok_text, ToolOutcome};

/// The 2026 fixture's tools, in `tools/list` order (parsed, so the order holds).
const CATALOGUE: &str = r#"[
{"name":"test_input_required_result_elicitation","description":"MRTR: asks for the user's name (input request user_name), then greets them","inputSchema":{"type":"object","properties":{}}},
{"name":"test_input_required_result_sampling","description":"MRTR: asks the client's LLM a question (input request sample_request)","inputSchema":{"type":"object","properties":{}}},
{"name":"test_input_required_result_list_roots","description":"MRTR: asks for the client's roots (input request roots_request)","inputSchema":{"type":"object","properties":{}}},
{"name":"test_input_required_result_request_state","description":"MRTR: asks for confirmation with a sealed requestState; answers state-ok once it verifies","inputSchema":{"type":"object","properties":{}}},
{"name":"test_input_required_result_multiple_inputs","description":"MRTR: asks for a name, a sampled greeting and the roots in one round","inputSchema":{"type":"object","properties":{}}},
{"name":"test_input_required_result_multi_round","description":"MRTR: two rounds (step1: name, step2: favourite colour), a new requestState each round","inputSchema":{"type":"object","properties":{}}},
{"name":"test_input_required_result_tampered_state","description":"MRTR: sealed requestState; a tampered state is rejected with -32602","inputSchema":{"type":"object","properties":{}}},
{"name":"test_input_required_result_capabilities","description":"MRTR: asks only for the input kinds the request declared (sampling, elicitation)","inputSchema":{"type":"object","properties":{}}},
{"name":"test_missing_capability","description":"Needs the sampling client capability: -32021 when the request does not declare it","inputSchema":{"type":"object","properties":{}}},
{"name":"test_streaming_elicitation","description":"Asks for input via MRTR; its response stream never carries a request to the client","inputSchema":{"type":"object","properties":{}}},
{"name":"test_logging_tool","description":"Emits debug, info and warning logs, only at the request's _meta logLevel or above","inputSchema":{"type":"object","properties":{}}},
{"name":"test_trigger_tool_change","description":"Sends notifications/tools/list_changed to open subscriptions/listen streams","inputSchema":{"type":"object","properties":{}}},
{"name":"test_trigger_prompt_change","description":"Sends notifications/prompts/list_changed to open subscriptions/listen streams","inputSchema":{"type":"object","properties":{}}},
{"name":"test_header_param","description":"Echoes region, which HTTP clients also send as the Mcp-Param-Region header (x-mcp-header)",
 "inputSchema":{"type":"object","properties":{"region":{"type":"string","description":"Any text","x-mcp-header":"Region"}}}}
]"#;

pub const PROMPT_NAME: &str = "test_input_required_result_prompt";

const NAME: &str =
    r#"{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}"#;
const OK: &str = r#"{"type":"object","properties":{"ok":{"type":"boolean"}},"required":["ok"]}"#;
const COLOR: &str =
    r#"{"type":"object","properties":{"color":{"type":"string"}},"required":["color"]}"#;
const CONTEXT: &str =
    r#"{"type":"object","properties":{"context":{"type":"string"}},"required":["context"]}"#;
const VALUE: &str =
    r#"{"type":"object","properties":{"value":{"type":"string"}},"required":["value"]}"#;

const ELICIT: &str = "elicitation/create";
const SAMPLE: &str = "sampling/createMessage";
const ROOTS: &str = "roots/list";

/// The 2026 fixture's tool definitions, in `tools/list` order.
pub fn definitions() -> Vec<Value> {
    sonic_rs::from_str(CATALOGUE).unwrap_or_default()
}

fn done(text: impl Into<String>) -> ToolOutcome {
    ToolOutcome::Result(ok_text(text))
}

fn ask(key: &str, request: Value) -> InputRequired {
    InputRequired::default().ask(key, request)
}

/// Runs 2026 fixture tool `name`; `None` if it is not one of them.
pub fn call(name: &str, args: &Value, cx: &mut Cx<'_, '_>) -> Option<ToolOutcome> {
    let outcome = match name {
        "test_input_required_result_elicitation" => elicitation(cx),
        "test_input_required_result_sampling" => single(cx, "sampling", "sample_request", SAMPLE),
        "test_input_required_result_list_roots" => single(cx, "roots", "roots_request", ROOTS),
        "test_input_required_result_request_state" => {
            confirmed(cx, name, "state-ok: requestState validated")
        }
        "test_input_required_result_tampered_state" => {
            confirmed(cx, name, "Request state verified; the call is complete.")
        }
        "test_input_required_result_multiple_inputs" => multiple(cx, name),
        "test_input_required_result_multi_round" => multi_round(cx, name),
        "test_input_required_result_capabilities" => capabilities(cx),
        "test_missing_capability" => single(cx, "sampling", "sample_request", SAMPLE),
        "test_streaming_elicitation" => streaming(cx),
        "test_logging_tool" => {
            cx.call.log("debug", "test_logging_tool: debug detail");
            cx.call.log("info", "test_logging_tool: started");
            cx.call.log("warning", "test_logging_tool: finished");
            done("test_logging_tool done: it logs only when _meta sets io.modelcontextprotocol/logLevel")
        }
        "test_trigger_tool_change" => trigger(cx, List::Tools),
        "test_trigger_prompt_change" => trigger(cx, List::Prompts),
        "test_header_param" => match args.get("region").filter(|r| !r.is_null()) {
            None => done("No region given"),
            Some(r) => match r.as_str() {
                Some(region) => done(format!("Region: {region}")),
                None => bad_args("'region' must be a string"),
            },
        },
        _ => return None,
    };
    Some(outcome)
}

fn outcome(step: Result<ToolOutcome, ToolOutcome>) -> ToolOutcome {
    step.unwrap_or_else(|o| o)
}

fn elicitation(cx: &Cx<'_, '_>) -> ToolOutcome {
    outcome((|| {
        if let Some(missing) = cx.missing(&["elicitation"]) {
            return Ok(missing);
        }
        Ok(match cx.answer("user_name", ELICIT)? {
            Some(r) => match mrtr::accepted_str(r, "name") {
                Some(name) => done(format!("Hello, {name}!")),
                None => done("Hello! (no name was given)"),
            },
            None => ToolOutcome::InputRequired(ask(
                "user_name",
                mrtr::elicit("What is your name?", NAME),
            )),
        })
    })())
}

/// One sampling or roots round: `sample_request` / `roots_request`.
fn single(cx: &Cx<'_, '_>, capability: &'static str, key: &str, method: &str) -> ToolOutcome {
    outcome((|| {
        if let Some(missing) = cx.missing(&[capability]) {
            return Ok(missing);
        }
        Ok(match (cx.answer(key, method)?, method) {
            (Some(r), SAMPLE) => done(format!(
                "Sampling result: {}",
                mrtr::sampled_text(r).unwrap_or("no response")
            )),
            (Some(r), _) => done(format!("Found {} root(s)", mrtr::root_count(r))),
            (None, SAMPLE) => ToolOutcome::InputRequired(ask(
                key,
                mrtr::sample("What is the capital of France?", 100),
            )),
            (None, _) => ToolOutcome::InputRequired(ask(key, mrtr::roots())),
        })
    })())
}

/// `confirm` with a sealed state: request-state and tampered-state.
fn confirmed(cx: &Cx<'_, '_>, tool: &str, ok_text: &str) -> ToolOutcome {
    outcome((|| {
        if let Some(missing) = cx.missing(&["elicitation"]) {
            return Ok(missing);
        }
        let verified = cx.verified_state(tool)?;
        if let (Some(_), Some(r)) = (verified, cx.answer("confirm", ELICIT)?) {
            let confirmed = mrtr::accepted(r)
                .and_then(|c| c.get("ok"))
                .is_some_and(|ok| ok.is_true());
            return Ok(match confirmed {
                true => done(ok_text),
                false => done(format!("{ok_text} (but the user did not confirm)")),
            });
        }
        let request = ask("confirm", mrtr::elicit("Please confirm", OK));
        Ok(ToolOutcome::InputRequired(
            request.with_state(&state(tool, 1, None)),
        ))
    })())
}

fn multiple(cx: &Cx<'_, '_>, tool: &str) -> ToolOutcome {
    outcome((|| {
        if let Some(missing) = cx.missing(&["elicitation", "sampling", "roots"]) {
            return Ok(missing);
        }
        let verified = cx.verified_state(tool)?;
        let answers = (
            cx.answer("user_name", ELICIT)?,
            cx.answer("greeting", SAMPLE)?,
            cx.answer("client_roots", ROOTS)?,
        );
        if let (Some(_), (Some(name), Some(greeting), Some(roots))) = (verified, answers) {
            return Ok(done(format!(
                "Name: {}; Greeting: {}; Roots: {}",
                mrtr::accepted_str(name, "name").unwrap_or("unknown"),
                mrtr::sampled_text(greeting).unwrap_or("Hello there!"),
                mrtr::root_count(roots)
            )));
        }
        let request = ask("user_name", mrtr::elicit("What is your name?", NAME))
            .ask("greeting", mrtr::sample("Generate a greeting", 50))
            .ask("client_roots", mrtr::roots());
        Ok(ToolOutcome::InputRequired(
            request.with_state(&state(tool, 1, None)),
        ))
    })())
}

fn multi_round(cx: &Cx<'_, '_>, tool: &str) -> ToolOutcome {
    outcome((|| {
        if let Some(missing) = cx.missing(&["elicitation"]) {
            return Ok(missing);
        }
        let step1 = || ask("step1", mrtr::elicit("Step 1: What is your name?", NAME));
        let step2 = || {
            ask(
                "step2",
                mrtr::elicit("Step 2: What is your favorite color?", COLOR),
            )
        };
        let next = match cx.verified_state(tool)? {
            Some(doc) if doc.round == 2 => match cx.answer("step2", ELICIT)? {
                Some(r) => {
                    return Ok(done(format!(
                        "Multi-round complete for {} who likes {}",
                        doc.name.as_deref().unwrap_or("friend"),
                        mrtr::accepted_str(r, "color").unwrap_or("no colour")
                    )))
                }
                None => step2().with_state(&state(tool, 2, doc.name.as_deref())),
            },
            Some(_) => match cx.answer("step1", ELICIT)? {
                Some(r) => {
                    let name = mrtr::accepted_str(r, "name").unwrap_or("friend");
                    step2().with_state(&state(tool, 2, Some(name)))
                }
                None => step1().with_state(&state(tool, 1, None)),
            },
            None => step1().with_state(&state(tool, 1, None)),
        };
        Ok(ToolOutcome::InputRequired(next))
    })())
}

fn capabilities(cx: &Cx<'_, '_>) -> ToolOutcome {
    outcome((|| {
        let mut wanted = Vec::new();
        if cx.has("sampling") {
            wanted.push(("sample_input", SAMPLE, mrtr::sample("Say hello", 20)));
        }
        if cx.has("elicitation") {
            wanted.push((
                "elicit_input",
                ELICIT,
                mrtr::elicit("Please provide a value", VALUE),
            ));
        }
        if wanted.is_empty() {
            return Ok(done(
                "No supported capabilities: declare sampling or elicitation",
            ));
        }
        let mut request = InputRequired::default();
        for (key, method, input) in wanted.iter() {
            if cx.answer(key, method)?.is_none() {
                request = request.ask(key, input.clone());
            }
        }
        Ok(match request.requests.is_empty() {
            true => done("Declared-capability input answered."),
            false => ToolOutcome::InputRequired(request),
        })
    })())
}

fn streaming(cx: &mut Cx<'_, '_>) -> ToolOutcome {
    outcome((|| {
        if let Some(missing) = cx.missing(&["elicitation"]) {
            return Ok(missing);
        }
        if let Some(r) = cx.answer("user_input", ELICIT)? {
            let value = mrtr::accepted_str(r, "value").unwrap_or("(none)");
            return Ok(done(format!("Received: {value}")));
        }
        cx.call.progress(0, 1, "waiting for the client's input");
        let request = ask("user_input", mrtr::elicit("Please provide a value", VALUE));
        Ok(ToolOutcome::InputRequired(request))
    })())
}

fn trigger(cx: &Cx<'_, '_>, list: List) -> ToolOutcome {
    let streams = cx.hub.broadcast(list);
    done(format!(
        "Sent {} to {streams} open listen stream(s) that asked for it or not",
        list.method()
    ))
}

/// `prompts/get test_input_required_result_prompt`: `Ok` is the text of
/// the completed prompt's message.
pub fn prompt(cx: &Cx<'_, '_>) -> Result<String, ToolOutcome> {
    if let Some(missing) = cx.missing(&["elicitation"]) {
        return Err(missing);
    }
    match cx.answer("user_context", ELICIT)? {
        Some(r) => Ok(format!(
            "Prompt with context: {}",
            mrtr::accepted_str(r, "context").unwrap_or("none")
        )),
        None => Err(ToolOutcome::InputRequired(ask(
            "user_context",
            mrtr::elicit("What context should the prompt use?", CONTEXT),
        ))),
    }
}

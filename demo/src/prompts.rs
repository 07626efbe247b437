//! The conformance fixture's prompts and `completion/complete` (enabled by
//! `DEMO_CONFORMANCE=1`).
//!
//! Owns `prompts/list` and `prompts/get` for `test_simple_prompt`,
//! `test_prompt_with_arguments(arg1, arg2)`,
//! `test_prompt_with_embedded_resource(resourceUri)`, `test_prompt_with_image`
//! and `test_dynamic_prompt` (from 2 s after `initialize`), plus
//! `completion/complete`, which answers for these prompts' arguments and
//! routes resource-template references to `resources.rs`. An unknown prompt,
//! a missing required argument or an unknown reference is -32602. On the
//! 2026-07-28 path `prompts/list` also lists `test_input_required_result_prompt`,
//! which `modern_calls.rs` serves (MRTR).

use serde::Serialize;
use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

use super::protocol::{no_cursor, send_error, send_result, str_param, Reply, INVALID_PARAMS};
use super::resources;
use super::session::Session;
use super::tools::{text, Content, ResourceContents, PNG_B64};

#[derive(Serialize)]
struct Argument {
    name: &'static str,
    description: &'static str,
    required: bool,
}

#[derive(Serialize)]
struct Prompt {
    name: &'static str,
    title: &'static str,
    description: &'static str,
    #[serde(skip_serializing_if = "<[Argument]>::is_empty")]
    arguments: &'static [Argument],
}

const PROMPTS: [Prompt; 4] = [
    Prompt {
        name: "test_simple_prompt",
        title: "Simple Test Prompt",
        description: "A simple prompt without arguments",
        arguments: &[],
    },
    Prompt {
        name: "test_prompt_with_arguments",
        title: "Prompt With Arguments",
        description: "A prompt with required arguments",
        arguments: &[
            Argument {
                name: "arg1",
                description: "First test argument",
                required: true,
            },
            Argument {
                name: "arg2",
                description: "Second test argument",
                required: true,
            },
        ],
    },
    Prompt {
        name: "test_prompt_with_embedded_resource",
        title: "Prompt With Embedded Resource",
        description: "A prompt that includes an embedded resource",
        arguments: &[Argument {
            name: "resourceUri",
            description: "URI of the resource to embed",
            required: true,
        }],
    },
    Prompt {
        name: "test_prompt_with_image",
        title: "Prompt With Image",
        description: "A prompt that includes image content",
        arguments: &[],
    },
];

const DYNAMIC: Prompt = Prompt {
    name: "test_dynamic_prompt",
    title: "Dynamic Prompt",
    description: "A prompt that was added dynamically, 2 s after initialize",
    arguments: &[],
};

/// 2026-07-28 only: the MRTR prompt (it asks for input before rendering).
const MRTR: Prompt = Prompt {
    name: super::fixture2026::PROMPT_NAME,
    title: "Input Required Prompt",
    description: "A prompt that asks the client for context (MRTR) before rendering",
    arguments: &[],
};

/// Completion candidates for the prompts' arguments.
const WORDS: [&str; 5] = ["hello", "world", "test", "testValue1", "testValue2"];
const URIS: [&str; 3] = [
    "test://static-text",
    "test://static-binary",
    "test://watched-resource",
];

#[derive(Serialize)]
struct ListResult<'a> {
    prompts: Vec<&'a Prompt>,
}

#[derive(Serialize)]
struct Message {
    role: &'static str,
    content: Content,
}

#[derive(Serialize)]
struct GetResult {
    description: &'static str,
    messages: Vec<Message>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Completion<'a> {
    values: Vec<&'a str>,
    total: usize,
    has_more: bool,
}

#[derive(Serialize)]
struct CompleteResult<'a> {
    completion: Completion<'a>,
}

fn find(session: &Session, name: &str) -> Option<&'static Prompt> {
    match name {
        "test_dynamic_prompt" if session.dynamic_visible() => Some(&DYNAMIC),
        _ => PROMPTS.iter().find(|p| p.name == name),
    }
}

/// `prompts/list`; `modern` adds the 2026 fixture's MRTR prompt (served by
/// `fixture2026.rs`).
pub fn list(session: &Session, id: &Value, params: &Value, modern: bool) -> Reply {
    if let Err(reply) = no_cursor(id, params) {
        return reply;
    }
    let mut prompts: Vec<&Prompt> = PROMPTS.iter().collect();
    if session.dynamic_visible() {
        prompts.push(&DYNAMIC);
    }
    if modern {
        prompts.push(&MRTR);
    }
    send_result(id, ListResult { prompts })
}

fn user(content: Content) -> Message {
    Message {
        role: "user",
        content,
    }
}

pub fn get(session: &Session, id: &Value, params: &Value) -> Reply {
    let name = match str_param(id, params, "name") {
        Ok(name) => name,
        Err(reply) => return reply,
    };
    let Some(prompt) = find(session, name) else {
        return send_error(id, INVALID_PARAMS, &format!("Unknown prompt: {name}"));
    };
    let empty = Value::new_object();
    let args = params
        .get("arguments")
        .filter(|a| !a.is_null())
        .unwrap_or(&empty);
    let all_strings = args
        .as_object()
        .is_some_and(|o| o.iter().all(|(_, v)| v.is_str()));
    if !all_strings {
        let msg = "Invalid params: arguments must be an object of strings";
        return send_error(id, INVALID_PARAMS, msg);
    }
    let arg = |key: &str| args.get(key).and_then(|v| v.as_str());
    if let Some(missing) = prompt
        .arguments
        .iter()
        .find(|a| a.required && arg(a.name).is_none())
    {
        let msg = format!("Invalid params: missing required argument {}", missing.name);
        return send_error(id, INVALID_PARAMS, &msg);
    }
    let image = Content::Image {
        data: PNG_B64,
        mime_type: "image/png",
        annotations: None,
    };
    let messages = match prompt.name {
        "test_simple_prompt" => vec![user(text("This is a simple prompt for testing."))],
        "test_prompt_with_arguments" => vec![user(text(format!(
            "Prompt with arguments: arg1='{}', arg2='{}'",
            arg("arg1").unwrap_or_default(),
            arg("arg2").unwrap_or_default()
        )))],
        "test_prompt_with_embedded_resource" => vec![
            user(Content::Resource {
                resource: ResourceContents::text(
                    arg("resourceUri").unwrap_or_default(),
                    "text/plain",
                    "Embedded resource content for testing.",
                ),
            }),
            user(text("Please process the embedded resource above.")),
        ],
        "test_prompt_with_image" => {
            vec![user(image), user(text("Please analyze the image above."))]
        }
        _ => vec![user(text("This is a dynamically added prompt."))],
    };
    send_result(
        id,
        GetResult {
            description: prompt.description,
            messages,
        },
    )
}

/// Candidates for argument `arg` of prompt `name`; `None` if no such prompt.
fn prompt_values(session: &Session, name: &str, arg: &str) -> Option<&'static [&'static str]> {
    let prompt = find(session, name)?;
    Some(match (prompt.name, arg) {
        ("test_prompt_with_arguments", "arg1" | "arg2") => &WORDS,
        ("test_prompt_with_embedded_resource", "resourceUri") => &URIS,
        _ => &[],
    })
}

pub fn complete(session: &Session, id: &Value, params: &Value) -> Reply {
    let (Some(reference), Some(argument)) = (params.get("ref"), params.get("argument")) else {
        return send_error(
            id,
            INVALID_PARAMS,
            "Invalid params: ref and argument are required",
        );
    };
    let (arg, prefix) = match (
        str_param(id, argument, "name"),
        str_param(id, argument, "value"),
    ) {
        (Ok(arg), Ok(prefix)) => (arg, prefix),
        (Err(reply), _) | (_, Err(reply)) => return reply,
    };
    let candidates = match reference.get("type").and_then(|t| t.as_str()) {
        Some("ref/prompt") => match str_param(id, reference, "name") {
            Ok(name) => prompt_values(session, name, arg),
            Err(reply) => return reply,
        },
        Some("ref/resource") => match str_param(id, reference, "uri") {
            Ok(uri) => resources::completion_values(uri, arg),
            Err(reply) => return reply,
        },
        _ => return send_error(id, INVALID_PARAMS, "Invalid params: unknown ref type"),
    };
    let Some(candidates) = candidates else {
        return send_error(
            id,
            INVALID_PARAMS,
            "Invalid params: unknown prompt or resource template",
        );
    };
    let values: Vec<&str> = candidates
        .iter()
        .copied()
        .filter(|v| v.starts_with(prefix))
        .take(100)
        .collect();
    let total = values.len();
    send_result(
        id,
        CompleteResult {
            completion: Completion {
                values,
                total,
                has_more: false,
            },
        },
    )
}

//! The wire side of bridging a 2026-07-28 backend's `input_required` to a 2025-era client
//! (`route/relay_input.rs` runs the rounds): which answers ask for input, reading one
//! (what breaks the spec's shape is the backend's fault: -32003), the server-to-client
//! request each input request becomes, and the request sent again with the client's answers
//! as `inputResponses` and the backend's `requestState`, by splicing only.

use std::ops::Range;

use sonic_rs::JsonValueTrait;

use crate::error::McpError;
use crate::upstream::BackendReply;
use crate::wire::jsonrpc::{push_json_str, splice_tracking, Envelope};

/// Most input requests in one round.
pub const MAX_INPUTS: usize = 16;

/// Can an answer to `method` ask for input (2026-07-28 allows it on these three only)?
pub(crate) fn may_ask(method: &str) -> bool {
    matches!(method, "tools/call" | "prompts/get" | "resources/read")
}

/// Is `result` a 2026 `input_required` answer? A byte search first: the JSON lookup costs
/// more, and almost no answer asks for input.
pub(crate) fn asks_input(result: &Result<BackendReply, McpError>) -> bool {
    let Ok(r) = result else {
        return false;
    };
    memchr::memmem::find(&r.body, b"input_required").is_some()
        && sonic_rs::get(&r.body[..], ["result", "resultType"])
            .ok()
            .is_some_and(|t| t.as_str() == Some("input_required"))
}

/// One input request of an `input_required` answer.
pub(crate) struct Input {
    /// Its key, and the same as JSON text.
    pub(crate) key: String,
    pub(crate) key_json: Vec<u8>,
    pub(crate) method: &'static str,
    /// The capability the client must have declared for it.
    pub(crate) capability: &'static str,
    /// `params` as the backend sent them.
    pub(crate) params: Option<Vec<u8>>,
}

/// One `input_required` answer, read.
pub(crate) struct Ask {
    pub(crate) inputs: Vec<Input>,
    /// `requestState`, raw JSON (a string).
    pub(crate) state: Option<Vec<u8>>,
}

impl Ask {
    /// Reads the `result` of `body`; what breaks the spec's shape is the backend's fault.
    pub(crate) fn parse(server: &str, body: &[u8]) -> Result<Ask, McpError> {
        let bad = |why: &str| McpError::BackendProtocol {
            server: server.to_string(),
            reason: format!("input_required: {why}"),
        };
        let result = sonic_rs::get(body, ["result"]).map_err(|_| bad("no result"))?;
        let result = result.as_raw_str();
        let state = match sonic_rs::get(result, ["requestState"]) {
            Ok(v) if v.is_str() => Some(v.as_raw_str().as_bytes().to_vec()),
            Ok(_) => return Err(bad("requestState is not a string")),
            Err(_) => None,
        };
        let mut inputs: Vec<Input> = Vec::new();
        if let Ok(map) = sonic_rs::get(result, ["inputRequests"]) {
            if !map.is_object() {
                return Err(bad("inputRequests is not an object"));
            }
            for entry in sonic_rs::to_object_iter(map.as_raw_str()) {
                let (key, request) = entry.map_err(|_| bad("inputRequests is not valid JSON"))?;
                if inputs.len() == MAX_INPUTS {
                    return Err(bad(&format!("more than {MAX_INPUTS} input requests")));
                }
                if inputs.iter().any(|i| i.key == *key) {
                    return Err(bad("an inputRequests key is repeated"));
                }
                let request = request.as_raw_str();
                let method = sonic_rs::get(request, ["method"]).ok();
                let (method, capability) = match method.as_ref().and_then(|m| m.as_str()) {
                    Some("elicitation/create") => ("elicitation/create", "elicitation"),
                    Some("sampling/createMessage") => ("sampling/createMessage", "sampling"),
                    Some("roots/list") => ("roots/list", "roots"),
                    _ => return Err(bad(&format!("input request `{key}` has no known method"))),
                };
                let params = match sonic_rs::get(request, ["params"]) {
                    Ok(p) if p.is_object() => Some(p.as_raw_str().as_bytes().to_vec()),
                    Ok(_) => return Err(bad(&format!("input request `{key}` params"))),
                    Err(_) => None,
                };
                let mut key_json = Vec::with_capacity(key.len() + 2);
                push_json_str(&mut key_json, &key);
                inputs.push(Input {
                    key: key.to_string(),
                    key_json,
                    method,
                    capability,
                    params,
                });
            }
        }
        if inputs.is_empty() && state.is_none() {
            return Err(bad("neither inputRequests nor requestState"));
        }
        Ok(Ask { inputs, state })
    }
}
/// A relayed input request: `{"jsonrpc":"2.0","id":<gw_id>,"method":…,"params":…}`.
pub(crate) fn request_message(gw_id: &[u8], input: &Input) -> Vec<u8> {
    let params = input.params.as_deref().unwrap_or_default();
    let mut m = Vec::with_capacity(64 + gw_id.len() + params.len());
    m.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    m.extend_from_slice(gw_id);
    m.extend_from_slice(br#","method":"#);
    push_json_str(&mut m, input.method);
    if let Some(p) = &input.params {
        m.extend_from_slice(br#","params":"#);
        m.extend_from_slice(p);
    }
    m.push(b'}');
    m
}
/// The request again, with the round's answers as `inputResponses` and the backend's
/// `requestState`; and where its id placeholder is now.
pub(crate) fn again(
    base: &[u8],
    ph: Range<usize>,
    ask: &Ask,
    answers: &[Vec<u8>],
) -> Result<(Vec<u8>, Range<usize>), McpError> {
    let env = Envelope::parse(base)?;
    let params = env
        .params
        .clone()
        .filter(|p| base[p.start] == b'{')
        .ok_or_else(|| McpError::Gateway("the request to send again has no params".into()))?;
    let inner = &base[params.clone()];
    for own in ["inputResponses", "requestState"] {
        if sonic_rs::get(inner, [own]).is_ok() {
            return Err(McpError::InvalidParams(format!(
                "a 2025-era request may not carry `{own}`: the gateway asks the client for input itself"
            )));
        }
    }
    let size = answers.iter().map(|a| a.len()).sum::<usize>()
        + ask
            .inputs
            .iter()
            .map(|i| i.key_json.len() + 2)
            .sum::<usize>()
        + ask.state.as_ref().map_or(0, Vec::len)
        + 48;
    let mut insert = Vec::with_capacity(size);
    if !ask.inputs.is_empty() {
        insert.extend_from_slice(br#""inputResponses":{"#);
        for (i, (input, answer)) in ask.inputs.iter().zip(answers).enumerate() {
            if i > 0 {
                insert.push(b',');
            }
            insert.extend_from_slice(&input.key_json);
            insert.push(b':');
            insert.extend_from_slice(answer);
        }
        insert.push(b'}');
    }
    if let Some(state) = &ask.state {
        if !insert.is_empty() {
            insert.push(b',');
        }
        insert.extend_from_slice(br#""requestState":"#);
        insert.extend_from_slice(state);
    }
    let empty = inner[1..inner.len() - 1]
        .iter()
        .all(u8::is_ascii_whitespace);
    if !empty {
        insert.push(b',');
    }
    let at = params.start + 1;
    let mut out = Vec::with_capacity(base.len() + insert.len());
    let ph = splice_tracking(base, &mut [(at..at, &insert[..])], ph, &mut out);
    Ok((out, ph))
}

#[cfg(test)]
#[path = "input_required_tests.rs"]
mod tests;

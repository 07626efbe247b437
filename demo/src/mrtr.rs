//! Multi round-trip requests (MRTR, 2026-07-28): the building blocks.
//!
//! Owns what the 2026 path uses instead of server→client requests:
//!
//! * [`InputRequired`]: an `InputRequiredResult` under construction (input
//!   requests keyed by name, optional `requestState`), and builders for the
//!   three kinds of input request (`elicitation/create`,
//!   `sampling/createMessage`, `roots/list`).
//! * [`check_response`]: validation of one `inputResponses` entry against
//!   the request kind it answers (malformed input is a -32602 upstream).
//! * [`InputBridge`]: runs the *legacy* fixture tools (`test_sampling`,
//!   `test_elicitation*`) unchanged on the 2026 path. Their
//!   `Call::request` lands here: an answer present in `inputResponses`
//!   (keyed `sampling`, `elicitation`, `roots`, then `_2`, `_3`, ...) is
//!   returned as the client's result; a missing one is recorded, and the
//!   caller answers with an `InputRequiredResult` asking for it instead of
//!   the tool's own result. Nothing is sent on the stream.
//! * [`Cx`]: what an MRTR tool sees of its request (declared capabilities,
//!   well-formed answers by key, its verified [`StateDoc`]).
//! * [`seal`] / [`open`]: integrity protection of `requestState`, which the
//!   client echoes back and may tamper with. The tag is a keyed hash, not a
//!   standard HMAC (no crypto crate here): two SipHash-1-3 outputs of std's
//!   randomly keyed `RandomState` (one key per process, drawn from the OS),
//!   domain-separated, 128 bits in hex. A state is `<payload>.<tag>`; it is
//!   only valid in the process that issued it, which suits a test fixture.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};
use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

use super::session::Call;
use super::subscriptions::Hub;
use super::tools::ToolOutcome;

/// An `InputRequiredResult` under construction: `inputRequests` in the
/// order they were added, and an optional (sealed) `requestState`.
#[derive(Debug, Default)]
pub struct InputRequired {
    pub requests: Vec<(String, Value)>,
    pub state: Option<String>,
}

impl InputRequired {
    pub fn ask(mut self, key: &str, request: Value) -> Self {
        self.requests.push((key.to_string(), request));
        self
    }

    /// Seals `payload` (see [`seal`]) as the `requestState`.
    pub fn with_state(mut self, payload: &str) -> Self {
        self.state = Some(seal(payload));
        self
    }
}

/// `inputRequests` as a JSON object, keys in insertion order.
pub struct Requests<'a>(pub &'a [(String, Value)]);

impl Serialize for Requests<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct InputRequest<'a, P: Serialize> {
    method: &'a str,
    params: P,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FormParams<'a> {
    message: &'a str,
    requested_schema: Value,
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
    content: TextBlock<'a>,
}

#[derive(Serialize)]
struct TextBlock<'a> {
    r#type: &'static str,
    text: &'a str,
}

#[derive(Serialize)]
struct NoParams {}

use super::protocol::ordered_value as to_value;

/// An `elicitation/create` form request; `schema` is JSON text.
pub fn elicit(message: &str, schema: &str) -> Value {
    let params = FormParams {
        message,
        requested_schema: sonic_rs::from_str(schema).unwrap_or_default(),
    };
    to_value(&InputRequest {
        method: "elicitation/create",
        params,
    })
}

/// A `sampling/createMessage` request with one user text message.
pub fn sample(prompt: &str, max_tokens: u32) -> Value {
    let params = SamplingParams {
        messages: [SamplingMessage {
            role: "user",
            content: TextBlock {
                r#type: "text",
                text: prompt,
            },
        }],
        max_tokens,
    };
    to_value(&InputRequest {
        method: "sampling/createMessage",
        params,
    })
}

/// A `roots/list` request.
pub fn roots() -> Value {
    to_value(&InputRequest {
        method: "roots/list",
        params: NoParams {},
    })
}

/// Checks that `response` is a well-formed answer to a `method` input
/// request: an `ElicitResult`, a `CreateMessageResult` or a
/// `ListRootsResult`.
pub fn check_response(method: &str, response: &Value) -> Result<(), String> {
    if !response.is_object() {
        return Err("must be an object".into());
    }
    let ok = match method {
        "elicitation/create" => {
            let action = response.get("action").and_then(|a| a.as_str());
            matches!(action, Some("accept" | "decline" | "cancel"))
                && response.get("content").is_none_or(|c| c.is_object())
        }
        "sampling/createMessage" => {
            response.get("role").is_some_and(|r| r.is_str())
                && response
                    .get("content")
                    .is_some_and(|c| c.is_object() || c.is_array())
        }
        "roots/list" => response.get("roots").is_some_and(|r| r.is_array()),
        _ => false,
    };
    match ok {
        true => Ok(()),
        false => Err(format!("is not a valid result of {method}")),
    }
}

/// The `content` of an accepted `ElicitResult`, if it was accepted.
pub fn accepted(response: &Value) -> Option<&Value> {
    (response.get("action").and_then(|a| a.as_str()) == Some("accept"))
        .then(|| response.get("content"))
        .flatten()
}

/// `content[field]` of an accepted `ElicitResult` as a string.
pub fn accepted_str<'a>(response: &'a Value, field: &str) -> Option<&'a str> {
    accepted(response)?.get(field)?.as_str()
}

/// The text of a `CreateMessageResult` (one block, or the first of several).
pub fn sampled_text(response: &Value) -> Option<&str> {
    let content = response.get("content")?;
    content
        .get("text")
        .or_else(|| content.get(0).and_then(|b| b.get("text")))
        .and_then(|t| t.as_str())
}

/// The number of roots in a `ListRootsResult`.
pub fn root_count(response: &Value) -> usize {
    response
        .get("roots")
        .and_then(|r| r.as_array())
        .map_or(0, |a| a.len())
}

/// Runs a legacy tool's server→client requests as MRTR (module docs).
#[derive(Default)]
pub struct InputBridge {
    /// `params.inputResponses` (an object) or `Null`.
    responses: Value,
    /// Requests made so far, per kind: elicitation, sampling, roots.
    counts: [u32; 3],
    /// Input the tool asked for that the client has not provided.
    pub asked: InputRequired,
    /// A provided answer was malformed: the -32602 message.
    pub invalid: Option<String>,
}

impl InputBridge {
    pub fn new(responses: Option<&Value>) -> Self {
        Self {
            responses: responses.cloned().unwrap_or_default(),
            ..Self::default()
        }
    }

    /// The answer to this request from `inputResponses`; `Err` if there is
    /// none yet (it is then recorded in [`Self::asked`]) or it is malformed.
    pub fn request<P: Serialize>(&mut self, method: &str, params: &P) -> Result<Value, String> {
        let (slot, base) = match method {
            "elicitation/create" => (0, "elicitation"),
            "sampling/createMessage" => (1, "sampling"),
            "roots/list" => (2, "roots"),
            other => return Err(format!("{other} cannot be requested from the client")),
        };
        self.counts[slot] += 1;
        let key = match self.counts[slot] {
            1 => base.to_string(),
            n => format!("{base}_{n}"),
        };
        match self.responses.get(&key) {
            Some(answer) => match check_response(method, answer) {
                Ok(()) => Ok(answer.clone()),
                Err(e) => {
                    let msg = format!("Invalid params: inputResponses.{key} {e}");
                    self.invalid = Some(msg.clone());
                    Err(msg)
                }
            },
            None => {
                let request = InputRequest {
                    method,
                    params: to_value(params),
                };
                self.asked.requests.push((key, to_value(&request)));
                Err(format!("{method}: waiting for the client's input"))
            }
        }
    }
}

/// What a 2026 fixture tool sees of its request.
pub struct Cx<'a, 'c> {
    /// Logs and progress on the request's stream; the request's capabilities.
    pub call: &'a mut Call<'c>,
    /// `params.inputResponses` (already checked to be an object), if any.
    pub responses: Option<&'a Value>,
    /// `params.requestState`, if any.
    pub state: Option<&'a str>,
    pub hub: &'a Hub,
}

impl Cx<'_, '_> {
    pub fn has(&self, capability: &str) -> bool {
        self.call
            .session
            .client_capability(capability)
            .is_some_and(|c| c.is_object())
    }

    /// The client capabilities among `caps` that the request did not declare.
    pub fn missing(&self, caps: &[&'static str]) -> Option<ToolOutcome> {
        let missing: Vec<&'static str> = caps.iter().copied().filter(|c| !self.has(c)).collect();
        (!missing.is_empty()).then_some(ToolOutcome::MissingCapability(missing))
    }

    /// The well-formed answer under `key`, `None` if absent.
    pub fn answer(&self, key: &str, method: &str) -> Result<Option<&Value>, ToolOutcome> {
        let Some(answer) = self.responses.and_then(|r| r.get(key)) else {
            return Ok(None);
        };
        check_response(method, answer)
            .map(|()| Some(answer))
            .map_err(|e| ToolOutcome::Invalid(format!("Invalid params: inputResponses.{key} {e}")))
    }

    /// The verified `requestState` of `tool`, `None` if absent.
    pub fn verified_state(&self, tool: &str) -> Result<Option<StateDoc>, ToolOutcome> {
        let Some(state) = self.state else {
            return Ok(None);
        };
        let doc = open(state).and_then(|p| sonic_rs::from_str::<StateDoc>(p).ok());
        match doc {
            Some(doc) if doc.tool == tool => Ok(Some(doc)),
            _ => Err(ToolOutcome::Invalid(
                "Invalid params: requestState failed its integrity check".into(),
            )),
        }
    }
}

/// The payload of a sealed `requestState`.
#[derive(Serialize, Deserialize)]
pub struct StateDoc {
    pub tool: String,
    pub round: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    nonce: u64,
}

/// The payload of a new `requestState` for round `round` of `tool` (seal it
/// with [`InputRequired::with_state`]).
pub fn state(tool: &str, round: u32, name: Option<&str>) -> String {
    static NONCE: AtomicU64 = AtomicU64::new(1);
    let doc = StateDoc {
        tool: tool.to_string(),
        round,
        name: name.map(str::to_string),
        nonce: NONCE.fetch_add(1, Ordering::Relaxed),
    };
    sonic_rs::to_string(&doc).unwrap_or_default()
}

fn key() -> &'static RandomState {
    static KEY: OnceLock<RandomState> = OnceLock::new();
    KEY.get_or_init(RandomState::new)
}

fn tag(payload: &str) -> String {
    let half = |domain: u8| {
        let mut h = key().build_hasher();
        h.write_u8(domain);
        h.write(payload.as_bytes());
        h.finish()
    };
    format!("{:016x}{:016x}", half(0x5a), half(0xa5))
}

/// `payload` with its integrity tag appended (module docs).
pub fn seal(payload: &str) -> String {
    format!("{payload}.{}", tag(payload))
}

/// The payload of a state sealed by [`seal`] in this process; `None` if
/// the state was altered (constant-time tag comparison).
pub fn open(state: &str) -> Option<&str> {
    let (payload, got) = state.rsplit_once('.')?;
    let want = tag(payload);
    let same = got.len() == want.len()
        && got
            .bytes()
            .zip(want.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    same.then_some(payload)
}

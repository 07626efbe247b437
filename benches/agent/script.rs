//! The scripted agent: one fresh conversation (MCP session) per task, the tool chosen by
//! oracle (the task names it), and every token the conversation puts in a model's context
//! counted (o200k_base, cl100k_base).

use serde::Serialize;
use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

use crate::client::{short, Session};

/// One task of `perf/context/tasks.json`.
#[derive(serde::Deserialize)]
pub struct Task {
    pub id: String,
    pub ask: String,
    pub server: String,
    pub tool: String,
    pub arguments: Value,
}

/// The two tokenizers.
pub struct Tokenizers {
    o200k: tiktoken_rs::CoreBPE,
    cl100k: tiktoken_rs::CoreBPE,
}

impl Tokenizers {
    pub fn new() -> Tokenizers {
        Tokenizers {
            o200k: tiktoken_rs::o200k_base().expect("o200k_base"),
            cl100k: tiktoken_rs::cl100k_base().expect("cl100k_base"),
        }
    }

    /// (o200k, cl100k) tokens of `text`.
    pub fn count(&self, text: &str) -> [usize; 2] {
        [
            self.o200k.encode_with_special_tokens(text).len(),
            self.cl100k.encode_with_special_tokens(text).len(),
        ]
    }
}

/// How the task's tool call ended. `Ok`, `ToolError` and `BackendError` mean the tool was
/// reached (the task is completed); the others fail the task.
#[derive(Serialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A JSON-RPC `result` without `isError: true`.
    Ok,
    /// A `result` with `isError: true` (the server ran the tool and reported a failure).
    ToolError,
    /// A JSON-RPC `error` the backend itself sent (passed through: no `data.blame`).
    BackendError,
    /// A JSON-RPC `error` the gateway made (it carries `data.blame`: unknown tool, backend
    /// unavailable, timeout, invalid response): the tool was not reached.
    GatewayError,
    /// `full` mode: the tool is not in `tools/list`.
    NotListed,
    /// Neither search (default limit, then 50) returned the tool.
    NotFound,
    /// `search_tools` or `get_tool_schema` failed.
    MetaError,
    /// HTTP or protocol failure talking to the gateway.
    Transport,
}

impl Outcome {
    pub fn reached(self) -> bool {
        matches!(
            self,
            Outcome::Ok | Outcome::ToolError | Outcome::BackendError
        )
    }
}

/// One task's run in one mode.
#[derive(Serialize)]
pub struct Row {
    pub mode: String,
    pub id: String,
    pub target: String,
    pub outcome: Outcome,
    /// First characters of the tool's answer (its first text, or the error), or why the
    /// task failed.
    pub detail: String,
    /// The target was in `tools/list` (always in `full`, the eager set in `hybrid`).
    pub listed: bool,
    /// 1-based rank of the target in the search that found it.
    pub search_rank: Option<usize>,
    /// The calls the agent made, in order.
    pub calls: Vec<String>,
    /// Model turns: one per call, plus the final one that reads the last result.
    pub turns: usize,
    /// Tools listed at the start of the task, and their tokens [o200k, cl100k].
    pub tools_listed: usize,
    pub tool_tokens: [usize; 2],
    /// Every context segment once: tools, ask, calls, results.
    pub transcript: [usize; 2],
    /// Σ over turns of the context read by that turn.
    pub billed_input: [usize; 2],
    /// The calls (what the model writes).
    pub output: [usize; 2],
    /// billed_input + output.
    pub billed: [usize; 2],
    /// Ending the session (`DELETE`) failed (the task's outcome stands).
    pub close_error: Option<String>,
}

/// A conversation's context, in segments, and what its model turns are billed.
struct Conversation<'a> {
    tok: &'a Tokenizers,
    context: [usize; 2],
    billed_input: [usize; 2],
    output: [usize; 2],
    turns: usize,
    calls: Vec<String>,
}

impl<'a> Conversation<'a> {
    fn new(tok: &'a Tokenizers, tools_json: &str, ask: &str) -> Self {
        let mut c = Conversation {
            tok,
            context: [0; 2],
            billed_input: [0; 2],
            output: [0; 2],
            turns: 0,
            calls: Vec::new(),
        };
        c.add(tools_json);
        c.add(ask);
        c
    }

    fn add(&mut self, text: &str) -> [usize; 2] {
        let n = self.tok.count(text);
        for (c, n) in self.context.iter_mut().zip(n) {
            *c += n;
        }
        n
    }

    /// A model turn: reads the whole context, then writes `call` (none: the final turn).
    fn turn(&mut self, call: Option<&str>) {
        self.turns += 1;
        for (b, c) in self.billed_input.iter_mut().zip(self.context) {
            *b += c;
        }
        if let Some(call) = call {
            let n = self.add(call);
            for (o, n) in self.output.iter_mut().zip(n) {
                *o += n;
            }
        }
    }

    /// The model calls `name`; the gateway's answer goes into the context.
    fn call(&mut self, s: &mut Session, name: &str, args: &str) -> anyhow::Result<Value> {
        let text = format!(
            r#"{{"name":{},"arguments":{args}}}"#,
            sonic_rs::to_string(name)?
        );
        self.turn(Some(&text));
        self.calls.push(name.to_string());
        let msg = s.call(name, args)?;
        self.add(&result_text(&msg)?);
        Ok(msg)
    }
}

/// What a tool answer puts in the context: the `content` array of a `result`, or the
/// `error` object, as compact JSON.
fn result_text(msg: &Value) -> anyhow::Result<String> {
    let part = match msg.get("error") {
        Some(e) => e,
        None if msg["result"].get("content").is_some() => &msg["result"]["content"],
        None => &msg["result"],
    };
    Ok(sonic_rs::to_string(part)?)
}

/// How a `tools/call` answer of the target tool ends, and the answer's first characters.
fn classify(msg: &Value) -> (Outcome, String) {
    if let Some(e) = msg.get("error") {
        let text = sonic_rs::to_string(e).unwrap_or_default();
        let outcome = if e["data"].get("blame").is_some() {
            Outcome::GatewayError
        } else {
            Outcome::BackendError
        };
        return (outcome, short(&text, 200));
    }
    let text = msg["result"]["content"][0]["text"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| sonic_rs::to_string(&msg["result"]).unwrap_or_default());
    let outcome = if msg["result"]["isError"].as_bool() == Some(true) {
        Outcome::ToolError
    } else {
        Outcome::Ok
    };
    (outcome, short(&text, 200))
}

/// The tool names a `search_tools` answer lists.
fn hits(msg: &Value) -> Vec<String> {
    msg["result"]["structuredContent"]["tools"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs one task in a fresh session on `url`; `search` says whether the mode has the meta
/// tools (search and hybrid).
pub fn run(tok: &Tokenizers, url: &str, mode: &str, search: bool, task: &Task) -> Row {
    let target = format!("{}__{}", task.server, task.tool);
    let mut row = Row {
        mode: mode.to_string(),
        id: task.id.clone(),
        target: target.clone(),
        outcome: Outcome::Transport,
        detail: String::new(),
        listed: false,
        search_rank: None,
        calls: Vec::new(),
        turns: 0,
        tools_listed: 0,
        tool_tokens: [0; 2],
        transcript: [0; 2],
        billed_input: [0; 2],
        output: [0; 2],
        billed: [0; 2],
        close_error: None,
    };
    if let Err(e) = converse(tok, url, search, task, &target, &mut row) {
        row.outcome = Outcome::Transport;
        row.detail = short(&format!("{e:#}"), 300);
    }
    row
}

fn converse(
    tok: &Tokenizers,
    url: &str,
    search: bool,
    task: &Task,
    target: &str,
    row: &mut Row,
) -> anyhow::Result<()> {
    let mut s = Session::open(url)?;
    let tools = s.list_tools()?;
    let tools_json = sonic_rs::to_string(&tools)?;
    row.tools_listed = tools.len();
    row.tool_tokens = tok.count(&tools_json);
    row.listed = tools.iter().any(|t| t["name"].as_str() == Some(target));
    let args = sonic_rs::to_string(&task.arguments)?;
    let mut c = Conversation::new(tok, &tools_json, &task.ask);
    let (outcome, detail) = if row.listed {
        classify(&c.call(&mut s, target, &args)?)
    } else if !search {
        (Outcome::NotListed, format!("{target} not in tools/list"))
    } else {
        let mut found = None;
        let mut failed = None;
        for limit in ["", r#","limit":50"#] {
            let q = format!(r#"{{"query":{}{limit}}}"#, sonic_rs::to_string(&task.ask)?);
            let msg = c.call(&mut s, "search_tools", &q)?;
            if msg.get("result").is_none() {
                failed = Some(result_text(&msg)?);
                break;
            }
            if let Some(r) = hits(&msg).iter().position(|h| h == target) {
                found = Some(r + 1);
                break;
            }
        }
        row.search_rank = found;
        match (found, failed) {
            (_, Some(err)) => (Outcome::MetaError, short(&err, 200)),
            (None, None) => (Outcome::NotFound, "search never listed it".to_string()),
            (Some(_), None) => {
                let name = format!(r#"{{"name":{}}}"#, sonic_rs::to_string(target)?);
                let schema = c.call(&mut s, "get_tool_schema", &name)?;
                if schema.get("result").is_none() {
                    (Outcome::MetaError, short(&result_text(&schema)?, 200))
                } else {
                    let call = format!(
                        r#"{{"name":{},"arguments":{args}}}"#,
                        sonic_rs::to_string(target)?
                    );
                    classify(&c.call(&mut s, "call_tool", &call)?)
                }
            }
        }
    };
    c.turn(None);
    row.outcome = outcome;
    row.detail = detail;
    row.calls = std::mem::take(&mut c.calls);
    row.turns = c.turns;
    row.transcript = c.context;
    row.billed_input = c.billed_input;
    row.output = c.output;
    row.billed = [
        c.billed_input[0] + c.output[0],
        c.billed_input[1] + c.output[1],
    ];
    if let Err(e) = s.close() {
        row.close_error = Some(format!("{e:#}"));
    }
    Ok(())
}

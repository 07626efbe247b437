//! Helpers of `tests/tasks_bridge_legacy_client.rs`: the 2026-only demo fixture as a backend,
//! a 2025 session's task requests, and reading a `tasks/result` stream.
#![allow(dead_code)]

use std::time::Duration;

use crate::common::{self, demo_stdio, DemoHttp, Gateway};
use crate::tasks_kit::{legacy, until, Stream};
use sonic_rs::{JsonValueTrait, Value};

pub const RELATED: &str = "io.modelcontextprotocol/related-task";
pub const ENV: &[(&str, &str)] = &[
    ("DEMO_CONFORMANCE", "1"),
    ("DEMO_LEGACY", "0"),
    ("DEMO_PAGE_SIZE", "100"),
];

/// The 2026-only fixture as server `fx` over `transport` (`extra`: more keys of its block).
pub fn backend(transport: &str, extra: &str) -> (String, Option<DemoHttp>) {
    match transport {
        "stdio" => (
            demo_stdio(
                "fx",
                &format!(
                    "env = {{ DEMO_CONFORMANCE = \"1\", DEMO_LEGACY = \"0\", DEMO_PAGE_SIZE = \"100\" }}\n{extra}"
                ),
            ),
            None,
        ),
        _ => {
            let web = DemoHttp::start_with("127.0.0.1:0", "fx", ENV, None);
            let cfg = format!(
                "[[servers]]\nid = \"fx\"\ntransport = \"http\"\nurl = \"http://{}/mcp\"\n{extra}\n",
                web.addr
            );
            (cfg, Some(web))
        }
    }
}

/// A task-augmented call; the whole answer.
pub fn call(gw: &Gateway, sid: &str, tool: &str, args: &str) -> Value {
    legacy(
        gw,
        sid,
        "tools/call",
        &format!(r#"{{"name":"{tool}","arguments":{args},"task":{{"ttl":60000}}}}"#),
    )
    .json()
}

/// A task-augmented call that must create a working task; the gateway's id.
pub fn create(gw: &Gateway, sid: &str, tool: &str, args: &str) -> String {
    let r = call(gw, sid, tool, args);
    assert_eq!(
        r["result"]["task"]["status"].as_str(),
        Some("working"),
        "{r:?}"
    );
    let id = r["result"]["task"]["taskId"].as_str().unwrap().to_string();
    assert!(!id.contains("task-"), "the backend's id never shows: {id}");
    id
}

pub fn task_req(gw: &Gateway, sid: &str, method: &str, task: &str) -> common::Resp {
    legacy(gw, sid, method, &format!(r#"{{"taskId":"{task}"}}"#))
}

pub fn get(gw: &Gateway, sid: &str, task: &str) -> Value {
    task_req(gw, sid, "tasks/get", task).json()
}

pub fn until_status(gw: &Gateway, sid: &str, task: &str, want: &str) -> Value {
    until(
        Duration::from_secs(15),
        || get(gw, sid, task),
        |v| v["result"]["status"].as_str() == Some(want),
    )
}

/// `tasks/result` of `task` as an incremental SSE stream (request id `"r"`).
pub fn result_stream(gw: &Gateway, sid: &str, task: &str) -> Stream {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":"r","method":"tasks/result","params":{{"taskId":"{task}"}}}}"#
    );
    let mut h: Vec<(&str, &str)> = common::JSON_HEADERS.to_vec();
    h.extend([
        ("mcp-session-id", sid),
        ("mcp-protocol-version", "2025-11-25"),
    ]);
    Stream::open(gw, "POST", &h, &body)
}

/// The next message of `st` that is not a notification.
pub fn next_message(st: &mut Stream, at: &str) -> Value {
    loop {
        let m = st
            .next(Duration::from_secs(15))
            .unwrap_or_else(|| panic!("{at}: nothing more on the stream: {}", st.head));
        if m.get("method").is_none() || m.get("id").is_some() {
            return m;
        }
    }
}

/// Answers relayed request `req` of session `sid` with `result` (raw JSON).
pub fn answer(gw: &Gateway, sid: &str, req: &Value, result: &str) {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":{},"result":{result}}}"#,
        sonic_rs::to_string(&req["id"]).unwrap()
    );
    let h = [
        ("mcp-session-id", sid),
        ("mcp-protocol-version", "2025-11-25"),
    ];
    assert_eq!(gw.post(&h, &body).status, 202);
}

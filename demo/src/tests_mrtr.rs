//! Unit tests for MRTR on the 2026-07-28 path (input-required round trips,
//! sealed and tampered `requestState`, multi-round state, legacy tools'
//! client requests bridged to input requests) and for `subscriptions/listen`
//! streams on stdio (acknowledgement, filtering, tagging, cancellation,
//! shutdown), using the [`Stdio`] harness of `tests_modern.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sonic_rs::{JsonValueTrait, Value};

use super::protocol::parse;
use super::stdio;
use super::tests::{error_code, first_text};
use super::tests_fixture::str_at;
use super::tests_modern::{meta, result_type, stdio as harness, Stdio, CAPS};

#[test]
fn input_required_round_trip() {
    let s = harness(true);
    let r = s.call(1, "test_input_required_result_elicitation", "");
    assert_eq!(result_type(&r), Some("input_required"));
    let ask = ["result", "inputRequests", "user_name", "method"];
    assert_eq!(str_at(&r, &ask), Some("elicitation/create"));
    assert!(r.pointer(["result", "ttlMs"]).is_none());
    let answer = r#","inputResponses":{"user_name":{"action":"accept","content":{"name":"Alice"}},"extra":{}}"#;
    let r = s.call(2, "test_input_required_result_elicitation", answer);
    assert_eq!(result_type(&r), Some("complete"));
    assert_eq!(first_text(&r).as_deref(), Some("Hello, Alice!"));
    // Wrong keys: asked again. Malformed or null answers: -32602.
    let r = s.call(
        3,
        "test_input_required_result_elicitation",
        r#","inputResponses":{"wrong":{}}"#,
    );
    assert_eq!(result_type(&r), Some("input_required"));
    let r = s.call(
        4,
        "test_input_required_result_elicitation",
        r#","inputResponses":{"user_name":12345}"#,
    );
    assert_eq!(error_code(&r), Some(-32602));
    let r = s.call(
        5,
        "test_input_required_result_elicitation",
        r#","inputResponses":null"#,
    );
    assert_eq!(error_code(&r), Some(-32602));
}

#[test]
fn request_state_is_sealed_and_rounds_advance() {
    let s = harness(true);
    let confirm = r#"{"confirm":{"action":"accept","content":{"ok":true}}}"#;
    let r = s.call(1, "test_input_required_result_tampered_state", "");
    let state = str_at(&r, &["result", "requestState"]).unwrap().to_string();
    let retry = |id, state: &str| {
        let extra = format!(
            r#","inputResponses":{confirm},"requestState":{}"#,
            sonic_rs::to_string(state).unwrap()
        );
        s.call(id, "test_input_required_result_tampered_state", &extra)
    };
    assert_eq!(result_type(&retry(2, &state)), Some("complete"));
    assert_eq!(
        error_code(&retry(3, &format!("{state}-TAMPERED"))),
        Some(-32602)
    );
    // A state issued for another tool is rejected too.
    let other = s.call(4, "test_input_required_result_request_state", "");
    let other = str_at(&other, &["result", "requestState"])
        .unwrap()
        .to_string();
    assert_eq!(error_code(&retry(5, &other)), Some(-32602));
    // Multi-round: a new state each round, then complete.
    let tool = "test_input_required_result_multi_round";
    let r1 = s.call(6, tool, "");
    let s1 = str_at(&r1, &["result", "requestState"])
        .unwrap()
        .to_string();
    let step = |id, key: &str, content: &str, state: &str| {
        let extra = format!(
            r#","inputResponses":{{"{key}":{{"action":"accept","content":{content}}}}},"requestState":{}"#,
            sonic_rs::to_string(state).unwrap()
        );
        s.call(id, tool, &extra)
    };
    let r2 = step(7, "step1", r#"{"name":"Bo"}"#, &s1);
    let s2 = str_at(&r2, &["result", "requestState"])
        .unwrap()
        .to_string();
    assert_ne!(s1, s2);
    assert!(r2.pointer(["result", "inputRequests", "step2"]).is_some());
    let r3 = step(8, "step2", r#"{"color":"red"}"#, &s2);
    assert_eq!(
        first_text(&r3).as_deref(),
        Some("Multi-round complete for Bo who likes red")
    );
}

#[test]
fn legacy_client_requests_become_input_requests() {
    let s = harness(true);
    let line = |id: u32, extra: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"test_sampling","arguments":{{"prompt":"2+2?"}}{extra},{}}}}}"#,
            meta(CAPS, "")
        )
    };
    // Nothing but the response is written: no request to the client.
    let lines = s.lines(&line(1, ""));
    assert_eq!(lines.len(), 1);
    let ask = ["result", "inputRequests", "sampling", "method"];
    assert_eq!(str_at(&lines[0], &ask), Some("sampling/createMessage"));
    let answer = r#","inputResponses":{"sampling":{"role":"assistant","content":{"type":"text","text":"4"},"model":"m"}}"#;
    let r = s.rpc(&line(2, answer));
    assert_eq!(first_text(&r).as_deref(), Some("LLM response: 4"));
    // Capabilities come from this request's _meta only.
    let r = s.rpc(&line(3, "").replace(CAPS, "{}"));
    assert_eq!(error_code(&r), Some(-32021));
}

#[test]
fn listen_streams_over_stdio() {
    let s: Arc<Stdio> = Arc::new(harness(true));
    let listen = |id: &'static str, filter: &'static str| {
        let s = s.clone();
        std::thread::spawn(move || {
            let line = format!(
                r#"{{"jsonrpc":"2.0","id":"{id}","method":"subscriptions/listen","params":{{"notifications":{filter},{}}}}}"#,
                meta("{}", "")
            );
            stdio::handle(
                &s.server,
                &s.session,
                &*s.out,
                parse(line.as_bytes()).unwrap(),
            );
        })
    };
    let tools = listen(
        "L1",
        r#"{"toolsListChanged":true,"promptsListChanged":false}"#,
    );
    let prompts = listen("L2", r#"{"promptsListChanged":true}"#);
    let written = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(5);
        while s.out.0.lock().unwrap().len() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    written(2);
    let acks = s.out.take();
    let ack_of = |id: &str| {
        acks.iter()
            .find(|a| {
                str_at(
                    a,
                    &["params", "_meta", "io.modelcontextprotocol/subscriptionId"],
                ) == Some(id)
            })
            .unwrap()
            .clone()
    };
    assert_eq!(
        str_at(&ack_of("L1"), &["method"]),
        Some("notifications/subscriptions/acknowledged")
    );
    assert_eq!(
        sonic_rs::to_string(ack_of("L1").pointer(["params", "notifications"]).unwrap()).unwrap(),
        r#"{"toolsListChanged":true}"#
    );
    // A tool change reaches only the stream that asked for it, tagged.
    let trigger = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"test_trigger_tool_change",{}}}}}"#,
        meta("{}", "")
    );
    stdio::handle(
        &s.server,
        &s.session,
        &*s.out,
        parse(trigger.as_bytes()).unwrap(),
    );
    written(2);
    let (changed, answers): (Vec<Value>, Vec<Value>) = s
        .out
        .take()
        .into_iter()
        .partition(|m| m.get("method").is_some());
    assert!(first_text(&answers[0])
        .unwrap()
        .contains("2 open listen stream"));
    assert_eq!(changed.len(), 1);
    assert_eq!(
        str_at(&changed[0], &["method"]),
        Some("notifications/tools/list_changed")
    );
    assert_eq!(
        str_at(
            &changed[0],
            &["params", "_meta", "io.modelcontextprotocol/subscriptionId"]
        ),
        Some("L1")
    );
    // notifications/cancelled ends L1 silently; shutdown answers L2.
    s.lines(r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"L1"}}"#);
    tools.join().unwrap();
    s.server.hub().shutdown();
    prompts.join().unwrap();
    let end = s.out.take();
    assert_eq!(end.len(), 1);
    assert_eq!(str_at(&end[0], &["id"]), Some("L2"));
    assert_eq!(result_type(&end[0]), Some("complete"));
    assert_eq!(
        str_at(
            &end[0],
            &["result", "_meta", "io.modelcontextprotocol/subscriptionId"]
        ),
        Some("L2")
    );
}

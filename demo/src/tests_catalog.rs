//! Unit tests for the conformance fixture's catalog (`DEMO_CONFORMANCE=1`):
//! resources, templates, subscriptions, prompts, completions, and the timed
//! behaviour (dynamic items 2 s after `initialize`, list_changed and
//! resources/updated on the session's standalone outlet).

use std::time::Duration;

use sonic_rs::{pointer, JsonContainerTrait, JsonValueTrait, Value};

use super::tests::{call_line, error_code, first_text};
use super::tests_fixture::{fixture, request, str_at, tools_page};

#[test]
fn resources_read_subscribe_and_templates() {
    let s = fixture();
    s.init("2025-11-25", "{}");
    let r = request(&s, 1, "resources/list", "{}");
    let uris: Vec<&str> = r
        .pointer(&pointer!["result", "resources"])
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| str_at(r, &["uri"]).unwrap())
        .collect();
    assert_eq!(
        uris,
        [
            "test://static-text",
            "test://static-binary",
            "test://watched-resource"
        ]
    );
    let r = request(&s, 2, "resources/templates/list", "{}");
    assert_eq!(
        r.pointer(&pointer!["result", "resourceTemplates", 0, "uriTemplate"])
            .and_then(|u| u.as_str()),
        Some("test://template/{id}/data")
    );
    let read = |uri: &str| request(&s, 3, "resources/read", &format!(r#"{{"uri":"{uri}"}}"#));
    let r = read("test://static-text");
    assert_eq!(
        r.pointer(&pointer!["result", "contents", 0, "mimeType"])
            .and_then(|m| m.as_str()),
        Some("text/plain")
    );
    let r = read("test://static-binary");
    assert!(r
        .pointer(&pointer!["result", "contents", 0, "blob"])
        .is_some_and(|b| b.is_str()));
    let r = read("test://template/42/data");
    assert_eq!(
        r.pointer(&pointer!["result", "contents", 0, "text"])
            .and_then(|t| t.as_str()),
        Some(r#"{"id":"42","templateTest":true,"data":"Data for ID: 42"}"#)
    );
    for missing in [
        "test://nope",
        "test://template//data",
        "test://template/a/b/data",
        "test://dynamic-resource",
    ] {
        let r = read(missing);
        assert_eq!(error_code(&r), Some(-32002), "{missing}");
        assert_eq!(
            r.pointer(&pointer!["error", "data", "uri"])
                .and_then(|u| u.as_str()),
            Some(missing)
        );
    }
    assert_eq!(
        error_code(&request(&s, 4, "resources/list", r#"{"cursor":"x"}"#)),
        Some(-32602)
    );
    for method in ["resources/subscribe", "resources/unsubscribe"] {
        let r = request(&s, 5, method, r#"{"uri":"test://watched-resource"}"#);
        assert!(r.get("result").is_some(), "{method}");
        assert_eq!(error_code(&request(&s, 6, method, "{}")), Some(-32602));
    }
}

#[test]
fn prompts_and_completions() {
    let s = fixture();
    s.init("2025-11-25", "{}");
    let r = request(&s, 1, "prompts/list", "{}");
    let prompts = r
        .pointer(&pointer!["result", "prompts"])
        .unwrap()
        .as_array()
        .unwrap();
    assert_eq!(prompts.len(), 4);
    assert_eq!(
        prompts[1]
            .pointer(&pointer!["arguments", 1, "name"])
            .and_then(|n| n.as_str()),
        Some("arg2")
    );
    let get = |params: &str| request(&s, 2, "prompts/get", params);
    let r = get(r#"{"name":"test_prompt_with_arguments","arguments":{"arg1":"a","arg2":"b"}}"#);
    assert_eq!(
        r.pointer(&pointer!["result", "messages", 0, "content", "text"])
            .and_then(|t| t.as_str()),
        Some("Prompt with arguments: arg1='a', arg2='b'")
    );
    assert_eq!(
        error_code(&get(
            r#"{"name":"test_prompt_with_arguments","arguments":{"arg1":"a"}}"#
        )),
        Some(-32602)
    );
    assert_eq!(
        error_code(&get(
            r#"{"name":"test_prompt_with_arguments","arguments":{"arg1":1,"arg2":"b"}}"#
        )),
        Some(-32602)
    );
    assert_eq!(error_code(&get(r#"{"name":"nope"}"#)), Some(-32602));
    let r = get(
        r#"{"name":"test_prompt_with_embedded_resource","arguments":{"resourceUri":"test://x"}}"#,
    );
    assert_eq!(
        r.pointer(&pointer![
            "result", "messages", 0, "content", "resource", "uri"
        ])
        .and_then(|u| u.as_str()),
        Some("test://x")
    );
    let r = get(r#"{"name":"test_prompt_with_image"}"#);
    assert_eq!(
        r.pointer(&pointer!["result", "messages", 0, "content", "type"])
            .and_then(|t| t.as_str()),
        Some("image")
    );

    let complete = |reference: &str, arg: &str, value: &str| {
        let params =
            format!(r#"{{"ref":{reference},"argument":{{"name":"{arg}","value":"{value}"}}}}"#);
        request(&s, 3, "completion/complete", &params)
    };
    let values = |r: &Value| -> Vec<String> {
        r.pointer(&pointer!["result", "completion", "values"])
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let prompt = r#"{"type":"ref/prompt","name":"test_prompt_with_arguments"}"#;
    assert_eq!(
        values(&complete(prompt, "arg1", "test")),
        ["test", "testValue1", "testValue2"]
    );
    assert!(values(&complete(prompt, "other", "")).is_empty());
    let template = r#"{"type":"ref/resource","uri":"test://template/{id}/data"}"#;
    assert_eq!(values(&complete(template, "id", "1")), ["1", "123"]);
    assert_eq!(
        error_code(&complete(r#"{"type":"ref/prompt","name":"nope"}"#, "a", "")),
        Some(-32602)
    );
    assert_eq!(
        error_code(&complete(r#"{"type":"ref/other"}"#, "a", "")),
        Some(-32602)
    );
}

#[test]
fn dynamic_items_and_timed_notifications() {
    let s = fixture();
    s.init("2025-11-25", "{}");
    request(
        &s,
        1,
        "resources/subscribe",
        r#"{"uri":"test://watched-resource"}"#,
    );
    s.unsolicited.take();
    // The dynamic items appear after 2 s; the watched resource updates 3 s
    // after the ticker saw the subscription.
    std::thread::sleep(Duration::from_millis(3800));
    let methods: Vec<String> = s
        .unsolicited
        .take()
        .iter()
        .map(|n| str_at(n, &["method"]).unwrap().to_string())
        .collect();
    assert_eq!(
        methods,
        [
            "notifications/tools/list_changed",
            "notifications/prompts/list_changed",
            "notifications/resources/list_changed",
            "notifications/resources/updated",
        ]
    );
    let r = s.response(&call_line(2, "test_dynamic_tool", "{}"));
    assert_eq!(
        first_text(&r).as_deref(),
        Some("This tool was added dynamically.")
    );
    let names: Vec<String> = tools_page(&s)
        .iter()
        .map(|t| str_at(t, &["name"]).unwrap().to_string())
        .collect();
    assert_eq!(names.last().map(String::as_str), Some("test_dynamic_tool"));
    let r = request(&s, 3, "prompts/get", r#"{"name":"test_dynamic_prompt"}"#);
    assert!(r.get("result").is_some());
    let r = request(
        &s,
        4,
        "resources/read",
        r#"{"uri":"test://dynamic-resource"}"#,
    );
    assert!(r.get("result").is_some());
    // Closing the session silences it.
    request(
        &s,
        5,
        "resources/unsubscribe",
        r#"{"uri":"test://watched-resource"}"#,
    );
    s.session.close();
    s.unsolicited.take();
    std::thread::sleep(Duration::from_millis(400));
    assert!(s.unsolicited.take().is_empty());
}

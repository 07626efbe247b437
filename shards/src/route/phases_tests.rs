//! The checks before a method runs, each on its own, without a router where none is needed.

use super::phases;
use super::request::McpHttpRequest;
use crate::auth::verify::Principal;
use crate::http::request::Method;
use crate::wire::jsonrpc::Envelope;

fn req(
    body: &str,
    version: Option<&str>,
    method: Option<&str>,
    name: Option<&str>,
) -> McpHttpRequest {
    McpHttpRequest {
        method: Method::Post,
        session_id: None,
        protocol_version: version.map(Into::into),
        accepts_sse: true,
        last_event_id: None,
        mcp_method: method.map(str::to_string),
        mcp_name: name.map(str::to_string),
        mcp_params: None,
        affinity: Default::default(),
        principal: Principal::new("p", Vec::new()),
        discovery: crate::config::Discovery::Full,
        trace: Default::default(),
        body: body.as_bytes().to_vec(),
    }
}

/// The status and JSON-RPC error code of a refusal, and the id it carries.
fn refusal(r: &crate::http::response::Reply) -> (u16, i64, serde_json::Value) {
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    (
        r.status,
        v["error"]["code"].as_i64().unwrap(),
        v["id"].clone(),
    )
}

const META: &str = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;

#[test]
fn an_unreadable_body_is_refused_with_the_id_when_it_can_be_found() {
    let bad = r#"{"jsonrpc":"2.0","id":9,"method":"ping","params":{"a":[}"#;
    let r = phases::parse(bad.as_bytes()).expect_err("refused");
    assert_eq!(refusal(&r).0, 400);
    assert_eq!(refusal(&r).2, 9);
    assert!(phases::parse(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).is_ok());
}

#[test]
fn a_2025_request_without_a_session_is_refused_before_anything_else_runs() {
    let body = r#"{"jsonrpc":"2.0","id":"x","method":"tools/list"}"#;
    let r = req(body, None, None, None);
    let env = Envelope::parse(&r.body).unwrap();
    let refused = phases::session_named(&r, &env).expect_err("refused");
    assert_eq!(refusal(&refused), (400, -32600, "x".into()));
    let mut named = req(body, None, None, None);
    named.session_id = Some("s".into());
    assert_eq!(phases::session_named(&named, &env).ok(), Some("s"));
}

#[test]
fn the_2026_checks_run_in_the_specs_order_and_echo_the_id() {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{{"name":"a__b",{META}}}}}"#
    );
    let check = |version: Option<&str>, method: Option<&str>, name: Option<&str>| {
        let r = req(&body, version, method, name);
        let env = Envelope::parse(&r.body).unwrap();
        phases::modern_version(&r, &env)
            .and_then(|()| phases::modern_names(&r, &env, "tools/call"))
            .err()
            .map(|refused| refusal(&refused))
    };
    // No version header: refused first, whatever else is wrong.
    assert_eq!(check(None, None, None).map(|r| r.0), Some(400));
    // A version header that disagrees with `_meta`.
    assert_eq!(
        check(Some("2025-11-25"), Some("tools/call"), Some("a__b")).map(|r| r.0),
        Some(400)
    );
    // Method header missing, or naming another method.
    assert!(check(Some("2026-07-28"), None, Some("a__b")).is_some());
    assert!(check(Some("2026-07-28"), Some("tools/list"), Some("a__b")).is_some());
    // Name header missing, another name, or the right name base64-encoded.
    assert!(check(Some("2026-07-28"), Some("tools/call"), None).is_some());
    assert!(check(Some("2026-07-28"), Some("tools/call"), Some("a__c")).is_some());
    assert_eq!(
        check(
            Some("2026-07-28"),
            Some("tools/call"),
            Some("=?base64?YV9fYg==?=")
        ),
        None
    );
    assert_eq!(
        check(Some("2026-07-28"), Some("tools/call"), Some("a__b")),
        None
    );
    let refused = check(Some("2026-07-28"), Some("tools/call"), Some("a__c")).unwrap();
    assert_eq!(refused.2, 4, "the request's id is echoed");
}

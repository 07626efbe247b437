use super::*;

fn ask(result: &str) -> Result<Ask, McpError> {
    let body = format!(r#"{{"jsonrpc":"2.0","id":7,"result":{result}}}"#);
    Ask::parse("b", body.as_bytes())
}

fn protocol_reason(r: Result<Ask, McpError>) -> String {
    match r {
        Err(McpError::BackendProtocol { server, reason }) => {
            assert_eq!(server, "b");
            reason
        }
        Err(other) => panic!("not the backend's fault: {other}"),
        Ok(_) => panic!("accepted"),
    }
}

#[test]
fn input_requests_are_read_in_order_with_their_capability() {
    let a = ask(
        r#"{"resultType":"input_required","inputRequests":{"q\"1":{"method":"elicitation/create","params":{"message":"Who?"}},"r":{"method":"roots/list"},"s":{"params":{"maxTokens":5},"method":"sampling/createMessage"}},"requestState":"st\u0041te"}"#,
    )
    .unwrap();
    let got: Vec<(&str, &str, &str)> = a
        .inputs
        .iter()
        .map(|i| (i.key.as_str(), i.method, i.capability))
        .collect();
    assert_eq!(
        got,
        [
            ("q\"1", "elicitation/create", "elicitation"),
            ("r", "roots/list", "roots"),
            ("s", "sampling/createMessage", "sampling")
        ]
    );
    assert_eq!(a.inputs[0].key_json, br#""q\"1""#);
    assert_eq!(
        a.inputs[0].params.as_deref(),
        Some(&br#"{"message":"Who?"}"#[..])
    );
    assert_eq!(a.inputs[1].params, None);
    // The state travels back byte for byte, escapes and all.
    assert_eq!(a.state.as_deref(), Some(&br#""st\u0041te""#[..]));
    let only_state = ask(r#"{"resultType":"input_required","requestState":"x"}"#).unwrap();
    assert!(only_state.inputs.is_empty());
}

#[test]
fn what_breaks_the_shape_is_the_backends_fault() {
    let cases = [
        (r#"{"resultType":"input_required"}"#, "neither"),
        (
            r#"{"resultType":"input_required","requestState":7}"#,
            "not a string",
        ),
        (
            r#"{"resultType":"input_required","inputRequests":[]}"#,
            "not an object",
        ),
        (
            r#"{"resultType":"input_required","inputRequests":{"a":{"method":"tools/call"}}}"#,
            "no known method",
        ),
        (
            r#"{"resultType":"input_required","inputRequests":{"a":{"method":"roots/list","params":[1]}}}"#,
            "params",
        ),
        (
            r#"{"resultType":"input_required","inputRequests":{"a":{"method":"roots/list"},"a":{"method":"roots/list"}}}"#,
            "repeated",
        ),
    ];
    for (result, why) in cases {
        let reason = protocol_reason(ask(result));
        assert!(reason.contains(why), "{result}: {reason}");
    }
    let many: Vec<String> = (0..=MAX_INPUTS)
        .map(|i| format!(r#""k{i}":{{"method":"roots/list"}}"#))
        .collect();
    let reason = protocol_reason(ask(&format!(
        r#"{{"resultType":"input_required","inputRequests":{{{}}}}}"#,
        many.join(",")
    )));
    assert!(reason.contains("more than 16"), "{reason}");
}

/// `body` with its id made the placeholder, as `forward` sends it.
fn base(body: &str) -> (Vec<u8>, Range<usize>) {
    let env = Envelope::parse(body.as_bytes()).unwrap();
    let mut out = Vec::new();
    let ph = crate::wire::jsonrpc::splice_placeholder(
        body.as_bytes(),
        env.id.clone().unwrap(),
        &[],
        &mut out,
    );
    (out, ph)
}

#[test]
fn the_request_goes_again_with_the_answers_and_the_state() {
    let a = ask(
        r#"{"resultType":"input_required","inputRequests":{"who":{"method":"elicitation/create"},"r":{"method":"roots/list"}},"requestState":"s-1"}"#,
    )
    .unwrap();
    let answers = [
        br#"{"action":"accept","content":{"name":"Ada"}}"#.to_vec(),
        br#"{"roots":[]}"#.to_vec(),
    ];
    let (b, ph) = base(
        r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"t","arguments":{}},"id":"c1"}"#,
    );
    let (out, at) = again(&b, ph, &a, &answers).unwrap();
    assert_eq!(&out[at], b"0", "the placeholder is followed");
    let v: sonic_rs::Value = sonic_rs::from_slice(&out).unwrap();
    let want: sonic_rs::Value = sonic_rs::from_str(
        r#"{"jsonrpc":"2.0","method":"tools/call","params":{"inputResponses":{"who":{"action":"accept","content":{"name":"Ada"}},"r":{"roots":[]}},"requestState":"s-1","name":"t","arguments":{}},"id":0}"#,
    )
    .unwrap();
    assert_eq!(v, want);
    // Empty params, and a round that only carries the state.
    let only_state = ask(r#"{"resultType":"input_required","requestState":"s-2"}"#).unwrap();
    let (b, ph) = base(r#"{"jsonrpc":"2.0","id":5,"method":"resources/read","params":{ }}"#);
    let (out, at) = again(&b, ph, &only_state, &[]).unwrap();
    assert_eq!(&out[at], b"0");
    let v: sonic_rs::Value = sonic_rs::from_slice(&out).unwrap();
    assert_eq!(v["params"]["requestState"].as_str(), Some("s-2"));
    assert!(v["params"].get("inputResponses").is_none());
}

#[test]
fn a_2025_request_that_carries_the_keys_itself_is_refused() {
    let a = ask(r#"{"resultType":"input_required","requestState":"s"}"#).unwrap();
    for own in ["inputResponses", "requestState"] {
        let (b, ph) = base(&format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"t","{own}":{{}}}}}}"#
        ));
        match again(&b, ph, &a, &[]) {
            Err(McpError::InvalidParams(m)) => assert!(m.contains(own), "{m}"),
            other => panic!("{own}: {other:?}"),
        }
    }
}

#[test]
fn only_input_required_answers_ask() {
    let reply = |body: &str| {
        let b = body.as_bytes().to_vec();
        Ok(BackendReply {
            id: 0..0,
            body: b,
            origin: Default::default(),
        })
    };
    assert!(asks_input(&reply(
        r#"{"jsonrpc":"2.0","id":1,"result":{"resultType":"input_required","requestState":"s"}}"#
    )));
    assert!(!asks_input(&reply(
        r#"{"jsonrpc":"2.0","id":1,"result":{"resultType":"complete","content":[{"type":"text","text":"input_required"}]}}"#
    )));
    assert!(!asks_input(&Err(McpError::Cancelled)));
    assert!(may_ask("tools/call") && may_ask("prompts/get") && may_ask("resources/read"));
    assert!(!may_ask("tools/list") && !may_ask("completion/complete"));
}

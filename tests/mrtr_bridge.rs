//! A 2025 backend's elicitation bridged to 2026-07-28 clients (`input_required`, retried with
//! `inputResponses` and the gateway's `requestState`), under hostile or careless clients:
//! a state only resumes the request it was minted for (method, tool, arguments, caller); a
//! call parked and never retried does not stop other clients' elicitations through the same
//! shared stdio backend; and a parked call gives its backend call back when the call's own
//! timeout passes.

mod common;

use common::{demo_stdio, Gateway, DRIVERS};
use sonic_rs::JsonValueTrait;
use std::time::Duration;

/// A 2025-only stdio fixture (DEMO_MODERN=0): the gateway bridges its requests.
fn fixture(extra: &str) -> String {
    demo_stdio(
        "fx",
        &format!(
            "prefix = false\nenv = {{ DEMO_CONFORMANCE = \"1\", DEMO_MODERN = \"0\" }}\n{extra}"
        ),
    )
}

const META: &str = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"elicitation":{}}}"#;

/// A 2026 request: `method` on `name` with `args`, optionally a retry with `state` and the
/// answer `who`; `key` is the caller's API key (none: anonymous).
struct Req<'a> {
    id: u32,
    method: &'a str,
    name: &'a str,
    args: &'a str,
    retry: Option<(&'a str, &'a str)>,
    key: Option<&'a str>,
}

fn send(gw: &Gateway, r: Req<'_>) -> sonic_rs::Value {
    let bearer = r.key.map(|k| format!("Bearer {k}"));
    let mut h = vec![
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", r.method),
        ("mcp-name", r.name),
    ];
    if let Some(b) = &bearer {
        h.push(("authorization", b));
    }
    let retry = r.retry.map_or(String::new(), |(state, who)| {
        format!(
            r#""inputResponses":{{"input":{{"action":"accept","content":{{"response":"{who}"}}}}}},"requestState":"{state}","#
        )
    });
    let args = if r.method == "tools/call" || r.method == "prompts/get" {
        format!(r#""arguments":{},"#, r.args)
    } else {
        String::new()
    };
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":{},"method":"{}","params":{{"name":"{}",{args}{retry}{META}}}}}"#,
        r.id, r.method, r.name
    );
    gw.post(&h, &body).answer()
}

fn call(id: u32, name: &'static str, args: &'static str) -> Req<'static> {
    Req {
        id,
        method: "tools/call",
        name,
        args,
        retry: None,
        key: None,
    }
}

fn state_of(v: &sonic_rs::Value) -> String {
    assert_eq!(
        v["result"]["resultType"].as_str(),
        Some("input_required"),
        "{v:?}"
    );
    v["result"]["requestState"].as_str().unwrap().to_string()
}

fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn a_request_state_resumes_only_the_request_it_was_minted_for() {
    let (alice, bob) = ("alice-key-0123456789", "bob-key-0123456789");
    let auth = format!(
        "[auth]\nmode = \"api_key\"\n[[auth.api_keys]]\nname = \"alice\"\nsha256 = \"{}\"\n[[auth.api_keys]]\nname = \"bob\"\nsha256 = \"{}\"\n\n",
        sha256_hex(alice),
        sha256_hex(bob)
    );
    for driver in DRIVERS {
        let gw = Gateway::start(&format!("{auth}{}", fixture("")), driver, 2, &["fx"]);
        let ask = r#"{"message":"Who?"}"#;
        let first = send(
            &gw,
            Req {
                key: Some(alice),
                ..call(1, "test_elicitation", ask)
            },
        );
        let state = state_of(&first);
        let answer = Some((state.as_str(), "alice"));
        let misuses = [
            // Another tool.
            Req {
                retry: answer,
                key: Some(alice),
                ..call(2, "test_elicitation_sep1034_defaults", "{}")
            },
            // The same tool with other arguments.
            Req {
                retry: answer,
                key: Some(alice),
                ..call(3, "test_elicitation", r#"{"message":"Other?"}"#)
            },
            // Another method.
            Req {
                method: "prompts/get",
                retry: answer,
                key: Some(alice),
                ..call(4, "test_elicitation", ask)
            },
            // Another caller.
            Req {
                retry: answer,
                key: Some(bob),
                ..call(5, "test_elicitation", ask)
            },
        ];
        for (i, misuse) in misuses.into_iter().enumerate() {
            let id = misuse.id;
            let r = send(&gw, misuse);
            assert_eq!(
                r["error"]["code"].as_i64(),
                Some(-32602),
                "{driver}: misuse {i}: {r:?}"
            );
            assert_eq!(r["id"].as_u64(), Some(id as u64), "{driver}: {r:?}");
            assert!(
                r["error"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("requestState"),
                "{driver}: {r:?}"
            );
        }
        // The parked call was not consumed by the misuses: the right retry completes it.
        let done = send(
            &gw,
            Req {
                retry: answer,
                key: Some(alice),
                ..call(6, "test_elicitation", ask)
            },
        );
        assert_eq!(
            done["result"]["resultType"].as_str(),
            Some("complete"),
            "{driver}: {done:?}"
        );
        let text = sonic_rs::to_string(&done).unwrap();
        assert!(text.contains("alice"), "{driver}: {text}");
    }
}

#[test]
fn an_abandoned_input_required_call_does_not_block_other_clients_elicitations() {
    for driver in DRIVERS {
        for cores in [1, 2] {
            let gw = Gateway::start(&fixture(""), driver, cores, &["fx"]);
            // One client is asked for input and never comes back.
            let abandoned = send(&gw, call(1, "test_elicitation", r#"{"message":"A?"}"#));
            state_of(&abandoned);
            // Others, one after the other and then two at once, are still asked and finish.
            for round in 0..2 {
                let args = if round == 0 {
                    r#"{"message":"B?"}"#
                } else {
                    r#"{"message":"C?"}"#
                };
                let first = send(&gw, call(10 + round, "test_elicitation", args));
                let state = state_of(&first);
                assert!(
                    sonic_rs::to_string(&first).unwrap().contains(&args[12..14]),
                    "{driver}/{cores}: the question is this client's: {first:?}"
                );
                let done = send(
                    &gw,
                    Req {
                        retry: Some((&state, "bob")),
                        ..call(20 + round, "test_elicitation", args)
                    },
                );
                assert_eq!(
                    done["result"]["resultType"].as_str(),
                    Some("complete"),
                    "{driver}/{cores}: {done:?}"
                );
                assert!(
                    sonic_rs::to_string(&done).unwrap().contains("bob"),
                    "{driver}/{cores}: {done:?}"
                );
            }
        }
    }
}

#[test]
fn a_parked_call_gives_its_backend_call_back_when_its_timeout_passes() {
    for driver in DRIVERS {
        // One call at a time to the backend, and 1.5 s per call.
        let gw = Gateway::start(
            &fixture("timeout_ms = 1500\nmax_inflight = 1"),
            driver,
            1,
            &["fx"],
        );
        let parked = send(&gw, call(1, "test_elicitation", r#"{"message":"A?"}"#));
        let state = state_of(&parked);
        std::thread::sleep(Duration::from_millis(2500));
        // The parked call's slot is free again.
        let r = send(&gw, call(2, "test_simple_text", "{}"));
        assert_eq!(
            r["result"]["resultType"].as_str(),
            Some("complete"),
            "{driver}: {r:?}"
        );
        // And its state no longer resumes anything.
        let late = send(
            &gw,
            Req {
                retry: Some((&state, "late")),
                ..call(3, "test_elicitation", r#"{"message":"A?"}"#)
            },
        );
        assert_eq!(
            late["error"]["code"].as_i64(),
            Some(-32602),
            "{driver}: {late:?}"
        );
    }
}

//! Two nodes of one cluster (`[cluster]`, one key file), each a real gateway process: session
//! ids name their node and are refused (404, counted by reason) everywhere else; a bridged
//! `input_required` retry that lands on the other node is replayed there and succeeds, or is
//! refused when its server opts out; the key file is rotated by reload, a retired key's
//! states stop verifying; a bad key file is a config error naming file and line; no key
//! reaches a log line, `/health`, `/metrics` or an answer. Both drivers.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{demo_stdio, scratch, Gateway, DRIVERS};
use sonic_rs::JsonValueTrait;

const KEY_A: &str = "Q2x1c3Rlci1rZXktQS0wMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1";
const KEY_B: &str = "Q2x1c3Rlci1rZXktQi0wMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1";

fn key_file(dir: &Path, name: &str, lines: &[(&str, &str)]) -> String {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    let text: String = lines.iter().map(|(id, k)| format!("{id} {k}\n")).collect();
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p.display().to_string()
}

/// A 2025-only stdio fixture: the gateway bridges its elicitation to 2026 clients.
fn node_config(node: &str, keys: &str, replay: bool) -> String {
    format!(
        "[cluster]\nnode_id = \"{node}\"\nkey_file = \"{keys}\"\n[metrics]\nsocket_enabled = false\n{}",
        demo_stdio(
            "fx",
            &format!(
                "prefix = false\nbridge_replay = {replay}\nenv = {{ DEMO_CONFORMANCE = \"1\", DEMO_MODERN = \"0\" }}\n"
            ),
        )
    )
}

fn metric(gw: &Gateway, line_start: &str) -> u64 {
    let text = gw.get("/metrics").text();
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {line_start} in\n{text}"))
}

/// Waits (shards report every 500 ms, the text is rendered every 500 ms) until the counter
/// reads `want`, and checks it stays there a moment (nothing else counted).
fn expect_metric(gw: &Gateway, line_start: &str, want: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while metric(gw, line_start) != want {
        assert!(
            std::time::Instant::now() < deadline,
            "{line_start} is {}, want {want}",
            metric(gw, line_start)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(metric(gw, line_start), want, "{line_start}");
}

fn tools_list(gw: &Gateway, sid: &str) -> common::Resp {
    gw.post(
        &[
            ("mcp-session-id", sid),
            ("mcp-protocol-version", "2025-11-25"),
        ],
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
    )
}

#[test]
fn session_ids_name_their_node_and_are_refused_elsewhere() {
    for driver in DRIVERS {
        let dir = scratch(&format!("cluster-ids-{driver}"));
        let keys = key_file(&dir, "keys", &[("a", KEY_A)]);
        let g1 = Gateway::start(&node_config("g1", &keys, true), driver, 2, &["fx"]);
        let g2 = Gateway::start(&node_config("g2", &keys, true), driver, 2, &["fx"]);
        let init = g1.post(
            &[],
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
        );
        assert_eq!(init.status, 200);
        assert_eq!(init.header("x-served-by"), Some("g1"));
        let sid = init.header("mcp-session-id").unwrap().to_string();
        let fields: Vec<&str> = sid.split('.').collect();
        assert_eq!(fields.len(), 3, "{sid}");
        assert_eq!(fields[0], "g1");
        assert!(fields[1].len() >= 22 && fields[2].len() >= 16, "{sid}");
        let ok = tools_list(&g1, &sid);
        assert_eq!((ok.status, ok.header("x-served-by")), (200, Some("g1")));

        // Another node never adopts it.
        let there = tools_list(&g2, &sid);
        assert_eq!(there.status, 404, "{}", there.text());
        assert_eq!(there.header("x-served-by"), Some("g2"));
        expect_metric(
            &g2,
            "only1mcp_session_ids_refused_total{reason=\"foreign\"}",
            1,
        );

        // A forged MAC, a node field swapped to the other node, a truncated and an
        // over-long id: 404, never 5xx.
        let mut forged = sid.clone().into_bytes();
        let last = forged.len() - 1;
        forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        let swapped = sid.replacen("g1.", "g2.", 1);
        let truncated = sid[..sid.len() - 4].to_string();
        let long = format!("{sid}{}", "A".repeat(2000));
        for bad in [&forged, &swapped, &truncated, &long] {
            let r = tools_list(&g1, bad);
            assert_eq!(r.status, 404, "{bad}: {}", r.text());
            assert!(r.text().contains("initialize"), "{}", r.text());
        }
        expect_metric(
            &g1,
            "only1mcp_session_ids_refused_total{reason=\"forged\"}",
            2,
        );
        expect_metric(
            &g1,
            "only1mcp_session_ids_refused_total{reason=\"malformed\"}",
            2,
        );
        // GET and DELETE with another node's id: 404 too.
        let del = g2.request("DELETE", "/mcp", &[("mcp-session-id", &sid)], b"");
        assert_eq!(del.status, 404);
        assert!(g1.get("/metrics").text().contains("node=\"g1\""));
        // The session still works on its own node.
        assert_eq!(tools_list(&g1, &sid).status, 200);

        // A restarted node answers 404 for its own ids of before.
        drop(g1);
        let g1 = Gateway::start(&node_config("g1", &keys, true), driver, 2, &["fx"]);
        assert_eq!(tools_list(&g1, &sid).status, 404);
        expect_metric(
            &g1,
            "only1mcp_session_ids_refused_total{reason=\"unknown\"}",
            1,
        );
        for gw in [&g1, &g2] {
            let log = gw.log();
            assert!(!log.contains(KEY_A), "a key reached the log:\n{log}");
            assert!(log.contains("keys=[\"a\"]"), "key ids are logged: {log}");
            assert!(!gw.get("/health").text().contains(KEY_A));
            assert!(!gw.get("/metrics").text().contains(KEY_A));
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}

const META: &str = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"elicitation":{}}}"#;

/// A 2026 `tools/call` of `test_elicitation`, optionally the retry with `state` and answer.
fn ask(gw: &Gateway, id: u32, retry: Option<(&str, &str)>) -> (common::Resp, sonic_rs::Value) {
    let retry = retry.map_or(String::new(), |(state, who)| {
        format!(
            r#""inputResponses":{{"input":{{"action":"accept","content":{{"response":"{who}"}}}}}},"requestState":"{state}","#
        )
    });
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"test_elicitation","arguments":{{"message":"Who?"}},{retry}{META}}}}}"#
    );
    let r = gw.post(
        &[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "test_elicitation"),
        ],
        &body,
    );
    let v = r.answer();
    (r, v)
}

fn state_of(v: &sonic_rs::Value) -> String {
    assert_eq!(
        v["result"]["resultType"].as_str(),
        Some("input_required"),
        "{v:?}"
    );
    v["result"]["requestState"].as_str().unwrap().to_string()
}

#[test]
fn a_bridged_retry_is_replayed_on_another_node() {
    for driver in DRIVERS {
        let dir = scratch(&format!("cluster-replay-{driver}"));
        let keys = key_file(&dir, "keys", &[("a", KEY_A)]);
        let g1 = Gateway::start(&node_config("g1", &keys, true), driver, 2, &["fx"]);
        let g2 = Gateway::start(&node_config("g2", &keys, true), driver, 2, &["fx"]);
        let (first, v) = ask(&g1, 1, None);
        assert_eq!(first.header("x-served-by"), Some("g1"));
        let state = state_of(&v);
        assert!(state.starts_with("o1m2.g1."), "{state}");

        // The retry lands on g2, which holds no parked call: it replays the call and
        // answers the backend's elicitation from the client's inputResponses.
        let (second, done) = ask(&g2, 2, Some((&state, "carol")));
        assert_eq!(second.header("x-served-by"), Some("g2"));
        assert_eq!(done["id"].as_u64(), Some(2), "{done:?}");
        let text = done["result"]["content"][0]["text"].as_str().unwrap_or("");
        assert!(
            text.contains("carol"),
            "the replay used the client's answer: {done:?}"
        );

        // A tampered state is refused with a JSON-RPC error, on either node.
        let tampered = state.replacen("o1m2.g1.", "o1m2.g3.", 1);
        for gw in [&g1, &g2] {
            let (_, bad) = ask(gw, 3, Some((&tampered, "mallory")));
            assert_eq!(bad["error"]["code"].as_i64(), Some(-32602), "{bad:?}");
        }
        // The same state on its own node still resumes the parked call there.
        let (_, own) = ask(&g1, 4, Some((&state, "dave")));
        let text = own["result"]["content"][0]["text"].as_str().unwrap_or("");
        assert!(text.contains("dave"), "{own:?}");
        std::fs::remove_dir_all(&dir).ok();
    }
}

#[test]
fn a_server_may_refuse_replays() {
    let driver = DRIVERS[0];
    let dir = scratch("cluster-noreplay");
    let keys = key_file(&dir, "keys", &[("a", KEY_A)]);
    let g1 = Gateway::start(&node_config("g1", &keys, false), driver, 1, &["fx"]);
    let g2 = Gateway::start(&node_config("g2", &keys, false), driver, 1, &["fx"]);
    let (_, v) = ask(&g1, 1, None);
    let state = state_of(&v);
    let (_, refused) = ask(&g2, 2, Some((&state, "carol")));
    assert_eq!(
        refused["error"]["code"].as_i64(),
        Some(-32602),
        "{refused:?}"
    );
    let msg = refused["error"]["message"].as_str().unwrap();
    assert!(msg.contains("bridge_replay = false"), "{msg}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn keys_rotate_by_reload_and_a_retired_key_stops_verifying() {
    for driver in DRIVERS {
        let dir = scratch(&format!("cluster-rotate-{driver}"));
        let keys = key_file(&dir, "keys", &[("a", KEY_A)]);
        let g1 = Gateway::start(&node_config("g1", &keys, true), driver, 1, &["fx"]);
        let (_, v) = ask(&g1, 1, None);
        let old_state = state_of(&v);
        let old_sid = g1.initialize();

        let reload = |lines: &[(&str, &str)]| {
            key_file(&dir, "keys", lines);
            let before = metric(&g1, "only1mcp_config_reloads_total");
            unsafe { libc::kill(g1.pid() as i32, libc::SIGHUP) };
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while metric(&g1, "only1mcp_config_reloads_total") == before {
                assert!(
                    std::time::Instant::now() < deadline,
                    "no reload: {}",
                    g1.log()
                );
            }
        };
        // Step 1 of a rotation: the new key second. Step 2: first (it signs).
        reload(&[("a", KEY_A), ("b", KEY_B)]);
        reload(&[("b", KEY_B), ("a", KEY_A)]);
        assert_eq!(
            tools_list(&g1, &old_sid).status,
            200,
            "old ids still verify"
        );
        let (_, v) = ask(&g1, 2, None);
        let new_state = state_of(&v);
        // Step 3: the old key leaves; what it signed no longer verifies.
        reload(&[("b", KEY_B)]);
        let (_, refused) = ask(&g1, 3, Some((&old_state, "x")));
        assert_eq!(
            refused["error"]["code"].as_i64(),
            Some(-32602),
            "{refused:?}"
        );
        assert!(
            refused["error"]["message"]
                .as_str()
                .unwrap()
                .contains("retired"),
            "{refused:?}"
        );
        let (_, ok) = ask(&g1, 4, Some((&new_state, "erin")));
        assert!(
            ok["result"]["content"][0]["text"]
                .as_str()
                .unwrap_or("")
                .contains("erin"),
            "{ok:?}"
        );
        // A bad key file on reload is rejected and the running keys stay.
        std::fs::write(dir.join("keys"), "b c2hvcnQ=\n").unwrap();
        unsafe { libc::kill(g1.pid() as i32, libc::SIGHUP) };
        std::thread::sleep(Duration::from_millis(1500));
        assert!(
            g1.log().contains("keys:1:1: cluster key file"),
            "{}",
            g1.log()
        );
        let (_, v) = ask(&g1, 5, None);
        state_of(&v);
        assert!(!g1.log().contains(KEY_A) && !g1.log().contains(KEY_B));
        std::fs::remove_dir_all(&dir).ok();
    }
}

#[test]
fn a_bad_key_file_is_a_config_error_that_names_file_and_line() {
    let dir = scratch("cluster-badkeys");
    let short = "c2hvcnQta2V5";
    let cases: [(&[(&str, &str)], &str); 3] = [
        (
            &[("a", KEY_A), ("b", short)],
            ":2:1: cluster key file (cluster.key_file): key `b` is 9 bytes",
        ),
        (
            &[("a", "not*base64!")],
            ":1:1: cluster key file (cluster.key_file): key `a` is not valid base64",
        ),
        (
            &[("a", KEY_A), ("a", KEY_B)],
            ":2:1: cluster key file (cluster.key_file): duplicate key id `a`",
        ),
    ];
    for (i, (lines, want)) in cases.iter().enumerate() {
        let keys = key_file(&dir, &format!("keys{i}"), lines);
        let cfg = dir.join(format!("cfg{i}.toml"));
        std::fs::write(&cfg, node_config("g1", &keys, true)).unwrap();
        for cmd in [&["validate"][..], &["start", "--port", "0", "--config"][..]] {
            let out = std::process::Command::new(common::bin())
                .args(cmd)
                .arg(&cfg)
                .output()
                .unwrap();
            assert!(!out.status.success());
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains(&format!("{keys}{want}")), "{cmd:?}: {err}");
            for (_, k) in lines.iter() {
                assert!(!err.contains(k), "key material in: {err}");
            }
        }
    }
    // Readable by others: accepted, with a warning.
    use std::os::unix::fs::PermissionsExt;
    let keys = key_file(&dir, "loose", &[("a", KEY_A)]);
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o644)).unwrap();
    let cfg = dir.join("loose.toml");
    std::fs::write(&cfg, node_config("g1", &keys, true)).unwrap();
    let out = std::process::Command::new(common::bin())
        .arg("validate")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"));
    // A bad node id names the key.
    let cfg = dir.join("badnode.toml");
    std::fs::write(&cfg, node_config("G_1", &keys, true)).unwrap();
    let out = std::process::Command::new(common::bin())
        .arg("validate")
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("key `cluster.node_id`"));
    std::fs::remove_dir_all(&dir).ok();
}

//! A 2026-07-28 client's tasks (the extension `io.modelcontextprotocol/tasks`) carried to a
//! backend the gateway reaches through its 2025-11-25 session: the demo fixture with
//! `DEMO_MODERN=0` (2025 experimental tasks only), over stdio and HTTP, on both drivers, two
//! shards. The catalog shows its tasks; a call that declares the extension becomes a 2025
//! task; `tasks/get` maps the task, with its result, error or input request; `tasks/update`
//! answers the input the backend asked for on its `tasks/result` stream; `tasks/cancel`
//! cancels; bad ids look unknown; a backend that lost the task ends it failed; an input
//! nobody answers ends at the backend's timeout with nothing left parked.

mod common;
mod tasks_kit;

use std::time::{Duration, Instant};

use common::{DemoHttp, Gateway, DRIVERS};
use sonic_rs::{JsonContainerTrait, JsonValueTrait};
use tasks_kit::{call_2026, modern, sha256_hex, task_2026, until, WITHOUT_TASKS, WITH_TASKS};

const RELATED: &str = "io.modelcontextprotocol/related-task";
const LEGACY_ONLY: &[(&str, &str)] = &[
    ("DEMO_CONFORMANCE", "1"),
    ("DEMO_PAGE_SIZE", "100"),
    ("DEMO_MODERN", "0"),
];

/// The 2025-only fixture as server `id` over `transport`; the HTTP process lives as long as
/// the returned handle.
fn legacy_fixture(id: &str, transport: &str, extra: &str) -> (String, Option<DemoHttp>) {
    match transport {
        "stdio" => (
            format!(
                "[[servers]]\nid = \"{id}\"\ntransport = \"stdio\"\ncommand = \"$self\"\nargs = [\"demo-server\", \"--stdio\", \"--name\", \"{id}\"]\nenv = {{ DEMO_CONFORMANCE = \"1\", DEMO_PAGE_SIZE = \"100\", DEMO_MODERN = \"0\" }}\n{extra}\n"
            ),
            None,
        ),
        _ => {
            let web = DemoHttp::start_with("127.0.0.1:0", id, LEGACY_ONLY, None);
            let cfg = format!(
                "[[servers]]\nid = \"{id}\"\ntransport = \"http\"\nurl = \"http://{}/mcp\"\n{extra}\n",
                web.addr
            );
            (cfg, Some(web))
        }
    }
}

fn task_id(r: &sonic_rs::Value) -> String {
    assert_eq!(r["result"]["resultType"].as_str(), Some("task"), "{r:?}");
    r["result"]["taskId"]
        .as_str()
        .unwrap_or_else(|| panic!("no task: {r:?}"))
        .to_string()
}

fn get(gw: &Gateway, key: Option<&str>, task: &str) -> sonic_rs::Value {
    task_2026(gw, key, WITH_TASKS, "tasks/get", task, "").json()
}

fn until_status(gw: &Gateway, task: &str, want: &str) -> sonic_rs::Value {
    until(
        Duration::from_secs(15),
        || get(gw, None, task),
        |v| v["result"]["status"].as_str() == Some(want),
    )
}

/// Polls until the task shows an input request; its key and the request.
fn until_asked(gw: &Gateway, task: &str, at: &str) -> (String, sonic_rs::Value) {
    let v = until(
        Duration::from_secs(15),
        || get(gw, None, task),
        |v| v["result"]["inputRequests"].is_object(),
    );
    assert_eq!(
        v["result"]["status"].as_str(),
        Some("input_required"),
        "{at}: {v:?}"
    );
    let reqs = v["result"]["inputRequests"].as_object().unwrap();
    assert_eq!(reqs.len(), 1, "{at}: one request at a time: {v:?}");
    let (k, r) = reqs.iter().next().unwrap();
    (k.to_string(), r.clone())
}

fn update(gw: &Gateway, task: &str, key: &str, answer: &str) -> sonic_rs::Value {
    let more = format!(r#","inputResponses":{{"{key}":{answer}}}"#);
    task_2026(gw, None, WITH_TASKS, "tasks/update", task, &more).json()
}

/// This gateway's parked calls (`only1mcp_client_input_pending{kind="parked"}`), all shards.
fn parked(gw: &Gateway) -> i64 {
    gw.get("/metrics")
        .text()
        .lines()
        .filter(|l| l.starts_with("only1mcp_client_input_pending{"))
        .filter_map(|l| {
            l.split_once("kind=\"parked\"} ")
                .map(|(_, n)| n.parse::<i64>().unwrap())
        })
        .sum()
}

#[test]
fn a_2026_clients_tasks_reach_a_2025_only_backend() {
    for driver in DRIVERS {
        for transport in ["stdio", "http"] {
            let at = format!("{driver}/{transport}");
            let (cfg, _web) = legacy_fixture("fx", transport, "");
            let gw = Gateway::start(&cfg, driver, 2, &["fx"]);
            let d = modern(&gw, None, WITH_TASKS, "server/discover", None, "").json();
            let ext = &d["result"]["capabilities"]["extensions"]["io.modelcontextprotocol/tasks"];
            assert!(ext.is_object(), "{at}: the extension is advertised: {d:?}");
            let list = modern(&gw, None, WITH_TASKS, "tools/list", None, "").json();
            let support = |name: &str| {
                list["result"]["tools"]
                    .as_array()
                    .and_then(|a| a.iter().find(|t| t["name"].as_str() == Some(name)).cloned())
                    .map(|t| t["execution"]["taskSupport"].as_str().map(str::to_string))
            };
            assert_eq!(
                support("fx__failing_job"),
                Some(Some("required".into())),
                "{at}: a tool that requires a task is listed: {list:?}"
            );
            assert_eq!(support("fx__slow_compute"), Some(Some("optional".into())));

            // Created as a 2025 task, shown in the extension's shape, ended with its result.
            let c = call_2026(
                &gw,
                None,
                WITH_TASKS,
                "fx__slow_compute",
                r#"{"seconds":0.5,"label":"L"}"#,
            )
            .json();
            let id = task_id(&c);
            assert!(id.starts_with("_.") && !id.contains("task-"), "{at}: {id}");
            assert_eq!(c["result"]["status"].as_str(), Some("working"), "{at}");
            assert!(c["result"]["ttlMs"].is_number(), "{at}: {c:?}");
            assert!(c["result"].get("task").is_none(), "{at}: flat, not nested");
            let now = get(&gw, None, &id);
            assert_eq!(now["result"]["taskId"].as_str(), Some(id.as_str()), "{at}");
            assert_eq!(now["result"]["resultType"].as_str(), Some("complete"));
            assert!(now["result"].get("ttl").is_none(), "{at}: {now:?}");
            let done = until_status(&gw, &id, "completed");
            assert_eq!(
                done["result"]["result"]["content"][0]["text"].as_str(),
                Some("Computed L in 0.5 s"),
                "{at}: {done:?}"
            );

            // A tool error is a completed task whose result says so; a JSON-RPC error fails it.
            let id = task_id(&call_2026(&gw, None, WITH_TASKS, "fx__failing_job", "{}").json());
            let done = until_status(&gw, &id, "completed");
            assert_eq!(
                done["result"]["result"]["isError"].as_bool(),
                Some(true),
                "{at}"
            );
            let id =
                task_id(&call_2026(&gw, None, WITH_TASKS, "fx__protocol_error_job", "{}").json());
            let failed = until_status(&gw, &id, "failed");
            assert_eq!(
                failed["result"]["error"]["code"].as_i64(),
                Some(-32603),
                "{at}: {failed:?}"
            );

            // Input: the backend's elicitation (sent on the stream of a 2025 tasks/result) is
            // the task's input request; the client's tasks/update answers it.
            let id = task_id(
                &call_2026(
                    &gw,
                    None,
                    WITH_TASKS,
                    "fx__confirm_delete",
                    r#"{"filename":"f.txt"}"#,
                )
                .json(),
            );
            let (key, req) = until_asked(&gw, &id, &at);
            assert_eq!(req["method"].as_str(), Some("elicitation/create"), "{at}");
            assert_eq!(req["params"]["message"].as_str(), Some("Delete f.txt?"));
            assert_eq!(
                req["params"]["_meta"][RELATED]["taskId"].as_str(),
                Some(id.as_str()),
                "{at}: the gateway's id, not the backend's"
            );
            // An answer under another key is not for this request: ignored.
            let ack = update(&gw, &id, "confirm", r#"{"action":"decline"}"#);
            assert_eq!(
                ack["result"]["resultType"].as_str(),
                Some("complete"),
                "{at}"
            );
            assert_eq!(until_asked(&gw, &id, &at).0, key, "{at}: still asking");
            let ack = update(
                &gw,
                &id,
                &key,
                r#"{"action":"accept","content":{"confirm":true}}"#,
            );
            assert_eq!(
                ack["result"]["resultType"].as_str(),
                Some("complete"),
                "{at}: {ack:?}"
            );
            assert!(ack["result"].get("taskId").is_none(), "{at}: an ack");
            let done = until_status(&gw, &id, "completed");
            assert_eq!(
                done["result"]["result"]["content"][0]["text"].as_str(),
                Some("Deleted f.txt"),
                "{at}: {done:?}"
            );

            // Two questions, one after the other, each under its own key.
            let id = task_id(&call_2026(&gw, None, WITH_TASKS, "fx__multi_input", "{}").json());
            let mut keys = Vec::new();
            for _ in 0..2 {
                let (key, req) = until(
                    Duration::from_secs(15),
                    || until_asked(&gw, &id, &at),
                    |(k, _)| !keys.contains(k),
                );
                let answer = match req["params"]["message"].as_str() {
                    Some("Your name?") => r#"{"action":"accept","content":{"name":"Ada"}}"#,
                    _ => r#"{"action":"accept","content":{"confirm":true}}"#,
                };
                update(&gw, &id, &key, answer);
                keys.push(key);
            }
            let done = until_status(&gw, &id, "completed");
            assert_eq!(
                done["result"]["result"]["content"][0]["text"].as_str(),
                Some("multi_input done: name Ada, confirmed true"),
                "{at}: {done:?}"
            );
            // The gauge is summed from the shards' figures every 500 ms: wait for it.
            let left = until(Duration::from_secs(5), || parked(&gw), |n| *n == 0);
            assert_eq!(left, 0, "{at}: nothing left parked");

            // Cancelled: the backend's task is cancelled; cancelling again is the same ack.
            let id = task_id(
                &call_2026(
                    &gw,
                    None,
                    WITH_TASKS,
                    "fx__slow_compute",
                    r#"{"seconds":60}"#,
                )
                .json(),
            );
            for _ in 0..2 {
                let ack = task_2026(&gw, None, WITH_TASKS, "tasks/cancel", &id, "").json();
                assert_eq!(
                    ack["result"]["resultType"].as_str(),
                    Some("complete"),
                    "{at}: {ack:?}"
                );
            }
            assert_eq!(
                get(&gw, None, &id)["result"]["status"].as_str(),
                Some("cancelled"),
                "{at}"
            );

            // Without the extension: a tool that requires a task is refused by the gateway
            // as a 2026 backend would; an optional one runs plainly.
            let r = call_2026(&gw, None, WITHOUT_TASKS, "fx__failing_job", "{}");
            assert_eq!(r.status, 400, "{at}: {}", r.text());
            let v = r.json();
            assert_eq!(v["error"]["code"].as_i64(), Some(-32021), "{at}: {v:?}");
            assert!(
                v["error"]["data"]["requiredCapabilities"]["extensions"]
                    ["io.modelcontextprotocol/tasks"]
                    .is_object(),
                "{at}: {v:?}"
            );
            let r = call_2026(
                &gw,
                None,
                WITHOUT_TASKS,
                "fx__slow_compute",
                r#"{"seconds":0,"label":"now"}"#,
            )
            .json();
            assert_eq!(r["result"]["resultType"].as_str(), Some("complete"), "{at}");
            assert_eq!(
                r["result"]["content"][0]["text"].as_str(),
                Some("Computed now in 0 s"),
                "{at}: {r:?}"
            );
            // Mcp-Name must name the task.
            let params = format!(r#""taskId":"{id}""#);
            let r = modern(&gw, None, WITH_TASKS, "tasks/get", Some("other"), &params);
            assert_eq!(
                (r.status, r.json()["error"]["code"].as_i64()),
                (400, Some(-32020)),
                "{at}"
            );
        }
    }
}

fn refusal(r: &common::Resp) -> (u16, Option<i64>, String) {
    let v = r.json();
    (
        r.status,
        v["error"]["code"].as_i64(),
        v["error"]["message"].as_str().unwrap_or("").to_string(),
    )
}

#[test]
fn bad_ids_look_unknown_and_a_lost_task_ends_failed() {
    let (alice, bob) = ("alice-key-0123456789", "bob-key-0123456789");
    let auth = format!(
        "[auth]\nmode = \"api_key\"\n[[auth.api_keys]]\nname = \"alice\"\nsha256 = \"{}\"\n[[auth.api_keys]]\nname = \"bob\"\nsha256 = \"{}\"\n\n",
        sha256_hex(alice),
        sha256_hex(bob)
    );
    for driver in DRIVERS {
        for transport in ["stdio", "http"] {
            let at = format!("{driver}/{transport}");
            let (fx, web) = legacy_fixture("fx", transport, "");
            let gw = Gateway::start(&format!("{auth}{fx}"), driver, 2, &["fx"]);
            let c = call_2026(
                &gw,
                Some(alice),
                WITH_TASKS,
                "fx__slow_compute",
                r#"{"seconds":60}"#,
            )
            .json();
            let id = task_id(&c);
            let never = refusal(&task_2026(
                &gw,
                Some(alice),
                WITH_TASKS,
                "tasks/get",
                "_.AAAAAAAA.BBBBBBBBBBBBBBBBBBBBBB",
                "",
            ));
            assert_eq!((never.0, never.1), (200, Some(-32602)), "{at}: {never:?}");
            for m in ["tasks/get", "tasks/cancel", "tasks/update"] {
                let r = task_2026(&gw, Some(bob), WITH_TASKS, m, &id, "");
                assert_eq!(refusal(&r), never, "{at}: {m} by another caller");
            }
            let mut forged = id.clone().into_bytes();
            let i = id.len() / 2;
            forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
            let forged = String::from_utf8(forged).unwrap();
            let r = task_2026(&gw, Some(alice), WITH_TASKS, "tasks/get", &forged, "");
            assert_eq!(refusal(&r), never, "{at}: a forged id");
            let mine = get(&gw, Some(alice), &id);
            assert_eq!(mine["result"]["status"].as_str(), Some("working"), "{at}");

            // The backend restarts: the task is lost, and says so at once.
            let _again = match web {
                None => {
                    let kids = tasks_kit::demo_children(&gw);
                    assert_eq!(kids.len(), 1, "{at}: {kids:?}");
                    unsafe {
                        libc::kill(kids[0] as i32, libc::SIGKILL);
                    }
                    None
                }
                Some(mut web) => {
                    let addr = web.addr.clone();
                    web.kill9();
                    Some(DemoHttp::start_with(&addr, "fx", LEGACY_ONLY, None))
                }
            };
            lost(&gw, alice, &id, &at);
        }
    }
}

fn lost(gw: &Gateway, alice: &str, id: &str, at: &str) {
    let started = Instant::now();
    let v = until(
        Duration::from_secs(15),
        || get(gw, Some(alice), id),
        |v| v["result"]["status"].as_str() == Some("failed"),
    );
    assert!(started.elapsed() < Duration::from_secs(10), "{at}: no hang");
    let msg = v["result"]["error"]["message"].as_str().unwrap_or("");
    assert!(msg.contains("backend `fx` lost the task"), "{at}: {v:?}");
    assert_eq!(v["result"]["taskId"].as_str(), Some(id), "{at}");
    let ack = task_2026(gw, Some(alice), WITH_TASKS, "tasks/cancel", id, "").json();
    assert_eq!(
        ack["result"]["resultType"].as_str(),
        Some("complete"),
        "{at}"
    );
}

#[test]
fn an_input_nobody_answers_ends_at_the_backends_timeout() {
    for driver in DRIVERS {
        for transport in ["stdio", "http"] {
            let at = format!("{driver}/{transport}");
            let (cfg, _web) = legacy_fixture("fx", transport, "timeout_ms = 1500");
            let gw = Gateway::start(&cfg, driver, 2, &["fx"]);
            let id = task_id(
                &call_2026(
                    &gw,
                    None,
                    WITH_TASKS,
                    "fx__confirm_delete",
                    r#"{"filename":"g.txt"}"#,
                )
                .json(),
            );
            let (key, _) = until_asked(&gw, &id, &at);
            let parked_now = until(Duration::from_secs(5), || parked(&gw), |n| *n == 1);
            assert_eq!(parked_now, 1, "{at}: the backend's request is parked");
            // Nobody answers: the park ends with the backend's timeout.
            let gone = until(Duration::from_secs(8), || parked(&gw), |n| *n == 0);
            assert_eq!(gone, 0, "{at}: nothing left parked");
            // The old request is no longer shown, and a late answer to it reaches nobody.
            let v = get(&gw, None, &id);
            assert!(
                v["result"]["inputRequests"].get(&key).is_none(),
                "{at}: {v:?}"
            );
            let ack = update(
                &gw,
                &id,
                &key,
                r#"{"action":"accept","content":{"confirm":true}}"#,
            );
            assert_eq!(
                ack["result"]["resultType"].as_str(),
                Some("complete"),
                "{at}"
            );
            std::thread::sleep(Duration::from_millis(500));
            let v = get(&gw, None, &id);
            assert_ne!(
                v["result"]["status"].as_str(),
                Some("completed"),
                "{at}: {v:?}"
            );
        }
    }
}

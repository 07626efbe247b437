//! The 2026 tasks extension (`io.modelcontextprotocol/tasks`) through the real gateway, on
//! both drivers, to the demo fixture's task tools over stdio and HTTP: task-augmented calls,
//! `tasks/get`, `tasks/update`, `tasks/cancel`; ids bound to their caller (another caller's,
//! a forged or a stale id looks unknown); follow-ups pinned to the replica or instance that
//! holds the task; a task whose backend restarted ends `failed`, not unknown.

mod common;
mod tasks_kit;

use std::time::{Duration, Instant};

use common::{Gateway, DRIVERS};
use sonic_rs::JsonValueTrait;
use tasks_kit::{
    call_2026, fixture, http_fixture, modern, sha256_hex, stdio_fixture, task_2026, until,
    WITHOUT_TASKS, WITH_TASKS,
};

fn task_id(r: &sonic_rs::Value) -> String {
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

#[test]
fn tasks_of_the_extension_are_carried_both_ways() {
    for driver in DRIVERS {
        for transport in ["stdio", "http"] {
            let at = format!("{driver}/{transport}");
            let (cfg, _web) = fixture("fx", transport, "");
            let gw = Gateway::start(&cfg, driver, 2, &["fx"]);
            let d = modern(&gw, None, WITH_TASKS, "server/discover", None, "").json();
            let ext = &d["result"]["capabilities"]["extensions"]["io.modelcontextprotocol/tasks"];
            assert!(ext.is_object(), "{at}: the extension is advertised: {d:?}");

            // Created, followed to completion; the backend's own id never shows.
            let c = call_2026(
                &gw,
                None,
                WITH_TASKS,
                "fx__slow_compute",
                r#"{"seconds":0.5,"label":"L"}"#,
            )
            .json();
            assert_eq!(
                c["result"]["resultType"].as_str(),
                Some("task"),
                "{at}: {c:?}"
            );
            let id = task_id(&c);
            assert!(id.starts_with("_.") && !id.contains("task-"), "{at}: {id}");
            let now = get(&gw, None, &id);
            assert_eq!(
                now["result"]["taskId"].as_str(),
                Some(id.as_str()),
                "{at}: {now:?}"
            );
            assert_eq!(now["result"]["resultType"].as_str(), Some("complete"));
            let done = until_status(&gw, &id, "completed");
            let text = done["result"]["result"]["content"][0]["text"].as_str();
            assert!(
                text.is_some_and(|t| t.contains("Computed L")),
                "{at}: {done:?}"
            );

            // Input while running: tasks/update resumes it.
            let c = call_2026(
                &gw,
                None,
                WITH_TASKS,
                "fx__confirm_delete",
                r#"{"filename":"f.txt"}"#,
            )
            .json();
            let id = task_id(&c);
            let asked = until_status(&gw, &id, "input_required");
            assert!(
                asked["result"]["inputRequests"]["confirm"]["method"].as_str()
                    == Some("elicitation/create"),
                "{at}: {asked:?}"
            );
            let ack = task_2026(
                &gw,
                None,
                WITH_TASKS,
                "tasks/update",
                &id,
                r#","inputResponses":{"confirm":{"action":"accept","content":{"confirm":true}}}"#,
            )
            .json();
            assert_eq!(
                ack["result"]["resultType"].as_str(),
                Some("complete"),
                "{at}: {ack:?}"
            );
            assert!(
                ack["result"].get("taskId").is_none(),
                "{at}: an ack, not a task"
            );
            let done = until_status(&gw, &id, "completed");
            assert_eq!(
                done["result"]["result"]["content"][0]["text"].as_str(),
                Some("Deleted f.txt"),
                "{at}"
            );

            // Cancellation reaches the backend: its job stops and the task settles cancelled.
            let c = call_2026(
                &gw,
                None,
                WITH_TASKS,
                "fx__slow_compute",
                r#"{"seconds":60}"#,
            )
            .json();
            let id = task_id(&c);
            let ack = task_2026(&gw, None, WITH_TASKS, "tasks/cancel", &id, "").json();
            assert_eq!(
                ack["result"]["resultType"].as_str(),
                Some("complete"),
                "{at}: {ack:?}"
            );
            let end = until_status(&gw, &id, "cancelled");
            assert_eq!(
                end["result"]["status"].as_str(),
                Some("cancelled"),
                "{at}: {end:?}"
            );

            // Without the extension: no task; a tool that needs one, and tasks/*, are -32021.
            let r = call_2026(
                &gw,
                None,
                WITHOUT_TASKS,
                "fx__slow_compute",
                r#"{"seconds":0}"#,
            );
            assert_eq!(
                r.json()["result"]["resultType"].as_str(),
                Some("complete"),
                "{at}"
            );
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
            let r = task_2026(&gw, None, WITHOUT_TASKS, "tasks/get", &id, "");
            assert_eq!(
                (r.status, r.json()["error"]["code"].as_i64()),
                (400, Some(-32021)),
                "{at}"
            );
            // Methods this era does not have, and a task id header that disagrees.
            for m in ["tasks/result", "tasks/list"] {
                let r = task_2026(&gw, None, WITH_TASKS, m, &id, "");
                assert_eq!(
                    (r.status, r.json()["error"]["code"].as_i64()),
                    (404, Some(-32601)),
                    "{at}: {m}"
                );
            }
            let params = format!(r#""taskId":"{id}""#);
            let r = modern(
                &gw,
                None,
                WITH_TASKS,
                "tasks/get",
                Some("another-task"),
                &params,
            );
            assert_eq!(
                (r.status, r.json()["error"]["code"].as_i64()),
                (400, Some(-32020)),
                "{at}"
            );
        }
    }
}

/// The error of a `tasks/get` (code and message), with the status.
fn refusal(r: &common::Resp) -> (u16, Option<i64>, String) {
    let v = r.json();
    (
        r.status,
        v["error"]["code"].as_i64(),
        v["error"]["message"].as_str().unwrap_or("").to_string(),
    )
}

#[test]
fn another_callers_a_forged_or_a_stale_task_id_looks_unknown() {
    let (alice, bob) = ("alice-key-0123456789", "bob-key-0123456789");
    let auth = format!(
        "[auth]\nmode = \"api_key\"\n[[auth.api_keys]]\nname = \"alice\"\nsha256 = \"{}\"\n[[auth.api_keys]]\nname = \"bob\"\nsha256 = \"{}\"\n\n",
        sha256_hex(alice),
        sha256_hex(bob)
    );
    let cfg = format!("{auth}{}", stdio_fixture("fx", ""));
    for driver in DRIVERS {
        let gw = Gateway::start(&cfg, driver, 2, &["fx"]);
        let c = call_2026(
            &gw,
            Some(alice),
            WITH_TASKS,
            "fx__slow_compute",
            r#"{"seconds":30}"#,
        )
        .json();
        let id = task_id(&c);
        let mine = get(&gw, Some(alice), &id);
        assert_eq!(
            mine["result"]["status"].as_str(),
            Some("working"),
            "{driver}: {mine:?}"
        );
        let never = refusal(&task_2026(
            &gw,
            Some(alice),
            WITH_TASKS,
            "tasks/get",
            "_.AAAAAAAA.BBBBBBBBBBBBBBBBBBBBBB",
            "",
        ));
        assert_eq!(
            (never.0, never.1),
            (200, Some(-32602)),
            "{driver}: {never:?}"
        );
        // Bob, with Alice's id: exactly what a never-issued id gets, for every method.
        for m in ["tasks/get", "tasks/cancel", "tasks/update"] {
            let more = if m == "tasks/update" {
                r#","inputResponses":{}"#
            } else {
                ""
            };
            let r = task_2026(&gw, Some(bob), WITH_TASKS, m, &id, more);
            assert_eq!(refusal(&r), never, "{driver}: {m} by another caller");
        }
        // Alice's id altered anywhere in its body or tag.
        let mut forged = id.clone().into_bytes();
        let i = id.len() / 2;
        forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        let r = task_2026(&gw, Some(alice), WITH_TASKS, "tasks/get", &forged, "");
        assert_eq!(refusal(&r), never, "{driver}: a forged id");
        // The task is untouched by all that.
        let still = get(&gw, Some(alice), &id);
        assert_eq!(
            still["result"]["status"].as_str(),
            Some("working"),
            "{driver}"
        );
        // A stale id: minted by an earlier life of the gateway (another process key).
        drop(gw);
        let gw = Gateway::start(&cfg, driver, 2, &["fx"]);
        let r = task_2026(&gw, Some(alice), WITH_TASKS, "tasks/get", &id, "");
        assert_eq!(refusal(&r), never, "{driver}: a stale id");
    }
}

#[test]
fn a_task_whose_backend_restarted_ends_failed_not_unknown() {
    for driver in DRIVERS {
        // stdio: the child that ran the task is killed; the supervisor starts another.
        let gw = Gateway::start(&stdio_fixture("fx", ""), driver, 2, &["fx"]);
        let c = call_2026(
            &gw,
            None,
            WITH_TASKS,
            "fx__slow_compute",
            r#"{"seconds":60}"#,
        )
        .json();
        let id = task_id(&c);
        let kids = tasks_kit::demo_children(&gw);
        assert_eq!(kids.len(), 1, "{driver}: {kids:?}");
        unsafe {
            libc::kill(kids[0] as i32, libc::SIGKILL);
        }
        let started = Instant::now();
        let v = until_status(&gw, &id, "failed");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{driver}: no hang"
        );
        assert_eq!(
            v["result"]["status"].as_str(),
            Some("failed"),
            "{driver}: {v:?}"
        );
        let msg = v["result"]["error"]["message"].as_str().unwrap_or("");
        assert!(
            msg.contains("backend `fx` lost the task"),
            "{driver}: {v:?}"
        );
        assert_eq!(v["result"]["taskId"].as_str(), Some(id.as_str()));
        // Still failed once the new child runs, and cancelling it is the usual ack.
        gw.wait_ready(&["fx"], Duration::from_secs(30));
        until(
            Duration::from_secs(10),
            || tasks_kit::demo_children(&gw),
            |k| k.len() == 1 && k[0] != kids[0],
        );
        let v = get(&gw, None, &id);
        assert_eq!(
            v["result"]["status"].as_str(),
            Some("failed"),
            "{driver}: {v:?}"
        );
        let ack = task_2026(&gw, None, WITH_TASKS, "tasks/cancel", &id, "").json();
        assert_eq!(
            ack["result"]["resultType"].as_str(),
            Some("complete"),
            "{driver}: {ack:?}"
        );
        drop(gw);

        // HTTP: the replica restarts on the same address and no longer knows the task.
        let mut web = http_fixture("127.0.0.1:0", "fx");
        let addr = web.addr.clone();
        let cfg = format!(
            "[[servers]]\nid = \"fx\"\ntransport = \"http\"\nurl = \"http://{addr}/mcp\"\n"
        );
        let gw = Gateway::start(&cfg, driver, 2, &["fx"]);
        let c = call_2026(
            &gw,
            None,
            WITH_TASKS,
            "fx__slow_compute",
            r#"{"seconds":60}"#,
        )
        .json();
        let id = task_id(&c);
        web.kill9();
        let _web = http_fixture(&addr, "fx");
        let v = until_status(&gw, &id, "failed");
        let msg = v["result"]["error"]["message"].as_str().unwrap_or("");
        assert!(msg.contains("no longer knows it"), "{driver}: {v:?}");
    }
}

#[test]
fn follow_ups_reach_the_replica_or_instance_that_holds_the_task() {
    for driver in DRIVERS {
        let (a, b) = (
            http_fixture("127.0.0.1:0", "a"),
            http_fixture("127.0.0.1:0", "b"),
        );
        let http = format!(
            "[[servers]]\nid = \"web\"\ntransport = \"http\"\nurls = [\"http://{}/mcp\", \"http://{}/mcp\"]\n",
            a.addr, b.addr
        );
        let cfg = format!("{http}{}", stdio_fixture("pool", "instances = 2"));
        let gw = Gateway::start(&cfg, driver, 2, &["web", "pool"]);
        for server in ["web", "pool"] {
            let tool = format!("{server}__slow_compute");
            let ids: Vec<String> = (0..6)
                .map(|_| {
                    task_id(&call_2026(&gw, None, WITH_TASKS, &tool, r#"{"seconds":30}"#).json())
                })
                .collect();
            for id in &ids {
                // Another replica or process would not know it (and it would end failed).
                let v = get(&gw, None, id);
                assert_eq!(
                    v["result"]["status"].as_str(),
                    Some("working"),
                    "{driver}/{server}: {v:?}"
                );
                let ack = task_2026(&gw, None, WITH_TASKS, "tasks/cancel", id, "").json();
                assert_eq!(ack["result"]["resultType"].as_str(), Some("complete"));
                let end = until_status(&gw, id, "cancelled");
                assert_eq!(
                    end["result"]["status"].as_str(),
                    Some("cancelled"),
                    "{driver}/{server}: {end:?}"
                );
            }
        }
    }
}

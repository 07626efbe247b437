//! A 2025-11-25 session's experimental tasks carried to a backend that speaks only
//! 2026-07-28 (the tasks extension): the demo fixture with `DEMO_LEGACY=0`, over stdio and
//! HTTP, on both drivers. The catalog offers its tools' tasks; `params.task` calls become
//! 2025 tasks under the gateway's ids; `tasks/get`, `tasks/result` (polling the backend,
//! relaying its input requests on the stream and answering them with `tasks/update`),
//! `tasks/cancel` and `tasks/list` in 2025 shapes; a plain answer is a completed task; and
//! the ways it ends otherwise: another session's or a forged id, a client that answers
//! garbage or never, a backend that forgets the task or dies while it is polled
//! (`shards/src/route/tasks/to_modern.rs`).

mod common;
#[path = "tasks_bridge_legacy_client/kit.rs"]
mod kit;
mod tasks_kit;

use std::time::{Duration, Instant};

use common::{DemoHttp, Gateway, DRIVERS};
use kit::{answer, backend, call, create, get, next_message, result_stream, task_req};
use kit::{until_status, ENV, RELATED};
use sonic_rs::{JsonContainerTrait, JsonValueTrait};
use tasks_kit::{init_2025, legacy, Stream};

#[test]
fn a_2025_session_runs_tasks_on_a_2026_only_backend() {
    for driver in DRIVERS {
        for transport in ["stdio", "http"] {
            let at = format!("{driver}/{transport}");
            let (cfg, _web) = backend(transport, "");
            let gw = Gateway::start(&cfg, driver, 2, &["fx"]);
            let init = gw.post(&[], r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#).json();
            let tasks = &init["result"]["capabilities"]["tasks"];
            assert!(
                tasks["requests"]["tools"]["call"].is_object()
                    && tasks["list"].is_object()
                    && tasks["cancel"].is_object(),
                "{at}: {init:?}"
            );
            let sid = init_2025(&gw);
            let list = legacy(&gw, &sid, "tools/list", "{}").json();
            let support = |name: &str| {
                list["result"]["tools"]
                    .as_array()
                    .and_then(|a| a.iter().find(|t| t["name"].as_str() == Some(name)).cloned())
                    .and_then(|t| t["execution"]["taskSupport"].as_str().map(str::to_string))
            };
            for tool in ["fx__slow_compute", "fx__failing_job", "fx__greet"] {
                assert_eq!(support(tool).as_deref(), Some("optional"), "{at}: {tool}");
            }

            // Created, polled in 2025 shape, its result waited for by tasks/result.
            let id = create(
                &gw,
                &sid,
                "fx__slow_compute",
                r#"{"seconds":0.6,"label":"L"}"#,
            );
            let now = get(&gw, &sid, &id);
            let t = &now["result"];
            assert_eq!(t["taskId"].as_str(), Some(id.as_str()), "{at}: {now:?}");
            assert_eq!(t["status"].as_str(), Some("working"), "{at}: {now:?}");
            assert_eq!(t["ttl"].as_u64(), Some(300_000), "{at}: {now:?}");
            assert_eq!(t["pollInterval"].as_u64(), Some(200), "{at}: {now:?}");
            assert!(t["createdAt"].as_str().is_some_and(|c| c.ends_with('Z')));
            assert!(t.get("ttlMs").is_none() && t.get("resultType").is_none());
            let asked = Instant::now();
            let r = task_req(&gw, &sid, "tasks/result", &id).answer();
            assert!(
                asked.elapsed() >= Duration::from_millis(300),
                "{at}: it waited"
            );
            assert_eq!(r["id"].as_i64(), Some(5), "{at}: {r:?}");
            assert_eq!(
                r["result"]["content"][0]["text"].as_str(),
                Some("Computed L in 0.6 s"),
                "{at}: {r:?}"
            );
            assert_eq!(
                r["result"]["_meta"][RELATED]["taskId"].as_str(),
                Some(id.as_str()),
                "{at}"
            );
            assert_eq!(
                get(&gw, &sid, &id)["result"]["status"].as_str(),
                Some("completed")
            );
            let r = task_req(&gw, &sid, "tasks/cancel", &id).json();
            assert_eq!(r["error"]["code"].as_i64(), Some(-32602), "{at}: {r:?}");

            // Cancelled while running: the answer is the cancelled task.
            let slow = create(&gw, &sid, "fx__slow_compute", r#"{"seconds":60}"#);
            let r = task_req(&gw, &sid, "tasks/cancel", &slow).json();
            assert_eq!(
                r["result"]["status"].as_str(),
                Some("cancelled"),
                "{at}: {r:?}"
            );
            assert_eq!(r["result"]["taskId"].as_str(), Some(slow.as_str()));

            // A tool error is the task's result; a JSON-RPC error is its error.
            let failing = create(&gw, &sid, "fx__failing_job", "{}");
            let r = task_req(&gw, &sid, "tasks/result", &failing).answer();
            assert_eq!(r["result"]["isError"].as_bool(), Some(true), "{at}: {r:?}");
            // ... and the task a 2026 backend calls completed is failed in 2025 (a tool call
            // whose result has isError).
            let v = until_status(&gw, &sid, &failing, "failed");
            assert_eq!(
                v["result"]["status"].as_str(),
                Some("failed"),
                "{at}: {v:?}"
            );
            let broken = create(&gw, &sid, "fx__protocol_error_job", "{}");
            let r = task_req(&gw, &sid, "tasks/result", &broken).answer();
            assert_eq!(r["error"]["code"].as_i64(), Some(-32603), "{at}: {r:?}");
            assert!(r["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("by design"));
            assert_eq!(
                r["error"]["data"]["_meta"][RELATED]["taskId"].as_str(),
                Some(broken.as_str()),
                "{at}: {r:?}"
            );
            assert_eq!(
                get(&gw, &sid, &broken)["result"]["statusMessage"].as_str(),
                Some("protocol_error_job: internal error (by design)"),
                "{at}"
            );

            // A plain answer to a task-augmented call: a task completed at once.
            let r = call(&gw, &sid, "fx__greet", r#"{"name":"Ann"}"#);
            assert_eq!(
                r["result"]["task"]["status"].as_str(),
                Some("completed"),
                "{at}: {r:?}"
            );
            let plain = r["result"]["task"]["taskId"].as_str().unwrap().to_string();
            assert_eq!(
                get(&gw, &sid, &plain)["result"]["status"].as_str(),
                Some("completed")
            );
            let r = task_req(&gw, &sid, "tasks/result", &plain).answer();
            assert_eq!(
                r["result"]["content"][0]["text"].as_str(),
                Some("Hello, Ann!"),
                "{at}: {r:?}"
            );
            assert_eq!(
                r["result"]["_meta"][RELATED]["taskId"].as_str(),
                Some(plain.as_str())
            );
            let r = task_req(&gw, &sid, "tasks/cancel", &plain).json();
            assert_eq!(r["error"]["code"].as_i64(), Some(-32602), "{at}: {r:?}");

            // The session lists its tasks, each in 2025 shape.
            let l = legacy(&gw, &sid, "tasks/list", "{}").json();
            let listed: Vec<String> = l["result"]["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["taskId"].as_str().unwrap().to_string())
                .collect();
            assert_eq!(
                listed,
                [id.clone(), slow, failing, broken, plain],
                "{at}: {l:?}"
            );

            // Another session, a forged or altered id: all unknown alike.
            let other = init_2025(&gw);
            let never = get(&gw, &other, "_.AAAAAAAA.BBBBBBBBBBBBBBBBBBBBBB")["error"].clone();
            assert_eq!(never["code"].as_i64(), Some(-32602), "{at}: {never:?}");
            let mut altered = id.clone().into_bytes();
            let k = altered.len() - 3;
            altered[k] = if altered[k] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(altered).unwrap();
            for m in ["tasks/get", "tasks/result", "tasks/cancel"] {
                assert_eq!(
                    task_req(&gw, &other, m, &id).json()["error"],
                    never,
                    "{at}: {m}"
                );
                assert_eq!(
                    task_req(&gw, &sid, m, &altered).json()["error"],
                    never,
                    "{at}: {m}"
                );
            }
            let l = legacy(&gw, &other, "tasks/list", "{}").json();
            assert_eq!(
                l["result"]["tasks"].as_array().map(|a| a.len()),
                Some(0),
                "{at}"
            );
        }
    }
}

#[test]
fn a_2026_tasks_input_requests_reach_the_2025_client_on_tasks_result() {
    for driver in DRIVERS {
        for transport in ["stdio", "http"] {
            let at = format!("{driver}/{transport}");
            let (cfg, _web) = backend(transport, "");
            let gw = Gateway::start(&cfg, driver, 2, &["fx"]);
            let sid = init_2025(&gw);

            // One input request: relayed with the gateway's task id, answered, resumed.
            let ask = create(&gw, &sid, "fx__confirm_delete", r#"{"filename":"f.txt"}"#);
            let v = until_status(&gw, &sid, &ask, "input_required");
            assert!(v["result"].get("inputRequests").is_none(), "{at}: {v:?}");
            let mut st = result_stream(&gw, &sid, &ask);
            let req = next_message(&mut st, &at);
            assert_eq!(
                req["method"].as_str(),
                Some("elicitation/create"),
                "{at}: {req:?}"
            );
            assert_eq!(req["params"]["message"].as_str(), Some("Delete f.txt?"));
            assert_eq!(
                req["params"]["_meta"][RELATED]["taskId"].as_str(),
                Some(ask.as_str()),
                "{at}: {req:?}"
            );
            answer(
                &gw,
                &sid,
                &req,
                r#"{"action":"accept","content":{"confirm":true}}"#,
            );
            let end = next_message(&mut st, &at);
            assert_eq!(end["id"].as_str(), Some("r"), "{at}: {end:?}");
            assert_eq!(
                end["result"]["content"][0]["text"].as_str(),
                Some("Deleted f.txt"),
                "{at}: {end:?}"
            );
            assert_eq!(
                end["result"]["_meta"][RELATED]["taskId"].as_str(),
                Some(ask.as_str())
            );

            // Two at once: both relayed, both answers go back keyed as asked.
            let multi = create(&gw, &sid, "fx__multi_input", "{}");
            until_status(&gw, &sid, &multi, "input_required");
            let mut st = result_stream(&gw, &sid, &multi);
            let (a, b) = (next_message(&mut st, &at), next_message(&mut st, &at));
            for req in [&a, &b] {
                let schema = sonic_rs::to_string(&req["params"]["requestedSchema"]).unwrap();
                let content = if schema.contains("\"name\"") {
                    r#"{"action":"accept","content":{"name":"Ann"}}"#
                } else {
                    r#"{"action":"accept","content":{"confirm":true}}"#
                };
                answer(&gw, &sid, req, content);
            }
            let end = next_message(&mut st, &at);
            assert_eq!(
                end["result"]["content"][0]["text"].as_str(),
                Some("multi_input done: name Ann, confirmed true"),
                "{at}: {end:?}"
            );

            // Garbage for an answer ends the wait with the client's error; the task waits on.
            let bad = create(&gw, &sid, "fx__confirm_delete", r#"{"filename":"g"}"#);
            until_status(&gw, &sid, &bad, "input_required");
            let mut st = result_stream(&gw, &sid, &bad);
            let req = next_message(&mut st, &at);
            answer(&gw, &sid, &req, r#""garbage""#);
            let end = next_message(&mut st, &at);
            assert_eq!(end["error"]["code"].as_i64(), Some(-32602), "{at}: {end:?}");
            assert!(
                end["error"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("not an object"),
                "{at}: {end:?}"
            );
            assert_eq!(
                get(&gw, &sid, &bad)["result"]["status"].as_str(),
                Some("input_required")
            );
            // Asked again, it is asked again, and the right answer ends it.
            let mut st = result_stream(&gw, &sid, &bad);
            let req = next_message(&mut st, &at);
            answer(&gw, &sid, &req, r#"{"action":"decline"}"#);
            let end = next_message(&mut st, &at);
            assert_eq!(
                end["result"]["content"][0]["text"].as_str(),
                Some("Kept g"),
                "{at}"
            );

            // Input asked before any task (MRTR), then a task: both bridged, in that order.
            let body = r#"{"jsonrpc":"2.0","id":"c","method":"tools/call","params":{"name":"fx__test_tool_with_task","arguments":{},"task":{"ttl":60000}}}"#;
            let mut h: Vec<(&str, &str)> = common::JSON_HEADERS.to_vec();
            h.extend([
                ("mcp-session-id", sid.as_str()),
                ("mcp-protocol-version", "2025-11-25"),
            ]);
            let mut st = Stream::open(&gw, "POST", &h, body);
            let req = next_message(&mut st, &at);
            assert_eq!(
                req["method"].as_str(),
                Some("elicitation/create"),
                "{at}: {req:?}"
            );
            answer(
                &gw,
                &sid,
                &req,
                r#"{"action":"accept","content":{"name":"Ann"}}"#,
            );
            let created = next_message(&mut st, &at);
            assert_eq!(created["id"].as_str(), Some("c"), "{at}: {created:?}");
            let t = created["result"]["task"]["taskId"]
                .as_str()
                .unwrap_or_else(|| panic!("{at}: a 2025 CreateTaskResult: {created:?}"));
            let r = task_req(&gw, &sid, "tasks/result", t).answer();
            assert_eq!(
                r["result"]["content"][0]["text"].as_str(),
                Some("Hello, Ann! (from a task)"),
                "{at}: {r:?}"
            );

            // A session that cannot answer elicitations is told so, not asked.
            let mute = gw.post(&[], r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#);
            let mute = mute.header("mcp-session-id").unwrap().to_string();
            let h = [("mcp-session-id", mute.as_str())];
            let n = gw.post(
                &h,
                r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            );
            assert_eq!(n.status, 202);
            let t = create(&gw, &mute, "fx__confirm_delete", r#"{"filename":"h"}"#);
            until_status(&gw, &mute, &t, "input_required");
            let r = task_req(&gw, &mute, "tasks/result", &t).answer();
            assert_eq!(r["error"]["code"].as_i64(), Some(-32021), "{at}: {r:?}");
            task_req(&gw, &mute, "tasks/cancel", &t);
        }
    }
}

#[test]
fn waits_end_at_the_timeout_and_a_task_the_backend_lost_fails() {
    for driver in DRIVERS {
        for transport in ["stdio", "http"] {
            let at = format!("{driver}/{transport}");
            let (cfg, mut web) = backend(transport, "timeout_ms = 1500");
            let gw = Gateway::start(&cfg, driver, 2, &["fx"]);
            let sid = init_2025(&gw);

            // A task that runs on: tasks/result ends at the backend's timeout; it runs on.
            let slow = create(&gw, &sid, "fx__slow_compute", r#"{"seconds":60}"#);
            let asked = Instant::now();
            let r = task_req(&gw, &sid, "tasks/result", &slow).answer();
            let waited = asked.elapsed();
            assert_eq!(r["error"]["code"].as_i64(), Some(-32001), "{at}: {r:?}");
            assert!(
                waited >= Duration::from_millis(1400) && waited < Duration::from_secs(5),
                "{at}: {waited:?}"
            );
            assert_eq!(
                get(&gw, &sid, &slow)["result"]["status"].as_str(),
                Some("working")
            );

            // A client that never answers: told at the timeout, its request cancelled.
            let ask = create(&gw, &sid, "fx__confirm_delete", r#"{"filename":"f"}"#);
            until_status(&gw, &sid, &ask, "input_required");
            let asked = Instant::now();
            let mut st = result_stream(&gw, &sid, &ask);
            let req = next_message(&mut st, &at);
            assert_eq!(req["method"].as_str(), Some("elicitation/create"), "{at}");
            let mut cancelled = false;
            let end = loop {
                let m = st.next(Duration::from_secs(10)).expect("an end");
                if m["method"].as_str() == Some("notifications/cancelled") {
                    cancelled = m["params"]["requestId"] == req["id"];
                    continue;
                }
                break m;
            };
            assert!(asked.elapsed() < Duration::from_secs(5), "{at}");
            assert!(cancelled, "{at}: the unanswered request is withdrawn");
            assert_eq!(end["error"]["code"].as_i64(), Some(-32001), "{at}: {end:?}");
            assert!(
                end["error"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("did not answer"),
                "{at}: {end:?}"
            );

            // The backend restarts and forgets its tasks: failed, "lost the task", at once.
            let _restarted = match web.as_mut() {
                None => {
                    let kids = tasks_kit::demo_children(&gw);
                    unsafe {
                        libc::kill(kids[0] as i32, libc::SIGKILL);
                    }
                    None
                }
                Some(w) => {
                    let addr = w.addr.clone();
                    w.kill9();
                    Some(DemoHttp::start_with(&addr, "fx", ENV, None))
                }
            };
            let v = until_status(&gw, &sid, &slow, "failed");
            assert!(
                v["result"]["statusMessage"]
                    .as_str()
                    .unwrap_or("")
                    .contains("backend `fx` lost the task"),
                "{at}: {v:?}"
            );
            let asked = Instant::now();
            let r = task_req(&gw, &sid, "tasks/result", &slow).answer();
            assert!(asked.elapsed() < Duration::from_secs(1), "{at}");
            assert!(
                r["error"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("backend `fx` lost the task"),
                "{at}: {r:?}"
            );
            let r = task_req(&gw, &sid, "tasks/cancel", &slow).json();
            assert_eq!(r["error"]["code"].as_i64(), Some(-32602), "{at}: {r:?}");
        }
    }
}

#[test]
fn a_backend_that_dies_while_polled_ends_the_wait_with_its_error() {
    for driver in DRIVERS {
        for transport in ["stdio", "http"] {
            let at = format!("{driver}/{transport}");
            let (cfg, mut web) = backend(transport, "timeout_ms = 20000");
            let gw = Gateway::start(&cfg, driver, 2, &["fx"]);
            let sid = init_2025(&gw);
            let slow = create(&gw, &sid, "fx__slow_compute", r#"{"seconds":60}"#);
            let mut st = result_stream(&gw, &sid, &slow);
            std::thread::sleep(Duration::from_millis(500));
            let asked = Instant::now();
            match web.as_mut() {
                Some(w) => w.kill9(),
                None => unsafe {
                    libc::kill(tasks_kit::demo_children(&gw)[0] as i32, libc::SIGKILL);
                },
            }
            let end = next_message(&mut st, &at);
            assert!(
                asked.elapsed() < Duration::from_secs(10),
                "{at}: not the 20 s timeout"
            );
            assert_eq!(end["id"].as_str(), Some("r"), "{at}: {end:?}");
            assert_eq!(end["error"]["code"].as_i64(), Some(-32000), "{at}: {end:?}");
            assert!(
                end["error"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("backend `fx`"),
                "{at}: says which backend: {end:?}"
            );
        }
    }
}

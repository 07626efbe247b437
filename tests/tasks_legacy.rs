//! 2025-11-25 experimental tasks through the real gateway, on both drivers, to the demo
//! fixture over stdio and HTTP: `params.task` calls, `tasks/get`, `tasks/result` (blocking,
//! within the backend's timeout; the task's elicitation relayed on its stream),
//! `tasks/cancel`, `tasks/list` with only the session's own tasks, status notifications on
//! the creating session's GET stream only, and a task whose backend died ending `failed`.

mod common;
mod tasks_kit;

use std::time::{Duration, Instant};

use common::{Gateway, DRIVERS};
use sonic_rs::{JsonContainerTrait, JsonValueTrait};
use tasks_kit::{fixture, init_2025, legacy, stdio_fixture, until, Stream};

const RELATED: &str = "io.modelcontextprotocol/related-task";

/// A task-augmented call of `tool` in `sid`; the gateway's task id.
fn create(gw: &Gateway, sid: &str, tool: &str, args: &str) -> String {
    let r = legacy(
        gw,
        sid,
        "tools/call",
        &format!(r#"{{"name":"{tool}","arguments":{args},"task":{{"ttl":60000}}}}"#),
    )
    .json();
    assert_eq!(
        r["result"]["task"]["status"].as_str(),
        Some("working"),
        "{r:?}"
    );
    r["result"]["task"]["taskId"].as_str().unwrap().to_string()
}

fn get(gw: &Gateway, sid: &str, task: &str) -> sonic_rs::Value {
    legacy(gw, sid, "tasks/get", &format!(r#"{{"taskId":"{task}"}}"#)).json()
}

fn until_status(gw: &Gateway, sid: &str, task: &str, want: &str) -> sonic_rs::Value {
    until(
        Duration::from_secs(15),
        || get(gw, sid, task),
        |v| v["result"]["status"].as_str() == Some(want),
    )
}

#[test]
fn experimental_tasks_are_carried_for_2025_sessions() {
    for driver in DRIVERS {
        for transport in ["stdio", "http"] {
            let at = format!("{driver}/{transport}");
            let (cfg, _web) = fixture("fx", transport, "");
            let gw = Gateway::start(&cfg, driver, 2, &["fx"]);
            let init = gw.post(&[], r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#).json();
            let tasks = &init["result"]["capabilities"]["tasks"];
            assert!(
                tasks["requests"]["tools"]["call"].is_object() && tasks["list"].is_object(),
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
            assert_eq!(
                support("fx__failing_job").as_deref(),
                Some("required"),
                "{at}"
            );
            assert_eq!(
                support("fx__slow_compute").as_deref(),
                Some("optional"),
                "{at}"
            );

            // Created, polled, and its result fetched with tasks/result, which waits for it.
            let id = create(
                &gw,
                &sid,
                "fx__slow_compute",
                r#"{"seconds":0.6,"label":"L"}"#,
            );
            assert!(
                !id.contains("task-"),
                "{at}: the backend's id never shows: {id}"
            );
            let now = get(&gw, &sid, &id);
            assert_eq!(
                now["result"]["taskId"].as_str(),
                Some(id.as_str()),
                "{at}: {now:?}"
            );
            let asked = Instant::now();
            let r = legacy(
                &gw,
                &sid,
                "tasks/result",
                &format!(r#"{{"taskId":"{id}"}}"#),
            )
            .json();
            assert!(
                asked.elapsed() >= Duration::from_millis(300),
                "{at}: it blocked until the end"
            );
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
            let r = legacy(
                &gw,
                &sid,
                "tasks/cancel",
                &format!(r#"{{"taskId":"{id}"}}"#),
            )
            .json();
            assert_eq!(
                r["error"]["code"].as_i64(),
                Some(-32602),
                "{at}: terminal: {r:?}"
            );

            // Cancelled while running: the 2025 answer is the cancelled task.
            let slow = create(&gw, &sid, "fx__slow_compute", r#"{"seconds":60}"#);
            let r = legacy(
                &gw,
                &sid,
                "tasks/cancel",
                &format!(r#"{{"taskId":"{slow}"}}"#),
            )
            .json();
            assert_eq!(
                r["result"]["status"].as_str(),
                Some("cancelled"),
                "{at}: {r:?}"
            );
            assert_eq!(r["result"]["taskId"].as_str(), Some(slow.as_str()));

            // Input while running: tasks/result carries the task's elicitation, with the
            // gateway's task id, and the client's answer resumes it.
            let ask = create(&gw, &sid, "fx__confirm_delete", r#"{"filename":"f.txt"}"#);
            until_status(&gw, &sid, &ask, "input_required");
            let body = format!(
                r#"{{"jsonrpc":"2.0","id":"r","method":"tasks/result","params":{{"taskId":"{ask}"}}}}"#
            );
            let mut h: Vec<(&str, &str)> = common::JSON_HEADERS.to_vec();
            h.extend([
                ("mcp-session-id", sid.as_str()),
                ("mcp-protocol-version", "2025-11-25"),
            ]);
            let mut st = Stream::open(&gw, "POST", &h, &body);
            let req = st
                .next(Duration::from_secs(10))
                .unwrap_or_else(|| panic!("{at}: no elicitation: {}", st.head));
            assert_eq!(
                req["method"].as_str(),
                Some("elicitation/create"),
                "{at}: {req:?}"
            );
            assert_eq!(
                req["params"]["_meta"][RELATED]["taskId"].as_str(),
                Some(ask.as_str()),
                "{at}"
            );
            let answer = format!(
                r#"{{"jsonrpc":"2.0","id":{},"result":{{"action":"accept","content":{{"confirm":true}}}}}}"#,
                sonic_rs::to_string(&req["id"]).unwrap()
            );
            let a = gw.post(
                &[
                    ("mcp-session-id", &sid),
                    ("mcp-protocol-version", "2025-11-25"),
                ],
                &answer,
            );
            assert_eq!(a.status, 202, "{at}");
            let end = st
                .next(Duration::from_secs(10))
                .unwrap_or_else(|| panic!("{at}: no result"));
            assert_eq!(end["id"].as_str(), Some("r"), "{at}: {end:?}");
            assert_eq!(
                end["result"]["content"][0]["text"].as_str(),
                Some("Deleted f.txt"),
                "{at}"
            );

            // Its list: the three tasks of this session, newest last.
            let l = legacy(&gw, &sid, "tasks/list", "{}").json();
            let ids: Vec<&str> = l["result"]["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|t| t["taskId"].as_str())
                .collect();
            assert_eq!(
                ids,
                [id.as_str(), slow.as_str(), ask.as_str()],
                "{at}: {l:?}"
            );
        }
    }
}

#[test]
fn a_session_lists_reaches_and_hears_only_its_own_tasks() {
    for driver in DRIVERS {
        let gw = Gateway::start(&stdio_fixture("fx", ""), driver, 2, &["fx"]);
        let (a, b) = (init_2025(&gw), init_2025(&gw));
        let get_stream = |sid: &str| {
            let h = [("accept", "text/event-stream"), ("mcp-session-id", sid)];
            Stream::open(&gw, "GET", &h, "")
        };
        let (mut a_events, mut b_events) = (get_stream(&a), get_stream(&b));
        let a1 = create(&gw, &a, "fx__slow_compute", r#"{"seconds":0.5}"#);
        let a2 = create(&gw, &a, "fx__slow_compute", r#"{"seconds":30}"#);
        let b1 = create(&gw, &b, "fx__slow_compute", r#"{"seconds":30}"#);
        let listed = |sid: &str| -> Vec<String> {
            let l = legacy(&gw, sid, "tasks/list", "{}").json();
            l["result"]["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|t| t["taskId"].as_str().map(str::to_string))
                .collect()
        };
        assert_eq!(listed(&a), [a1.clone(), a2.clone()], "{driver}");
        assert_eq!(listed(&b), std::slice::from_ref(&b1), "{driver}");
        // Another session's id is refused exactly like one never issued.
        let never = get(&gw, &b, "_.AAAAAAAA.BBBBBBBBBBBBBBBBBBBBBB")["error"].clone();
        assert_eq!(never["code"].as_i64(), Some(-32602), "{driver}: {never:?}");
        for m in ["tasks/get", "tasks/result", "tasks/cancel"] {
            let r = legacy(&gw, &b, m, &format!(r#"{{"taskId":"{a2}"}}"#)).json();
            assert_eq!(r["error"], never, "{driver}: {m}");
        }
        assert_eq!(
            get(&gw, &a, &a2)["result"]["status"].as_str(),
            Some("working"),
            "{driver}"
        );
        // A's status notifications reach A's stream, with A's id; B hears nothing of them.
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let Some(m) = a_events.next(Duration::from_millis(500)) else {
                continue;
            };
            if m["method"].as_str() == Some("notifications/tasks/status") {
                seen.push((
                    m["params"]["taskId"].as_str().unwrap_or("").to_string(),
                    m["params"]["status"].as_str().unwrap_or("").to_string(),
                ));
                if seen.iter().any(|(t, s)| *t == a1 && s == "completed") {
                    break;
                }
            }
        }
        assert!(
            seen.iter().any(|(t, s)| *t == a1 && s == "completed"),
            "{driver}: {seen:?}"
        );
        // B's stream may carry other news (a list change), never A's task.
        let until_quiet = Instant::now() + Duration::from_millis(800);
        while Instant::now() < until_quiet {
            if let Some(m) = b_events.next(Duration::from_millis(200)) {
                let method = m["method"].as_str().unwrap_or("");
                assert!(
                    !method.starts_with("notifications/tasks"),
                    "{driver}: B heard {m:?}"
                );
            }
        }
        for (sid, t) in [(&a, &a2), (&b, &b1)] {
            legacy(&gw, sid, "tasks/cancel", &format!(r#"{{"taskId":"{t}"}}"#));
        }
    }
}

#[test]
fn tasks_result_waits_within_the_timeout_and_a_lost_task_fails() {
    for driver in DRIVERS {
        let gw = Gateway::start(
            &stdio_fixture("fx", "timeout_ms = 1500"),
            driver,
            2,
            &["fx"],
        );
        let sid = init_2025(&gw);
        let id = create(&gw, &sid, "fx__slow_compute", r#"{"seconds":30}"#);
        let asked = Instant::now();
        let r = legacy(
            &gw,
            &sid,
            "tasks/result",
            &format!(r#"{{"taskId":"{id}"}}"#),
        )
        .json();
        let waited = asked.elapsed();
        assert_eq!(r["error"]["code"].as_i64(), Some(-32001), "{driver}: {r:?}");
        assert!(
            waited >= Duration::from_millis(1400) && waited < Duration::from_secs(5),
            "{driver}: {waited:?}"
        );
        assert_eq!(
            get(&gw, &sid, &id)["result"]["status"].as_str(),
            Some("working"),
            "{driver}"
        );
        // The backend dies: the task ends failed, and tasks/result says why, at once.
        let kids = tasks_kit::demo_children(&gw);
        unsafe {
            libc::kill(kids[0] as i32, libc::SIGKILL);
        }
        let v = until_status(&gw, &sid, &id, "failed");
        assert!(
            v["result"]["statusMessage"]
                .as_str()
                .unwrap_or("")
                .contains("lost the task"),
            "{driver}: {v:?}"
        );
        let asked = Instant::now();
        let r = legacy(
            &gw,
            &sid,
            "tasks/result",
            &format!(r#"{{"taskId":"{id}"}}"#),
        )
        .json();
        assert!(asked.elapsed() < Duration::from_secs(1), "{driver}");
        assert_eq!(r["error"]["code"].as_i64(), Some(-32000), "{driver}: {r:?}");
        assert!(
            r["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("backend `fx` lost the task"),
            "{driver}: {r:?}"
        );
    }
}

#[test]
fn a_task_of_an_http_backend_that_restarted_ends_failed() {
    for driver in DRIVERS {
        let mut web = tasks_kit::http_fixture("127.0.0.1:0", "fx");
        let addr = web.addr.clone();
        let cfg = format!(
            "[[servers]]\nid = \"fx\"\ntransport = \"http\"\nurl = \"http://{addr}/mcp\"\n"
        );
        let gw = Gateway::start(&cfg, driver, 2, &["fx"]);
        let sid = init_2025(&gw);
        let id = create(&gw, &sid, "fx__slow_compute", r#"{"seconds":60}"#);
        assert_eq!(
            get(&gw, &sid, &id)["result"]["status"].as_str(),
            Some("working"),
            "{driver}"
        );
        // The replica restarts: the upstream session that ran the task is gone with it.
        web.kill9();
        let _web = tasks_kit::http_fixture(&addr, "fx");
        let v = until_status(&gw, &sid, &id, "failed");
        let why = v["result"]["statusMessage"].as_str().unwrap_or("");
        assert!(
            why.contains("backend `fx` lost the task"),
            "{driver}: {v:?}"
        );
        // Told by the pin (the upstream session it ran in is gone), not sent to a new session.
        assert!(why.contains("upstream session"), "{driver}: {v:?}");
        let r = legacy(
            &gw,
            &sid,
            "tasks/result",
            &format!(r#"{{"taskId":"{id}"}}"#),
        )
        .json();
        assert_eq!(r["error"]["code"].as_i64(), Some(-32000), "{driver}: {r:?}");
    }
}

/// `tasks/list` asks the backend about each of the session's tasks with requests of its own,
/// which travel as the session's: they must not take the id of a client request in flight
/// (they once used id 0, and removed the client's id-0 call from the in-flight table, so the
/// client could no longer cancel it).
#[test]
fn tasks_list_leaves_the_clients_requests_in_flight_cancellable() {
    for driver in DRIVERS {
        let gw = Gateway::start(&stdio_fixture("fx", ""), driver, 1, &["fx"]);
        let sid = init_2025(&gw);
        create(&gw, &sid, "fx__slow_compute", r#"{"seconds":30}"#);
        let body = r#"{"jsonrpc":"2.0","id":0,"method":"tools/call","params":{"name":"fx__sleep","arguments":{"ms":10000}}}"#;
        let req = format!(
            "POST /mcp HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\nmcp-session-id: {sid}\r\nmcp-protocol-version: 2025-11-25\r\ncontent-length: {}\r\n\r\n{body}",
            gw.addr,
            body.len()
        );
        let mut s = std::net::TcpStream::connect(&gw.addr).unwrap();
        std::io::Write::write_all(&mut s, req.as_bytes()).unwrap();
        let sleeping = std::thread::spawn(move || {
            // Whatever the gateway sends first (an answer, or the end of the connection).
            let started = Instant::now();
            s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
            let _ = std::io::Read::read(&mut s, &mut [0u8; 4096]);
            started.elapsed()
        });
        std::thread::sleep(Duration::from_millis(500));
        let listed = legacy(&gw, &sid, "tasks/list", "{}").json();
        assert_eq!(
            listed["result"]["tasks"].as_array().map(|a| a.len()),
            Some(1),
            "{driver}: {listed:?}"
        );
        let n = gw.post(
            &[
                ("mcp-session-id", &sid),
                ("mcp-protocol-version", "2025-11-25"),
            ],
            r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":0}}"#,
        );
        assert_eq!(n.status, 202, "{driver}");
        let took = sleeping.join().unwrap();
        assert!(
            took < Duration::from_secs(5),
            "{driver}: the id-0 call was cancelled, not run for its 10 s ({took:?})"
        );
    }
}

//! Readiness and drain against the real binary, on both drivers: `GET /ready` through
//! warm-up, SIGUSR2 and the admin endpoints (with their auth), and SIGTERM with a drain grace
//! that keeps serving existing sessions, in-flight calls and new requests until it ends.

mod common;

use std::time::{Duration, Instant};

use common::{demo_stdio, Gateway, Resp, DRIVERS};
use sonic_rs::JsonValueTrait;

const KEY: &str = "drain-operator-key-0123456789";
const INIT: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"drain-test","version":"1"}}}"#;

fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn auth_config(extra: &str) -> String {
    format!(
        "[server]\n{extra}\n[auth]\nmode = \"api_key\"\n[[auth.api_keys]]\nname = \"operator\"\nsha256 = \"{}\"\n\n{}",
        sha256_hex(KEY),
        demo_stdio("demo", "")
    )
}

fn bearer() -> String {
    format!("Bearer {KEY}")
}

/// `/ready`'s status and state.
fn ready(gw: &Gateway) -> (u16, String) {
    let r = gw.get("/ready");
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    let state = v["state"].as_str().unwrap_or("").to_string();
    assert_eq!(
        v["ready"].as_bool(),
        Some(r.status == 200),
        "ready flag and status agree: {}",
        r.text()
    );
    (r.status, state)
}

/// Polls `/ready` (bounded) until it says `state`.
fn wait_ready_state(gw: &Gateway, state: &str, within: Duration) -> u16 {
    let deadline = Instant::now() + within;
    loop {
        let (status, now) = ready(gw);
        if now == state {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "/ready never said {state} (last: {status} {now})\n{}",
            gw.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `/metrics` (bounded: it is rendered every 500 ms) until it has the line `want`.
fn wait_metric(gw: &Gateway, auth: Option<&str>, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
    loop {
        let text = gw.request("GET", "/metrics", &headers, b"").text();
        if text.lines().any(|l| l == want) {
            return;
        }
        assert!(Instant::now() < deadline, "no line {want:?} in:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn admin(gw: &Gateway, path: &str, auth: Option<&str>) -> Resp {
    let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
    gw.request("POST", path, &headers, b"")
}

/// initialize + initialized with the operator's key; the session id.
fn open_session(gw: &Gateway) -> String {
    let auth = bearer();
    let r = gw.post(&[("authorization", &auth)], INIT);
    assert_eq!(r.status, 200, "{}", r.text());
    let sid = r.header("mcp-session-id").expect("session id").to_string();
    let n = gw.post(
        &[("authorization", &auth), ("mcp-session-id", &sid)],
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    );
    assert_eq!(n.status, 202);
    sid
}

fn call(client: &common::Client, sid: &str, auth: Option<&str>, tool: &str, args: &str) -> Resp {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":"c","method":"tools/call","params":{{"name":"{tool}","arguments":{args}}}}}"#
    );
    let mut h = vec![
        ("mcp-session-id", sid),
        ("mcp-protocol-version", "2025-11-25"),
    ];
    if let Some(a) = auth {
        h.push(("authorization", a));
    }
    client.post(&h, &body)
}

fn assert_served(r: &Resp, what: &str) {
    assert_eq!(r.status, 200, "{what}: {}", r.text());
    let v = r.answer();
    assert!(v["result"].is_object(), "{what}: {}", r.text());
    assert!(
        v["result"]["isError"].as_bool() != Some(true),
        "{what}: {}",
        r.text()
    );
}

#[test]
fn ready_is_503_while_starting_and_200_once_a_backend_is_ready() {
    let dir = common::scratch("drain-warm");
    for driver in DRIVERS {
        // The backend starts only once the test says so (bounded: 30 s).
        let go = dir.join(format!("go-{driver}"));
        let _ = std::fs::remove_file(&go);
        let cfg = format!(
            "[proxy]\nconnect_timeout_ms = 60000\n\n[[servers]]\nid = \"late\"\ntransport = \"stdio\"\ncommand = \"sh\"\nargs = [\"-c\", \"for i in $(seq 600); do [ -e {go} ] && break; sleep 0.05; done; exec {bin} demo-server --stdio --name late\"]\n",
            go = go.display(),
            bin = common::bin().display(),
        );
        let gw = Gateway::start(&cfg, driver, 2, &[]);
        assert_eq!(ready(&gw), (503, "starting".into()), "{driver}");
        // Liveness is another question: the process is up.
        assert_eq!(gw.get("/health").status, 200, "{driver}");
        wait_metric(&gw, None, "only1mcp_drain_state{state=\"starting\"} 1");
        wait_metric(&gw, None, "only1mcp_ready 0");
        std::fs::write(&go, b"").unwrap();
        assert_eq!(
            wait_ready_state(&gw, "ready", Duration::from_secs(30)),
            200,
            "{driver}"
        );
        gw.wait_ready(&["late"], Duration::from_secs(5));
        wait_metric(&gw, None, "only1mcp_ready 1");
    }
}

#[test]
fn a_gateway_without_backends_is_ready_once_up() {
    for driver in DRIVERS {
        let gw = Gateway::start("[metrics]\nsocket_enabled = false\n", driver, 2, &[]);
        assert_eq!(ready(&gw), (200, "ready".into()), "{driver}");
    }
}

#[test]
fn ready_takes_get_and_head_only_and_the_admin_endpoints_post_only() {
    for driver in DRIVERS {
        let gw = Gateway::start(&auth_config(""), driver, 1, &["demo"]);
        for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
            let r = gw.request(method, "/ready", &[], b"");
            assert_eq!(r.status, 405, "{driver} {method} /ready");
            assert_eq!(r.header("allow"), Some("GET, HEAD"), "{driver}");
        }
        for path in ["/admin/drain", "/admin/undrain"] {
            for method in ["GET", "HEAD", "PUT"] {
                let raw = gw.raw(
                    format!("{method} {path} HTTP/1.1\r\nhost: {}\r\nauthorization: {}\r\nconnection: close\r\n\r\n", gw.addr, bearer())
                        .as_bytes(),
                );
                let head = String::from_utf8_lossy(&raw).to_lowercase();
                assert!(
                    head.starts_with("http/1.1 405 "),
                    "{driver} {method} {path}: {head}"
                );
                assert!(head.contains("\r\nallow: post\r\n"), "{driver}: {head}");
            }
        }
        // HEAD: GET's head, its Content-Length included, and no body.
        let get = gw.get("/ready");
        let raw = gw.raw(
            format!(
                "HEAD /ready HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n",
                gw.addr
            )
            .as_bytes(),
        );
        let text = String::from_utf8_lossy(&raw).into_owned();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{driver}: {text}");
        assert!(
            text.contains(&format!("content-length: {}\r\n", get.body.len())),
            "{driver}: {text}"
        );
        assert!(
            text.ends_with("\r\n\r\n"),
            "{driver}: a body was sent: {text:?}"
        );
        // /ready says its state and nothing else (no backend, no shard, no version).
        assert_eq!(get.text(), r#"{"ready":true,"state":"ready"}"#, "{driver}");
        assert_eq!(ready(&gw), (200, "ready".into()), "{driver}: still serving");
    }
}

#[test]
fn sigusr2_and_the_admin_endpoints_drain_without_stopping_anything() {
    let auth = bearer();
    for driver in DRIVERS {
        let gw = Gateway::start(&auth_config(""), driver, 2, &["demo"]);
        let client = gw.client();
        // /ready needs no credentials (a balancer checks it).
        assert_eq!(ready(&gw), (200, "ready".into()), "{driver}");
        let sid = open_session(&gw);

        gw.signal(libc::SIGUSR2);
        assert_eq!(
            wait_ready_state(&gw, "draining", Duration::from_secs(5)),
            503,
            "{driver}"
        );
        // Everything else goes on: /health (liveness), the session, and a new initialize.
        let h = gw.get("/health");
        assert_eq!(h.status, 200, "{driver}: {}", h.text());
        let r = call(
            &client,
            &sid,
            Some(&auth),
            "demo__echo",
            r#"{"message":"on"}"#,
        );
        assert_served(&r, "a call in an existing session while draining");
        let late = open_session(&gw);
        let r = call(
            &client,
            &late,
            Some(&auth),
            "demo__echo",
            r#"{"message":"late"}"#,
        );
        assert_served(&r, "a session opened while draining");
        wait_metric(
            &gw,
            Some(&auth),
            "only1mcp_initialize_while_draining_total 1",
        );
        wait_metric(
            &gw,
            Some(&auth),
            "only1mcp_drain_state{state=\"draining\"} 1",
        );
        wait_metric(&gw, Some(&auth), "only1mcp_ready 0");

        // undrain: refused without credentials (and nothing changes), done with them.
        let r = admin(&gw, "/admin/undrain", None);
        assert_eq!(r.status, 401, "{driver}: {}", r.text());
        assert!(r.header("www-authenticate").is_some(), "{driver}");
        let r = admin(&gw, "/admin/undrain", Some("Bearer not-the-key"));
        assert_eq!(r.status, 401, "{driver}: {}", r.text());
        assert_eq!(ready(&gw), (503, "draining".into()), "{driver}");
        let r = admin(&gw, "/admin/undrain", Some(&auth));
        assert_eq!(r.status, 200, "{driver}: {}", r.text());
        assert_eq!(r.text(), r#"{"ready":true,"state":"ready"}"#, "{driver}");
        assert_eq!(ready(&gw), (200, "ready".into()), "{driver}");
        // An initialize while ready is not counted.
        open_session(&gw);

        // drain over HTTP: the same rules.
        let r = admin(&gw, "/admin/drain", None);
        assert_eq!(r.status, 401, "{driver}: {}", r.text());
        assert_eq!(
            ready(&gw),
            (200, "ready".into()),
            "{driver}: a refusal drains nothing"
        );
        // A page in a browser cannot drain a loopback gateway, credentials or not.
        let r = gw.request(
            "POST",
            "/admin/drain",
            &[("authorization", &auth), ("origin", "http://evil.example")],
            b"",
        );
        assert_eq!(r.status, 403, "{driver}: {}", r.text());
        assert_eq!(ready(&gw), (200, "ready".into()), "{driver}");
        let r = admin(&gw, "/admin/drain", Some(&auth));
        assert_eq!(r.status, 200, "{driver}: {}", r.text());
        assert_eq!(
            r.text(),
            r#"{"ready":false,"state":"draining"}"#,
            "{driver}"
        );
        assert_eq!(ready(&gw), (503, "draining".into()), "{driver}");

        // A reload keeps the drain.
        gw.signal(libc::SIGHUP);
        wait_metric(&gw, Some(&auth), "only1mcp_config_reloads_total 1");
        assert_eq!(
            ready(&gw),
            (503, "draining".into()),
            "{driver}: after a reload"
        );
        let r = call(
            &client,
            &sid,
            Some(&auth),
            "demo__echo",
            r#"{"message":"still"}"#,
        );
        assert_served(&r, "the first session, after all of it");
        wait_metric(
            &gw,
            Some(&auth),
            "only1mcp_initialize_while_draining_total 1",
        );
        let r = admin(&gw, "/admin/undrain", Some(&auth));
        assert_eq!(r.status, 200, "{driver}: {}", r.text());
        assert_eq!(ready(&gw), (200, "ready".into()), "{driver}");
    }
}

#[test]
fn sigterm_serves_through_the_drain_grace_then_stops() {
    const GRACE: Duration = Duration::from_millis(2000);
    let cfg = format!(
        "[server]\ndrain_grace_ms = {}\n\n{}",
        GRACE.as_millis(),
        demo_stdio("demo", "")
    );
    for driver in DRIVERS {
        let mut gw = Gateway::start(&cfg, driver, 2, &["demo"]);
        let client = gw.client();
        let sid = client.initialize();
        // A call that takes about a second, started just before SIGTERM.
        let slow = {
            let (client, sid) = (client.clone(), sid.clone());
            std::thread::spawn(move || {
                let started = Instant::now();
                let r = call(&client, &sid, None, "demo__sleep", r#"{"ms":1000}"#);
                (r, started.elapsed())
            })
        };
        std::thread::sleep(Duration::from_millis(200));
        let sent = Instant::now();
        gw.signal(libc::SIGTERM);
        assert_eq!(
            wait_ready_state(&gw, "stopping", Duration::from_millis(1000)),
            503,
            "{driver}: /ready flips first"
        );
        // During the grace: new connections, a new session, calls in the old one.
        let fresh = client.initialize();
        let r = call(&client, &fresh, None, "demo__echo", r#"{"message":"new"}"#);
        assert_served(&r, "a session opened during the grace");
        let r = call(&client, &sid, None, "demo__echo", r#"{"message":"old"}"#);
        assert_served(&r, "the old session during the grace");
        let (r, took) = slow.join().unwrap();
        assert_served(&r, "the call in flight at SIGTERM");
        assert!(took >= Duration::from_millis(900), "{driver}: {took:?}");
        assert!(
            sent.elapsed() < GRACE,
            "{driver}: the test's requests must fit in the grace ({:?})",
            sent.elapsed()
        );
        let r = call(&client, &sid, None, "demo__echo", r#"{"message":"later"}"#);
        assert_served(&r, "a call after the slow one, still in the grace");
        assert_eq!(ready(&gw), (503, "stopping".into()), "{driver}");
        // Still up until the grace ends, then gone (the harness bounds the wait).
        let left = GRACE.saturating_sub(sent.elapsed());
        assert!(
            gw.wait_exit(left.saturating_sub(Duration::from_millis(200)))
                .is_none(),
            "{driver}: exited before the grace ended:\n{}",
            gw.log()
        );
        let st = gw
            .wait_exit(Duration::from_secs(15))
            .unwrap_or_else(|| panic!("{driver}: still running 15 s after the grace"));
        let took = sent.elapsed();
        assert!(st.success(), "{driver}: {st}\n{}", gw.log());
        assert!(took >= GRACE, "{driver}: exited after {took:?}");
        assert!(
            gw.log().contains("drain grace over"),
            "{driver}:\n{}",
            gw.log()
        );
    }
}

#[test]
fn a_second_sigterm_during_the_grace_stops_at_once() {
    let cfg = format!(
        "[server]\ndrain_grace_ms = 60000\n\n{}",
        demo_stdio("demo", "")
    );
    for driver in DRIVERS {
        let mut gw = Gateway::start(&cfg, driver, 2, &["demo"]);
        let sid = gw.initialize();
        gw.signal(libc::SIGTERM);
        assert_eq!(
            wait_ready_state(&gw, "stopping", Duration::from_millis(1000)),
            503,
            "{driver}"
        );
        let r = call(&gw.client(), &sid, None, "demo__echo", r#"{"message":"x"}"#);
        assert_served(&r, "serving during the grace");
        // SIGUSR2 and the admin endpoints cannot bring a stopping node back.
        gw.signal(libc::SIGUSR2);
        let r = admin(&gw, "/admin/undrain", None);
        assert_eq!(r.status, 409, "{driver}: {}", r.text());
        assert_eq!(
            r.text(),
            r#"{"ready":false,"state":"stopping"}"#,
            "{driver}"
        );
        assert_eq!(ready(&gw), (503, "stopping".into()), "{driver}");
        let sent = Instant::now();
        gw.signal(libc::SIGINT);
        let st = gw
            .wait_exit(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("{driver}: the second signal did not stop it"));
        assert!(st.success(), "{driver}: {st}");
        assert!(sent.elapsed() < Duration::from_secs(10), "{driver}");
        assert!(
            gw.log().contains("second shutdown signal"),
            "{driver}:\n{}",
            gw.log()
        );
    }
}

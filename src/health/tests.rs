//! The probe against scripted peers. Deliberate fakes: each speaks exactly one era (or
//! none), or fails in one precise way on demand, which no real reference server does on
//! its own, so each branch of the probe can be seen taken. (The real demo server is probed
//! end to end in `tests/replicas.rs` and `tests/faults.rs`.)
use super::*;
use std::io::{Read, Write};
use std::net::TcpListener;

/// Serves `n` connections, answering each request by `answer(request head + body)`;
/// joining returns the requests it saw. It gives up waiting for a connection after 5 s, so
/// a probe that sends fewer requests than the test expects fails the test instead of
/// hanging it.
fn peer(n: usize, answer: fn(&str) -> String) -> (String, std::thread::JoinHandle<Vec<String>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let url = format!("http://{}/mcp", l.local_addr().unwrap());
    let h = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for _ in 0..n {
            let Some(mut s) = accept_within(&l, Duration::from_secs(5)) else {
                break;
            };
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut buf = vec![0u8; 16384];
            let mut len = 0;
            // Read the head, then as much body as content-length says.
            while let Ok(k) = s.read(&mut buf[len..]) {
                if k == 0 {
                    break;
                }
                len += k;
                let text = String::from_utf8_lossy(&buf[..len]).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let want = text
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: "))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if len >= end + 4 + want {
                        break;
                    }
                }
            }
            let req = String::from_utf8_lossy(&buf[..len]).to_string();
            let _ = s.write_all(answer(&req).as_bytes());
            seen.push(req);
        }
        seen
    });
    (url, h)
}

fn accept_within(l: &TcpListener, limit: Duration) -> Option<std::net::TcpStream> {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        match l.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                return Some(s);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    None
}

fn reply(status: &str, ctype: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn json(body: &str) -> String {
    reply("200 OK", "application/json", body)
}

fn spec_with(url: &str, extra: &str) -> BackendSpec {
    let text = format!(
        "[[servers]]\nid = \"b\"\ntransport = \"http\"\nurl = \"{url}\"\nhealth_timeout_ms = 1000\n{extra}"
    );
    let cfg = only1mcp_shards::config::parse_str(&text, "test.toml").unwrap();
    crate::control::backend_specs(&cfg).unwrap().remove(0)
}

fn spec(url: &str) -> BackendSpec {
    spec_with(url, "")
}

/// A 2025 server with sessions: initialize gives `s1`; ping needs it.
fn legacy(req: &str) -> String {
    if req.contains("\"initialize\"") {
        return "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nmcp-session-id: s1\r\nconnection: close\r\n\r\nevent: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"protocolVersion\":\"2025-11-25\",\"capabilities\":{\"tools\":{}}}}\r\n\r\n".into();
    }
    if !req.contains("mcp-session-id: s1") {
        return reply("400 Bad Request", "text/plain", "no session");
    }
    if req.contains("notifications/initialized") {
        return reply("202 Accepted", "text/plain", "");
    }
    if req.contains("\"ping\"") {
        return json(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#);
    }
    if req.contains("\"tools/list\"") {
        return "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n10\r\n{\"jsonrpc\":\"2.0\"\r\n1f\r\n,\"id\":1,\"result\":{\"tools\":[]}}\r\n0\r\n\r\n".into();
    }
    if req.contains("\"tools/call\"") && req.contains("\"canary\"") {
        return json(r#"{"jsonrpc":"2.0","id":1,"result":{"content":[],"isError":true}}"#);
    }
    json(r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"no"}}"#)
}

#[test]
fn a_2025_server_gets_a_real_ping_on_the_checkers_session_and_lists_when_rejoining() {
    // initialize, initialized, ping, tools/list; then ping alone.
    let (url, h) = peer(5, legacy);
    let s = spec(&url);
    let mut session = None;
    assert_eq!(probe(&s, 0, &mut session, true), Ok(()));
    assert_eq!(session, Some(ProbeSession::Legacy(Some("s1".into()))));
    assert_eq!(probe(&s, 0, &mut session, false), Ok(()));
    let seen = h.join().unwrap();
    let methods: Vec<&str> = seen
        .iter()
        .map(|r| {
            [
                "initialize",
                "notifications/initialized",
                "ping",
                "tools/list",
            ]
            .into_iter()
            .find(|m| r.contains(&format!("\"{m}\"")))
            .unwrap_or("?")
        })
        .collect();
    assert_eq!(
        methods,
        [
            "initialize",
            "notifications/initialized",
            "ping",
            "tools/list",
            "ping"
        ]
    );
    assert!(seen[4].contains("mcp-session-id: s1"), "{}", seen[4]);
}

#[test]
fn an_expired_checker_session_is_opened_again_once() {
    // The first ping finds the session gone (404): initialize again, then ping passes, and
    // the replica (it restarted) must list its tools again.
    let (url, h) = peer(5, |req| {
        if req.contains("\"ping\"") && req.contains("mcp-session-id: old") {
            reply("404 Not Found", "text/plain", "")
        } else {
            legacy(req)
        }
    });
    let mut session = Some(ProbeSession::Legacy(Some("old".into())));
    assert_eq!(probe(&spec(&url), 0, &mut session, false), Ok(()));
    assert_eq!(session, Some(ProbeSession::Legacy(Some("s1".into()))));
    let seen = h.join().unwrap();
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert!(seen[4].contains("\"tools/list\""), "{}", seen[4]);
}

#[test]
fn a_failing_canary_makes_the_probe_fail() {
    // ping, tools/list (full probe), the canary call.
    let (url, h) = peer(3, legacy);
    let s = spec_with(
        &url,
        "health_canary = { tool = \"canary\", arguments = { x = 1 } }\n",
    );
    let mut session = Some(ProbeSession::Legacy(Some("s1".into())));
    let err = probe(&s, 0, &mut session, true).unwrap_err();
    assert!(
        err.contains("canary tool `canary` answered isError"),
        "{err}"
    );
    let seen = h.join().unwrap();
    assert!(
        seen.last().unwrap().contains(r#""arguments":{"x":1}"#),
        "{seen:?}"
    );
}

#[test]
fn a_replica_that_cannot_list_its_tools_does_not_rejoin() {
    let (url, h) = peer(2, |req| {
        if req.contains("\"tools/list\"") {
            json(r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"db down"}}"#)
        } else {
            legacy(req)
        }
    });
    let s = spec(&url);
    let mut session = Some(ProbeSession::Legacy(Some("s1".into())));
    let err = probe(&s, 0, &mut session, true).unwrap_err();
    assert!(err.contains("tools/list: error db down"), "{err}");
    h.join().unwrap();
}

#[test]
fn a_2026_only_server_is_healthy() {
    // initialize (refused), server/discover, server/discover (alive), tools/list.
    let (url, h) = peer(4, |req| {
        let modern = req.contains("mcp-protocol-version: 2026-07-28")
            && req.contains("io.modelcontextprotocol/protocolVersion");
        if modern && req.contains("mcp-method: server/discover") {
            json(r#"{"jsonrpc":"2.0","id":1,"result":{"supportedVersions":["2026-07-28"]}}"#)
        } else if modern && req.contains("mcp-method: tools/list") {
            json(r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[],"resultType":"complete"}}"#)
        } else {
            reply("400 Bad Request", "text/plain", "unsupported")
        }
    });
    let mut session = None;
    assert_eq!(probe(&spec(&url), 0, &mut session, true), Ok(()));
    assert_eq!(session, Some(ProbeSession::Modern));
    h.join().unwrap();
}

#[test]
fn an_http_sse_only_server_is_healthy() {
    let (url, h) = peer(3, |req| {
        if req.starts_with("GET /mcp ") && req.contains("accept: text/event-stream") {
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\nevent: endpoint\ndata: /messages?s=1\n\n".to_string()
        } else {
            reply("405 Method Not Allowed", "text/plain", "")
        }
    });
    assert_eq!(probe(&spec(&url), 0, &mut None, true), Ok(()));
    h.join().unwrap();
}

#[test]
fn a_server_that_is_not_mcp_is_unhealthy() {
    let (url, h) = peer(3, |_| reply("200 OK", "text/html", "<html>hello</html>"));
    let err = probe(&spec(&url), 0, &mut None, true).unwrap_err();
    assert!(err.contains("no era of MCP answered"), "{err}");
    h.join().unwrap();
}

#[test]
fn a_health_path_is_a_plain_get() {
    let (url, h) = peer(1, |req| {
        if req.starts_with("GET /healthz ") {
            reply("204 No Content", "text/plain", "")
        } else {
            reply("500 Internal Server Error", "text/plain", "")
        }
    });
    let s = spec_with(&url, "health_path = \"/healthz\"\n");
    assert_eq!(probe(&s, 0, &mut None, true), Ok(()));
    h.join().unwrap();
}

#[test]
fn a_dead_address_is_unhealthy() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/mcp", l.local_addr().unwrap());
    drop(l);
    assert!(probe(&spec(&url), 0, &mut None, true).is_err());
}

/// A unix-socket replica whose listener accepts nothing and has a full backlog: the probe
/// fails at once with a reason naming the socket (a blocking connect waited there for as long
/// as the backend stalled, holding the health thread and every other replica's probe).
#[test]
fn a_unix_replica_with_a_full_backlog_fails_the_probe_at_once() {
    use socket2::{Domain, SockAddr, Socket, Type};
    let dir = std::env::temp_dir().join(format!("o1u-probe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("full.sock");
    let l = Socket::new(Domain::UNIX, Type::STREAM, None).unwrap();
    l.bind(&SockAddr::unix(&path).unwrap()).unwrap();
    l.listen(0).unwrap();
    // Fill the backlog (never accepted): the next connect would wait.
    let mut held = Vec::new();
    for _ in 0..4 {
        let c = Socket::new(Domain::UNIX, Type::STREAM, None).unwrap();
        c.set_nonblocking(true).unwrap();
        if c.connect(&SockAddr::unix(&path).unwrap()).is_err() {
            break;
        }
        held.push(c);
    }
    let s = spec(&format!("unix:{}:/mcp", path.display()));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut session = None;
        let _ = tx.send(probe::probe(&s, 0, &mut session, true));
    });
    let got = rx.recv_timeout(Duration::from_secs(3));
    drop(held);
    drop(l);
    std::fs::remove_dir_all(&dir).unwrap();
    let err = got.expect("the probe returned within 3 s").unwrap_err();
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("not accepting"), "{err}");
}

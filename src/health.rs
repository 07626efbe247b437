//! Active health checks of HTTP replicas, on their own control-side thread (it blocks on
//! sockets, which a shard must never do).
//!
//! Each replica is probed every `health_interval_ms`: by default it must prove it speaks MCP
//! in some era (not just TCP): a 2025 `initialize` answered with a `protocolVersion`, else a
//! 2026-07-28 `server/discover` answered with `supportedVersions`, else the old HTTP+SSE
//! endpoint answering a GET with an event stream. A server with a `health_path` is probed
//! with a GET of it instead (any 2xx). `unhealthy_threshold`
//! consecutive failures take the replica out of every shard's rotation; `healthy_threshold`
//! consecutive successes put it back. Only transitions are sent to the shards, through
//! their lock-free mailboxes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use only1mcp_shards::rt::mailbox::SharedMailboxSender;
use only1mcp_shards::shard::ShardMsg;
use only1mcp_shards::snapshot::BackendSpec;

/// Sends one request on a fresh connection and reads the answer until `marker` appears in
/// it (or the head is complete when `marker` is empty), EOF, or the probe timeout.
fn exchange(
    spec: &BackendSpec,
    replica: usize,
    request: &str,
    marker: &[u8],
) -> Result<(u16, Vec<u8>), String> {
    let url = &spec.urls[replica];
    let addr = url.addrs.first().ok_or("no address")?;
    let t = spec.health.timeout;
    let mut s = TcpStream::connect_timeout(addr, t).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(t)).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(t)).map_err(|e| e.to_string())?;
    s.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + t;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let head_done = buf.windows(4).any(|w| w == b"\r\n\r\n");
        if head_done && (marker.is_empty() || buf.windows(marker.len()).any(|w| w == marker)) {
            break;
        }
        if buf.len() > 256 * 1024 || Instant::now() > deadline {
            break;
        }
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if buf.is_empty() => return Err(e.to_string()),
            Err(_) => break,
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    resp.parse(&buf).map_err(|e| e.to_string())?;
    Ok((resp.code.ok_or("no status")?, buf))
}

fn post(spec: &BackendSpec, replica: usize, extra: &str, body: &str) -> String {
    let url = &spec.urls[replica];
    let mut req = format!(
        "POST {} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\nconnection: close\r\ncontent-length: {}\r\n{extra}",
        url.path,
        url.authority,
        body.len()
    );
    for (k, v) in &spec.headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    req
}

fn contains(buf: &[u8], needle: &[u8]) -> bool {
    buf.windows(needle.len()).any(|w| w == needle)
}

/// One probe: `Ok` when the replica proved it serves MCP in some era (2025 `initialize`,
/// 2026 `server/discover`, or the HTTP+SSE endpoint), or answered its `health_path`.
fn probe(spec: &BackendSpec, replica: usize) -> Result<(), String> {
    let url = &spec.urls[replica];
    if let Some(path) = &spec.health.path {
        let mut req = format!(
            "GET {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n",
            url.authority
        );
        for (k, v) in &spec.headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        let (status, _) = exchange(spec, replica, &req, b"")?;
        return if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(format!("HTTP {status}"))
        };
    }
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"only1mcp-uring-health","version":"1"}}}"#;
    let (status, buf) = exchange(
        spec,
        replica,
        &post(spec, replica, "", init),
        b"\"protocolVersion\"",
    )?;
    if status == 200 && contains(&buf, b"\"protocolVersion\"") {
        end_session(spec, replica, &buf);
        return Ok(());
    }
    let discover = r#"{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
    let modern = "mcp-protocol-version: 2026-07-28\r\nmcp-method: server/discover\r\n";
    let (status, buf) = exchange(
        spec,
        replica,
        &post(spec, replica, modern, discover),
        b"\"supportedVersions\"",
    )?;
    if status == 200 && contains(&buf, b"\"supportedVersions\"") {
        return Ok(());
    }
    let mut sse = format!(
        "GET {} HTTP/1.1\r\nhost: {}\r\naccept: text/event-stream\r\nconnection: close\r\n",
        url.path, url.authority
    );
    for (k, v) in &spec.headers {
        sse.push_str(&format!("{k}: {v}\r\n"));
    }
    sse.push_str("\r\n");
    let (status, buf) = exchange(spec, replica, &sse, b"")?;
    if status == 200 && contains(&buf.to_ascii_lowercase(), b"text/event-stream") {
        return Ok(());
    }
    Err(format!("HTTP {status}: no era of MCP answered"))
}

/// The probe's 2025 session is not needed: end it (best effort).
fn end_session(spec: &BackendSpec, replica: usize, answer: &[u8]) {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    if resp.parse(answer).is_err() {
        return;
    }
    let Some(sid) = resp
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("mcp-session-id"))
        .map(|h| String::from_utf8_lossy(h.value).into_owned())
    else {
        return;
    };
    let url = &spec.urls[replica];
    let req = format!(
        "DELETE {} HTTP/1.1\r\nhost: {}\r\nmcp-session-id: {sid}\r\nconnection: close\r\n\r\n",
        url.path, url.authority
    );
    let _ = exchange(spec, replica, &req, b"");
}

/// Runs the health checks until the process ends. Returns at once if no server has checks.
pub fn spawn(
    specs: Vec<BackendSpec>,
    shards: Vec<SharedMailboxSender<ShardMsg>>,
) -> anyhow::Result<()> {
    let targets: Vec<(BackendSpec, usize)> = specs
        .into_iter()
        .filter(|s| !s.health.interval.is_zero() && !s.urls.is_empty())
        .flat_map(|s| (0..s.urls.len()).map(move |i| (s.clone(), i)))
        .collect();
    if targets.is_empty() {
        return Ok(());
    }
    std::thread::Builder::new()
        .name("o1m-health".into())
        .spawn(move || run(targets, shards))?;
    Ok(())
}

fn run(targets: Vec<(BackendSpec, usize)>, shards: Vec<SharedMailboxSender<ShardMsg>>) {
    // Per target: (healthy, consecutive successes, consecutive failures, next probe).
    let mut state: Vec<(bool, u32, u32, Instant)> = targets
        .iter()
        .map(|_| (true, 0, 0, Instant::now()))
        .collect();
    loop {
        let now = Instant::now();
        for (i, (spec, replica)) in targets.iter().enumerate() {
            let st = &mut state[i];
            if now < st.3 {
                continue;
            }
            st.3 = now + spec.health.interval;
            match probe(spec, *replica) {
                Ok(()) => {
                    st.1 += 1;
                    st.2 = 0;
                    if !st.0 && st.1 >= spec.health.healthy_threshold {
                        st.0 = true;
                        tracing::info!(server = %spec.id, replica, url = %spec.urls[*replica].raw, "replica healthy again: back in rotation");
                        tell(&shards, &spec.id, *replica, true);
                    }
                }
                Err(why) => {
                    st.2 += 1;
                    st.1 = 0;
                    if st.0 && st.2 >= spec.health.unhealthy_threshold {
                        st.0 = false;
                        tracing::warn!(server = %spec.id, replica, url = %spec.urls[*replica].raw, "replica unhealthy ({why}): out of rotation");
                        tell(&shards, &spec.id, *replica, false);
                    }
                }
            }
        }
        let next = state
            .iter()
            .map(|s| s.3)
            .min()
            .unwrap_or(now + Duration::from_secs(1));
        std::thread::sleep(
            next.saturating_duration_since(Instant::now())
                .max(Duration::from_millis(10)),
        );
    }
}

fn tell(shards: &[SharedMailboxSender<ShardMsg>], server: &str, replica: usize, healthy: bool) {
    for s in shards {
        let _ = s.send(ShardMsg::Health {
            server: server.to_string(),
            replica,
            healthy,
        });
    }
}

#[cfg(test)]
mod tests {
    //! The probe against scripted peers. Deliberate fakes: each speaks exactly one era (or
    //! none), which no real reference server does on its own, so the fallbacks can be seen
    //! taken one by one.
    use super::*;
    use std::net::TcpListener;

    /// Serves `n` connections, answering each request by `answer(request head + body)`.
    fn peer(n: usize, answer: fn(&str) -> String) -> (String, std::thread::JoinHandle<()>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/mcp", l.local_addr().unwrap());
        let h = std::thread::spawn(move || {
            for _ in 0..n {
                let Ok((mut s, _)) = l.accept() else { return };
                s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let mut buf = vec![0u8; 8192];
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
            }
        });
        (url, h)
    }

    fn reply(status: &str, ctype: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    fn spec(url: &str) -> BackendSpec {
        let text = format!(
            "[[servers]]\nid = \"b\"\ntransport = \"http\"\nurl = \"{url}\"\nhealth_timeout_ms = 1000\n"
        );
        let cfg = only1mcp_shards::config::parse_str(&text, "test.toml").unwrap();
        crate::control::backend_specs(&cfg).unwrap().remove(0)
    }

    #[test]
    fn a_2026_only_server_is_healthy() {
        let (url, h) = peer(2, |req| {
            if req.contains("server/discover") && req.contains("mcp-method: server/discover") {
                reply(
                    "200 OK",
                    "application/json",
                    r#"{"jsonrpc":"2.0","id":1,"result":{"supportedVersions":["2026-07-28"]}}"#,
                )
            } else {
                reply("400 Bad Request", "text/plain", "unsupported")
            }
        });
        assert_eq!(probe(&spec(&url), 0), Ok(()));
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
        assert_eq!(probe(&spec(&url), 0), Ok(()));
        h.join().unwrap();
    }

    #[test]
    fn a_server_that_is_not_mcp_is_unhealthy() {
        let (url, h) = peer(3, |_| reply("200 OK", "text/html", "<html>hello</html>"));
        let err = probe(&spec(&url), 0).unwrap_err();
        assert!(err.contains("no era of MCP answered"), "{err}");
        h.join().unwrap();
    }

    #[test]
    fn a_dead_address_is_unhealthy() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/mcp", l.local_addr().unwrap());
        drop(l);
        assert!(probe(&spec(&url), 0).is_err());
    }
}

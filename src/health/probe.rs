//! One health probe of one HTTP replica, over a blocking socket (health thread only).
//!
//! The probe proves the replica serves MCP, not just TCP (a `unix:` replica is probed over its
//! socket, the same way):
//! - 2025 era: the checker holds its own upstream session and sends a real `ping` on it
//!   each interval (a 404 means the session expired: it initializes again);
//! - 2026-07-28 (no `ping` there): a stateless `server/discover`;
//! - the old HTTP+SSE transport: its GET answers an event stream.
//!
//! A replica coming back (or probed for the first time) must also list its tools, so it
//! rejoins only when it could serve the catalog; and with `health_canary` every probe also
//! calls that tool, which must not answer an error or an `isError` result.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::Instant;

use only1mcp_shards::snapshot::BackendSpec;
use sonic_rs::JsonValueTrait;

/// What the checker learned of a replica's era, kept between probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeSession {
    /// 2025 era; the session id the replica gave the checker (if it is stateful).
    Legacy(Option<String>),
    /// 2026-07-28, stateless.
    Modern,
    /// HTTP+SSE (2024-11-05): only its event stream is checked.
    Sse,
}

/// An HTTP answer: status, headers we need, and the decoded body.
struct Answer {
    status: u16,
    session: Option<String>,
    body: Vec<u8>,
}

/// Sends `request` on a fresh connection and reads the whole answer (the peer closes: every
/// probe request says `connection: close`), or stops at the probe timeout. An SSE answer is
/// read until its first message that carries a JSON-RPC `id`.
fn exchange(spec: &BackendSpec, replica: usize, request: &str) -> Result<Answer, String> {
    let url = &spec.urls[replica];
    let t = spec.health.timeout;
    // A `unix:` replica: the same exchange over its socket.
    if let Some(path) = &url.unix {
        let s = connect_unix(path)?;
        s.set_read_timeout(Some(t)).map_err(|e| e.to_string())?;
        s.set_write_timeout(Some(t)).map_err(|e| e.to_string())?;
        return talk(s, request, t);
    }
    let addr = url.addrs.first().ok_or("no address")?;
    let s = TcpStream::connect_timeout(addr, t).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(t)).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(t)).map_err(|e| e.to_string())?;
    talk(s, request, t)
}

/// Connects to a unix socket without waiting: a listener whose backlog is full refuses a
/// non-blocking connect at once (EAGAIN), where a blocking one would wait as long as the
/// backend stalls, holding this thread and every other replica's probe.
fn connect_unix(path: &std::path::Path) -> Result<UnixStream, String> {
    use socket2::{Domain, SockAddr, Socket, Type};
    let fail = |e: std::io::Error| format!("unix socket {}: {e}", path.display());
    let s = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(fail)?;
    s.set_nonblocking(true).map_err(fail)?;
    match s.connect(&SockAddr::unix(path).map_err(fail)?) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            return Err(format!(
                "unix socket {}: backlog full (the backend is not accepting)",
                path.display()
            ))
        }
        Err(e) => return Err(fail(e)),
    }
    s.set_nonblocking(false).map_err(fail)?;
    Ok(s.into())
}

/// Writes `request` on a connected socket and reads the answer, within `t`.
fn talk(mut s: impl Read + Write, request: &str, t: std::time::Duration) -> Result<Answer, String> {
    s.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + t;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(a) = complete(&buf, false) {
            return Ok(a);
        }
        if buf.len() > 1024 * 1024 {
            return Err("answer larger than 1 MiB".into());
        }
        if Instant::now() > deadline {
            return Err("no complete answer within the probe timeout".into());
        }
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if buf.is_empty() => return Err(e.to_string()),
            Err(e) => return Err(format!("answer cut short: {e}")),
        }
    }
    complete(&buf, true).ok_or_else(|| "connection closed before a complete answer".into())
}

/// The answer in `buf` if it is complete enough to judge (`eof`: nothing more will come).
fn complete(buf: &[u8], eof: bool) -> Option<Answer> {
    let mut headers = [httparse::EMPTY_HEADER; 48];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        _ => return None,
    };
    let find = |name: &str| {
        resp.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
    };
    let status = resp.code?;
    let sse = find("content-type").is_some_and(|c| c.to_ascii_lowercase().contains("event-stream"));
    let chunked = find("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked"));
    let raw = &buf[head_len..];
    let body = if chunked {
        dechunk(raw)?
    } else if let Some(n) = find("content-length").and_then(|v| v.parse::<usize>().ok()) {
        if raw.len() < n {
            return None;
        }
        raw[..n].to_vec()
    } else if eof || sse {
        raw.to_vec()
    } else {
        return None;
    };
    let session = find("mcp-session-id");
    if sse {
        // The first message with an id is the answer; an endpoint event (HTTP+SSE) counts too.
        let text = String::from_utf8_lossy(&body).replace("\r\n", "\n");
        let mut data = None;
        for block in text.split("\n\n") {
            let d: String = block
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim_start)
                .collect::<Vec<_>>()
                .join("\n");
            if block.lines().any(|l| l.trim() == "event: endpoint") {
                data = Some("endpoint".to_string());
                break;
            }
            if d.contains("\"id\"") {
                data = Some(d);
                break;
            }
        }
        return Some(Answer {
            status,
            session,
            body: data?.into_bytes(),
        });
    }
    // Without a length the peer's close ends the body: the caller judges at EOF.
    Some(Answer {
        status,
        session,
        body,
    })
}

/// Decodes a chunked body; `None` while incomplete.
fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        match httparse::parse_chunk_size(raw) {
            Ok(httparse::Status::Complete((hdr, size))) => {
                let size = size as usize;
                if size == 0 {
                    return Some(out);
                }
                let data = raw.get(hdr..hdr + size)?;
                out.extend_from_slice(data);
                raw = raw.get(hdr + size + 2..)?;
            }
            _ => return None,
        }
    }
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

fn get(spec: &BackendSpec, replica: usize, path: &str, accept: &str) -> String {
    let url = &spec.urls[replica];
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nhost: {}\r\n{accept}connection: close\r\n",
        url.authority
    );
    for (k, v) in &spec.headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req
}

const MODERN: &str = "mcp-protocol-version: 2026-07-28\r\n";
const MODERN_META: &str = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;

/// Headers and `_meta` for a request in `session`'s era.
fn era_parts(session: &ProbeSession, method: &str, name: Option<&str>) -> (String, &'static str) {
    match session {
        ProbeSession::Legacy(sid) => {
            let mut h = String::from("mcp-protocol-version: 2025-11-25\r\n");
            if let Some(s) = sid {
                h.push_str(&format!("mcp-session-id: {s}\r\n"));
            }
            (h, "")
        }
        _ => {
            let mut h = format!("{MODERN}mcp-method: {method}\r\n");
            if let Some(n) = name {
                h.push_str(&format!("mcp-name: {n}\r\n"));
            }
            (h, MODERN_META)
        }
    }
}

/// A JSON-RPC request in `session`'s era; `Ok(result)` or why not.
fn rpc(
    spec: &BackendSpec,
    replica: usize,
    session: &ProbeSession,
    method: &str,
    params: &str,
    name: Option<&str>,
) -> Result<sonic_rs::Value, String> {
    let (headers, meta) = era_parts(session, method, name);
    let params = if meta.is_empty() {
        params.to_string()
    } else if params.trim() == "{}" {
        format!("{{{meta}}}")
    } else {
        format!("{},{meta}}}", &params.trim()[..params.trim().len() - 1])
    };
    let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{params}}}"#);
    let a = exchange(spec, replica, &post(spec, replica, &headers, &body))?;
    if a.status == 404 {
        return Err("HTTP 404 (session expired)".into());
    }
    if a.status != 200 {
        return Err(format!("{method}: HTTP {}", a.status));
    }
    // A lying backend's answer: nesting bounded before the (recursive) parse.
    only1mcp_shards::wire::scan::check(&a.body, only1mcp_shards::wire::scan::max_depth())
        .map_err(|d| format!("{method}: the answer is not acceptable JSON ({d:?})"))?;
    let v: sonic_rs::Value =
        sonic_rs::from_slice(&a.body).map_err(|_| format!("{method}: the answer is not JSON"))?;
    if let Some(e) = v.get("error") {
        return Err(format!(
            "{method}: error {}",
            e.get("message").as_str().unwrap_or("?")
        ));
    }
    v.get("result")
        .cloned()
        .ok_or_else(|| format!("{method}: no result in the answer"))
}

/// Finds the replica's era and opens the checker's session in it.
fn establish(spec: &BackendSpec, replica: usize) -> Result<ProbeSession, String> {
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"only1mcp-uring-health","version":"1"}}}"#;
    if let Ok(a) = exchange(spec, replica, &post(spec, replica, "", init)) {
        let ok = a.status == 200
            && sonic_rs::get(a.body.as_slice(), ["result", "protocolVersion"]).is_ok();
        if ok {
            let session = ProbeSession::Legacy(a.session);
            let (h, _) = era_parts(&session, "", None);
            let note = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
            let _ = exchange(spec, replica, &post(spec, replica, &h, note));
            return Ok(session);
        }
    }
    if rpc(
        spec,
        replica,
        &ProbeSession::Modern,
        "server/discover",
        "{}",
        None,
    )
    .is_ok_and(|r| r.get("supportedVersions").is_some())
    {
        return Ok(ProbeSession::Modern);
    }
    let path = spec.urls[replica].path.clone();
    let a = exchange(
        spec,
        replica,
        &get(spec, replica, &path, "accept: text/event-stream\r\n"),
    )?;
    if a.status == 200 && a.body == b"endpoint" {
        return Ok(ProbeSession::Sse);
    }
    Err(format!("HTTP {}: no era of MCP answered", a.status))
}

/// One probe. `session` carries the checker's session across probes; `full` (first probe,
/// or the replica is out of rotation) also requires its tool list.
pub fn probe(
    spec: &BackendSpec,
    replica: usize,
    session: &mut Option<ProbeSession>,
    full: bool,
) -> Result<(), String> {
    if let Some(path) = &spec.health.path {
        let a = exchange(spec, replica, &get(spec, replica, path, ""))?;
        if !(200..300).contains(&a.status) {
            return Err(format!("GET {path}: HTTP {}", a.status));
        }
        if spec.health.canary.is_none() {
            return Ok(());
        }
    }
    let mut fresh = false;
    if session.is_none() {
        *session = Some(establish(spec, replica)?);
        fresh = true;
    }
    let s = session.clone().unwrap_or(ProbeSession::Sse);
    let alive = match &s {
        ProbeSession::Legacy(_) => rpc(spec, replica, &s, "ping", "{}", None).map(|_| ()),
        ProbeSession::Modern => rpc(spec, replica, &s, "server/discover", "{}", None).map(|_| ()),
        ProbeSession::Sse => Ok(()),
    };
    if let Err(e) = alive {
        *session = None;
        if fresh || !e.contains("404") {
            return Err(e);
        }
        // The checker's session expired (the replica restarted): a new one, once.
        return probe(spec, replica, session, full);
    }
    if s == ProbeSession::Sse {
        return Ok(());
    }
    if full || fresh {
        let tools =
            rpc(spec, replica, &s, "tools/list", "{}", None).inspect_err(|_| *session = None)?;
        if !tools.get("tools").is_some_and(|t| t.is_array()) {
            return Err("tools/list: no tools array".into());
        }
    }
    if let Some((tool, args)) = &spec.health.canary {
        let name = sonic_rs::to_string(tool).unwrap_or_default();
        let params = format!(r#"{{"name":{name},"arguments":{args}}}"#);
        let r = rpc(spec, replica, &s, "tools/call", &params, Some(tool))
            .map_err(|e| format!("canary {e}"))?;
        if r.get("isError").as_bool() == Some(true) {
            return Err(format!("canary tool `{tool}` answered isError"));
        }
    }
    Ok(())
}

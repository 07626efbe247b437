//! Shared by the task tests (`tests/tasks.rs`, `tests/tasks_legacy.rs`): the demo server's
//! conformance fixture (which runs the task tools) as a stdio or HTTP backend, requests in
//! each era, an incremental SSE reader, and finding the fixture's stdio child.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common::{DemoHttp, Gateway, Resp};

/// The environment that turns the demo's task tools on.
pub const FIXTURE_ENV: &[(&str, &str)] = &[("DEMO_CONFORMANCE", "1"), ("DEMO_PAGE_SIZE", "100")];

/// The client capabilities of a 2026 request that uses tasks (and can answer elicitations).
pub const WITH_TASKS: &str =
    r#"{"elicitation":{},"extensions":{"io.modelcontextprotocol/tasks":{}}}"#;
/// The same without the tasks extension.
pub const WITHOUT_TASKS: &str = r#"{"elicitation":{}}"#;

/// The fixture over stdio as server `id` (`extra`: more keys of its `[[servers]]` block).
pub fn stdio_fixture(id: &str, extra: &str) -> String {
    format!(
        "[[servers]]\nid = \"{id}\"\ntransport = \"stdio\"\ncommand = \"$self\"\nargs = [\"demo-server\", \"--stdio\", \"--name\", \"{id}\"]\nenv = {{ DEMO_CONFORMANCE = \"1\", DEMO_PAGE_SIZE = \"100\" }}\n{extra}\n"
    )
}

/// The fixture over HTTP on `listen` (killed and reaped on drop).
pub fn http_fixture(listen: &str, name: &str) -> DemoHttp {
    DemoHttp::start_with(listen, name, FIXTURE_ENV, None)
}

/// The fixture as server `id`, over `transport` ("stdio" or "http"); the HTTP process, if
/// any, lives as long as the returned handle.
pub fn fixture(id: &str, transport: &str, extra: &str) -> (String, Option<DemoHttp>) {
    match transport {
        "stdio" => (stdio_fixture(id, extra), None),
        _ => {
            let web = http_fixture("127.0.0.1:0", id);
            let cfg = format!(
                "[[servers]]\nid = \"{id}\"\ntransport = \"http\"\nurl = \"http://{}/mcp\"\n{extra}\n",
                web.addr
            );
            (cfg, Some(web))
        }
    }
}

/// A 2026 request: `params` (without `_meta`) get `_meta` declaring `caps`; the headers
/// name method and `name`; `key` authenticates.
pub fn modern(
    gw: &Gateway,
    key: Option<&str>,
    caps: &str,
    method: &str,
    name: Option<&str>,
    params: &str,
) -> Resp {
    let meta = format!(
        r#""_meta":{{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{{"name":"t","version":"1"}},"io.modelcontextprotocol/clientCapabilities":{caps}}}"#
    );
    let sep = if params.is_empty() { "" } else { "," };
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":7,"method":"{method}","params":{{{params}{sep}{meta}}}}}"#
    );
    let bearer = key.map(|k| format!("Bearer {k}"));
    let mut h = vec![
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", method),
    ];
    if let Some(n) = name {
        h.push(("mcp-name", n));
    }
    if let Some(b) = &bearer {
        h.push(("authorization", b.as_str()));
    }
    gw.post(&h, &body)
}

/// A 2026 `tools/call` of `tool` with `args`, declaring `caps`.
pub fn call_2026(gw: &Gateway, key: Option<&str>, caps: &str, tool: &str, args: &str) -> Resp {
    let params = format!(r#""name":"{tool}","arguments":{args}"#);
    modern(gw, key, caps, "tools/call", Some(tool), &params)
}

/// A 2026 `tasks/*` request for `task`.
pub fn task_2026(
    gw: &Gateway,
    key: Option<&str>,
    caps: &str,
    method: &str,
    task: &str,
    more: &str,
) -> Resp {
    let params = format!(r#""taskId":"{task}"{more}"#);
    modern(gw, key, caps, method, Some(task), &params)
}

/// A 2025 session (2025-11-25) whose client can answer elicitations.
pub fn init_2025(gw: &Gateway) -> String {
    let r = gw.post(
        &[],
        r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"elicitation":{}},"clientInfo":{"name":"t","version":"1"}}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let sid = r.header("mcp-session-id").expect("session id").to_string();
    let n = gw.post(
        &[("mcp-session-id", &sid)],
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    );
    assert_eq!(n.status, 202);
    sid
}

/// A 2025 request of session `sid`; the response as the client gets it.
pub fn legacy(gw: &Gateway, sid: &str, method: &str, params: &str) -> Resp {
    let body = format!(r#"{{"jsonrpc":"2.0","id":5,"method":"{method}","params":{params}}}"#);
    gw.post(
        &[
            ("mcp-session-id", sid),
            ("mcp-protocol-version", "2025-11-25"),
        ],
        &body,
    )
}

/// An HTTP response read incrementally: its SSE events as they come.
pub struct Stream {
    s: TcpStream,
    buf: Vec<u8>,
    pub head: String,
}

impl Stream {
    /// Sends `method path` with `headers` and `body` on a new connection; reads the head.
    pub fn open(gw: &Gateway, method: &str, headers: &[(&str, &str)], body: &str) -> Stream {
        let mut s = TcpStream::connect(&gw.addr).unwrap();
        let mut req = format!("{method} /mcp HTTP/1.1\r\nhost: {}\r\n", gw.addr);
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
        s.write_all(req.as_bytes()).unwrap();
        let mut st = Stream {
            s,
            buf: Vec::new(),
            head: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(end) = st.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                st.head = String::from_utf8_lossy(&st.buf[..end]).to_string();
                st.buf.drain(..end + 4);
                break;
            }
            st.fill(Duration::from_millis(100));
        }
        st
    }

    fn fill(&mut self, wait: Duration) -> bool {
        self.s.set_read_timeout(Some(wait)).unwrap();
        let mut chunk = [0u8; 8192];
        match self.s.read(&mut chunk) {
            Ok(0) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(_) => true,
        }
    }

    /// The next SSE `data:` message (JSON) within `within`, `None` if none came.
    pub fn next(&mut self, within: Duration) -> Option<sonic_rs::Value> {
        let deadline = Instant::now() + within;
        loop {
            // Chunk framing lines are not `data:` lines; events are whole in one chunk.
            let text = String::from_utf8_lossy(&self.buf).to_string();
            if let Some(at) = text.find("data: ") {
                if let Some(nl) = text[at..].find('\n') {
                    let line = text[at + 6..at + nl].trim().to_string();
                    let consumed = text[..at + nl + 1].len();
                    self.buf.drain(..consumed);
                    if let Ok(v) = sonic_rs::from_str(&line) {
                        return Some(v);
                    }
                    continue;
                }
            }
            if Instant::now() >= deadline || !self.fill(Duration::from_millis(100)) {
                return None;
            }
        }
    }
}

/// The pids of the gateway's demo-server children (stdio backends).
pub fn demo_children(gw: &Gateway) -> Vec<u32> {
    crate::common::descendants(gw.pid())
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                .map(|c| c.contains("demo-server"))
                .unwrap_or(false)
        })
        .collect()
}

/// SHA-256 of `s` in hex (an API key's entry in the config).
pub fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Polls until `check` holds (every 100 ms, at most `within`); the last value it saw.
pub fn until<T>(within: Duration, mut get: impl FnMut() -> T, check: impl Fn(&T) -> bool) -> T {
    let deadline = Instant::now() + within;
    loop {
        let v = get();
        if check(&v) || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

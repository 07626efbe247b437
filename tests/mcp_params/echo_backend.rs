//! A 2026-07-28-only HTTP backend that shows what the gateway sends it: one tool, `query`,
//! whose arguments `region`, `opts.limit` and `opts.dry` are mirrored into `Mcp-Param-*`
//! headers (`x-mcp-header`), answering each call with the `Mcp-*` request headers it got, as
//! a JSON object in a text block (names lower-cased). A deliberate fake: the demo server
//! validates the headers (and is used for that) but cannot echo them for a mirrored tool.
//! It answers `server/discover`, `tools/list` and `tools/call`; anything else is a 404
//! JSON-RPC -32601 (so the gateway's 2025 `initialize` fails and it speaks 2026 only).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sonic_rs::JsonValueTrait;

const TOOLS: &str = r#"[{"name":"query","description":"Echoes its Mcp-* request headers","inputSchema":{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"},"opts":{"type":"object","properties":{"limit":{"type":"integer","x-mcp-header":"Limit"},"dry":{"type":"boolean","x-mcp-header":"Dry-Run"}}},"note":{"type":"string"}}}}]"#;

/// The backend, listening on 127.0.0.1 (port 0) until dropped (at most two minutes).
pub struct EchoBackend {
    pub addr: String,
    stop: Arc<AtomicBool>,
}

impl EchoBackend {
    pub fn start() -> EchoBackend {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        l.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            while !s2.load(Ordering::Relaxed) && Instant::now() < deadline {
                match l.accept() {
                    Ok((s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        std::thread::spawn(move || serve(s));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        EchoBackend { addr, stop }
    }
}

impl Drop for EchoBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One keep-alive connection: requests until the gateway closes it (or 30 s idle).
fn serve(s: TcpStream) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let mut out = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    loop {
        let mut request_line = String::new();
        if r.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut headers = BTreeMap::new();
        let mut len = 0usize;
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (k, v) = line.split_once(':').unwrap_or((line, ""));
            let k = k.to_ascii_lowercase();
            if k == "content-length" {
                len = v.trim().parse().unwrap_or(0);
            }
            headers.insert(k, v.trim().to_string());
        }
        let mut body = vec![0u8; len.min(1 << 20)];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let (status, reply) = answer(&request_line, &headers, &body);
        let head = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            reply.len()
        );
        if out.write_all(head.as_bytes()).is_err() || out.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

fn answer(request_line: &str, headers: &BTreeMap<String, String>, body: &[u8]) -> (u16, String) {
    if !request_line.starts_with("POST ") {
        return (405, String::new());
    }
    let id = sonic_rs::get(body, ["id"])
        .map(|v| v.as_raw_str().to_string())
        .unwrap_or_else(|_| "null".into());
    let method = sonic_rs::get(body, ["method"])
        .ok()
        .and_then(|m| m.as_str().map(str::to_string))
        .unwrap_or_default();
    let result = match method.as_str() {
        "server/discover" => r#"{"resultType":"complete","supportedVersions":["2026-07-28"],"capabilities":{"tools":{}},"ttlMs":0,"cacheScope":"public","_meta":{"io.modelcontextprotocol/serverInfo":{"name":"echo","version":"1"}}}"#.to_string(),
        "tools/list" => {
            format!(r#"{{"resultType":"complete","tools":{TOOLS},"ttlMs":0,"cacheScope":"public"}}"#)
        }
        "tools/call" => {
            let seen: BTreeMap<&String, &String> =
                headers.iter().filter(|(k, _)| k.starts_with("mcp-")).collect();
            let text = sonic_rs::to_string(&seen).unwrap();
            format!(
                r#"{{"resultType":"complete","content":[{{"type":"text","text":{}}}]}}"#,
                sonic_rs::to_string(&text).unwrap()
            )
        }
        _ => {
            return (
                404,
                format!(
                    r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":-32601,"message":"Method not found"}}}}"#
                ),
            )
        }
    };
    (
        200,
        format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#),
    )
}

//! Test harness: boots the real gateway binary on port 0 and speaks raw HTTP to it.
//!
//! Every test runs once per I/O driver ([`DRIVERS`]) from the same build. The gateway is
//! started with a config written to a temp file, its address is read from the one line it
//! prints on stdout, and `/health` is polled until the expected backends are ready. Dropping
//! a [`Gateway`] sends SIGTERM, waits for a clean exit (SIGKILL after 15 s) and reaps it.
#![allow(dead_code)]

mod demo_http;
#[allow(unused_imports)] // each test crate uses its own subset
pub use demo_http::{http_server, spawn_demo_http, spawn_demo_http_with, DemoHttp};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Both drivers; every I/O test runs on each.
pub const DRIVERS: &[&str] = &["uring", "epoll"];

/// Path of the gateway binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_only1mcp-uring"))
}

/// A scratch directory for this test process.
pub fn scratch(name: &str) -> PathBuf {
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> sonic_rs::Value {
        sonic_rs::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The JSON-RPC response: the body, or the last message of an SSE body.
    pub fn answer(&self) -> sonic_rs::Value {
        if self.header("content-type") == Some("text/event-stream") {
            self.sse_messages()
                .pop()
                .expect("an SSE answer with a message")
        } else {
            self.json()
        }
    }

    /// The JSON-RPC messages of an SSE body, in order.
    pub fn sse_messages(&self) -> Vec<sonic_rs::Value> {
        assert_eq!(
            self.header("content-type"),
            Some("text/event-stream"),
            "{}",
            self.text()
        );
        self.text()
            .split("\n\n")
            .filter_map(|ev| {
                let data: Vec<&str> = ev
                    .lines()
                    .filter_map(|l| l.strip_prefix("data: "))
                    .collect();
                let joined = data.join("\n");
                // The priming event (an id, empty data) carries no message.
                (!joined.trim().is_empty()).then(|| sonic_rs::from_str(&joined).unwrap())
            })
            .collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Parses one HTTP response from raw bytes.
pub fn parse_response(raw: &[u8]) -> Resp {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut r = httparse::Response::new(&mut headers);
    let n = match r.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        other => panic!("bad response ({other:?}): {}", String::from_utf8_lossy(raw)),
    };
    let hs: Vec<(String, String)> = r
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let chunked = hs.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let body = if chunked {
        let mut body = Vec::new();
        let mut at = n;
        while let Ok(httparse::Status::Complete((used, size))) =
            httparse::parse_chunk_size(&raw[at..])
        {
            at += used;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&raw[at..at + size as usize]);
            at += size as usize + 2;
        }
        body
    } else {
        let len = hs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse::<usize>().unwrap())
            .unwrap_or(raw.len() - n);
        raw[n..n + len].to_vec()
    };
    Resp {
        status: r.code.unwrap(),
        headers: hs,
        body,
    }
}

/// A running gateway.
pub struct Gateway {
    child: Option<Child>,
    pub addr: String,
    pub stderr: PathBuf,
    /// The config file it was started with (rewrite it to test reloads).
    pub cfg: PathBuf,
}

/// A handle that speaks HTTP to a gateway from any thread (load loops).
#[derive(Clone)]
pub struct Client {
    pub addr: String,
}

pub const JSON_HEADERS: &[(&str, &str)] = &[
    ("content-type", "application/json"),
    ("accept", "application/json, text/event-stream"),
];

impl Gateway {
    /// Starts the gateway with `config` (TOML) on `driver` with `cores` shards and waits until
    /// every backend in `ready` reports ready.
    pub fn start(config: &str, driver: &str, cores: usize, ready: &[&str]) -> Gateway {
        let dir = scratch("gw");
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let cfg = dir.join(format!("cfg-{n}.toml"));
        std::fs::write(&cfg, config).unwrap();
        Gateway::start_files(&[cfg], &[], driver, cores, ready)
    }

    /// Starts the gateway on config `files` (each a `--config`, merged) with `env` added to its
    /// environment, on `driver` with `cores` shards, and waits until every backend in `ready`
    /// reports ready.
    pub fn start_files(
        files: &[PathBuf],
        env: &[(&str, &str)],
        driver: &str,
        cores: usize,
        ready: &[&str],
    ) -> Gateway {
        let dir = scratch("gw");
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let cfg = files.first().cloned().unwrap_or_default();
        let stderr = dir.join(format!("stderr-{n}.log"));
        let mut child = Command::new(bin())
            .arg("start")
            .args(
                files
                    .iter()
                    .flat_map(|f| [std::ffi::OsStr::new("--config"), f.as_os_str()]),
            )
            .envs(env.iter().copied())
            .args([
                "--port",
                "0",
                "--cores",
                &cores.to_string(),
                "--driver",
                driver,
            ])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("gateway starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(l) if !l.is_empty() => l,
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "gateway did not start: {}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                );
            }
        };
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .unwrap_or_else(|| panic!("unexpected start line: {line}"))
            .to_string();
        let gw = Gateway {
            child: Some(child),
            addr,
            stderr,
            cfg,
        };
        gw.wait_ready(ready, Duration::from_secs(60));
        gw
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Polls /health until each named backend has the wanted state.
    pub fn wait_state(&self, id: &str, state: &str, within: Duration) -> sonic_rs::Value {
        use sonic_rs::{JsonContainerTrait, JsonValueTrait};
        let deadline = Instant::now() + within;
        loop {
            let h = self.get("/health").json();
            if let Some(b) = h["backends"]
                .as_array()
                .and_then(|a| a.iter().find(|b| b["id"].as_str() == Some(id)))
            {
                if b["state"].as_str() == Some(state) {
                    return b.clone();
                }
            }
            if Instant::now() > deadline {
                panic!("backend {id} never reached {state}: {h:?}\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn wait_ready(&self, ids: &[&str], within: Duration) {
        for id in ids {
            self.wait_state(id, "ready", within);
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// A thread-safe client of this gateway.
    pub fn client(&self) -> Client {
        Client {
            addr: self.addr.clone(),
        }
    }

    /// Sends raw bytes on a new connection and reads until the server closes (or 10 s).
    pub fn raw(&self, bytes: &[u8]) -> Vec<u8> {
        self.client().raw(bytes)
    }

    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        self.client().request(method, path, headers, body)
    }

    pub fn get(&self, path: &str) -> Resp {
        self.client().get(path)
    }

    /// POST /mcp with the standard MCP headers plus `extra`.
    pub fn post(&self, extra: &[(&str, &str)], body: &str) -> Resp {
        self.client().post(extra, body)
    }

    /// Runs initialize + initialized; returns the session id.
    pub fn initialize(&self) -> String {
        self.client().initialize()
    }

    /// A tools/call in `sid`; returns the JSON-RPC response.
    pub fn call(&self, sid: &str, tool: &str, args: &str) -> sonic_rs::Value {
        self.client().call(sid, tool, args)
    }

    /// Sends `signal` and returns at once.
    pub fn signal(&self, signal: i32) {
        let child = self.child.as_ref().expect("running");
        unsafe {
            libc::kill(child.id() as i32, signal);
        }
    }

    /// The exit status once the process has exited (reaped), or `None` while it still runs
    /// after `within`.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(st) = self.child.as_mut().expect("running").try_wait().unwrap() {
                self.child = None;
                return Some(st);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM and wait; returns the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let st = child.wait().unwrap();
                panic!("gateway did not stop in 15 s ({st}):\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Client {
    /// Sends raw bytes on a new connection and reads until the server closes (or 10 s).
    pub fn raw(&self, bytes: &[u8]) -> Vec<u8> {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(bytes).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        out
    }

    /// One request with `Connection: close`.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n",
            self.addr
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        parse_response(&self.raw(&bytes))
    }

    pub fn get(&self, path: &str) -> Resp {
        self.request("GET", path, &[], b"")
    }

    /// POST /mcp with the standard MCP headers plus `extra`.
    pub fn post(&self, extra: &[(&str, &str)], body: &str) -> Resp {
        let mut h: Vec<(&str, &str)> = JSON_HEADERS.to_vec();
        h.extend_from_slice(extra);
        self.request("POST", "/mcp", &h, body.as_bytes())
    }

    /// Runs initialize + initialized; returns the session id.
    pub fn initialize(&self) -> String {
        let r = self.post(
            &[],
            r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw-test","version":"1"}}}"#,
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let sid = r.header("mcp-session-id").expect("session id").to_string();
        let n = self.post(
            &[("mcp-session-id", &sid)],
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        );
        assert_eq!(n.status, 202);
        sid
    }

    /// A tools/call in `sid`; returns the JSON-RPC response.
    pub fn call(&self, sid: &str, tool: &str, args: &str) -> sonic_rs::Value {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":"c1","method":"tools/call","params":{{"name":"{tool}","arguments":{args}}}}}"#
        );
        let r = self.post(
            &[
                ("mcp-session-id", sid),
                ("mcp-protocol-version", "2025-11-25"),
            ],
            &body,
        );
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe {
                libc::kill(child.id() as i32, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Pids of every live descendant of `pid` (from /proc).
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let after = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
        let ppid = after
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        parents.push((p, ppid));
    }
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(cur) = frontier.pop() {
        for (p, pp) in &parents {
            if *pp == cur {
                out.push(*p);
                frontier.push(*p);
            }
        }
    }
    out
}

/// Is `pid` alive (zombies count as alive: they were not reaped)?
pub fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// The demo server over stdio, as a `[[servers]]` block.
pub fn demo_stdio(id: &str, extra: &str) -> String {
    format!(
        "[[servers]]\nid = \"{id}\"\ntransport = \"stdio\"\ncommand = \"$self\"\nargs = [\"demo-server\", \"--stdio\", \"--name\", \"{id}\"]\n{extra}\n"
    )
}

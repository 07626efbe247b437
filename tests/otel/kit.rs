//! What the OpenTelemetry tests share (`tests/otel.rs`): the Python helpers (a real OTLP
//! receiver, the recording backend), killed and reaped on drop, and readers of what they saw.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Client, Gateway};
use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

pub const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
pub const CLIENT_SPAN: &str = "00f067aa0ba902b7";

pub fn python() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-env/venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run `bash tests/run-all.sh` once (it installs tests/requirements.txt)",
        p.display()
    );
    p
}

pub fn script(name: &str) -> String {
    format!("{}/tests/otel/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A Python helper that prints `listening on PORT`; killed and reaped on drop.
pub struct Py {
    child: Child,
    pub port: u16,
}

impl Py {
    pub fn start(args: &[&str]) -> Py {
        let mut child = Command::new(python())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python helper starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        Py { child, port }
    }

    pub fn client(&self) -> Client {
        Client {
            addr: format!("127.0.0.1:{}", self.port),
        }
    }
}

impl Drop for Py {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn receiver() -> Py {
    Py::start(&[&script("otlp_receiver.py")])
}

/// The spans received so far.
pub fn spans(rx: &Py) -> Vec<Value> {
    let v = rx.client().get("/spans").json();
    v.as_array().unwrap().iter().cloned().collect()
}

/// Waits (bounded) until `pred` holds of the received spans.
pub fn wait_spans(rx: &Py, what: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = spans(rx);
        if pred(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "never got {what}: {s:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn config(telemetry: &str, http_port: u16) -> String {
    format!(
        r#"{telemetry}
[[servers]]
id = "rec"
transport = "http"
url = "http://127.0.0.1:{http_port}/mcp"

[[servers]]
id = "srec"
transport = "stdio"
command = "{py}"
args = ["{rec}", "--stdio"]
"#,
        py = python().display(),
        rec = script("recorder.py"),
    )
}

pub fn telemetry(endpoint: &str, ratio: f64) -> String {
    format!("[telemetry]\notlp_endpoint = \"{endpoint}\"\nservice_name = \"gw-test\"\nsample_ratio = {ratio}\n")
}

/// tools/call `tool` in session `sid` with extra headers and a `_meta` (raw JSON, may be
/// empty); returns the JSON-RPC answer.
pub fn call(
    gw: &Gateway,
    sid: &str,
    id: &str,
    tool: &str,
    meta: &str,
    headers: &[(&str, &str)],
) -> Value {
    let meta = if meta.is_empty() {
        String::new()
    } else {
        format!(r#","_meta":{meta}"#)
    };
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{{}}{meta}}}}}"#
    );
    let mut h = vec![
        ("mcp-session-id", sid),
        ("mcp-protocol-version", "2025-11-25"),
    ];
    h.extend_from_slice(headers);
    let r = gw.post(&h, &body);
    assert_eq!(r.status, 200, "{}", r.text());
    r.answer()
}

/// What the recorder's `where` tool said it received.
pub fn seen(answer: &Value) -> Value {
    let text = answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no tool text: {answer:?}"));
    sonic_rs::from_str(text).unwrap()
}

pub fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or("")
}

pub fn attr<'a>(span: &'a Value, k: &str) -> &'a Value {
    &span["attributes"][k]
}

/// (trace id, parent span id, sampled) of a traceparent.
pub fn tp_parts(tp: &str) -> (String, String, String) {
    let p: Vec<&str> = tp.split('-').collect();
    assert_eq!(p.len(), 4, "{tp}");
    assert_eq!(p[0], "00", "{tp}");
    (p[1].into(), p[2].into(), p[3].into())
}

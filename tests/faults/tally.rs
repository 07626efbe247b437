//! Calls and their accounting for the fault-injection test: one tools/call that never
//! panics ([`try_call`], [`Streamed`]), the per-fault [`Tally`] with its latency bound, the
//! "others keep full service" check, and the markdown table.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use crate::common::{self, Gateway, Resp};
use sonic_rs::JsonValueTrait;

/// What every fault sees: the gateway, one client session on it, and the driver.
pub struct Ctx<'a> {
    pub gw: &'a Gateway,
    pub sid: &'a str,
    pub driver: &'static str,
    pub gw_pid: u32,
}

/// The real backends (not the fakes) and the text their `whoami` answers.
pub const REAL: &[&str] = &["steady", "web", "crashy", "victim", "slow"];

/// One tools/call: ok means a 200 with a `result` that is not `isError`; `code` is the
/// JSON-RPC error code when the answer was a JSON-RPC error.
pub struct Outcome {
    pub ok: bool,
    pub ms: u128,
    pub detail: String,
    pub code: Option<i64>,
}

fn call_body(id: &str, tool: &str, args: &str, meta: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":"{id}","method":"tools/call","params":{{"name":"{tool}","arguments":{args}{meta}}}}}"#
    )
}

/// Reads an answer (JSON or SSE) into (ok, detail, JSON-RPC error code).
fn judge(r: &Resp) -> (bool, String, Option<i64>) {
    if r.status != 200 {
        return (false, format!("HTTP {}: {}", r.status, r.text()), None);
    }
    let v = r.answer();
    let ok = !v["result"].is_null() && v["result"]["isError"].as_bool() != Some(true);
    let text = |v: &sonic_rs::Value| v.as_str().unwrap_or_default().to_string();
    if !ok && !v["error"].is_null() {
        return (
            false,
            text(&v["error"]["message"]),
            v["error"]["code"].as_i64(),
        );
    }
    (ok, text(&v["result"]["content"][0]["text"]), None)
}

/// Never panics: a transport error or an unparsable answer is a failed outcome.
fn judged(started: Instant, f: impl FnOnce() -> Resp) -> Outcome {
    let r = std::panic::catch_unwind(AssertUnwindSafe(|| judge(&f())));
    let ms = started.elapsed().as_millis();
    match r {
        Ok((ok, detail, code)) => Outcome {
            ok,
            ms,
            detail,
            code,
        },
        Err(_) => Outcome {
            ok: false,
            ms,
            detail: "transport error (no parsable answer)".into(),
            code: None,
        },
    }
}

pub fn try_call(gw: &Gateway, sid: &str, tool: &str, args: &str) -> Outcome {
    let body = call_body("f1", tool, args, "");
    let started = Instant::now();
    judged(started, || {
        gw.post(
            &[
                ("mcp-session-id", sid),
                ("mcp-protocol-version", "2025-11-25"),
            ],
            &body,
        )
    })
}

/// A tools/call with a progress token on its own connection, read as it streams: the test
/// can wait until the backend is provably working on it (its first progress notification)
/// before injecting a fault, then read the answer.
pub struct Streamed {
    conn: TcpStream,
    buf: Vec<u8>,
    started: Instant,
}

impl Streamed {
    pub fn start(gw: &Gateway, sid: &str, tool: &str, args: &str) -> Streamed {
        let body = call_body("s1", tool, args, r#","_meta":{"progressToken":"fault-p1"}"#);
        let mut conn = TcpStream::connect(&gw.addr).expect("connect to the gateway");
        conn.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut req = format!(
            "POST /mcp HTTP/1.1\r\nhost: {}\r\nconnection: close\r\nmcp-session-id: {sid}\r\n\
             mcp-protocol-version: 2025-11-25\r\ncontent-length: {}\r\n",
            gw.addr,
            body.len()
        );
        for (k, v) in common::JSON_HEADERS {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(&body);
        conn.write_all(req.as_bytes()).expect("send the call");
        Streamed {
            conn,
            buf: Vec::new(),
            started: Instant::now(),
        }
    }

    /// Reads until `needle` was received, the gateway closed, or `within` passed.
    fn read_until(&mut self, needle: Option<&str>, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let mut chunk = [0u8; 4096];
        while Instant::now() < deadline {
            if needle.is_some_and(|n| String::from_utf8_lossy(&self.buf).contains(n)) {
                return true;
            }
            match self.conn.read(&mut chunk) {
                Ok(0) => return needle.is_none(),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return needle.is_none(),
            }
        }
        false
    }

    /// Waits (bounded) for the first progress notification of the call.
    pub fn wait_progress(&mut self, within: Duration) -> bool {
        self.read_until(Some("notifications/progress"), within)
    }

    /// Reads the rest of the answer (bounded by `within`) and judges it; `ms` is counted
    /// from when the call was sent.
    pub fn finish(mut self, within: Duration) -> Outcome {
        let closed = self.read_until(None, within);
        let started = self.started;
        let mut o = judged(started, || crate::common::parse_response(&self.buf));
        if !closed {
            o.ok = false;
            o.detail = format!("no complete answer within {within:?}: {}", o.detail);
        }
        o
    }
}

/// One row of the report.
pub struct Row {
    pub driver: &'static str,
    pub fault: &'static str,
    pub sent: u32,
    pub failed: u32,
    pub max_ms: u128,
    pub recovery_ms: Option<u128>,
    pub note: String,
}

/// Counts calls to the faulty backend and checks each against its latency bound.
pub struct Tally {
    pub sent: u32,
    pub failed: u32,
    max_ms: u128,
    bound_ms: u128,
    what: String,
}

impl Tally {
    pub fn new(what: String, timeout_ms: u64) -> Tally {
        Tally {
            sent: 0,
            failed: 0,
            max_ms: 0,
            bound_ms: timeout_ms as u128 + 1000,
            what,
        }
    }

    /// Counts an outcome obtained elsewhere (e.g. a [`Streamed`] call) against the bound.
    pub fn record(&mut self, tool: &str, o: &Outcome) {
        self.sent += 1;
        if !o.ok {
            self.failed += 1;
        }
        self.max_ms = self.max_ms.max(o.ms);
        assert!(
            o.ms <= self.bound_ms,
            "{}: {tool} took {} ms (> timeout + 1 s = {} ms): {}",
            self.what,
            o.ms,
            self.bound_ms,
            o.detail
        );
    }

    pub fn call(&mut self, gw: &Gateway, sid: &str, tool: &str, args: &str) -> Outcome {
        let o = try_call(gw, sid, tool, args);
        self.record(tool, &o);
        o
    }

    /// Calls `tool` every 50 ms until it succeeds (bounded by `within`); returns when it did.
    pub fn until_ok(
        &mut self,
        gw: &Gateway,
        sid: &str,
        tool: &str,
        within: Duration,
    ) -> Option<Instant> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.call(gw, sid, tool, "{}").ok {
                return Some(Instant::now());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn row(
        self,
        driver: &'static str,
        fault: &'static str,
        rec: Option<u128>,
        note: String,
    ) -> Row {
        Row {
            driver,
            fault,
            sent: self.sent,
            failed: self.failed,
            max_ms: self.max_ms,
            recovery_ms: rec,
            note,
        }
    }
}

/// The real backends that are not under fault answer normally ("failures only for the
/// faulty backend").
pub fn others_fine(cx: &Ctx, faulty: &str) {
    for id in REAL {
        if *id == faulty {
            continue;
        }
        let o = try_call(cx.gw, cx.sid, &format!("{id}__whoami"), "{}");
        assert!(
            o.ok && o.detail == *id,
            "{}: during the {faulty} fault, {id}__whoami failed: {}",
            cx.driver,
            o.detail
        );
    }
}

/// The first 120 characters of an error, for a table note.
pub fn short(s: &str) -> String {
    s.chars().take(120).collect()
}

/// Per-driver summary, after the gateway stopped.
pub struct Summary {
    pub driver: &'static str,
    pub load_ok: u64,
    pub load_failed: u64,
    pub load_max_ms: u128,
    pub load_secs: f64,
    pub fds_ready: usize,
    pub fds_before_stop: usize,
    pub children: usize,
    pub reaped: usize,
    pub leaked: usize,
    pub zombies: usize,
    pub stop_ms: u128,
}

pub fn table(rows: &[Row], sums: &[Summary]) -> String {
    let mut out = String::from(
        "| driver | fault | requests to faulty backend | failed | max latency ms | recovery ms | notes |\n\
         |---|---|---:|---:|---:|---:|---|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            r.driver,
            r.fault,
            r.sent,
            r.failed,
            r.max_ms,
            r.recovery_ms.map_or("n/a".to_string(), |m| m.to_string()),
            r.note.replace('|', "\\|"),
        ));
    }
    out.push_str(
        "\n| driver | steady calls ok | steady failed | steady max ms | load s | fds at ready | fds before stop | children | old pids reaped | leaked after stop | zombies | stop ms |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for s in sums {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {:.1} | {} | {} | {} | {} | {} | {} | {} |\n",
            s.driver,
            s.load_ok,
            s.load_failed,
            s.load_max_ms,
            s.load_secs,
            s.fds_ready,
            s.fds_before_stop,
            s.children,
            s.reaped,
            s.leaked,
            s.zombies,
            s.stop_ms
        ));
    }
    out
}

//! The stdio transport: one JSON-RPC message per line on stdin and stdout.
//!
//! Owns line framing, concurrency and stdout discipline. Lines are read with
//! `read_until`, so there is no line-length limit (a `big` request or a
//! client's multi-MB argument is fine). Every message is handled on its own
//! thread so a long `sleep`, or a tool waiting for the client's answer to a
//! server→client request, never blocks other messages (that answer included:
//! it arrives as a line like any other and is matched by id). All stdout
//! writes go through one mutex so lines never interleave. Only MCP messages
//! (and the deliberate `garbage` line) reach stdout; logs go to stderr.
//!
//! The process is one MCP session; its related and unsolicited messages
//! (notifications, requests to the client) all go to stdout. A 2026-07-28
//! request (its `_meta` names a protocol version, or `server/discover`) is
//! served statelessly instead (`modern.rs`): progress and logs are lines
//! before its response, and `subscriptions/listen` writes its tagged
//! notifications until the client sends `notifications/cancelled` for it
//! or stdin closes (then it gets its `SubscriptionsListenResult`).
//!
//! On stdin EOF the session is closed (tools waiting for the client fail at
//! once), listen streams end, and the reader waits for requests still in
//! flight, so a
//! `printf ... | demo --stdio` pipeline gets every answer, then returns.

use std::io::{self, BufRead, Write};
use std::sync::{Arc, Condvar, Mutex};

use std::time::Duration;

use sonic_rs::{JsonValueTrait, Value};

use super::modern;
use super::protocol::{self, Message, Reply};
use super::server::{Server, Transport};
use super::session::{Session, Sink};
use super::subscriptions::{self, Filter, ListenOut};
use super::{Config, DemoOptions};

/// How often an idle stdio listen stream wakes up (nothing is written).
const IDLE: Duration = Duration::from_secs(60);

/// Serialized access to stdout.
struct Output {
    out: Mutex<io::Stdout>,
}

impl Output {
    fn write_line(&self, line: &str) {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let res = out
            .write_all(line.as_bytes())
            .and_then(|_| out.write_all(b"\n"))
            .and_then(|_| out.flush());
        if let Err(e) = res {
            eprintln!("demo-server: stdout write failed: {e}");
        }
    }

    /// Exits the process; holds the stdout lock so no line is cut in half.
    fn exit(&self, code: i32) -> ! {
        let _guard = self.out.lock().unwrap_or_else(|p| p.into_inner());
        eprintln!("demo-server: exiting with status {code} (crash tool)");
        std::process::exit(code)
    }
}

impl Sink for Output {
    fn send(&self, json: &str) -> bool {
        self.write_line(json);
        true
    }
}

/// Counts requests in flight so EOF can wait for them.
#[derive(Default)]
struct InFlight {
    count: Mutex<usize>,
    done: Condvar,
}

impl InFlight {
    fn start(&self) {
        *self.count.lock().unwrap_or_else(|p| p.into_inner()) += 1;
    }

    fn finish(&self) {
        let mut n = self.count.lock().unwrap_or_else(|p| p.into_inner());
        *n = n.saturating_sub(1);
        if *n == 0 {
            self.done.notify_all();
        }
    }

    fn wait_idle(&self) {
        let mut n = self.count.lock().unwrap_or_else(|p| p.into_inner());
        while *n > 0 {
            n = self.done.wait(n).unwrap_or_else(|p| p.into_inner());
        }
    }
}

pub fn run(opts: DemoOptions, config: Config) -> anyhow::Result<()> {
    let server = Arc::new(Server::new(opts, Transport::Stdio, config));
    let output = Arc::new(Output {
        out: Mutex::new(io::stdout()),
    });
    let session = server.new_session(output.clone());
    let inflight = Arc::new(InFlight::default());
    eprintln!("demo-server {} ready on stdio", server.name());

    let mut stdin = io::stdin().lock();
    let mut line = Vec::new();
    loop {
        line.clear();
        if stdin.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let bytes = line.trim_ascii();
        if bytes.is_empty() {
            continue;
        }
        let msg = match protocol::parse(bytes) {
            Ok(msg) => msg,
            Err(error) => {
                output.write_line(&error);
                continue;
            }
        };
        let request_id = match &msg {
            protocol::Message::Request { id, .. } => Some(id.clone()),
            _ => None,
        };
        let (server, output_t, guard) = (server.clone(), output.clone(), inflight.clone());
        let session_t = session.clone();
        guard.start();
        let spawned = std::thread::Builder::new()
            .name("demo-request".into())
            .spawn(move || {
                handle(&server, &session_t, &*output_t, msg);
                guard.finish();
            });
        if let Err(e) = spawned {
            // No thread: the message went down with the closure, so answer a
            // request with an internal error rather than leaving it hanging.
            eprintln!("demo-server: cannot spawn request thread: {e}");
            if let Some(id) = request_id {
                output.write_line(&protocol::error_response(
                    &id,
                    protocol::INTERNAL_ERROR,
                    "Internal error: no thread",
                ));
            }
            inflight.finish();
        }
    }
    session.close();
    // Open listen streams end with their result; nothing else is waiting.
    server.hub().shutdown();
    inflight.wait_idle();
    Ok(())
}

/// Where handled messages write: stdout, or a recorder in unit tests.
pub trait Lines: Send + Sync {
    fn write_line(&self, line: &str);
    /// Exits the process (the `crash` tool).
    fn exit(&self, code: i32) -> !;
}

impl Lines for Output {
    fn write_line(&self, line: &str) {
        Output::write_line(self, line)
    }

    fn exit(&self, code: i32) -> ! {
        Output::exit(self, code)
    }
}

/// Handles one message: a 2026-07-28 request (`modern::is_modern_stdio`)
/// statelessly, anything else in the process's session. A
/// `notifications/cancelled` also ends the listen stream it names.
pub fn handle(server: &Server, session: &Session, output: &dyn Lines, msg: protocol::Message) {
    let mut related = |n: String| {
        output.write_line(&n);
        true
    };
    let reply = match msg {
        Message::Request { id, method, params }
            if server.config().modern && modern::is_modern_stdio(&method, &params) =>
        {
            match modern::check(&id, &params, None) {
                Err(refusal) => refusal.reply,
                Ok(_) if method == "subscriptions/listen" => {
                    return listen(server, output, &id, &params);
                }
                Ok(meta) => {
                    modern::handle(server, &id, &method, &params, &meta, &mut related).reply
                }
            }
        }
        msg => {
            if let Message::Notification { method, params } = &msg {
                if method == "notifications/cancelled" {
                    if let Some(id) = params.get("requestId") {
                        server
                            .hub()
                            .cancel(&sonic_rs::to_string(id).unwrap_or_default());
                    }
                }
            }
            match msg {
                Message::Request { id, .. } if !server.config().legacy => Reply::Send {
                    json: modern::legacy_refused(&id),
                    error: true,
                },
                _ if !server.config().legacy => Reply::Silent,
                msg => server.handle(session, msg, &mut related),
            }
        }
    };
    match reply {
        Reply::Silent => {}
        Reply::Send { json, .. } => output.write_line(&json),
        Reply::GarbageThen(line, json) => {
            output.write_line(line);
            output.write_line(&json);
        }
        Reply::Exit(code) => output.exit(code),
    }
}

struct ListenLines<'a>(&'a dyn Lines);

impl ListenOut for ListenLines<'_> {
    fn send(&mut self, json: &str) -> bool {
        self.0.write_line(json);
        true
    }
}

/// A stdio `subscriptions/listen`: runs until cancelled or stdin EOF.
fn listen(server: &Server, output: &dyn Lines, id: &Value, params: &Value) {
    match Filter::parse(params, server.config().conformance) {
        Err(msg) => output.write_line(&protocol::error_response(
            id,
            protocol::INVALID_PARAMS,
            &msg,
        )),
        Ok(filter) => {
            let key = sonic_rs::to_string(id).unwrap_or_default();
            let info = modern::server_info(server);
            let mut out = ListenLines(output);
            subscriptions::serve(server.hub(), id, &filter, &info, Some(key), IDLE, &mut out);
        }
    }
}

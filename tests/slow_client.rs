//! Clients that stop reading their answers, against the real binary, on both drivers (attack
//! run, issue 15, finding 4): a stalled write ends the connection after
//! `server.idle_timeout_ms`, and a streamed answer the client does not keep up with is cut
//! once its byte-bounded queue is full, instead of buffering without bound.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{demo_stdio, Gateway, DRIVERS};
use sonic_rs::JsonValueTrait;

/// A connection with a small receive buffer (which also turns off its autotuning), so the
/// socket buffers cannot take a whole large answer the test does not read.
fn connect_small(addr: &str) -> TcpStream {
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.set_recv_buffer_size(4096).unwrap();
    s.connect(&addr.into()).unwrap();
    s.into()
}

fn post(s: &mut TcpStream, sid: &str, body: &str) {
    let req = format!(
        "POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\nmcp-session-id: {sid}\r\nmcp-protocol-version: 2025-11-25\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
}

/// Reads what the gateway sent until it closed the connection; `Err` with what was read
/// when it is still open after `within`.
fn read_until_closed(s: &mut TcpStream, within: Duration) -> Result<Vec<u8>, Vec<u8>> {
    s.set_read_timeout(Some(within)).unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(got),
            Err(_) => return Err(got),
        }
    }
}

/// The gateway's resident memory in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_client_that_stops_reading_a_plain_answer_is_cut_after_the_idle_timeout() {
    let cfg = format!(
        "[server]\nidle_timeout_ms = 1000\n\n{}",
        demo_stdio("demo", "timeout_ms = 20000")
    );
    for driver in DRIVERS {
        let gw = Gateway::start(&cfg, driver, 1, &["demo"]);
        let sid = gw.initialize();
        // 8 MiB answers, more than the socket buffers take, of which the client reads a byte
        // (so the write has begun, however long a busy debug build took to get there) and
        // then nothing.
        let mut held: Vec<TcpStream> = (0..2)
            .map(|i| {
                let mut s = connect_small(&gw.addr);
                post(
                    &mut s,
                    &sid,
                    &format!(
                        r#"{{"jsonrpc":"2.0","id":{i},"method":"tools/call","params":{{"name":"demo__big","arguments":{{"kb":8192}}}}}}"#
                    ),
                );
                s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                s.read_exact(&mut [0u8; 1]).unwrap();
                s
            })
            .collect();
        std::thread::sleep(Duration::from_secs(4));
        let started = Instant::now();
        for (i, s) in held.iter_mut().enumerate() {
            match read_until_closed(s, Duration::from_secs(3)) {
                Ok(got) => assert!(
                    got.len() < 8 << 20,
                    "{driver}: connection {i} got the whole answer ({} bytes)",
                    got.len()
                ),
                Err(got) => panic!(
                    "{driver}: connection {i} still open 4 s after its writes stalled ({} bytes read)",
                    got.len()
                ),
            }
        }
        assert!(started.elapsed() < Duration::from_secs(10));
        // The gateway serves on.
        let r = gw.call(&sid, "demo__echo", r#"{"message":"after"}"#);
        assert_eq!(
            r["result"]["structuredContent"]["message"].as_str(),
            Some("after"),
            "{driver}: {r:?}"
        );
    }
}

#[test]
fn a_streamed_answer_the_client_does_not_read_is_cut_when_its_queue_is_full() {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/hostile_backends/flood_stdio.py"
    );
    // The stall timeout is long here: what cuts the stream is the queue bound.
    let cfg = format!(
        "[server]\nidle_timeout_ms = 60000\n\n[[servers]]\nid = \"flood\"\ntransport = \"stdio\"\ncommand = \"python3\"\nargs = [\"{script}\"]\ntimeout_ms = 60000\n"
    );
    for driver in DRIVERS {
        let gw = Gateway::start(&cfg, driver, 1, &["flood"]);
        let sid = gw.initialize();
        let before = rss_kib(gw.pid());
        let mut s = connect_small(&gw.addr);
        // 60 MB of progress events toward a client that reads none of them.
        post(
            &mut s,
            &sid,
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"flood__flood","arguments":{"n":60000,"size":1000},"_meta":{"progressToken":"p"}}}"#,
        );
        std::thread::sleep(Duration::from_secs(6));
        let grown = rss_kib(gw.pid()).saturating_sub(before);
        let got = match read_until_closed(&mut s, Duration::from_secs(15)) {
            Ok(got) => got,
            Err(got) => panic!(
                "{driver}: the stream was not cut ({} bytes read, rss grew {grown} KiB)",
                got.len()
            ),
        };
        let text = String::from_utf8_lossy(&got);
        assert!(
            text.starts_with("HTTP/1.1 200"),
            "{driver}: {}",
            &text[..80.min(text.len())]
        );
        assert!(
            !text.contains("flood done") && !text.ends_with("0\r\n\r\n"),
            "{driver}: a cut stream must not look whole"
        );
        eprintln!("{driver}: rss grew {grown} KiB in the 6 s the stream was not read");
        // The 60 MB flood is not held: the feed's 4 MiB bound, the socket buffers and what
        // a debug build's allocator keeps (on epoll it once grew 66 MiB: the backend reader
        // never gave way to the task draining its events, `rt::fair`).
        assert!(
            grown < 32 << 10,
            "{driver}: rss grew {grown} KiB for a stream nobody read"
        );
        // The gateway serves on.
        assert_eq!(gw.get("/health").status, 200, "{driver}");
    }
}

/// A 2026 (stateless) `tools/call` of `tool` with `args` and request id 1, as raw bytes.
fn stateless_call(tool: &str, args: &str) -> String {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{tool}","arguments":{args},"_meta":{{"progressToken":"p","io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{{"name":"t","version":"1"}},"io.modelcontextprotocol/clientCapabilities":{{}}}}}}}}"#
    );
    format!(
        "POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\nmcp-protocol-version: 2026-07-28\r\nmcp-method: tools/call\r\nmcp-name: {tool}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Two stateless clients on one shard may use the same JSON-RPC id. When one of them stops
/// reading and its stream is cut, only its own call is cancelled: the other's, started after
/// it with the same id, still gets its answer (a stateless call was once registered under
/// the client's id alone, so the cut cancelled whichever call held that id last).
#[test]
fn a_cut_stateless_stream_cancels_only_its_own_call_whatever_its_id() {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/hostile_backends/flood_stdio.py"
    );
    let cfg = format!(
        "[server]\nidle_timeout_ms = 60000\n\n[[servers]]\nid = \"flood\"\ntransport = \"stdio\"\ncommand = \"python3\"\nargs = [\"{script}\"]\ntimeout_ms = 60000\n\n{}",
        demo_stdio("demo", "")
    );
    for driver in DRIVERS {
        let gw = Gateway::start(&cfg, driver, 1, &["flood", "demo"]);
        // A: floods 60 MB of progress from 1.5 s on, toward a client that reads none of it.
        let mut a = connect_small(&gw.addr);
        a.write_all(
            stateless_call("flood__flood", r#"{"n":60000,"size":1000,"delay_ms":1500}"#).as_bytes(),
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        // B: same id, started after A and before A's stream is cut; reads its answer.
        let mut b = TcpStream::connect(&gw.addr).unwrap();
        b.write_all(stateless_call("demo__sleep", r#"{"ms":5000}"#).as_bytes())
            .unwrap();
        // A's queue fills while nobody reads it (as in the test above).
        std::thread::sleep(Duration::from_secs(4));
        let got = read_until_closed(&mut a, Duration::from_secs(20))
            .unwrap_or_else(|got| panic!("{driver}: A was not cut ({} bytes)", got.len()));
        assert!(
            !String::from_utf8_lossy(&got).contains("flood done"),
            "{driver}: A's stream was cut"
        );
        b.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut answer = Vec::new();
        let started = Instant::now();
        let mut buf = [0u8; 4096];
        while started.elapsed() < Duration::from_secs(20) {
            match b.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
            let text = String::from_utf8_lossy(&answer);
            if text.contains("\"result\"") || text.contains("\"error\"") {
                break;
            }
        }
        let text = String::from_utf8_lossy(&answer);
        assert!(
            text.contains("\"result\"") && !text.contains("\"error\""),
            "{driver}: B's call was not cancelled by A's cut: {text}"
        );
    }
}

//! A 2025 client's `notifications/cancelled` reaches the backend under the backend's own
//! request id (the gateway gives every forwarded call an id of its own), and ends the call
//! for the client at once. Against a stdio server that records the ids it is called and
//! cancelled with (`tests/hostile_backends/cancel_recorder_stdio.py`), on both drivers.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{Gateway, DRIVERS};

/// The lines of `path` starting with `what `, without that word, once there are `n` of them
/// (within 5 s; fewer if they never come).
fn recorded(path: &std::path::Path, what: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let lines: Vec<String> = std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("{what} ")).map(str::to_string))
            .collect();
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_clients_cancel_reaches_the_backend_under_the_backends_own_id() {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/hostile_backends/cancel_recorder_stdio.py"
    );
    for driver in DRIVERS {
        let dir = std::env::temp_dir().join(format!("o1m-cancel-{}-{driver}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let record = dir.join("record.txt");
        let _ = std::fs::remove_file(&record);
        let cfg = format!(
            "[[servers]]\nid = \"rec\"\ntransport = \"stdio\"\ncommand = \"python3\"\nargs = [\"{script}\"]\nenv = {{ RECORD = \"{}\" }}\ntimeout_ms = 30000\n",
            record.display()
        );
        let gw = Gateway::start(&cfg, driver, 2, &["rec"]);
        let sid = gw.initialize();
        let body = r#"{"jsonrpc":"2.0","id":"client-7","method":"tools/call","params":{"name":"rec__hold","arguments":{}}}"#;
        let mut s = std::net::TcpStream::connect(&gw.addr).unwrap();
        s.write_all(
            format!(
                "POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\nmcp-session-id: {sid}\r\nmcp-protocol-version: 2025-11-25\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .unwrap();
        let calls = recorded(&record, "call", 1);
        assert_eq!(calls.len(), 1, "{driver}: the backend got the call");
        assert_ne!(
            calls[0], r#""client-7""#,
            "{driver}: the backend sees the gateway's id, not the client's"
        );
        let started = Instant::now();
        let n = gw.post(
            &[("mcp-session-id", &sid), ("mcp-protocol-version", "2025-11-25")],
            r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"client-7","reason":"user"}}"#,
        );
        assert_eq!(n.status, 202, "{driver}");
        let cancels = recorded(&record, "cancel", 1);
        assert_eq!(
            cancels, calls,
            "{driver}: cancelled under the id the backend was called with"
        );
        // The client's request ends without waiting for the backend's 30 s timeout.
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = s.read(&mut [0u8; 1024]);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{driver}: the call ended at the cancel ({:?})",
            started.elapsed()
        );
        // A cancel for an id the session has no call under reaches nobody.
        let n = gw.post(
            &[("mcp-session-id", &sid), ("mcp-protocol-version", "2025-11-25")],
            r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"client-8"}}"#,
        );
        assert_eq!(n.status, 202, "{driver}");
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(recorded(&record, "cancel", 1).len(), 1, "{driver}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! `only1mcp-uring stdio`: the gateway served over stdin/stdout, on both drivers.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sonic_rs::JsonValueTrait;

/// Reads lines until one satisfies `pick` (or 20 s pass).
fn read_until(
    lines: &std::sync::mpsc::Receiver<String>,
    pick: impl Fn(&sonic_rs::Value) -> bool,
) -> (sonic_rs::Value, Vec<sonic_rs::Value>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Ok(l) = lines.recv_timeout(Duration::from_millis(100)) {
            let v: sonic_rs::Value = sonic_rs::from_str(&l)
                .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}"));
            if pick(&v) {
                return (v, seen);
            }
            seen.push(v);
        }
    }
    panic!("no matching line; saw {seen:?}");
}

#[test]
fn stdio_front_serves_one_client_and_exits_on_eof() {
    for driver in common::DRIVERS {
        let dir = common::scratch("stdio");
        let cfg = dir.join(format!("{driver}.toml"));
        std::fs::write(
            &cfg,
            format!(
                "[server]\ndriver = \"{driver}\"\n\n{}",
                common::demo_stdio("demo", "")
            ),
        )
        .unwrap();
        let mut child = Command::new(common::bin())
            .args(["stdio", "--config"])
            .arg(&cfg)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines() {
                let Ok(l) = l else { return };
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        let mut send = |s: &str| {
            stdin.write_all(s.as_bytes()).unwrap();
            stdin.write_all(b"\n").unwrap();
        };
        send(
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
        );
        send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        let (init, _) = read_until(&rx, |v| v["id"].as_i64() == Some(1));
        assert_eq!(
            init["result"]["serverInfo"]["name"].as_str(),
            Some("only1mcp-uring")
        );
        // Wait until the backend's tools are in (a list_changed announces them).
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut n = 10;
        loop {
            n += 1;
            send(&format!(
                r#"{{"jsonrpc":"2.0","id":{n},"method":"tools/list"}}"#
            ));
            let (list, _) = read_until(&rx, |v| v["id"].as_i64() == Some(n));
            if sonic_rs::to_string(&list).unwrap().contains("demo__echo") {
                break;
            }
            assert!(Instant::now() < deadline, "{driver}: tools never appeared");
            std::thread::sleep(Duration::from_millis(100));
        }
        send(
            r#"{"jsonrpc":"2.0","id":"p","method":"tools/call","params":{"name":"demo__sleep","arguments":{"ms":20},"_meta":{"progressToken":"tok"}}}"#,
        );
        let (done, before) = read_until(&rx, |v| v["id"].as_str() == Some("p"));
        assert_eq!(
            done["result"]["content"][0]["text"].as_str(),
            Some("slept 20ms"),
            "{driver}"
        );
        assert!(
            before
                .iter()
                .any(|m| m["params"]["progressToken"].as_str() == Some("tok")),
            "{driver}: progress not relayed: {before:?}"
        );
        send("not json at all");
        let (err, _) = read_until(&rx, |v| v["error"]["code"].as_i64() == Some(-32700));
        assert!(err["id"].is_null());
        let kids = common::descendants(child.id());
        assert!(!kids.is_empty(), "{driver}: no backend child");
        drop(stdin);
        let deadline = Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            assert!(
                Instant::now() < deadline,
                "{driver}: did not exit on stdin EOF"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "{driver}: {status}");
        for k in kids {
            assert!(!common::alive(k), "{driver}: child {k} left behind");
        }
    }
}

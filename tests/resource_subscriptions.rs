//! A 2025 client's `resources/subscribe` to a resource of a backend that speaks 2026-07-28
//! only: there is no such method there, so each shard of the gateway holds a
//! `subscriptions/listen` toward the backend carrying its sessions' URIs as
//! `resourceSubscriptions`, and the backend's `notifications/resources/updated` reach the
//! subscribed sessions' GET streams, once each; after `resources/unsubscribe` they stop. The
//! backend is the demo server's conformance fixture speaking 2026-07-28 only
//! (`DEMO_LEGACY=0`; it updates `test://watched-resource` every 3 s on each listen that asked
//! for it), over stdio and over HTTP; several sessions on a two-shard gateway; both drivers.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{demo_stdio, http_server, DemoHttp, Gateway, DRIVERS};
use sonic_rs::{JsonContainerTrait, JsonValueTrait};

const FIXTURE_ENV: &[(&str, &str)] = &[("DEMO_CONFORMANCE", "1"), ("DEMO_LEGACY", "0")];
/// The demo's update period for a watched resource.
const PERIOD: Duration = Duration::from_secs(3);
const SESSIONS: usize = 4;

/// A 2025 session with its GET stream open, whose `resources/updated` are timed as they come.
struct Watcher {
    sid: String,
    s: TcpStream,
    buf: Vec<u8>,
    seen: usize,
    updates: Vec<Instant>,
}

impl Watcher {
    fn open(gw: &Gateway) -> Watcher {
        let sid = gw.initialize();
        let mut s = TcpStream::connect(&gw.addr).unwrap();
        write!(
            s,
            "GET /mcp HTTP/1.1\r\nhost: {}\r\naccept: text/event-stream\r\nmcp-session-id: {sid}\r\nmcp-protocol-version: 2025-11-25\r\n\r\n",
            gw.addr
        )
        .unwrap();
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        Watcher {
            sid,
            s,
            buf: Vec::new(),
            seen: 0,
            updates: Vec::new(),
        }
    }

    /// Reads what arrived; each new `resources/updated` for `uri` is timed.
    fn poll(&mut self, uri: &str) {
        let mut chunk = [0u8; 8192];
        if let Ok(n) = self.s.read(&mut chunk) {
            self.buf.extend_from_slice(&chunk[..n]);
        }
        let needle =
            format!(r#""method":"notifications/resources/updated","params":{{"uri":"{uri}"}}"#);
        while let Some(at) = find(&self.buf[self.seen..], &needle) {
            self.seen += at + needle.len();
            self.updates.push(Instant::now());
        }
    }

    fn request(&self, gw: &Gateway, method: &str, uri: &str) -> sonic_rs::Value {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":"s1","method":"{method}","params":{{"uri":"{uri}"}}}}"#
        );
        let r = gw.post(
            &[
                ("mcp-session-id", &self.sid),
                ("mcp-protocol-version", "2025-11-25"),
            ],
            &body,
        );
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    }
}

fn find(hay: &[u8], needle: &str) -> Option<usize> {
    hay.windows(needle.len())
        .position(|w| w == needle.as_bytes())
}

/// Reads every watcher for `d`.
fn watch(ws: &mut [Watcher], uri: &str, d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until {
        for w in ws.iter_mut() {
            w.poll(uri);
        }
    }
}

#[test]
fn a_2025_sessions_subscription_to_a_2026_only_backend_gets_its_updates_until_it_unsubscribes() {
    for transport in ["stdio", "http"] {
        for driver in DRIVERS {
            let what = format!("{transport}/{driver}");
            let (cfg, _demo) = match transport {
                "stdio" => (
                    demo_stdio(
                        "fx",
                        r#"env = { DEMO_CONFORMANCE = "1", DEMO_LEGACY = "0" }"#,
                    ),
                    None,
                ),
                _ => {
                    let demo = DemoHttp::start_with("127.0.0.1:0", "fx", FIXTURE_ENV, None);
                    (http_server("fx", &demo.addr, ""), Some(demo))
                }
            };
            let gw = Gateway::start(&cfg, driver, 2, &["fx"]);
            let mut ws: Vec<Watcher> = (0..SESSIONS).map(|_| Watcher::open(&gw)).collect();
            // The gateway advertises subscriptions, and the URI is the one it lists.
            let init = gw.post(
                &[],
                r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
            );
            assert_eq!(
                init.json()["result"]["capabilities"]["resources"]["subscribe"].as_bool(),
                Some(true),
                "{what}: {}",
                init.text()
            );
            let list = ws[0].request(&gw, "resources/list", "");
            let uri = list["result"]["resources"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|r| r["uri"].as_str())
                .find(|u| u.ends_with("test://watched-resource"))
                .unwrap_or_else(|| panic!("{what}: no watched resource in {list:?}"))
                .to_string();
            let subscribed = Instant::now();
            for w in &ws {
                let r = w.request(&gw, "resources/subscribe", &uri);
                assert!(r["result"].is_object(), "{what}: {r:?}");
            }
            watch(&mut ws, &uri, Duration::from_secs(11));
            for (i, w) in ws.iter().enumerate() {
                let first = *w.updates.first().unwrap_or_else(|| {
                    panic!("{what}: session {i} got no update in 11 s\n{}", gw.log())
                });
                assert!(
                    first.duration_since(subscribed) < PERIOD + Duration::from_secs(3),
                    "{what}: session {i}: first update after {:?}",
                    first.duration_since(subscribed)
                );
                // One listen per shard, each session hearing its own shard's only: at most one
                // update per period (7 s from the first: +0, +3, +6).
                let window = w
                    .updates
                    .iter()
                    .filter(|t| t.duration_since(first) < Duration::from_secs(7))
                    .count();
                assert!(
                    (2..=3).contains(&window),
                    "{what}: session {i}: {window} updates in 7 s"
                );
            }
            for w in &ws {
                let r = w.request(&gw, "resources/unsubscribe", &uri);
                assert!(r["result"].is_object(), "{what}: {r:?}");
            }
            let unsubscribed = Instant::now();
            watch(&mut ws, &uri, PERIOD + Duration::from_secs(2));
            for (i, w) in ws.iter().enumerate() {
                let late = w
                    .updates
                    .iter()
                    .filter(|t| t.duration_since(unsubscribed) > Duration::from_millis(500))
                    .count();
                assert_eq!(
                    late, 0,
                    "{what}: session {i} still hears after unsubscribing"
                );
            }
        }
    }
}

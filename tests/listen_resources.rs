//! A 2026-07-28 client's `subscriptions/listen` with `resourceSubscriptions`: the gateway
//! maps each URI to its backend, subscribes upstream, acknowledges the URIs the backends took
//! (an unknown URI is left out), and each `notifications/resources/updated` for a URI reaches
//! the listens that asked for it, once each, under the gateway's URI and tagged with the
//! listen's `subscriptionId`; a listen that asked for another resource hears none. From a
//! 2025 backend over HTTP (`resources/subscribe` on the shard's upstream session, updates on
//! its GET stream; over stdio too, whose updates every shard hears) and from a 2026-only
//! backend over stdio (the shard's resource listen); the
//! demo's conformance fixture updates `test://watched-resource` every 3 s while subscribed.
//! More than 256 URIs in one listen are refused. Two shards, both drivers.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{demo_stdio, http_server, DemoHttp, Gateway, DRIVERS};
use sonic_rs::{JsonContainerTrait, JsonValueTrait};

const META: &str = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;

/// An open listen stream and what it has said so far.
struct Listen {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Listen {
    fn open(gw: &Gateway, id: &str, uris: &str) -> Listen {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":"{id}","method":"subscriptions/listen","params":{{"notifications":{{"resourceSubscriptions":{uris}}},{META}}}}}"#
        );
        let mut s = TcpStream::connect(&gw.addr).unwrap();
        write!(s, "POST /mcp HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\nmcp-protocol-version: 2026-07-28\r\nmcp-method: subscriptions/listen\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}", gw.addr, body.len()).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        Listen { s, buf: Vec::new() }
    }

    fn poll(&mut self) {
        let mut chunk = [0u8; 8192];
        if let Ok(n) = self.s.read(&mut chunk) {
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The JSON messages of the stream so far.
    fn messages(&self) -> Vec<sonic_rs::Value> {
        String::from_utf8_lossy(&self.buf)
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter_map(|d| sonic_rs::from_str(d).ok())
            .collect()
    }
}

fn read_all(ls: &mut [&mut Listen], d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until {
        for l in ls.iter_mut() {
            l.poll();
        }
    }
}

/// The gateway URIs of the backend's resources ending with `suffix`.
fn uri_of(gw: &Gateway, suffix: &str) -> String {
    let body =
        format!(r#"{{"jsonrpc":"2.0","id":1,"method":"resources/list","params":{{{META}}}}}"#);
    let r = gw.post(
        &[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "resources/list"),
        ],
        &body,
    );
    let v = r.json();
    v["result"]["resources"]
        .as_array()
        .unwrap_or_else(|| panic!("no resources: {}", r.text()))
        .iter()
        .filter_map(|r| r["uri"].as_str())
        .find(|u| u.ends_with(suffix))
        .unwrap_or_else(|| panic!("no {suffix} in {}", r.text()))
        .to_string()
}

fn updates(l: &Listen) -> Vec<sonic_rs::Value> {
    l.messages()
        .into_iter()
        .filter(|m| m["method"].as_str() == Some("notifications/resources/updated"))
        .collect()
}

#[test]
fn a_listen_with_resource_subscriptions_is_acknowledged_and_hears_its_uris_updates_only() {
    for era in ["2025-http", "2025-stdio", "2026only-stdio"] {
        for driver in DRIVERS {
            let what = format!("{era}/{driver}");
            let (cfg, _demo) = match era {
                "2026only-stdio" => (
                    demo_stdio(
                        "fx",
                        r#"env = { DEMO_CONFORMANCE = "1", DEMO_LEGACY = "0" }"#,
                    ),
                    None,
                ),
                "2025-stdio" => (
                    demo_stdio("fx", r#"env = { DEMO_CONFORMANCE = "1" }"#),
                    None,
                ),
                _ => {
                    let env = &[("DEMO_CONFORMANCE", "1")];
                    let demo = DemoHttp::start_with("127.0.0.1:0", "fx", env, None);
                    (http_server("fx", &demo.addr, ""), Some(demo))
                }
            };
            let gw = Gateway::start(&cfg, driver, 2, &["fx"]);
            let watched = uri_of(&gw, "test://watched-resource");
            let other = uri_of(&gw, "test://static-text");
            let missing = "test://no-such-resource";
            let mut a = Listen::open(&gw, "a", &format!(r#"["{watched}","{missing}"]"#));
            let mut b = Listen::open(&gw, "b", &format!(r#"["{other}"]"#));
            let opened = Instant::now();
            read_all(&mut [&mut a, &mut b], Duration::from_secs(10));
            let first = a.messages();
            let ack = first
                .first()
                .unwrap_or_else(|| panic!("{what}: listen a said nothing\n{}", gw.log()));
            assert_eq!(
                ack["method"].as_str(),
                Some("notifications/subscriptions/acknowledged"),
                "{what}: {ack:?}"
            );
            assert_eq!(
                ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"].as_str(),
                Some("a")
            );
            let took: Vec<&str> = ack["params"]["notifications"]["resourceSubscriptions"]
                .as_array()
                .unwrap_or_else(|| panic!("{what}: {ack:?}"))
                .iter()
                .filter_map(|u| u.as_str())
                .collect();
            assert_eq!(
                took,
                vec![watched.as_str()],
                "{what}: {ack:?}\n{}",
                gw.log()
            );
            let heard = updates(&a);
            // Every 3 s from the subscription: 3 or 4 in 10 s, each once.
            assert!(
                (2..=4).contains(&heard.len()),
                "{what}: {} updates in {:?}: {}",
                heard.len(),
                opened.elapsed(),
                String::from_utf8_lossy(&a.buf)
            );
            for u in &heard {
                assert_eq!(
                    u["params"]["uri"].as_str(),
                    Some(watched.as_str()),
                    "{what}"
                );
                assert_eq!(
                    u["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"].as_str(),
                    Some("a"),
                    "{what}"
                );
            }
            assert!(
                updates(&b).is_empty(),
                "{what}: listen b heard {}",
                String::from_utf8_lossy(&b.buf)
            );
            assert!(
                !b.messages().is_empty(),
                "{what}: listen b was not acknowledged"
            );
        }
    }
}

#[test]
fn a_listen_naming_more_than_256_resources_is_refused() {
    let gw = Gateway::start(&demo_stdio("fx", ""), DRIVERS[0], 1, &["fx"]);
    let many: Vec<String> = (0..257).map(|i| format!("\"test://r{i}\"")).collect();
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":7,"method":"subscriptions/listen","params":{{"notifications":{{"resourceSubscriptions":[{}]}},{META}}}}}"#,
        many.join(",")
    );
    let r = gw.post(
        &[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "subscriptions/listen"),
        ],
        &body,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let v = r.json();
    assert_eq!(v["error"]["code"].as_i64(), Some(-32602), "{}", r.text());
    assert_eq!(v["id"].as_i64(), Some(7));
    assert!(r.text().contains("at most 256"), "{}", r.text());
}

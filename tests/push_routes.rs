//! What a 2025 backend pushes unasked reaches the right session from wherever the backend
//! sends it. `notifications/tasks/status` reach the session whose task it is: the GET stream of the replica that holds the task (not
//! only replica 0's), and the session's own upstream of a `session = "per_client"` server
//! (HTTP: its own GET stream; stdio: its own child). Backend task ids are unique only within
//! one replica or child, so each status is told by where it came from as well as by its id.

mod common;
mod tasks_kit;

use std::time::{Duration, Instant};

use common::{Gateway, DRIVERS};
use sonic_rs::{JsonContainerTrait, JsonValueTrait};
use tasks_kit::{http_fixture, init_2025, legacy, stdio_fixture, Stream};

/// A task-augmented `slow_compute` of `secs` seconds in `sid`; the gateway's task id.
fn create(gw: &Gateway, sid: &str, tool: &str, secs: f64) -> String {
    let r = legacy(
        gw,
        sid,
        "tools/call",
        &format!(r#"{{"name":"{tool}","arguments":{{"seconds":{secs}}},"task":{{"ttl":60000}}}}"#),
    )
    .json();
    r["result"]["task"]["taskId"]
        .as_str()
        .unwrap_or_else(|| panic!("no task: {r:?}"))
        .to_string()
}

fn get_stream(gw: &Gateway, sid: &str) -> Stream {
    let h = [("accept", "text/event-stream"), ("mcp-session-id", sid)];
    Stream::open(gw, "GET", &h, "")
}

/// The task ids `events` reports `completed` within 10 s, stopping once all of `want` are.
fn completed(events: &mut Stream, want: &[&str]) -> Vec<String> {
    let mut done = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && !want.iter().all(|w| done.iter().any(|d| d == w)) {
        let Some(m) = events.next(Duration::from_millis(300)) else {
            continue;
        };
        if m["method"].as_str() == Some("notifications/tasks/status")
            && m["params"]["status"].as_str() == Some("completed")
        {
            done.push(m["params"]["taskId"].as_str().unwrap_or("").to_string());
        }
    }
    done
}

#[test]
fn statuses_arrive_from_every_replica_that_holds_a_task() {
    for driver in DRIVERS {
        let (a, b) = (
            http_fixture("127.0.0.1:0", "fx"),
            http_fixture("127.0.0.1:0", "fx"),
        );
        let cfg = format!(
            "[[servers]]\nid = \"fx\"\ntransport = \"http\"\nurls = [\"http://{}/mcp\", \"http://{}/mcp\"]\nbalance = \"round_robin\"\n",
            a.addr, b.addr
        );
        let gw = Gateway::start(&cfg, driver, 1, &["fx"]);
        let sid = init_2025(&gw);
        let mut events = get_stream(&gw, &sid);
        // Round robin: two calls in a row land on both replicas.
        let t1 = create(&gw, &sid, "fx__slow_compute", 0.4);
        let t2 = create(&gw, &sid, "fx__slow_compute", 0.4);
        assert_ne!(t1, t2, "{driver}");
        let done = completed(&mut events, &[&t1, &t2]);
        assert!(
            done.contains(&t1) && done.contains(&t2),
            "{driver}: both replicas' statuses arrive: {done:?} of {t1} {t2}"
        );
        assert_eq!(done.len(), 2, "{driver}: each exactly once: {done:?}");
    }
}

#[test]
fn statuses_of_per_client_upstreams_reach_their_own_session_only() {
    for driver in DRIVERS {
        for transport in ["stdio", "http"] {
            let at = format!("{driver}/{transport}");
            let web = (transport == "http").then(|| http_fixture("127.0.0.1:0", "fx"));
            let cfg = match &web {
                Some(w) => format!(
                    "[[servers]]\nid = \"fx\"\ntransport = \"http\"\nurl = \"http://{}/mcp\"\nsession = \"per_client\"\n",
                    w.addr
                ),
                None => stdio_fixture("fx", "session = \"per_client\""),
            };
            let gw = Gateway::start(&cfg, driver, 2, &["fx"]);
            let (sa, sb) = (init_2025(&gw), init_2025(&gw));
            let (mut ea, mut eb) = (get_stream(&gw, &sa), get_stream(&gw, &sb));
            let ta = create(&gw, &sa, "fx__slow_compute", 0.3);
            let tb = create(&gw, &sb, "fx__slow_compute", 0.6);
            let (da, db) = (completed(&mut ea, &[&ta]), completed(&mut eb, &[&tb]));
            assert_eq!(
                da,
                std::slice::from_ref(&ta),
                "{at}: A hears its task, and only it"
            );
            assert_eq!(
                db,
                std::slice::from_ref(&tb),
                "{at}: B hears its task, and only it"
            );
        }
    }
}

#[test]
fn resource_updates_of_per_client_upstreams_reach_the_subscribed_session_only() {
    for driver in DRIVERS {
        for transport in ["stdio", "http"] {
            let at = format!("{driver}/{transport}");
            let web = (transport == "http").then(|| http_fixture("127.0.0.1:0", "solo"));
            let cfg = match &web {
                Some(w) => format!(
                    "[[servers]]\nid = \"solo\"\ntransport = \"http\"\nurl = \"http://{}/mcp\"\nsession = \"per_client\"\n",
                    w.addr
                ),
                None => stdio_fixture("solo", "session = \"per_client\""),
            };
            let gw = Gateway::start(&cfg, driver, 2, &["solo"]);
            let (sa, sb) = (init_2025(&gw), init_2025(&gw));
            let uri = watched_uri(&gw, &sa);
            let (mut ea, mut eb) = (get_stream(&gw, &sa), get_stream(&gw, &sb));
            let r = legacy(
                &gw,
                &sa,
                "resources/subscribe",
                &format!(r#"{{"uri":"{uri}"}}"#),
            );
            assert!(r.answer()["result"].is_object(), "{at}: {}", r.text());
            // The demo reports the watched resource updated every 3 s while subscribed.
            let updated = |events: &mut Stream, within: Duration| {
                let deadline = Instant::now() + within;
                while Instant::now() < deadline {
                    if let Some(m) = events.next(Duration::from_millis(300)) {
                        if m["method"].as_str() == Some("notifications/resources/updated") {
                            return m["params"]["uri"].as_str().map(str::to_string);
                        }
                    }
                }
                None
            };
            assert_eq!(
                updated(&mut ea, Duration::from_secs(8)).as_deref(),
                Some(uri.as_str()),
                "{at}: the subscribed session hears its own upstream's update"
            );
            assert_eq!(updated(&mut eb, Duration::from_secs(1)), None, "{at}");
        }
    }
}

/// The gateway's URI of the fixture's watched resource, as session `sid` lists it.
fn watched_uri(gw: &Gateway, sid: &str) -> String {
    let listed = legacy(gw, sid, "resources/list", "{}").answer();
    listed["result"]["resources"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .filter_map(|r| r["uri"].as_str())
                .find(|u| u.ends_with("watched-resource"))
                .map(str::to_string)
        })
        .unwrap_or_else(|| panic!("no watched resource: {listed:?}"))
}

/// Established TCP connections to `port` on loopback, from the connecting side.
fn connections_to(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3
                && f[3] == "01"
                && f[2]
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
                    == Some(port)
        })
        .count()
}

/// The GET listener a per-client HTTP upstream gets for a resource subscription ends with
/// its session: after DELETE no connection of that upstream is left toward the backend (they
/// once ran on, re-creating the dead session's upstream session after every drop).
#[test]
fn a_per_client_upstreams_listeners_end_with_its_session() {
    for driver in DRIVERS {
        let web = http_fixture("127.0.0.1:0", "solo");
        let port: u16 = web.addr.rsplit(':').next().unwrap().parse().unwrap();
        let cfg = format!(
            "[[servers]]\nid = \"solo\"\ntransport = \"http\"\nurl = \"http://{}/mcp\"\nsession = \"per_client\"\n",
            web.addr
        );
        let gw = Gateway::start(&cfg, driver, 1, &["solo"]);
        std::thread::sleep(Duration::from_millis(300));
        let before = connections_to(port);
        let sid = init_2025(&gw);
        let uri = watched_uri(&gw, &sid);
        let r = legacy(
            &gw,
            &sid,
            "resources/subscribe",
            &format!(r#"{{"uri":"{uri}"}}"#),
        );
        assert!(r.answer()["result"].is_object(), "{driver}: {}", r.text());
        let opened = Instant::now() + Duration::from_secs(5);
        while connections_to(port) <= before && Instant::now() < opened {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(connections_to(port) > before, "{driver}: listening");
        let d = gw.request("DELETE", "/mcp", &[("mcp-session-id", &sid)], b"");
        assert!(d.status < 300, "{driver}: {}", d.status);
        let closed = Instant::now() + Duration::from_secs(5);
        while connections_to(port) > before && Instant::now() < closed {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            connections_to(port) <= before,
            "{driver}: {} connections to the backend after the session ended, {before} before it",
            connections_to(port)
        );
    }
}

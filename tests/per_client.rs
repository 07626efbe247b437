//! `session = "per_client"`: each client session gets its own upstream (here, its own stdio
//! process, declared with that client's capabilities), stopped when the session ends.

mod common;

use std::time::{Duration, Instant};

use common::{demo_stdio, Gateway, DRIVERS};
use sonic_rs::JsonValueTrait;

fn demo_children(gw: &Gateway) -> Vec<u32> {
    common::descendants(gw.pid())
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                .map(|c| c.contains("demo-server"))
                .unwrap_or(false)
        })
        .collect()
}

fn wait_count(gw: &Gateway, want: usize) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let kids = demo_children(gw);
        if kids.len() == want || Instant::now() > deadline {
            return kids;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn each_session_gets_its_own_process_which_ends_with_it() {
    for driver in DRIVERS {
        let gw = Gateway::start(
            &demo_stdio("solo", "session = \"per_client\""),
            driver,
            2,
            &["solo"],
        );
        // The shared instance that discovered the catalog.
        assert_eq!(wait_count(&gw, 1).len(), 1, "{driver}");
        let a = gw.initialize();
        let b = gw.initialize();
        for sid in [&a, &b] {
            let r = gw.call(sid, "solo__echo", r#"{"message":"x"}"#);
            assert_eq!(
                r["result"]["content"][0]["text"].as_str(),
                Some("x"),
                "{driver}: {r:?}"
            );
        }
        let kids = wait_count(&gw, 3);
        assert_eq!(
            kids.len(),
            3,
            "{driver}: one shared + one per session: {kids:?}"
        );
        let r = gw.request("DELETE", "/mcp", &[("mcp-session-id", &a)], b"");
        assert_eq!(r.status, 200);
        assert_eq!(
            wait_count(&gw, 2).len(),
            2,
            "{driver}: the deleted session's process is gone"
        );
        // The other session still works on its own process.
        let r = gw.call(&b, "solo__whoami", "{}");
        assert_eq!(r["result"]["content"][0]["text"].as_str(), Some("solo"));
    }
}

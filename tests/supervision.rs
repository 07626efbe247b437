//! stdio supervision: a server that keeps dying is parked, and says so.

mod common;

use std::time::Duration;

use common::{Gateway, DRIVERS};
use sonic_rs::JsonValueTrait;

#[test]
fn a_crash_looping_stdio_server_is_parked_with_a_reason() {
    for driver in DRIVERS {
        let cfg = format!(
            "{}[[servers]]\nid = \"dies\"\ntransport = \"stdio\"\ncommand = \"sh\"\nargs = [\"-c\", \"exit 3\"]\n",
            common::demo_stdio("demo", "")
        );
        let gw = Gateway::start(&cfg, driver, 1, &["demo"]);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let b = gw.wait_state("dies", "down", Duration::from_secs(5));
            let reason = b["reason"].as_str().unwrap_or_default().to_string();
            if reason.contains("crash loop") {
                assert!(reason.contains("parked"), "{driver}: {reason}");
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{driver}: never parked; last reason {reason}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        // The healthy backend is unaffected.
        let sid = gw.initialize();
        let r = gw.call(&sid, "demo__echo", r#"{"message":"fine"}"#);
        assert_eq!(r["result"]["content"][0]["text"].as_str(), Some("fine"));
    }
}

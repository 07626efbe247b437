//! Config checks of the upstream connection pool (`pool_size`, `validate.rs`).

use super::tests::{check_all, http, ok, STDIO};

#[test]
fn pool_size_is_checked() {
    let url = "url = \"http://127.0.0.1:9/mcp\"\n";
    check_all(&[
        (
            &http(&format!("{url}pool_size = 0\n")),
            5,
            "servers[0].pool_size",
            "must be 1 to 65536 connections",
        ),
        (
            &format!("{STDIO}pool_size = 8\n"),
            5,
            "servers[0].pool_size",
            "only for http servers",
        ),
    ]);
    ok(&http(&format!("{url}pool_size = 4\n")));
    let c = crate::config::parse_str(&http(url), "t.toml").unwrap();
    assert_eq!(c.servers[0].pool_size, 256, "the default");
}

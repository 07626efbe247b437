//! The pure parts of a reload: the diff by server id, the restart-only check, overrides.
use super::*;

fn specs(text: &str) -> Vec<BackendSpec> {
    let cfg = config::parse_str(text, "t.toml").unwrap();
    crate::control::backend_specs(&cfg).unwrap()
}

const A: &str = "[[servers]]\nid = \"a\"\ntransport = \"stdio\"\ncommand = \"x\"\n";
const B: &str = "[[servers]]\nid = \"b\"\ntransport = \"stdio\"\ncommand = \"y\"\n";

#[test]
fn the_diff_names_added_removed_and_changed_servers() {
    let old = specs(&format!("{A}{B}"));
    let b_changed = B.replace("\"y\"", "\"z\"");
    let c = "[[servers]]\nid = \"c\"\ntransport = \"http\"\nurl = \"http://127.0.0.1:9/mcp\"\n";
    let new = specs(&format!("{b_changed}{c}"));
    let d = Diff::of(&old, &new);
    assert_eq!(d.added, ["c"]);
    assert_eq!(d.removed, ["a"]);
    assert_eq!(d.changed, ["b"]);
    assert_eq!(d.unchanged, 0);
    let same = Diff::of(&old, &specs(&format!("{B}{A}")));
    assert!(same.is_empty(), "order alone is no change: {same:?}");
    assert_eq!(same.unchanged, 2);
}

#[test]
fn a_proxy_default_that_feeds_a_server_changes_it() {
    // request_timeout_ms is the default of every server's timeout: their specs change.
    let old = specs(A);
    let new = specs(&format!("[proxy]\nrequest_timeout_ms = 1234\n{A}"));
    assert_eq!(Diff::of(&old, &new).changed, ["a"]);
}

#[test]
fn restart_only_keys_are_named_with_old_and_new_values() {
    let old = config::parse_str("[server]\nport = 8080\n", "t.toml").unwrap();
    let new = config::parse_str(
        "[server]\nport = 9090\ncores = 3\n[metrics]\nsocket = \"/tmp/x.sock\"\n",
        "t.toml",
    )
    .unwrap();
    let keys = restart_only(&old, &new);
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert!(keys[0].starts_with("server.port (8080 → 9090)"), "{keys:?}");
    assert!(
        keys.iter().any(|k| k.starts_with("server.cores")),
        "{keys:?}"
    );
    assert!(
        keys.iter().any(|k| k.starts_with("metrics.socket")),
        "{keys:?}"
    );
    assert!(restart_only(&old, &old).is_empty());
}

#[test]
fn telemetry_changes_need_a_restart() {
    let old = config::parse_str("", "t.toml").unwrap();
    let new = config::parse_str(
        "[telemetry]\notlp_endpoint = \"http://127.0.0.1:4318\"\nsample_ratio = 0.5\nservice_name = \"gw\"\n",
        "t.toml",
    )
    .unwrap();
    let keys = restart_only(&old, &new);
    for k in [
        "telemetry.otlp_endpoint",
        "telemetry.sample_ratio",
        "telemetry.service_name",
    ] {
        assert!(keys.iter().any(|x| x.starts_with(k)), "{k}: {keys:?}");
    }
}

#[test]
fn the_rate_limit_store_needs_a_restart_and_its_password_is_never_shown() {
    let old = config::parse_str(
        "[rate_limit]\nstore = \"redis\"\nredis_url = \"redis://:old-Secret-1@10.0.0.5:6379\"\n",
        "t.toml",
    )
    .unwrap();
    let new = config::parse_str(
        "[rate_limit]\nstore = \"redis\"\nredis_url = \"redis://:new-Secret-2@10.0.0.6:6379\"\non_store_error = \"deny\"\nredis_timeout_ms = 20\n",
        "t.toml",
    )
    .unwrap();
    let keys = restart_only(&old, &new);
    assert_eq!(
        keys.len(),
        1,
        "on_store_error and the timeout reload: {keys:?}"
    );
    let shown = &keys[0];
    assert!(shown.starts_with("rate_limit.redis_url ("), "{shown}");
    assert!(
        shown.contains("10.0.0.5") && shown.contains("10.0.0.6"),
        "{shown}"
    );
    assert!(!shown.contains("Secret"), "the password is shown: {shown}");
    let local = config::parse_str("[rate_limit]\nrequests_per_s = 1.0\n", "t.toml").unwrap();
    let keys = restart_only(&local, &new);
    assert!(
        keys.iter().any(|k| k.starts_with("rate_limit.store")),
        "{keys:?}"
    );
}

#[test]
fn command_line_overrides_are_reapplied_so_they_do_not_read_as_changes() {
    let o = Overrides {
        port: Some(0),
        cores: Some(2),
        ..Default::default()
    };
    let mut running = config::parse_str("[server]\nport = 8080\n", "t.toml").unwrap();
    o.apply(&mut running);
    let mut reloaded = config::parse_str("[server]\nport = 8080\n", "t.toml").unwrap();
    o.apply(&mut reloaded);
    assert!(restart_only(&running, &reloaded).is_empty());
    assert_eq!(running.server.port, 0);
}

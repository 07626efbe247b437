//! Config checks of the rate-limit store (`[rate_limit] store`, `redis_url`, `on_store_error`,
//! `redis_timeout_ms`): defaults, the key each error names, and that no error, `Debug` or
//! reload message shows a Redis password.

use super::tests::{check_all, ok};
use crate::config::{parse_str, parse_str_all, OnStoreError, RateStore};

const PASSWORD: &str = "Sup3r-s3cret-pw";

#[test]
fn the_store_defaults_to_local_and_allow() {
    let c = parse_str("[rate_limit]\nrequests_per_s = 5.0\n", "t.toml").unwrap();
    let r = &c.rate_limit;
    assert_eq!(r.store, RateStore::Local);
    assert_eq!(r.redis_url, None);
    assert_eq!(r.on_store_error, OnStoreError::Allow);
    assert_eq!(r.redis_timeout_ms, 50);
}

#[test]
fn a_redis_store_is_read() {
    let text = format!(
        "[rate_limit]\nrequests_per_s = 5.0\nstore = \"redis\"\nredis_url = \"redis://:{PASSWORD}@127.0.0.1:6390/2\"\non_store_error = \"deny\"\nredis_timeout_ms = 20\n"
    );
    let c = parse_str(&text, "t.toml").unwrap();
    let r = &c.rate_limit;
    assert_eq!(r.store, RateStore::Redis);
    assert_eq!(r.on_store_error, OnStoreError::Deny);
    assert_eq!(r.redis_timeout_ms, 20);
    let url = r.redis_url.as_ref().unwrap();
    let t = crate::config::parse_redis_url(url.expose()).unwrap();
    assert_eq!((t.port, t.db), (6390, 2));
    assert_eq!(t.password.as_deref(), Some(PASSWORD));
    let shown = format!("{c:?}");
    assert!(
        !shown.contains(PASSWORD),
        "Debug of the config shows the password"
    );
    assert!(shown.contains("redis://:***@127.0.0.1:6390/2"), "{shown}");
}

#[test]
fn store_errors_name_their_key() {
    check_all(&[
        (
            "[rate_limit]\nrequests_per_s = 5.0\nstore = \"redis\"\n",
            1,
            "rate_limit.redis_url",
            "required with store = \"redis\"",
        ),
        (
            "[rate_limit]\nstore = \"redis\"\nredis_url = \"http://127.0.0.1:6379\"\n",
            3,
            "rate_limit.redis_url",
            "scheme must be redis://",
        ),
        (
            "[rate_limit]\nstore = \"redis\"\nredis_url = \"redis://127.0.0.1:0\"\n",
            3,
            "rate_limit.redis_url",
            "port",
        ),
        (
            "[rate_limit]\nredis_timeout_ms = 0\n",
            2,
            "rate_limit.redis_timeout_ms",
            "must be from 1 to 10000 ms",
        ),
        (
            "[rate_limit]\nstore = \"memcached\"\n",
            2,
            "rate_limit.store",
            "unknown variant",
        ),
        (
            "[rate_limit]\non_store_error = \"maybe\"\n",
            2,
            "rate_limit.on_store_error",
            "unknown variant",
        ),
    ]);
    ok("[rate_limit]\nstore = \"redis\"\nredis_url = \"redis://localhost\"\n");
}

#[test]
fn no_error_quotes_the_password() {
    for url in [
        format!("rediss://:{PASSWORD}@h:6379"),
        format!("redis://:{PASSWORD}@h:notaport"),
        format!("redis://:{PASSWORD}@h/notadb"),
        format!("redis://:{PASSWORD}@"),
        format!("redis://:{PASSWORD}@bad_host"),
    ] {
        let text = format!("[rate_limit]\nstore = \"redis\"\nredis_url = \"{url}\"\n");
        let errors = parse_str_all(&text, "t.toml").unwrap_err();
        for e in errors {
            let shown = e.to_string();
            assert_eq!(e.key, "rate_limit.redis_url", "{shown}");
            assert!(!shown.contains(PASSWORD), "{url}: {shown}");
            assert!(!shown.contains("Sup3r"), "{url}: {shown}");
        }
    }
}

//! `[rate_limit] redis_url`: the one config value that may hold a secret (a Redis password),
//! kept in a type that never shows it, and its strict parser.
//!
//! [`SecretUrl`] is what the config holds: its `Debug` (used by reload messages and test
//! failures) and [`SecretUrl::redacted`] print `***` for the password, so the password reaches
//! no log, error, `/health`, metric or `validate` output. [`parse_redis_url`] is shared by
//! validation and the binary's Redis client, so the client connects exactly to what validation
//! accepted, and its errors never quote the URL (a mistyped URL may have the password in any
//! part of it).

use std::fmt;
use std::net::Ipv6Addr;

use serde::Deserialize;

/// Highest Redis database index accepted (Redis' own default is 16 databases, 0–15; a server
/// configured with more may use more).
pub const MAX_REDIS_DB: u32 = 1_000_000;

/// A URL that may carry a password: shown only as [`SecretUrl::redacted`].
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SecretUrl(String);

impl SecretUrl {
    /// Wraps a URL string.
    pub fn new(url: impl Into<String>) -> Self {
        SecretUrl(url.into())
    }

    /// The URL as written (only for the parser; never print it).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `***` (for humans): `redis://host:port/db`.
    pub fn redacted(&self) -> String {
        match parse_redis_url(&self.0) {
            Ok(t) => t.to_string(),
            Err(_) => "(an invalid redis:// URL)".into(),
        }
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

/// Where the Redis server is and how to log in, from a `redis://` URL.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisTarget {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// Port (6379 when the URL has none).
    pub port: u16,
    /// Database index (`SELECT`), 0 when the URL has no path.
    pub db: u32,
    /// ACL user name (`AUTH user password`), when the URL names one.
    pub username: Option<String>,
    /// Password (`AUTH`), when the URL has one. Never printed.
    pub password: Option<String>,
}

impl RedisTarget {
    /// `host:port` (IPv6 in brackets): what logs may show.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// `redis://[user:***@]host:port/db`: the password is never shown.
impl fmt::Display for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("redis://")?;
        match (&self.username, &self.password) {
            (Some(u), _) => write!(f, "{u}:***@")?,
            (None, Some(_)) => f.write_str(":***@")?,
            (None, None) => {}
        }
        write!(f, "{}/{}", self.address(), self.db)
    }
}

impl fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisTarget({self})")
    }
}

/// Parses `redis://[[user]:password@]host[:port][/db]` strictly. The user name and password
/// may be percent-encoded (`%40` for `@`). `rediss://` (TLS) and `unix://` are refused. Error
/// messages describe the problem without quoting any part of the URL.
pub fn parse_redis_url(url: &str) -> Result<RedisTarget, String> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters".into());
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err("must be a redis:// URL: redis://[:password@]host[:port][/db]".into());
    };
    match scheme {
        "redis" => {}
        "rediss" => {
            return Err("rediss:// (TLS) is not supported; reach Redis over a local TLS tunnel (stunnel, a sidecar) with redis://".into())
        }
        s if s.eq_ignore_ascii_case("redis") => {
            return Err("write the scheme in lowercase: redis://".into())
        }
        _ => {
            return Err("the scheme must be redis:// (unix sockets and other schemes are not supported)".into())
        }
    }
    // The last `@` ends the user info, so an unencoded `@` in a password still parses.
    let (userinfo, hostpart) = match rest.rfind('@') {
        Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
        None => (None, rest),
    };
    let (authority, path) = hostpart.split_at(hostpart.find('/').unwrap_or(hostpart.len()));
    if authority.is_empty() {
        return Err("names no host".into());
    }
    if path.contains(['?', '#']) || authority.contains(['?', '#']) {
        return Err("query strings and fragments are not supported".into());
    }
    let (host, port) = split_host_port(authority)?;
    let db = match path.strip_prefix('/') {
        None | Some("") => 0,
        Some(d) => match d.parse::<u32>() {
            Ok(n) if n <= MAX_REDIS_DB && d.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => {
                return Err(format!(
                    "the path must be a database number 0..={MAX_REDIS_DB}"
                ))
            }
        },
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(info) => {
            let (user, pass) = match info.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (info, None),
            };
            let user = percent_decode(user).ok_or("the user name has a bad %-escape")?;
            let pass = match pass {
                Some(p) => Some(percent_decode(p).ok_or("the password has a bad %-escape")?),
                None => None,
            };
            match (user.is_empty(), pass) {
                (true, None) => return Err("the user info before `@` is empty".into()),
                (true, Some(p)) => (None, Some(p)),
                (false, p) => (Some(user), p),
            }
        }
    };
    if password.as_deref() == Some("") {
        return Err("the password is empty".into());
    }
    Ok(RedisTarget {
        host: host.to_string(),
        port,
        db,
        username,
        password,
    })
}

fn split_host_port(authority: &str) -> Result<(&str, u16), String> {
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let end = bracketed.find(']').ok_or("unclosed `[` in an IPv6 host")?;
        let host = &bracketed[..end];
        if host.parse::<Ipv6Addr>().is_err() {
            return Err("the bracketed host is not an IPv6 address".into());
        }
        let port = match &bracketed[end + 1..] {
            "" => None,
            after => Some(
                after
                    .strip_prefix(':')
                    .ok_or("unexpected text after the IPv6 host")?,
            ),
        };
        (host, port)
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !authority.starts_with('[') && (host.len() > 253 || !host.split('.').all(label_ok)) {
        return Err("the host is not a valid host name or IP address".into());
    }
    let port = match port {
        None => 6379,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => return Err("the port must be a number 1..=65535".into()),
        },
    };
    Ok((host, port))
}

/// `%XX` escapes decoded; `None` on a bad escape or text that is not UTF-8 once decoded.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_url_with_defaults() {
        let t = parse_redis_url("redis://127.0.0.1").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.db), ("127.0.0.1", 6379, 0));
        assert_eq!((t.username, t.password), (None, None));
        let t = parse_redis_url("redis://cache.internal:6380/3").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.db), ("cache.internal", 6380, 3));
        let t = parse_redis_url("redis://[::1]:7000/").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.db), ("::1", 7000, 0));
        assert_eq!(t.address(), "[::1]:7000");
    }

    #[test]
    fn passwords_and_users_are_read_and_never_shown() {
        let t = parse_redis_url("redis://:s3cr%40t@127.0.0.1:6379/2").unwrap();
        assert_eq!(t.password.as_deref(), Some("s3cr@t"));
        assert_eq!(t.username, None);
        assert_eq!(t.to_string(), "redis://:***@127.0.0.1:6379/2");
        assert!(!format!("{t:?}").contains("s3cr"));
        let t = parse_redis_url("redis://gw:p@ss@h:1").unwrap();
        assert_eq!(
            (t.username.as_deref(), t.password.as_deref()),
            (Some("gw"), Some("p@ss"))
        );
        assert_eq!(t.to_string(), "redis://gw:***@h:1/0");
        let u = SecretUrl::new("redis://:hunter2hunter2@localhost:6379");
        assert!(!format!("{u:?}").contains("hunter2"), "{u:?}");
        assert!(!u.redacted().contains("hunter2"));
        let bad = SecretUrl::new("redis://:hunter2@local host");
        assert!(!format!("{bad:?}").contains("hunter2"));
    }

    #[test]
    fn bad_urls_are_refused_without_quoting_them() {
        for (url, want) in [
            ("http://:pw-123@h:6379", "scheme must be redis://"),
            ("rediss://:pw-123@h:6379", "TLS"),
            ("REDIS://:pw-123@h", "lowercase"),
            ("pw-123@h:6379", "redis:// URL"),
            ("redis://:pw-123@", "no host"),
            ("redis://:pw-123@h:0", "port"),
            ("redis://:pw-123@h:99999", "port"),
            ("redis://:pw-123@h:+1", "port"),
            ("redis://:pw-123@h/x", "database number"),
            ("redis://:pw-123@h/-1", "database number"),
            ("redis://:pw-123@h_x", "host"),
            ("redis://:pw-123@[zz]:1", "IPv6"),
            ("redis://:pw-12%3@h", "%-escape"),
            ("redis://:@h", "password is empty"),
            ("redis://@h", "empty"),
            ("redis://:pw-123@h/0?x=1", "query"),
            ("redis://:pw 123@h", "spaces"),
        ] {
            let e = parse_redis_url(url).unwrap_err();
            assert!(e.contains(want), "{url}: {e}");
            assert!(
                !e.contains("pw-1"),
                "{url}: the error quotes the password: {e}"
            );
        }
    }
}

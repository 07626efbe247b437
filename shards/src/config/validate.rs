//! Semantic validation: the rules serde cannot express (ranges, id syntax, which keys belong to
//! which transport, URLs the backend client can actually reach).
//!
//! Owned here, apart from the model, so every rule lives in one place and reports the same way:
//! an [`Issue`] carrying the byte span of the offending value (from `toml::Spanned` fields, or
//! looked up by key path in the span-preserving parse for plain fields) and its dotted key path.
//! The strict `http://` URL parser lives here too and is public, so the backend client parses
//! URLs exactly as validation accepted them; `unix:` URLs go through the wire layer's
//! `http::url::parse_unix`, which the backend client uses too.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Range;

use super::model::{BackendConfig, Config, Transport};
use super::{render_path, Doc, Seg};

/// Longest allowed timeout: one hour.
const MAX_TIMEOUT_MS: u64 = 3_600_000;
/// Most shards a config may ask for.
const MAX_CORES: usize = 1024;

/// One semantic error before it is turned into a `ConfigError`.
pub(crate) struct Issue {
    /// Byte span of the offending value (or of the enclosing table when the key is missing).
    pub(crate) span: Option<Range<usize>>,
    /// Dotted key path.
    pub(crate) key: String,
    /// One-line description.
    pub(crate) message: String,
}

/// A parsed `http://` backend URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// Host name, IPv4 address, or IPv6 address (without brackets), as written.
    pub host: String,
    /// Port; 80 when the URL has none.
    pub port: u16,
    /// Request target: the path (with any query) as written, or `/` when the URL has none.
    pub path: String,
}

impl HttpUrl {
    /// `host:port` as sent in a `Host` header (IPv6 hosts in brackets).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Parse a backend URL strictly: `http://HOST[:PORT][/PATH]`, where HOST is a name, an IPv4
/// address or a bracketed IPv6 address and PORT is 1..=65535. No spaces, credentials or
/// fragments. `https://` is refused because the backend client has no TLS yet.
pub fn parse_http_url(url: &str) -> Result<HttpUrl, String> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("URL must not contain spaces or control characters".into());
    }
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return Err(
            "https backends need TLS, not supported yet; terminate TLS in front or use http".into(),
        );
    }
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        if lower.starts_with("http://") {
            "write the scheme in lowercase: `http://`".to_string()
        } else {
            format!("`{url}` is not an http:// URL (expected http://HOST[:PORT]/PATH)")
        }
    })?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if authority.contains('@') {
        return Err("credentials in the URL are not supported; use `headers`".into());
    }
    if authority.contains(['?', '#']) {
        return Err("the path must start with `/`".into());
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let end = bracketed.find(']').ok_or("unclosed `[` in IPv6 host")?;
        let host = &bracketed[..end];
        if host.parse::<Ipv6Addr>().is_err() {
            return Err(format!("`[{host}]` is not an IPv6 address"));
        }
        let after = &bracketed[end + 1..];
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or("unexpected text after the IPv6 host")?,
            ),
        };
        (host, port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        check_host(host)?;
        (host, port)
    };
    let port = match port {
        None => 80,
        Some(p) => {
            parse_port(p).ok_or_else(|| format!("port `{p}` is not a number from 1 to 65535"))?
        }
    };
    if path.contains('#') {
        return Err("a fragment (`#...`) is not allowed in a backend URL".into());
    }
    if !path.is_ascii() {
        return Err("non-ASCII characters in the path must be percent-encoded".into());
    }
    let path = if path.is_empty() { "/" } else { path };
    Ok(HttpUrl {
        host: host.to_string(),
        port,
        path: path.to_string(),
    })
}

/// A port number 1..=65535 written as plain digits.
fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse::<u16>().ok().filter(|&n| n != 0)
}

/// A DNS name (labels of letters, digits and inner hyphens) or a dotted IPv4 address.
fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("the URL has no host".into());
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return match host.parse::<Ipv4Addr>() {
            Ok(_) => Ok(()),
            Err(_) => Err(format!("`{host}` is not an IPv4 address")),
        };
    }
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if host.len() > 253 || !host.split('.').all(label_ok) {
        return Err(format!("`{host}` is not a valid host name"));
    }
    Ok(())
}

#[path = "validate_auth.rs"]
mod auth_rules;
#[path = "validate_cluster.rs"]
mod cluster_rules;
#[path = "validate_curation.rs"]
mod curation_rules;
#[path = "validate_telemetry.rs"]
mod telemetry_rules;

/// Check every semantic rule; the result is empty when the config is valid.
pub(crate) fn validate(config: &Config, doc: &Doc<'_>) -> Vec<Issue> {
    let mut c = Checker {
        doc,
        issues: Vec::new(),
    };
    c.server(config);
    c.proxy(config);
    c.metrics(config);
    c.auth(config);
    c.rate_limit(config);
    c.audit(config);
    c.role_curation(config);
    c.cache(config);
    c.cluster(config);
    c.telemetry(config);
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, server) in config.servers.iter().enumerate() {
        let id = server.id.get_ref().as_str();
        let path = field(i, "id");
        if let Some(&first) = seen.get(id) {
            let line = doc.line_of(config.servers[first].id.span().start);
            let msg = format!(
                "duplicate server id `{id}` (first used by servers[{first}] on line {line})"
            );
            c.push(&path, Some(server.id.span()), msg);
        } else {
            seen.insert(id, i);
        }
        c.backend(config, i, server);
    }
    c.issues
}

/// The path `servers[i].name`.
fn field(i: usize, name: &'static str) -> [Seg<'static>; 3] {
    [Seg::Key("servers"), Seg::Index(i), Seg::Key(name)]
}

/// Collects issues, finding spans for plain (non-`Spanned`) fields by key path.
struct Checker<'a, 'd> {
    doc: &'a Doc<'d>,
    issues: Vec<Issue>,
}

impl Checker<'_, '_> {
    /// Record an issue at `span`, or else at the value of `path`, or else at the nearest
    /// enclosing key that is in the file (a missing key points at its table).
    fn push(&mut self, path: &[Seg<'_>], span: Option<Range<usize>>, message: String) {
        let span = span.or_else(|| {
            (1..=path.len())
                .rev()
                .find_map(|n| self.doc.span_of(&path[..n]))
        });
        self.issues.push(Issue {
            span,
            key: render_path(path),
            message,
        });
    }

    /// Whether `path` is written in the file.
    fn present(&self, path: &[Seg<'_>]) -> bool {
        self.doc.span_of(path).is_some()
    }

    fn range_ms(&mut self, path: &[Seg<'_>], value: u64) {
        if !(1..=MAX_TIMEOUT_MS).contains(&value) {
            let msg = format!("must be from 1 to {MAX_TIMEOUT_MS} ms (one hour), got {value}");
            self.push(path, None, msg);
        }
    }

    fn server(&mut self, config: &Config) {
        let s = &config.server;
        let key = |name| [Seg::Key("server"), Seg::Key(name)];
        if s.host.trim().is_empty() {
            self.push(&key("host"), None, "must not be empty".into());
        }
        if s.cores > MAX_CORES {
            let msg = format!(
                "must be at most {MAX_CORES} (0 = every online core), got {}",
                s.cores
            );
            self.push(&key("cores"), None, msg);
        }
        if !(2..=32768).contains(&s.uring_entries) || !s.uring_entries.is_power_of_two() {
            let msg = format!(
                "must be a power of two from 2 to 32768, got {}",
                s.uring_entries
            );
            self.push(&key("uring_entries"), None, msg);
        }
        if let Err(msg) = crate::rt::uring_setup::check(&s.uring_setup) {
            self.push(&key("uring_setup"), None, msg);
        }
        if !(8..=1024).contains(&s.max_json_depth) {
            let msg = format!("must be 8 to 1024, got {}", s.max_json_depth);
            self.push(&key("max_json_depth"), None, msg);
        }
        if !(1..=10_000_000).contains(&s.max_sessions) {
            let msg = format!("must be 1 to 10000000, got {}", s.max_sessions);
            self.push(&key("max_sessions"), None, msg);
        }
        if s.max_sessions_per_principal > s.max_sessions {
            let msg = format!(
                "must be at most server.max_sessions ({}), got {} (0 = no separate cap)",
                s.max_sessions, s.max_sessions_per_principal
            );
            self.push(&key("max_sessions_per_principal"), None, msg);
        }
        if !(1..=10_000_000).contains(&s.max_listens) {
            let msg = format!("must be 1 to 10000000, got {}", s.max_listens);
            self.push(&key("max_listens"), None, msg);
        }
        if s.max_listens_per_principal > s.max_listens {
            let msg = format!(
                "must be at most server.max_listens ({}), got {} (0 = no separate cap)",
                s.max_listens, s.max_listens_per_principal
            );
            self.push(&key("max_listens_per_principal"), None, msg);
        }
        if s.drain_grace_ms > MAX_TIMEOUT_MS {
            let msg = format!(
                "must be from 0 to {MAX_TIMEOUT_MS} ms (one hour; 0 = stop at once), got {}",
                s.drain_grace_ms
            );
            self.push(&key("drain_grace_ms"), None, msg);
        }
        for (name, value) in [
            ("max_body_bytes", s.max_body_bytes),
            ("max_header_bytes", s.max_header_bytes),
        ] {
            if value < 1024 {
                self.push(
                    &key(name),
                    None,
                    format!("must be at least 1024, got {value}"),
                );
            }
        }
    }

    fn metrics(&mut self, config: &Config) {
        if let Some(p) = &config.metrics.socket {
            // sun_path holds 108 bytes including the terminating NUL.
            if p.is_empty() || p.len() > 107 {
                let msg = format!("must be a path of 1 to 107 bytes, got {} bytes", p.len());
                self.push(&[Seg::Key("metrics"), Seg::Key("socket")], None, msg);
            }
        }
    }

    fn cache(&mut self, config: &Config) {
        let c = &config.cache;
        let key = |name| [Seg::Key("cache"), Seg::Key(name)];
        if !(1..=10_000_000).contains(&c.max_entries) {
            let msg = format!("must be 1 to 10000000, got {}", c.max_entries);
            self.push(&key("max_entries"), None, msg);
        }
        if !(4096..=(1 << 40)).contains(&c.max_bytes) {
            let msg = format!("must be 4096 bytes to 1 TiB, got {}", c.max_bytes);
            self.push(&key("max_bytes"), None, msg);
        }
        if !(1..=86_400_000).contains(&c.ttl_ms) {
            let msg = format!("must be 1 ms to 24 h (86400000), got {}", c.ttl_ms);
            self.push(&key("ttl_ms"), None, msg);
        }
        if c.coalesce_window_ms > 1000 {
            let msg = format!("must be 0 to 1000 ms, got {}", c.coalesce_window_ms);
            self.push(&key("coalesce_window_ms"), None, msg);
        }
    }

    fn proxy(&mut self, config: &Config) {
        let p = &config.proxy;
        let key = |name| [Seg::Key("proxy"), Seg::Key(name)];
        let sep = p.tool_separator.as_str();
        if sep.is_empty() {
            self.push(&key("tool_separator"), None, "must not be empty".into());
        } else if !sep
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        {
            let msg = format!("`{sep}` may only contain A-Z a-z 0-9 _ . -");
            self.push(&key("tool_separator"), None, msg);
        }
        self.range_ms(&key("request_timeout_ms"), p.request_timeout_ms);
        self.range_ms(&key("connect_timeout_ms"), p.connect_timeout_ms);
        if !(1..=1024).contains(&p.max_concurrent_spawns) {
            let msg = format!("must be 1 to 1024, got {}", p.max_concurrent_spawns);
            self.push(&key("max_concurrent_spawns"), None, msg);
        }
    }

    fn backend(&mut self, config: &Config, i: usize, s: &BackendConfig) {
        self.curation(i, s);
        let id = s.id.get_ref();
        let id_ok = (1..=32).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        let sep = config.proxy.tool_separator.as_str();
        if !id_ok {
            let msg = format!("server id `{id}` must be 1 to 32 characters of A-Z a-z 0-9 _ -");
            self.push(&field(i, "id"), Some(s.id.span()), msg);
        } else if !sep.is_empty() && id.contains(sep) {
            let msg = format!(
                "server id `{id}` contains the tool separator `{sep}` (proxy.tool_separator)"
            );
            self.push(&field(i, "id"), Some(s.id.span()), msg);
        }
        if let Some(t) = s.timeout_ms {
            self.range_ms(&field(i, "timeout_ms"), t);
        }
        if let Some(k) = &s.balance_key {
            if let Err(msg) = crate::balance::BalanceKey::parse(k) {
                self.push(&field(i, "balance_key"), None, msg);
            }
        }
        if let Some(r) = s.breaker_failure_rate {
            if !(r > 0.0 && r <= 1.0) {
                let msg = format!("must be a ratio above 0 and at most 1, got {r}");
                self.push(&field(i, "breaker_failure_rate"), None, msg);
            }
        }
        if !(1..=64).contains(&s.breaker_window) {
            let msg = format!("must be 1 to 64 calls, got {}", s.breaker_window);
            self.push(&field(i, "breaker_window"), None, msg);
        }
        if !(1..=1000).contains(&s.breaker_trials) {
            let msg = format!("must be 1 to 1000, got {}", s.breaker_trials);
            self.push(&field(i, "breaker_trials"), None, msg);
        }
        if let Some(c) = &s.health_canary {
            if c.tool.trim().is_empty() {
                let path = [
                    Seg::Key("servers"),
                    Seg::Index(i),
                    Seg::Key("health_canary"),
                    Seg::Key("tool"),
                ];
                self.push(
                    &path,
                    None,
                    "must name one of the server's own tools".into(),
                );
            }
        }
        match s.transport.get_ref() {
            Transport::Stdio => self.stdio(i, s),
            Transport::Http => self.http(config, i, s),
        }
    }

    fn stdio(&mut self, i: usize, s: &BackendConfig) {
        if !(1..=64).contains(&s.instances) {
            let msg = format!("`instances` must be 1 to 64, not {}", s.instances);
            self.push(&field(i, "instances"), None, msg);
        }
        match &s.command {
            None => self.push(
                &field(i, "command"),
                None,
                "a stdio server needs `command` (the program to run)".into(),
            ),
            Some(c) if c.get_ref().trim().is_empty() => {
                self.push(
                    &field(i, "command"),
                    Some(c.span()),
                    "must not be empty".into(),
                );
            }
            Some(_) => {}
        }
        let used = [
            ("url", s.url.is_some()),
            ("urls", !s.urls.is_empty()),
            ("headers", !s.headers.is_empty()),
            ("pool_size", false),
        ];
        for (name, set) in used {
            if set || self.present(&field(i, name)) {
                let msg = format!(
                    "`{name}` is only for http servers; this one has transport = \"stdio\""
                );
                self.push(&field(i, name), None, msg);
            }
        }
    }

    fn http(&mut self, config: &Config, i: usize, s: &BackendConfig) {
        if s.instances != 1 {
            let msg =
                "`instances` is for stdio servers; an http server's replicas are its `urls`".into();
            self.push(&field(i, "instances"), None, msg);
        }
        if !(1..=65536).contains(&s.pool_size) {
            let msg = format!(
                "must be 1 to 65536 connections per replica per shard, got {}",
                s.pool_size
            );
            self.push(&field(i, "pool_size"), None, msg);
        }
        let mut urls: Vec<(Vec<Seg<'static>>, &toml::Spanned<String>)> = Vec::new();
        if let Some(u) = &s.url {
            urls.push((field(i, "url").to_vec(), u));
        }
        for (j, u) in s.urls.iter().enumerate() {
            urls.push((
                vec![
                    Seg::Key("servers"),
                    Seg::Index(i),
                    Seg::Key("urls"),
                    Seg::Index(j),
                ],
                u,
            ));
        }
        if urls.is_empty() {
            let name = if self.present(&field(i, "urls")) {
                "urls"
            } else {
                "url"
            };
            let msg = "an http server needs `url` (or `urls` with at least one URL)".into();
            self.push(&field(i, name), None, msg);
        }
        if !s.weights.is_empty() && s.weights.len() != urls.len() {
            let msg = format!(
                "`weights` has {} entries but the server has {} replica URLs",
                s.weights.len(),
                urls.len()
            );
            self.push(&field(i, "weights"), None, msg);
        }
        let gateway = &config.server;
        for (path, url) in urls {
            if crate::http::url::is_unix(url.get_ref()) {
                // `unix:/socket[:/path]`: same parser as the backend client.
                if let Err(msg) = crate::http::url::parse_unix(url.get_ref()) {
                    self.push(&path, Some(url.span()), msg);
                }
                continue;
            }
            match parse_http_url(url.get_ref()) {
                Err(msg) => self.push(&path, Some(url.span()), msg),
                Ok(u)
                    if gateway.port != 0
                        && u.port == gateway.port
                        && is_self_host(&u.host, &gateway.host) =>
                {
                    let msg = format!(
                        "backend points at the gateway itself ({}:{} is server.host/server.port)",
                        u.host, u.port
                    );
                    self.push(&path, Some(url.span()), msg);
                }
                Ok(_) => {}
            }
        }
        let used = [
            ("command", s.command.is_some()),
            ("args", !s.args.is_empty()),
            ("env", !s.env.is_empty()),
            ("cwd", s.cwd.is_some()),
        ];
        for (name, set) in used {
            if set || self.present(&field(i, name)) {
                let msg = format!(
                    "`{name}` is only for stdio servers; this one has transport = \"http\""
                );
                self.push(&field(i, name), None, msg);
            }
        }
    }
}

/// Whether a backend host names the gateway's own listener.
fn is_self_host(host: &str, listen_host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let listen = listen_host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    matches!(
        host.as_str(),
        "127.0.0.1" | "localhost" | "0.0.0.0" | "::1" | "::"
    ) || host == listen
}

//! Backend URLs, split once at config time into what the HTTP client needs.
//!
//! Two forms: `http://host[:port]/path` (resolved here, on the control thread: DNS never runs
//! on a shard) and nginx's `unix:/abs/socket/path[:/http/path]` for a Streamable HTTP backend
//! on the same machine (split at the first `:` after `unix:`; the HTTP path defaults to `/`,
//! the Host header is `localhost`). [`parse_unix`] is the one parser of the unix form, shared
//! with config validation so both accept exactly the same URLs.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Longest socket path a `sockaddr_un` holds (108 bytes with the terminating NUL).
pub const MAX_UNIX_PATH: usize = 107;

/// An HTTP backend URL, resolved on the control thread.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendUrl {
    /// The URL as configured.
    pub raw: String,
    /// `host[:port]` for the Host header (`localhost` for a unix socket).
    pub authority: String,
    /// Request path (with query), at least `/`.
    pub path: String,
    /// Resolved addresses; the first is used, the rest are tried on connect failure. Empty
    /// for a unix socket.
    pub addrs: Vec<SocketAddr>,
    /// The socket path of a `unix:` URL (then `addrs` is empty).
    pub unix: Option<PathBuf>,
}

/// A `unix:` URL split into its socket path and HTTP path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixUrl {
    /// Absolute path of the socket file, at most [`MAX_UNIX_PATH`] bytes.
    pub socket: String,
    /// The HTTP request path (with any query), `/` when the URL has none.
    pub path: String,
}

/// Whether `raw` is meant as a unix-socket URL (`unix:`, or a look-alike such as
/// `http+unix:` that [`parse_unix`] refuses with a hint).
pub fn is_unix(raw: &str) -> bool {
    let lower = raw.to_ascii_lowercase();
    lower.starts_with("unix:")
        || lower.starts_with("unix+")
        || lower.starts_with("http+unix:")
        || lower.starts_with("https+unix:")
}

/// Parses `unix:/socket/path` or `unix:/socket/path:/http/path` (nginx's form).
pub fn parse_unix(raw: &str) -> Result<UnixUrl, String> {
    let lower = raw.to_ascii_lowercase();
    if lower.starts_with("https+unix:") || lower.starts_with("unix+https:") {
        return Err(format!(
            "`{raw}`: TLS does not apply to a unix socket backend; write `unix:/path/to.sock[:/http-path]`"
        ));
    }
    let rest = raw.strip_prefix("unix:").ok_or_else(|| {
        format!("`{raw}`: write a unix socket backend as `unix:/path/to.sock[:/http-path]`")
    })?;
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "`{raw}`: the URL must not contain spaces or control characters"
        ));
    }
    let (socket, path) = match rest.split_once(':') {
        Some((s, p)) => (s, p),
        None => (rest, "/"),
    };
    if socket.is_empty() {
        return Err(format!("`{raw}`: the unix socket path is empty"));
    }
    if !socket.starts_with('/') {
        return Err(format!(
            "`{raw}`: the unix socket path must be absolute (start with `/`)"
        ));
    }
    if socket.len() > MAX_UNIX_PATH {
        return Err(format!(
            "`{raw}`: the unix socket path is {} bytes, longer than the {MAX_UNIX_PATH} a socket address holds",
            socket.len()
        ));
    }
    if !path.starts_with('/') {
        let why = if path.to_ascii_lowercase().starts_with("http") {
            "TLS and schemes do not apply after the socket path"
        } else {
            "the HTTP path after the socket path must start with `/`"
        };
        return Err(format!("`{raw}`: {why} (`unix:/path/to.sock:/mcp`)"));
    }
    if path.contains('#') {
        return Err(format!("`{raw}`: a fragment (`#...`) is not allowed"));
    }
    if !path.is_ascii() {
        return Err(format!(
            "`{raw}`: non-ASCII characters in the HTTP path must be percent-encoded"
        ));
    }
    Ok(UnixUrl {
        socket: socket.to_string(),
        path: path.to_string(),
    })
}

impl BackendUrl {
    /// Splits and resolves `raw`. Blocking (DNS, or a look at a unix socket path): call only
    /// on the control thread.
    pub fn resolve(raw: &str) -> Result<Self, String> {
        if is_unix(raw) {
            return Self::unix(raw);
        }
        let rest = raw
            .strip_prefix("http://")
            .ok_or_else(|| format!("`{raw}`: only http:// backend URLs are supported"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(format!("`{raw}`: missing host"));
        }
        let with_port = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.chars().all(|c| c.is_ascii_digit()))
            && !authority.ends_with(']')
        {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        use std::net::ToSocketAddrs;
        let addrs: Vec<SocketAddr> = with_port
            .to_socket_addrs()
            .map_err(|e| format!("`{raw}`: cannot resolve `{authority}`: {e}"))?
            .collect();
        if addrs.is_empty() {
            return Err(format!("`{raw}`: `{authority}` resolved to no address"));
        }
        Ok(Self {
            raw: raw.to_string(),
            authority: authority.to_string(),
            path: path.to_string(),
            addrs,
            unix: None,
        })
    }

    /// A `unix:` URL. The socket need not exist yet (the backend may start later), but a path
    /// that exists and is not a socket is refused here, at load time.
    fn unix(raw: &str) -> Result<Self, String> {
        let u = parse_unix(raw)?;
        use std::os::unix::fs::FileTypeExt;
        if let Ok(meta) = std::fs::metadata(&u.socket) {
            if !meta.file_type().is_socket() {
                return Err(format!(
                    "`{raw}`: `{}` exists but is not a socket",
                    u.socket
                ));
            }
        }
        Ok(Self {
            raw: raw.to_string(),
            authority: "localhost".to_string(),
            path: u.path,
            addrs: Vec::new(),
            unix: Some(PathBuf::from(u.socket)),
        })
    }

    /// This URL with another HTTP path (same socket or addresses), as `raw` shows it.
    pub fn with_path(&self, path: String) -> Self {
        let raw = match &self.unix {
            Some(sock) => format!("unix:{}:{path}", sock.display()),
            None => format!("http://{}{path}", self.authority),
        };
        Self {
            raw,
            authority: self.authority.clone(),
            path,
            addrs: self.addrs.clone(),
            unix: self.unix.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_resolves_loopback() {
        let u = BackendUrl::resolve("http://127.0.0.1:9001/mcp").unwrap();
        assert_eq!(u.authority, "127.0.0.1:9001");
        assert_eq!(u.path, "/mcp");
        assert_eq!(u.addrs[0].port(), 9001);
        let u = BackendUrl::resolve("http://[::1]/x?y=1").unwrap();
        assert_eq!(u.addrs[0].port(), 80);
        assert_eq!(u.path, "/x?y=1");
    }

    #[test]
    fn unix_urls_split_at_the_first_colon_after_the_prefix() {
        let u = parse_unix("unix:/run/mcp/search.sock").unwrap();
        assert_eq!(
            (u.socket.as_str(), u.path.as_str()),
            ("/run/mcp/search.sock", "/")
        );
        let u = parse_unix("unix:/run/mcp/search.sock:/mcp?x=1").unwrap();
        assert_eq!(
            (u.socket.as_str(), u.path.as_str()),
            ("/run/mcp/search.sock", "/mcp?x=1")
        );
        let b = BackendUrl::resolve("unix:/nonexistent-dir/a.sock:/mcp").unwrap();
        assert_eq!(b.authority, "localhost");
        assert_eq!(b.path, "/mcp");
        assert!(b.addrs.is_empty());
        assert_eq!(
            b.unix.as_deref(),
            Some(std::path::Path::new("/nonexistent-dir/a.sock"))
        );
        let e = b.with_path("/messages?s=1".into());
        assert_eq!(e.raw, "unix:/nonexistent-dir/a.sock:/messages?s=1");
        assert_eq!(e.unix, b.unix);
    }

    #[test]
    fn bad_unix_urls_are_refused_with_a_reason() {
        let long = format!("unix:/{}", "a".repeat(MAX_UNIX_PATH));
        let cases = [
            ("unix:", "empty"),
            ("unix::/mcp", "empty"),
            ("unix:run/a.sock", "absolute"),
            (long.as_str(), "longer than the 107"),
            ("unix:/a.sock:mcp", "must start with `/`"),
            ("unix:/a.sock:https://x/mcp", "TLS"),
            ("https+unix:/a.sock", "TLS does not apply"),
            ("unix+https:/a.sock", "TLS does not apply"),
            ("http+unix:/a.sock", "write a unix socket backend as"),
            ("unix:/a b.sock", "spaces"),
            ("unix:/a.sock:/m#f", "fragment"),
        ];
        for (raw, want) in cases {
            assert!(is_unix(raw), "{raw}");
            let e = BackendUrl::resolve(raw).unwrap_err();
            assert!(e.contains(want), "{raw}: {e}");
        }
        // The longest path that fits is accepted.
        let fits = format!("unix:/{}", "a".repeat(MAX_UNIX_PATH - 1));
        assert!(parse_unix(&fits).is_ok());
    }

    #[test]
    fn an_existing_path_that_is_not_a_socket_is_refused() {
        let dir = std::env::temp_dir().join(format!("o1-url-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("plain");
        std::fs::write(&file, b"x").unwrap();
        let e = BackendUrl::resolve(&format!("unix:{}", file.display())).unwrap_err();
        assert!(e.contains("is not a socket"), "{e}");
        let sock = dir.join("s.sock");
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        assert!(BackendUrl::resolve(&format!("unix:{}:/mcp", sock.display())).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rejects_other_schemes() {
        assert!(BackendUrl::resolve("https://a/mcp").is_err());
        assert!(BackendUrl::resolve("http:///mcp").is_err());
    }
}

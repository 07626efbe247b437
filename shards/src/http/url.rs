//! Backend URLs, split once at config time into what the HTTP client needs.

use std::net::SocketAddr;

/// An `http://host:port/path` URL, resolved on the control thread (DNS never runs on a shard).
#[derive(Debug, Clone, PartialEq)]
pub struct BackendUrl {
    /// The URL as configured.
    pub raw: String,
    /// `host[:port]` for the Host header.
    pub authority: String,
    /// Request path (with query), at least `/`.
    pub path: String,
    /// Resolved addresses; the first is used, the rest are tried on connect failure.
    pub addrs: Vec<SocketAddr>,
}

impl BackendUrl {
    /// Splits and resolves `raw`. Blocking (DNS): call only on the control thread.
    pub fn resolve(raw: &str) -> Result<Self, String> {
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
        })
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
    fn rejects_other_schemes() {
        assert!(BackendUrl::resolve("https://a/mcp").is_err());
        assert!(BackendUrl::resolve("http:///mcp").is_err());
    }
}

//! Host and Origin validation (DNS-rebinding protection).
//!
//! A page on `evil.example` that resolves to 127.0.0.1 can make a browser talk to a local
//! gateway; the Host and Origin headers are what betray it. On a loopback listener the Host
//! must name a loopback host (or one the operator allowed) and an Origin, when present, must
//! be a loopback origin or one the operator allowed. Failures are 403, as MCP 2025-11-25 says.

/// The policy of one listener.
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    /// The listener is bound to a loopback address.
    pub loopback: bool,
    /// Extra allowed Host values (`host` or `host:port`).
    pub allowed_hosts: Vec<String>,
    /// Extra allowed Origin values (exact).
    pub allowed_origins: Vec<String>,
}

fn host_part(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    authority.split(':').next().unwrap_or("")
}

/// `localhost`, `::1` or any address of 127.0.0.0/8 (a fleet on one machine binds nodes to
/// 127.0.0.2, 127.0.0.3, ...): an IP literal names no domain a rebinding page could own.
fn is_loopback_host(h: &str) -> bool {
    h.eq_ignore_ascii_case("localhost")
        || h == "::1"
        || h.parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl OriginPolicy {
    /// Checks one request's headers; `Err` carries the reason for the 403 body.
    pub fn check(&self, host: Option<&str>, origin: Option<&str>) -> Result<(), &'static str> {
        let host = host.map(str::trim);
        if self.loopback || !self.allowed_hosts.is_empty() {
            let Some(h) = host else {
                return Err("missing Host header");
            };
            let ok = (self.loopback && is_loopback_host(host_part(h)))
                || self
                    .allowed_hosts
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(h) || a.eq_ignore_ascii_case(host_part(h)));
            if !ok {
                return Err("Host not allowed");
            }
        }
        if let Some(o) = origin.map(str::trim) {
            if self.allowed_origins.iter().any(|a| a == o) {
                return Ok(());
            }
            let authority = o
                .strip_prefix("http://")
                .or_else(|| o.strip_prefix("https://"))
                .ok_or("Origin not allowed")?;
            let oh = host_part(authority);
            let same_host = host
                .map(host_part)
                .is_some_and(|h| h.eq_ignore_ascii_case(oh));
            let ok = if self.loopback {
                is_loopback_host(oh)
            } else {
                same_host
            };
            if !ok {
                return Err("Origin not allowed");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lo() -> OriginPolicy {
        OriginPolicy {
            loopback: true,
            ..Default::default()
        }
    }

    #[test]
    fn loopback_accepts_local_names_with_ports() {
        for h in [
            "localhost:8080",
            "127.0.0.1:1",
            "[::1]:9",
            "localhost",
            "127.0.0.3:8",
        ] {
            assert!(lo().check(Some(h), None).is_ok(), "{h}");
        }
        assert!(lo()
            .check(Some("127.0.0.1:8080"), Some("http://localhost:3000"))
            .is_ok());
    }

    #[test]
    fn loopback_rejects_rebinding() {
        assert!(lo().check(Some("evil.example:8080"), None).is_err());
        for h in [
            "127.0.0.1.evil.example",
            "128.0.0.1:80",
            "10.0.0.1",
            "127.1",
        ] {
            assert!(lo().check(Some(h), None).is_err(), "{h}");
        }
        assert!(lo()
            .check(Some("127.0.0.1:8080"), Some("http://evil.example"))
            .is_err());
        assert!(lo().check(Some("127.0.0.1:8080"), Some("null")).is_err());
        assert!(lo().check(None, None).is_err());
    }

    #[test]
    fn operator_allow_lists_work() {
        let p = OriginPolicy {
            loopback: true,
            allowed_hosts: vec!["mcp.internal".into()],
            allowed_origins: vec!["https://app.example.com".into()],
        };
        assert!(p
            .check(Some("mcp.internal:443"), Some("https://app.example.com"))
            .is_ok());
    }
}

//! Rules of `[telemetry]` (see `crate::trace` and the binary's exporter, `src/telemetry/`).

use super::{parse_http_url, Checker, Seg};
use crate::config::Config;

/// Longest `service_name` accepted (it is sent with every batch).
const MAX_SERVICE_NAME: usize = 255;

impl Checker<'_, '_> {
    /// `[telemetry]`: an `http://` endpoint, a service name, a ratio from 0 to 1.
    pub(super) fn telemetry(&mut self, config: &Config) {
        let t = &config.telemetry;
        let key = |name| [Seg::Key("telemetry"), Seg::Key(name)];
        if let Some(url) = &t.otlp_endpoint {
            if let Err(why) = parse_http_url(url) {
                let msg = format!("{why} (OTLP/HTTP endpoint, e.g. http://127.0.0.1:4318)");
                self.push(&key("otlp_endpoint"), None, msg);
            }
        }
        let name = t.service_name.trim();
        if name.is_empty() || t.service_name.len() > MAX_SERVICE_NAME {
            let msg = format!("must be 1 to {MAX_SERVICE_NAME} characters");
            self.push(&key("service_name"), None, msg);
        }
        if !(0.0..=1.0).contains(&t.sample_ratio) {
            let msg = format!("must be from 0.0 to 1.0, got {}", t.sample_ratio);
            self.push(&key("sample_ratio"), None, msg);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse_str;

    #[test]
    fn off_by_default_with_documented_defaults() {
        let c = parse_str("", "t.toml").unwrap();
        assert_eq!(c.telemetry.otlp_endpoint, None);
        assert_eq!(c.telemetry.service_name, "only1mcp-uring");
        assert_eq!(c.telemetry.sample_ratio, 1.0);
        let c = parse_str(
            "[telemetry]\notlp_endpoint = \"http://127.0.0.1:4318\"\nservice_name = \"gw\"\nsample_ratio = 0.01\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(
            c.telemetry.otlp_endpoint.as_deref(),
            Some("http://127.0.0.1:4318")
        );
        assert_eq!(c.telemetry.sample_ratio, 0.01);
    }

    #[test]
    fn bad_values_name_their_key_and_line() {
        for (text, key, line) in [
            (
                "[telemetry]\notlp_endpoint = \"https://collector:4318\"\n",
                "telemetry.otlp_endpoint",
                2,
            ),
            (
                "[telemetry]\notlp_endpoint = \"grpc://collector:4317\"\n",
                "telemetry.otlp_endpoint",
                2,
            ),
            (
                "[telemetry]\n\nsample_ratio = 1.5\n",
                "telemetry.sample_ratio",
                3,
            ),
            (
                "[telemetry]\nsample_ratio = -0.1\n",
                "telemetry.sample_ratio",
                2,
            ),
            (
                "[telemetry]\nservice_name = \" \"\n",
                "telemetry.service_name",
                2,
            ),
        ] {
            let e = parse_str(text, "t.toml").unwrap_err().to_string();
            assert!(e.contains(key), "{e}");
            assert!(e.contains(&format!("t.toml:{line}")), "{e}");
        }
        let e = parse_str("[telemetry]\nendpoint = \"http://x:1\"\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("endpoint"), "{e}");
    }
}

//! Checks of `[auth]`, `[rate_limit]` and `[audit]` (a child of `validate.rs`, sharing its
//! `Checker`): every problem names its key; nothing that would weaken verification is
//! accepted silently (no `none` algorithm, no HS256 next to public-key algorithms). The
//! roles' renames and descriptions are checked in `validate_curation.rs`.

use super::{Checker, Seg};
use crate::config::{parse_redis_url, AuthMode, Config, RateStore};

/// Longest `rate_limit.redis_timeout_ms`: a request waits at most this long for its decision.
const MAX_STORE_TIMEOUT_MS: u64 = 10_000;

const ALGORITHMS: [&str; 4] = ["RS256", "ES256", "EdDSA", "HS256"];

impl Checker<'_, '_> {
    pub(super) fn auth(&mut self, config: &Config) {
        let a = &config.auth;
        let key = |name| [Seg::Key("auth"), Seg::Key(name)];
        let role_names: Vec<&str> = a.roles.iter().map(|r| r.name.as_str()).collect();
        for (i, r) in a.roles.iter().enumerate() {
            let path = [
                Seg::Key("auth"),
                Seg::Key("roles"),
                Seg::Index(i),
                Seg::Key("name"),
            ];
            if r.name.trim().is_empty() {
                self.push(&path, None, "must not be empty".into());
            } else if role_names[..i].contains(&r.name.as_str()) {
                self.push(&path, None, format!("duplicate role `{}`", r.name));
            }
        }
        let unknown_role = |r: &String| !role_names.contains(&r.as_str());
        for r in a.default_roles.iter().filter(|r| unknown_role(r)) {
            let msg = format!("role `{r}` is not defined in [[auth.roles]]");
            self.push(&key("default_roles"), None, msg);
        }
        for (i, k) in a.api_keys.iter().enumerate() {
            let at = |name| {
                [
                    Seg::Key("auth"),
                    Seg::Key("api_keys"),
                    Seg::Index(i),
                    Seg::Key(name),
                ]
            };
            if k.name.trim().is_empty() {
                self.push(&at("name"), None, "must not be empty".into());
            }
            if k.sha256.len() != 64 || !k.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                let msg = "must be the key's SHA-256 as 64 hex digits (e.g. `printf %s \"$KEY\" | sha256sum`), never the key itself".into();
                self.push(&at("sha256"), None, msg);
            }
            for r in k.roles.iter().filter(|r| unknown_role(r)) {
                let msg = format!("role `{r}` is not defined in [[auth.roles]]");
                self.push(&at("roles"), None, msg);
            }
        }
        match a.mode {
            AuthMode::None => {}
            AuthMode::ApiKey => {
                if a.api_keys.is_empty() {
                    let msg = "mode `api_key` needs at least one [[auth.api_keys]]".into();
                    self.push(&key("mode"), None, msg);
                }
            }
            AuthMode::Jwt => self.jwt(config),
        }
    }

    fn jwt(&mut self, config: &Config) {
        let a = &config.auth;
        let key = |name| [Seg::Key("auth"), Seg::Key(name)];
        match &a.resource {
            Some(r) if r.starts_with("https://") || r.starts_with("http://") => {}
            Some(_) => self.push(
                &key("resource"),
                None,
                "must be this gateway's URL (http:// or https://), e.g. https://gw.example.com/mcp".into(),
            ),
            None => self.push(
                &key("mode"),
                None,
                "mode `jwt` needs auth.resource (the gateway's canonical URI, the tokens' audience)".into(),
            ),
        }
        if a.authorization_servers.is_empty() {
            let msg = "mode `jwt` needs at least one authorization server (published in the protected resource metadata)".into();
            self.push(&key("mode"), None, msg);
        }
        let Some(j) = &a.jwt else {
            self.push(
                &key("mode"),
                None,
                "mode `jwt` needs an [auth.jwt] table".into(),
            );
            return;
        };
        let at = |name| [Seg::Key("auth"), Seg::Key("jwt"), Seg::Key(name)];
        if j.algorithms.is_empty() {
            self.push(
                &at("algorithms"),
                None,
                "must name at least one algorithm".into(),
            );
        }
        for alg in &j.algorithms {
            if alg.eq_ignore_ascii_case("none") {
                let msg = "`none` is never accepted: unsigned tokens prove nothing".into();
                self.push(&at("algorithms"), None, msg);
            } else if !ALGORITHMS.contains(&alg.as_str()) {
                let msg = format!("`{alg}` is not one of {}", ALGORITHMS.join(", "));
                self.push(&at("algorithms"), None, msg);
            }
        }
        let hs = j.algorithms.iter().any(|a| a == "HS256");
        if hs && j.algorithms.len() > 1 {
            let msg = "HS256 cannot be combined with public-key algorithms (it invites key confusion: a public key used as an HMAC secret)".into();
            self.push(&at("algorithms"), None, msg);
        }
        if hs && j.secret_env.as_deref().is_none_or(str::is_empty) {
            let msg = "HS256 needs secret_env (the environment variable holding the secret)".into();
            self.push(&at("algorithms"), None, msg);
        }
        if j.issuer.trim().is_empty() {
            self.push(&at("issuer"), None, "must not be empty".into());
        }
        match &j.jwks_url {
            Some(u) if !(u.starts_with("https://") || u.starts_with("http://")) => self.push(
                &at("jwks_url"),
                None,
                "must be an http:// or https:// URL".into(),
            ),
            None if j.keys.is_empty() && !hs => {
                let msg = "needs jwks_url or [[auth.jwt.keys]] to verify signatures".into();
                self.push(&at("jwks_url"), None, msg);
            }
            _ => {}
        }
        if j.leeway_s > 300 {
            let msg = format!("must be 0 to 300 seconds, got {}", j.leeway_s);
            self.push(&at("leeway_s"), None, msg);
        }
        if j.jwks_refresh_s < 10 {
            let msg = format!("must be at least 10 seconds, got {}", j.jwks_refresh_s);
            self.push(&at("jwks_refresh_s"), None, msg);
        }
        if j.jwks_min_refetch_s < 1 {
            self.push(
                &at("jwks_min_refetch_s"),
                None,
                "must be at least 1 second".into(),
            );
        }
        if !(256..=65536).contains(&j.max_token_bytes) {
            let msg = format!("must be 256 to 65536, got {}", j.max_token_bytes);
            self.push(&at("max_token_bytes"), None, msg);
        }
        for (i, k) in j.keys.iter().enumerate() {
            let path = [
                Seg::Key("auth"),
                Seg::Key("jwt"),
                Seg::Key("keys"),
                Seg::Index(i),
                Seg::Key("alg"),
            ];
            if !j.algorithms.contains(&k.alg) || k.alg == "HS256" {
                let msg = format!(
                    "`{}` must be one of auth.jwt.algorithms (a public-key one)",
                    k.alg
                );
                self.push(&path, None, msg);
            }
        }
    }

    pub(super) fn rate_limit(&mut self, config: &Config) {
        let r = &config.rate_limit;
        let key = |name| [Seg::Key("rate_limit"), Seg::Key(name)];
        if !(r.requests_per_s.is_finite() && r.requests_per_s >= 0.0) {
            let msg = format!(
                "must be 0 (off) or a positive number, got {}",
                r.requests_per_s
            );
            self.push(&key("requests_per_s"), None, msg);
        }
        if r.burst == 0 {
            self.push(&key("burst"), None, "must be at least 1".into());
        }
        for (tool, t) in &r.tools {
            let path = [Seg::Key("rate_limit"), Seg::Key("tools"), Seg::Key(tool)];
            if !(t.requests_per_s.is_finite() && t.requests_per_s > 0.0) || t.burst == 0 {
                let msg = "needs requests_per_s > 0 and burst >= 1".into();
                self.push(&path, None, msg);
            }
        }
        match (&r.redis_url, r.store) {
            (None, RateStore::Redis) => {
                let msg =
                    "is required with store = \"redis\" (redis://[:password@]host[:port][/db])";
                self.push(&key("redis_url"), None, msg.into());
            }
            // The parser's messages never quote the URL: it may hold a password.
            (Some(url), _) => {
                if let Err(why) = parse_redis_url(url.expose()) {
                    self.push(&key("redis_url"), None, why);
                }
            }
            (None, RateStore::Local) => {}
        }
        if !(1..=MAX_STORE_TIMEOUT_MS).contains(&r.redis_timeout_ms) {
            let msg = format!(
                "must be from 1 to {MAX_STORE_TIMEOUT_MS} ms, got {}",
                r.redis_timeout_ms
            );
            self.push(&key("redis_timeout_ms"), None, msg);
        }
    }

    pub(super) fn audit(&mut self, config: &Config) {
        let a = &config.audit;
        let key = |name| [Seg::Key("audit"), Seg::Key(name)];
        if a.path.trim().is_empty() {
            self.push(
                &key("path"),
                None,
                "must be `-` (stdout) or a file path".into(),
            );
        }
        if a.max_bytes < 4096 {
            let msg = format!("must be at least 4096, got {}", a.max_bytes);
            self.push(&key("max_bytes"), None, msg);
        }
        if a.keep > 100 {
            let msg = format!("must be 0 to 100, got {}", a.keep);
            self.push(&key("keep"), None, msg);
        }
    }
}

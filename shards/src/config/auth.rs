//! The security part of the config: `[auth]` (who may connect, as whom, with which roles),
//! `[rate_limit]` and `[audit]`. Shapes only; the checks are in `validate_auth.rs` and the
//! meaning of each key in docs/security.md.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::redis_url::SecretUrl;

/// How callers prove who they are.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// Nobody is asked (the loopback default); everyone is principal `anonymous`.
    #[default]
    None,
    /// `Authorization: Bearer <key>`, checked against `[[auth.api_keys]]`.
    ApiKey,
    /// `Authorization: Bearer <JWT>`, verified against `[auth.jwt]` (API keys too, if any).
    Jwt,
}

/// `[auth]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    /// See [`AuthMode`].
    pub mode: AuthMode,
    /// This gateway's canonical resource URI (RFC 8707); a JWT's `aud` must name it.
    pub resource: Option<String>,
    /// Authorization servers published in the RFC 9728 metadata.
    pub authorization_servers: Vec<String>,
    /// Scopes published in the metadata.
    pub scopes_supported: Vec<String>,
    /// Scopes every token must carry (403 `insufficient_scope` otherwise).
    pub required_scopes: Vec<String>,
    /// Roles of a principal whose token or key names none.
    pub default_roles: Vec<String>,
    /// The JWT claim naming the principal.
    #[serde(default = "default_principal_claim")]
    pub principal_claim: String,
    /// Dotted path of the JWT claim holding the roles.
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
    /// API keys (hashed).
    pub api_keys: Vec<ApiKeyConfig>,
    /// JWT verification.
    pub jwt: Option<JwtConfig>,
    /// Roles: what each may see and call.
    pub roles: Vec<RoleConfig>,
}

fn default_principal_claim() -> String {
    "sub".into()
}

fn default_roles_claim() -> String {
    "roles".into()
}

/// `[[auth.api_keys]]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// The principal this key stands for.
    pub name: String,
    /// SHA-256 of the key, 64 hex digits.
    pub sha256: String,
    /// Its roles.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// `[auth.jwt]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// Accepted algorithms: RS256, ES256, EdDSA, HS256.
    pub algorithms: Vec<String>,
    /// The exact `iss`.
    pub issuer: String,
    /// Audiences accepted besides `auth.resource`.
    #[serde(default)]
    pub audience: Vec<String>,
    /// Where the signing keys are published.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// Periodic JWKS refetch, seconds.
    #[serde(default = "default_jwks_refresh")]
    pub jwks_refresh_s: u64,
    /// At most one refetch per this many seconds when a token names an unknown `kid`.
    #[serde(default = "default_jwks_min_refetch")]
    pub jwks_min_refetch_s: u64,
    /// Clock skew allowed for `exp` and `nbf`, seconds (0..=300).
    #[serde(default = "default_leeway")]
    pub leeway_s: u64,
    /// Longer bearer tokens are refused.
    #[serde(default = "default_max_token")]
    pub max_token_bytes: usize,
    /// HS256: the environment variable holding the shared secret.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// Static public keys.
    #[serde(default)]
    pub keys: Vec<StaticKeyConfig>,
}

fn default_jwks_refresh() -> u64 {
    300
}
fn default_jwks_min_refetch() -> u64 {
    10
}
fn default_leeway() -> u64 {
    30
}
fn default_max_token() -> usize {
    8192
}

/// `[[auth.jwt.keys]]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StaticKeyConfig {
    /// Key id (`kid`).
    pub kid: String,
    /// Its algorithm.
    pub alg: String,
    /// The public key, PEM.
    pub pem_file: String,
}

/// `[[auth.roles]]`: allow and deny patterns (`*`, `?`) per kind of item.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RoleConfig {
    /// Role name, as tokens and keys name it.
    pub name: String,
    /// Server ids.
    #[serde(default = "everything")]
    pub servers: Vec<String>,
    /// Namespaced tool names.
    #[serde(default = "everything")]
    pub tools: Vec<String>,
    /// Namespaced prompt names.
    #[serde(default = "everything")]
    pub prompts: Vec<String>,
    /// The gateway's resource URIs.
    #[serde(default = "everything")]
    pub resources: Vec<String>,
    /// Denied server ids.
    #[serde(default)]
    pub deny_servers: Vec<String>,
    /// Denied tools.
    #[serde(default)]
    pub deny_tools: Vec<String>,
    /// Denied prompts.
    #[serde(default)]
    pub deny_prompts: Vec<String>,
    /// Denied resources.
    #[serde(default)]
    pub deny_resources: Vec<String>,
    /// Tools this role sees under another name: gateway name → the role's name. With
    /// several roles, the first role (in config order) that renames a tool wins.
    #[serde(default)]
    pub rename: BTreeMap<String, String>,
    /// Tool descriptions this role sees instead of the catalog's: gateway name → text.
    #[serde(default)]
    pub descriptions: BTreeMap<String, String>,
}

fn everything() -> Vec<String> {
    vec!["*".into()]
}

/// `[rate_limit]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSection {
    /// Requests per second per principal (0 = off).
    pub requests_per_s: f64,
    /// Bucket size.
    pub burst: u32,
    /// Per principal and namespaced tool.
    pub tools: BTreeMap<String, ToolLimit>,
    /// Where the buckets live (restart-only).
    pub store: RateStore,
    /// The Redis server of `store = "redis"` (restart-only; may hold a password).
    pub redis_url: Option<SecretUrl>,
    /// What a request does when the store cannot decide (down, slow, queue full).
    pub on_store_error: OnStoreError,
    /// Longest wait for the store's decision, in ms; past it, `on_store_error`.
    pub redis_timeout_ms: u64,
}

impl Default for RateLimitSection {
    fn default() -> Self {
        Self {
            requests_per_s: 0.0,
            burst: 20,
            tools: BTreeMap::new(),
            store: RateStore::Local,
            redis_url: None,
            on_store_error: OnStoreError::Allow,
            redis_timeout_ms: 50,
        }
    }
}

/// `[rate_limit] store`: where the buckets are kept.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum RateStore {
    /// Each shard keeps its own share (`shared/DESIGN.md`; `auth/limit.rs`): one node only.
    #[default]
    Local,
    /// One bucket per principal (and tool) in Redis, shared by every node: the configured
    /// rates are the cluster-wide totals.
    Redis,
}

impl RateStore {
    /// The `store` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RateStore::Local => "local",
            RateStore::Redis => "redis",
        }
    }
}

/// `[rate_limit] on_store_error`: a request the store could not decide on.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnStoreError {
    /// Let it through unlimited (availability first; the default).
    #[default]
    Allow,
    /// Refuse it (503, `Retry-After: 1`).
    Deny,
}

/// `[rate_limit.tools]` entry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ToolLimit {
    /// Calls per second.
    pub requests_per_s: f64,
    /// Bucket size.
    #[serde(default = "one")]
    pub burst: u32,
}

fn one() -> u32 {
    1
}

/// `[audit]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSection {
    /// Write the audit log.
    pub enabled: bool,
    /// `-` for stdout, else a file.
    pub path: String,
    /// Rotate past this size.
    pub max_bytes: u64,
    /// Rotated files kept.
    pub keep: u32,
}

impl Default for AuditSection {
    fn default() -> Self {
        Self {
            enabled: false,
            path: "-".into(),
            max_bytes: 100 * 1024 * 1024,
            keep: 5,
        }
    }
}

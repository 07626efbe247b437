//! Who is calling: the API key or JWT of a request, checked against the snapshot's
//! [`SharedAuth`] and the current [`KeySet`], with a shard-local cache of verified tokens so
//! a signature is checked once per token and shard, not once per request.
//!
//! Every refusal is a 401 without detail an attacker could use beyond "why in general"
//! (expired, wrong audience, ...), except a valid token lacking a required scope (403, the
//! scope named, as RFC 6750 and the MCP spec ask). Tokens are taken from the
//! `Authorization: Bearer` header only; a token in the query string is refused outright.

use std::cell::RefCell;
use std::sync::Arc;

use hashbrown::HashMap;
use jsonwebtoken::{Algorithm, Validation};
use sha2::{Digest, Sha256};
use sonic_rs::{JsonContainerTrait, JsonValueTrait};

use super::keys::{parse_alg, KeySet};
use super::policy::Policy;
use crate::config::{AuthMode, AuthSection};

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// Its name (the key's `name`, the token's principal claim, or `anonymous`).
    pub name: Arc<str>,
    /// Its roles (sorted).
    pub roles: Arc<[String]>,
    /// The roles joined: the key of this principal's view of the catalog.
    pub view: Arc<str>,
}

impl Principal {
    /// A principal named `name` with `roles`.
    pub fn new(name: &str, mut roles: Vec<String>) -> Principal {
        roles.sort();
        roles.dedup();
        let view: Arc<str> = roles.join("\n").into();
        Principal {
            name: name.into(),
            roles: roles.into(),
            view,
        }
    }

    /// The caller when auth is off.
    pub fn anonymous() -> Principal {
        Principal::new("anonymous", Vec::new())
    }
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Denied {
    /// 401: no or bad credentials. `presented`: a token was sent (so `error="invalid_token"`).
    Unauthenticated {
        /// In general terms.
        why: &'static str,
        /// A token was presented.
        presented: bool,
    },
    /// 401 as well, and the key set should be refetched: the token names a key we lack.
    UnknownKid(String),
    /// 403: a valid token (of this principal) without every required scope.
    InsufficientScope(Arc<str>),
}

fn refuse(why: &'static str) -> Denied {
    Denied::Unauthenticated {
        why,
        presented: true,
    }
}

/// The JWT rules of the config, compiled.
#[derive(Debug)]
struct JwtRules {
    validations: Vec<(Algorithm, Validation)>,
    max_token_bytes: usize,
}

/// The config's auth, compiled once per snapshot.
#[derive(Debug)]
pub struct SharedAuth {
    /// How callers authenticate.
    pub mode: AuthMode,
    /// RBAC.
    pub policy: Policy,
    /// The RFC 9728 document (jwt mode).
    pub metadata: Option<Vec<u8>>,
    /// `WWW-Authenticate` of a 401 (without `error=`).
    pub challenge: String,
    /// `WWW-Authenticate` of a 403 insufficient_scope.
    pub scope_challenge: String,
    /// The caller when auth is off (and the stdio front's one local client): `anonymous`
    /// with `default_roles`, built once so a request without auth allocates nothing.
    pub anonymous: Principal,
    /// Unique per compilation: a token verified under another one (an older config, whose
    /// keys or roles may since have been removed) is verified again.
    generation: u64,
    api_keys: Vec<([u8; 32], Principal)>,
    jwt: Option<JwtRules>,
    required_scopes: Vec<String>,
    principal_claim: String,
    roles_path: Vec<String>,
}

impl SharedAuth {
    /// Compiles `[auth]` (the config is already validated).
    pub fn new(a: &AuthSection) -> SharedAuth {
        let api_keys = a
            .api_keys
            .iter()
            .filter_map(|k| {
                let mut d = [0u8; 32];
                for (i, b) in d.iter_mut().enumerate() {
                    *b = u8::from_str_radix(k.sha256.get(2 * i..2 * i + 2)?, 16).ok()?;
                }
                Some((d, Principal::new(&k.name, k.roles.clone())))
            })
            .collect();
        let jwt = a.jwt.as_ref().filter(|_| a.mode == AuthMode::Jwt).map(|j| {
            let mut auds: Vec<String> = a.resource.iter().cloned().collect();
            auds.extend(j.audience.iter().cloned());
            let validations = j
                .algorithms
                .iter()
                .filter_map(|s| parse_alg(s))
                .map(|alg| {
                    let mut v = Validation::new(alg);
                    v.leeway = j.leeway_s;
                    v.validate_nbf = true;
                    v.set_issuer(&[&j.issuer]);
                    v.set_audience(&auds);
                    v.set_required_spec_claims(&["exp", "iss", "aud"]);
                    (alg, v)
                })
                .collect();
            JwtRules {
                validations,
                max_token_bytes: j.max_token_bytes,
            }
        });
        let origin = a.resource.as_deref().map(origin_of).unwrap_or_default();
        let meta_url = format!("{origin}/.well-known/oauth-protected-resource/mcp");
        let scopes = a.required_scopes.join(" ");
        let (challenge, scope_challenge) = if a.mode == AuthMode::Jwt {
            let mut c = format!("Bearer resource_metadata=\"{meta_url}\"");
            if !scopes.is_empty() {
                c.push_str(&format!(", scope=\"{scopes}\""));
            }
            let s = format!(
                "Bearer error=\"insufficient_scope\", scope=\"{scopes}\", resource_metadata=\"{meta_url}\""
            );
            (c, s)
        } else {
            let c = "Bearer realm=\"only1mcp-uring\"".to_string();
            (c.clone(), c)
        };
        let metadata = (a.mode == AuthMode::Jwt).then(|| {
            let doc = MetadataDoc {
                resource: a.resource.clone().unwrap_or_default(),
                authorization_servers: a.authorization_servers.clone(),
                scopes_supported: a.scopes_supported.clone(),
                bearer_methods_supported: vec!["header".into()],
            };
            sonic_rs::to_vec(&doc).unwrap_or_default()
        });
        SharedAuth {
            mode: a.mode,
            policy: Policy::new(a),
            metadata,
            challenge,
            scope_challenge,
            api_keys,
            jwt,
            required_scopes: a.required_scopes.clone(),
            principal_claim: a.principal_claim.clone(),
            roles_path: a.roles_claim.split('.').map(str::to_string).collect(),
            anonymous: Principal::new("anonymous", a.default_roles.clone()),
            generation: {
                static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
                NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            },
        }
    }

    /// Whether requests must authenticate.
    pub fn required(&self) -> bool {
        self.mode != AuthMode::None
    }
}

#[derive(serde::Serialize)]
struct MetadataDoc {
    resource: String,
    authorization_servers: Vec<String>,
    scopes_supported: Vec<String>,
    bearer_methods_supported: Vec<String>,
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> String {
    let after = url.find("://").map_or(0, |i| i + 3);
    let end = url[after..].find('/').map_or(url.len(), |i| after + i);
    url[..end].to_string()
}

/// A verified token, until it expires or the key set changes.
struct Cached {
    principal: Principal,
    exp: u64,
    keys_version: u64,
    generation: u64,
}

/// Verified tokens, per shard.
#[derive(Default)]
pub struct LocalVerifier {
    cache: RefCell<HashMap<Box<[u8]>, Cached, ahash::RandomState>>,
}

/// Cached tokens per shard; the cache is cleared when it would grow past this.
const CACHE_MAX: usize = 10_000;

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Equal in time independent of where the inputs differ.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl LocalVerifier {
    /// The caller of a request with this `Authorization` header value and query string.
    pub fn authenticate(
        &self,
        auth: &SharedAuth,
        keys: &KeySet,
        authorization: Option<&[u8]>,
        query: Option<&[u8]>,
    ) -> Result<Principal, Denied> {
        if !auth.required() {
            return Ok(auth.anonymous.clone());
        }
        if query.is_some_and(|q| {
            q.split(|b| *b == b'&')
                .any(|p| p.starts_with(b"access_token="))
        }) {
            return Err(refuse(
                "tokens in the query string are refused; use the Authorization header",
            ));
        }
        let Some(value) = authorization else {
            return Err(Denied::Unauthenticated {
                why: "authentication required",
                presented: false,
            });
        };
        let token = match value.get(..7) {
            Some(p) if p.eq_ignore_ascii_case(b"bearer ") => value[7..].trim_ascii(),
            _ => return Err(refuse("expected `Authorization: Bearer <token>`")),
        };
        let max = auth.jwt.as_ref().map_or(8192, |j| j.max_token_bytes);
        if token.is_empty() || token.len() > max {
            return Err(refuse("token missing or too large"));
        }
        let now = now_s();
        if let Some(c) = self.cache.borrow().get(token) {
            if c.exp > now && c.keys_version == keys.version && c.generation == auth.generation {
                return Ok(c.principal.clone());
            }
        }
        let jwt_shaped = token.iter().filter(|b| **b == b'.').count() == 2;
        let (principal, exp) = match (&auth.jwt, jwt_shaped) {
            (Some(rules), true) => self.jwt(auth, rules, keys, token)?,
            _ => {
                let digest: [u8; 32] = Sha256::digest(token).into();
                let found = auth.api_keys.iter().find(|(d, _)| same(d, &digest));
                match found {
                    // A key does not expire; re-check it at least every hour anyway.
                    Some((_, p)) => (p.clone(), now + 3600),
                    None => return Err(refuse("invalid credentials")),
                }
            }
        };
        let mut cache = self.cache.borrow_mut();
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(
            token.into(),
            Cached {
                principal: principal.clone(),
                exp,
                keys_version: keys.version,
                generation: auth.generation,
            },
        );
        Ok(principal)
    }

    fn jwt(
        &self,
        auth: &SharedAuth,
        rules: &JwtRules,
        keys: &KeySet,
        token: &[u8],
    ) -> Result<(Principal, u64), Denied> {
        let text = std::str::from_utf8(token).map_err(|_| refuse("malformed token"))?;
        let header = jsonwebtoken::decode_header(text).map_err(|_| refuse("malformed token"))?;
        let Some((alg, validation)) = rules.validations.iter().find(|(a, _)| *a == header.alg)
        else {
            return Err(refuse("token algorithm not accepted"));
        };
        let Some(key) = keys.find(header.kid.as_deref(), *alg) else {
            return Err(match header.kid {
                Some(kid) if !keys.knows(&kid) => Denied::UnknownKid(kid),
                _ => refuse("no key for this token"),
            });
        };
        // Signature and registered claims are checked by jsonwebtoken (its own claim
        // parsing); the payload is then read here with sonic-rs for the configured claims.
        jsonwebtoken::decode::<serde::de::IgnoredAny>(text, key, validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            refuse(match e.kind() {
                K::ExpiredSignature => "token expired",
                K::ImmatureSignature => "token not valid yet",
                K::InvalidIssuer => "token issuer not accepted",
                K::InvalidAudience => "token not issued for this gateway (audience)",
                K::InvalidSignature => "token signature invalid",
                K::MissingRequiredClaim(_) => "token lacks a required claim",
                _ => "token invalid",
            })
        })?;
        let payload = text.split('.').nth(1).unwrap_or_default();
        let claims: sonic_rs::Value = {
            use base64::Engine;
            let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload.trim_end_matches('='))
                .map_err(|_| refuse("malformed token"))?;
            sonic_rs::from_slice(&raw).map_err(|_| refuse("malformed token"))?
        };
        let claims = &claims;
        let name = claims
            .get(auth.principal_claim.as_str())
            .and_then(|v| v.as_str())
            .ok_or(refuse("token does not name its principal"))?;
        let roles = claim_at(claims, &auth.roles_path)
            .map(strings)
            .unwrap_or_default();
        let scopes: Vec<String> = ["scope", "scp"]
            .iter()
            .filter_map(|k| claims.get(*k))
            .flat_map(strings)
            .collect();
        if !auth.required_scopes.iter().all(|s| scopes.contains(s)) {
            return Err(Denied::InsufficientScope(name.into()));
        }
        let exp = claims.get("exp").and_then(|v| v.as_u64()).unwrap_or(0);
        Ok((Principal::new(name, roles), exp))
    }
}

fn claim_at<'a>(claims: &'a sonic_rs::Value, path: &[String]) -> Option<&'a sonic_rs::Value> {
    let mut v = claims;
    for seg in path {
        v = v.get(seg.as_str())?;
    }
    Some(v)
}

/// A claim that is an array of strings or a space-separated string.
fn strings(v: &sonic_rs::Value) -> Vec<String> {
    if let Some(s) = v.as_str() {
        return s.split_whitespace().map(str::to_string).collect();
    }
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;

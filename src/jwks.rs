//! The token verification keys, kept current on the control side: static PEM keys and the
//! HS256 secret from the config, and the identity provider's JWKS fetched over HTTP(S) on
//! its own thread (`o1m-jwks`; it blocks on the network, which a shard never may). Each
//! change publishes one new immutable `KeySet` to every shard.
//!
//! The JWKS is refetched every `jwks_refresh_s`, and early when a shard meets a token whose
//! `kid` is unknown (key rotation), at most once per `jwks_min_refetch_s`: a flood of
//! tokens with made-up key ids costs the identity provider one request per interval.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use arc_swap::ArcSwap;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use jsonwebtoken::Algorithm;
use only1mcp_shards::auth::keys::{self, parse_alg, KeySet, SharedKeysSlot};
use only1mcp_shards::config::{AuthMode, Config};

/// What the key thread is asked to do.
pub enum KeysCmd {
    /// A token named this unknown `kid`.
    UnknownKid(String),
    /// The config was reloaded.
    Config(Arc<Config>),
}

/// The static part of the key set (PEM files, HS256 secret) and the allowed algorithms.
struct Static {
    allowed: Vec<Algorithm>,
    pems: Vec<(String, Algorithm, Vec<u8>)>,
    secret: Option<Vec<u8>>,
    jwks_url: Option<String>,
    refresh: Duration,
    min_refetch: Duration,
}

fn statics(cfg: &Config) -> anyhow::Result<Option<Static>> {
    let (AuthMode::Jwt, Some(j)) = (cfg.auth.mode, &cfg.auth.jwt) else {
        return Ok(None);
    };
    let allowed: Vec<Algorithm> = j.algorithms.iter().filter_map(|a| parse_alg(a)).collect();
    let mut pems = Vec::new();
    for k in &j.keys {
        let pem = std::fs::read(&k.pem_file)
            .with_context(|| format!("auth.jwt.keys `{}`: cannot read {}", k.kid, k.pem_file))?;
        let alg = parse_alg(&k.alg).context("auth.jwt.keys: bad alg")?;
        pems.push((k.kid.clone(), alg, pem));
    }
    let secret = match &j.secret_env {
        Some(var) if allowed.contains(&Algorithm::HS256) => {
            let s = std::env::var(var).with_context(|| {
                format!("auth.jwt.secret_env: environment variable {var} is not set")
            })?;
            anyhow::ensure!(
                s.len() >= 32,
                "the HS256 secret in {var} must be at least 32 bytes"
            );
            Some(s.into_bytes())
        }
        _ => None,
    };
    Ok(Some(Static {
        allowed,
        pems,
        secret,
        jwks_url: j.jwks_url.clone(),
        refresh: Duration::from_secs(j.jwks_refresh_s),
        min_refetch: Duration::from_secs(j.jwks_min_refetch_s),
    }))
}

/// Fetches a JWKS document (bounded size and time).
fn fetch(url: &str) -> Result<Vec<u8>, String> {
    let resp = ureq::get(url)
        .timeout(Duration::from_secs(5))
        .call()
        .map_err(|e| format!("GET {url}: {e}"))?;
    let mut body = Vec::new();
    use std::io::Read;
    resp.into_reader()
        .take(1024 * 1024)
        .read_to_end(&mut body)
        .map_err(|e| format!("GET {url}: {e}"))?;
    Ok(body)
}

fn publish(slot: &SharedKeysSlot, st: &Static, jwks: Option<&[u8]>) -> Result<usize, String> {
    if let Some(doc) = jwks {
        // What the identity provider sent: nesting bounded before the (recursive) parse.
        use only1mcp_shards::wire::scan;
        scan::check(doc, scan::max_depth())
            .map_err(|d| format!("JWKS is not acceptable JSON ({d:?})"))?;
    }
    let (keys, skipped) = keys::build(&st.allowed, &st.pems, jwks, st.secret.as_deref())?;
    for s in skipped {
        tracing::debug!("JWKS key skipped: {s}");
    }
    let n = keys.len();
    let version = slot.load().version + 1;
    slot.store(Arc::new(KeySet { version, keys }));
    Ok(n)
}

/// What [`initial_keys`] would refuse, without fetching the JWKS: unreadable or bad PEM key
/// files, a missing or short HS256 secret (`validate`).
pub fn check_static(cfg: &Config) -> anyhow::Result<()> {
    if let Some(st) = statics(cfg)? {
        keys::build(&st.allowed, &st.pems, None, st.secret.as_deref())
            .map_err(|e| anyhow::anyhow!("auth.jwt: {e}"))?;
    }
    Ok(())
}

/// The first key set (startup fails on unreadable key files or a missing secret; a JWKS
/// that cannot be fetched yet is retried by the key thread).
pub fn initial_keys(cfg: &Config) -> anyhow::Result<SharedKeysSlot> {
    let slot: SharedKeysSlot = Arc::new(ArcSwap::from_pointee(KeySet::default()));
    if let Some(st) = statics(cfg)? {
        let jwks = match &st.jwks_url {
            Some(url) => match fetch(url) {
                Ok(doc) => Some(doc),
                Err(e) => {
                    tracing::warn!(
                        "JWKS not fetched at startup ({e}); tokens are refused until it is"
                    );
                    None
                }
            },
            None => None,
        };
        let n = publish(&slot, &st, jwks.as_deref()).map_err(|e| anyhow::anyhow!(e))?;
        tracing::info!(keys = n, "token verification keys loaded");
    }
    Ok(slot)
}

/// Keeps the key set current until the control thread goes away.
pub fn spawn(cfg: &Config, slot: SharedKeysSlot, cmds: Receiver<KeysCmd>) -> anyhow::Result<()> {
    let mut st = statics(cfg)?;
    std::thread::Builder::new()
        .name("o1m-jwks".into())
        .stack_size(only1mcp_shards::rt::THREAD_STACK_BYTES)
        .spawn(move || crate::control::exit_on_panic("the JWKS fetcher", move || {
            let mut last_fetch = Instant::now();
            loop {
                let wait = st.as_ref().map_or(Duration::from_secs(3600), |s| s.refresh);
                let due = match cmds.recv_timeout(wait) {
                    Ok(KeysCmd::UnknownKid(kid)) => {
                        let min = st.as_ref().map_or(Duration::MAX, |s| s.min_refetch);
                        if last_fetch.elapsed() < min {
                            continue;
                        }
                        tracing::info!(kid = %kid, "token with an unknown key id: refetching the JWKS");
                        true
                    }
                    Ok(KeysCmd::Config(cfg)) => match statics(&cfg) {
                        Ok(s) => {
                            st = s;
                            true
                        }
                        Err(e) => {
                            tracing::error!("keys of the reloaded config not loaded, the old ones stay: {e:#}");
                            false
                        }
                    },
                    Err(RecvTimeoutError::Timeout) => true,
                    Err(RecvTimeoutError::Disconnected) => return,
                };
                let Some(s) = st.as_ref().filter(|_| due) else {
                    continue;
                };
                last_fetch = Instant::now();
                let doc = match &s.jwks_url {
                    Some(url) => match fetch(url) {
                        Ok(d) => Some(d),
                        Err(e) => {
                            tracing::warn!("JWKS refresh failed, the current keys stay: {e}");
                            continue;
                        }
                    },
                    None => None,
                };
                match publish(&slot, s, doc.as_deref()) {
                    Ok(n) => tracing::debug!(keys = n, "token verification keys refreshed"),
                    Err(e) => tracing::warn!("JWKS not usable, the current keys stay: {e}"),
                }
            }
        }))
        .context("cannot start the JWKS thread")?;
    Ok(())
}

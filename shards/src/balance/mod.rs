//! Replica selection for one backend on one shard: load balancers and circuit breakers.
//!
//! All state is shard-local (`Cell`/`RefCell`, no atomics, no locks): each shard balances its
//! own traffic, which is what a thread-per-core gateway can do without coordination. A pick
//! skips replicas whose breaker is open (and ones the caller marks unusable); if every
//! replica is excluded the pick fails, so the caller answers at once instead of waiting.
//!
//! # Key Components
//! - [`LocalBalancer`]: `round_robin`, `least_connections`, `consistent_hash`, `random`,
//!   `weighted_random`.
//! - [`breaker::LocalBreaker`]: closed → open after consecutive failures → half-open after a
//!   cool-down with a bounded number of trial requests → closed on success.

pub mod breaker;

use std::cell::Cell;

use serde::Deserialize;

/// Which balancer a backend uses.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Each replica in turn.
    #[default]
    RoundRobin,
    /// The replica with the fewest calls in flight (ties: the lowest index).
    LeastConnections,
    /// The same key always reaches the same replica (rendezvous hashing: when a replica
    /// leaves, only its keys move).
    ConsistentHash,
    /// Uniformly at random.
    Random,
    /// At random, in proportion to the replicas' weights.
    WeightedRandom,
}

/// The balancer of one backend on one shard.
#[derive(Debug)]
pub struct LocalBalancer {
    strategy: Strategy,
    weights: Vec<u32>,
    next: Cell<usize>,
    inflight: Vec<Cell<u32>>,
    rng: Cell<u64>,
}

fn mix(mut x: u64) -> u64 {
    // splitmix64 finalizer: good spread for hashing and as a PRNG step.
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl LocalBalancer {
    /// A balancer over `weights.len()` replicas (weights default to 1; 0 never picks).
    pub fn new(strategy: Strategy, weights: Vec<u32>, seed: u64) -> Self {
        let n = weights.len();
        LocalBalancer {
            strategy,
            weights,
            next: Cell::new(0),
            inflight: (0..n).map(|_| Cell::new(0)).collect(),
            rng: Cell::new(seed | 1),
        }
    }

    fn random(&self) -> u64 {
        let r = mix(self.rng.get());
        self.rng.set(r);
        r
    }

    /// Picks a replica among those `usable` says yes to; `key` is the affinity key for
    /// `consistent_hash` (e.g. a hash of the client's session id).
    pub fn pick(&self, key: u64, usable: impl Fn(usize) -> bool) -> Option<usize> {
        let n = self.weights.len();
        let ok = |i: usize| self.weights[i] > 0 && usable(i);
        match self.strategy {
            Strategy::RoundRobin => {
                let start = self.next.get();
                let i = (0..n).map(|k| (start + k) % n).find(|&i| ok(i))?;
                self.next.set(i + 1);
                Some(i)
            }
            Strategy::LeastConnections => (0..n)
                .filter(|&i| ok(i))
                .min_by_key(|&i| (self.inflight[i].get(), i)),
            Strategy::ConsistentHash => (0..n)
                .filter(|&i| ok(i))
                .max_by_key(|&i| mix(key ^ mix(i as u64 + 1))),
            Strategy::Random => {
                let live: Vec<usize> = (0..n).filter(|&i| ok(i)).collect();
                (!live.is_empty()).then(|| live[(self.random() % live.len() as u64) as usize])
            }
            Strategy::WeightedRandom => {
                let total: u64 = (0..n)
                    .filter(|&i| ok(i))
                    .map(|i| self.weights[i] as u64)
                    .sum();
                if total == 0 {
                    return None;
                }
                let mut r = self.random() % total;
                (0..n).filter(|&i| ok(i)).find(|&i| {
                    let w = self.weights[i] as u64;
                    if r < w {
                        true
                    } else {
                        r -= w;
                        false
                    }
                })
            }
        }
    }

    /// A call to replica `i` started (for `least_connections`).
    pub fn started(&self, i: usize) {
        self.inflight[i].set(self.inflight[i].get() + 1);
    }

    /// A call to replica `i` ended.
    pub fn ended(&self, i: usize) {
        self.inflight[i].set(self.inflight[i].get().saturating_sub(1));
    }

    /// Calls in flight on replica `i`.
    pub fn inflight(&self, i: usize) -> u32 {
        self.inflight[i].get()
    }
}

/// Hashes an affinity key (a session id, a header value) for `consistent_hash`.
pub fn affinity(key: &[u8]) -> u64 {
    crate::ring::hash_key(key)
}

/// What `consistent_hash` keys on (`balance_key` in the config).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum BalanceKey {
    /// The client's session id (2026 clients: the request id); the default.
    #[default]
    Session,
    /// A request header (lower-case name), e.g. a tenant or user id set by a front proxy.
    Header(String),
    /// A claim of the caller's bearer token (a JWT), e.g. `sub`.
    Claim(String),
}

impl BalanceKey {
    /// Parses `session`, `header:<name>` or `claim:<name>`.
    pub fn parse(s: &str) -> Result<BalanceKey, String> {
        let s = s.trim();
        let token = |v: &str| {
            !v.is_empty()
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b))
        };
        match s.split_once(':') {
            None if s == "session" => Ok(BalanceKey::Session),
            Some(("header", h)) if token(h) => Ok(BalanceKey::Header(h.to_ascii_lowercase())),
            Some(("claim", c)) if token(c) => Ok(BalanceKey::Claim(c.to_string())),
            _ => Err(format!(
                "`{s}` is not a balance key: use \"session\", \"header:<name>\" or \"claim:<name>\""
            )),
        }
    }

    /// A stable id for this key, to find its value among a request's [`AffinityValues`].
    pub fn id(&self) -> u64 {
        match self {
            BalanceKey::Session => 0,
            BalanceKey::Header(h) => affinity(format!("h:{h}").as_bytes()) | 1,
            BalanceKey::Claim(c) => affinity(format!("c:{c}").as_bytes()) | 1,
        }
    }
}

/// The hashed values of the balance keys some backend uses, taken from one request:
/// `(key id, value hash)`. Empty (no allocation) unless a backend is configured with a
/// header or claim key.
#[derive(Debug, Clone, Default)]
pub struct AffinityValues(pub Vec<(u64, u64)>);

impl AffinityValues {
    /// Reads every key in `keys` from the request head `head` (raw HTTP) and its bearer token.
    pub fn from_head(keys: &[BalanceKey], head: &[u8]) -> AffinityValues {
        if keys.is_empty() {
            return AffinityValues::default();
        }
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        if req.parse(head).is_err() {
            return AffinityValues::default();
        }
        let find = |name: &str| {
            req.headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| h.value)
        };
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            let value = match k {
                BalanceKey::Session => None,
                BalanceKey::Header(h) => find(h).map(|v| affinity(v.trim_ascii())),
                BalanceKey::Claim(c) => find("authorization")
                    .and_then(|v| claim(v, c))
                    .map(|v| affinity(v.as_bytes())),
            };
            if let Some(v) = value {
                out.push((k.id(), v));
            }
        }
        AffinityValues(out)
    }

    /// The value hash of key `id`, if the request had it.
    pub fn get(&self, id: u64) -> Option<u64> {
        self.0.iter().find(|(k, _)| *k == id).map(|(_, v)| *v)
    }
}

/// Claim `name` of a `Bearer <JWT>` authorization value, as text (strings as they are,
/// numbers and other JSON as written). The signature is not checked here: the value only
/// steers which replica serves the call, it grants nothing.
fn claim(authorization: &[u8], name: &str) -> Option<String> {
    use base64::Engine;
    use sonic_rs::JsonValueTrait;
    let v = std::str::from_utf8(authorization).ok()?.trim();
    let token = v
        .strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))?;
    let payload = token.split('.').nth(1)?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let value = sonic_rs::get(json.as_slice(), [name]).ok()?;
    Some(match value.as_str() {
        Some(s) => s.to_string(),
        None => value.as_raw_str().to_string(),
    })
}

#[cfg(test)]
mod tests;

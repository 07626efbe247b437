//! The gateway's own `requestState` (2026-07-28 multi-round-trip): what it is bound to, the
//! keys that sign it, and its wire form.
//!
//! When the gateway parks a 2025 backend's call on a 2026 client's input it hands the client
//! a state naming the parked call. The spec asks servers to bind such state to the request
//! it belongs to, so one request's state cannot resume another: the state carries an
//! HMAC-SHA256 tag over where the call is parked (node, process, shard, park number), an
//! expiry, the answers the client gave in earlier rounds, and a digest of the request's
//! method, tool/prompt name or resource URI, raw `arguments` bytes and caller (the
//! authenticated principal, `anonymous` without auth). The retry's own method, name,
//! arguments and caller are digested again, so any difference fails the tag check.
//!
//! Wire form: `o1m2.<node>.<process>.<shard>.<n>.<expiry unix s>.<answers>.<tag, 32 hex>`,
//! where `node` is `[cluster] node_id` (`_` outside a cluster), `process` is drawn once per
//! process (so a restarted node knows a state of its earlier life), and `answers` is the
//! base64url of the JSON array of the client's earlier answers (`!` when they were too big to
//! carry). The tag is made with the cluster's signing key and checked against every key of
//! the key file, so any node verifies any node's state, and a state signed with a retired
//! key is refused once the key leaves the file. A retry that reaches a node which does not
//! hold the parked call replays the call from the carried answers (`route/bridge.rs`).

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::cluster::SharedCluster;

/// `requestState` prefix of gateway-made states.
const PREFIX: &str = "o1m2.";
/// Bytes of the HMAC kept in the state.
const TAG_BYTES: usize = 16;
/// Domain separation from the other MACs made with the cluster key.
const DOMAIN: &[u8] = b"o1m-request-state\0";
/// The node field outside a cluster (not a valid node id).
const NO_NODE: &str = "_";
/// Most bytes of earlier answers a state carries (as JSON); beyond, it carries `!` and the
/// call can only be resumed where it is parked.
pub const MAX_CARRIED_BYTES: usize = 16 * 1024;

/// The digest a state is bound to: method, name, arguments and caller of one request.
pub type Binding = [u8; 32];

/// The client's earlier answers a state carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Carried {
    /// Every earlier answer, in order (empty in the first round).
    Answers(Vec<Vec<u8>>),
    /// Too big to carry: the call cannot be replayed elsewhere.
    TooBig,
}

/// A gateway state, parsed (not yet verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The node that parked the call (`None` outside a cluster).
    pub node: Option<String>,
    /// The process that parked it (see [`process`]).
    pub process: u32,
    /// The shard that parked the call.
    pub shard: usize,
    /// The parked call's number on that shard.
    pub n: u64,
    /// Unix seconds after which the state is refused.
    pub expires: u64,
    /// The answers field as sent (what the tag covers).
    answers_text: String,
    tag: [u8; TAG_BYTES],
}

/// Why a state was refused (each is the client's doing: -32602).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The tag does not match this request: another method, tool, arguments or caller, a
    /// tampered state, or one signed with a key that is no longer in the key file.
    NotThisRequest,
    /// Past its expiry.
    Expired,
}

impl Refused {
    /// The client-facing message.
    pub fn message(self) -> &'static str {
        match self {
            Refused::NotThisRequest => {
                "requestState does not belong to this request (it was issued for another method, tool, arguments or caller, was altered, or its key was retired)"
            }
            Refused::Expired => "requestState has expired; send the request again without it",
        }
    }
}

/// This process's number in states: drawn once, so a node restarted under the same id tells
/// its earlier life's states from its own.
pub fn process() -> u32 {
    static P: OnceLock<u32> = OnceLock::new();
    *P.get_or_init(|| u32::from_le_bytes(crate::cluster::random_bytes::<4>()))
}

/// The binding of a request: SHA-256 over its method, name (tool or prompt name, resource
/// URI), raw `params.arguments` bytes (empty when absent) and caller, each length-prefixed.
pub fn binding(method: &str, name: &str, arguments: &[u8], principal: &str) -> Binding {
    let mut h = Sha256::new();
    for part in [
        method.as_bytes(),
        name.as_bytes(),
        arguments,
        principal.as_bytes(),
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    h.finalize().into()
}

/// The binding of a 2026 request body (`tools/call`, `prompts/get` or `resources/read`).
pub fn binding_of(
    body: &[u8],
    env: &crate::wire::jsonrpc::Envelope<'_>,
    principal: &str,
) -> Binding {
    let method = env.method.as_deref().unwrap_or("");
    let name = if method == "resources/read" {
        env.uri_str.as_deref()
    } else {
        env.name_str.as_deref()
    };
    let args = sonic_rs::get(body, ["params", "arguments"]).ok();
    let args = args
        .as_ref()
        .map_or(&b""[..], |v| v.as_raw_str().as_bytes());
    binding(method, name.unwrap_or(""), args, principal)
}

/// The signed fields, length-prefixed.
struct Fields<'a> {
    node: &'a str,
    process: u32,
    shard: u64,
    n: u64,
    expires: u64,
    answers: &'a str,
}

impl Fields<'_> {
    fn mac_input(&self, bind: &Binding) -> Vec<u8> {
        let mut m = Vec::with_capacity(96 + self.node.len() + self.answers.len());
        for part in [self.node.as_bytes(), self.answers.as_bytes()] {
            m.extend_from_slice(&(part.len() as u64).to_le_bytes());
            m.extend_from_slice(part);
        }
        m.extend_from_slice(&self.process.to_le_bytes());
        m.extend_from_slice(&self.shard.to_le_bytes());
        m.extend_from_slice(&self.n.to_le_bytes());
        m.extend_from_slice(&self.expires.to_le_bytes());
        m.extend_from_slice(bind);
        m
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The answers field for `given` (each a JSON value).
fn answers_field(given: &[Vec<u8>]) -> String {
    let len = given.iter().map(|a| a.len() + 1).sum::<usize>() + 1;
    if len > MAX_CARRIED_BYTES {
        return "!".into();
    }
    let mut json = Vec::with_capacity(len);
    json.push(b'[');
    for (i, a) in given.iter().enumerate() {
        if i > 0 {
            json.push(b',');
        }
        json.extend_from_slice(a);
    }
    json.push(b']');
    URL_SAFE_NO_PAD.encode(json)
}

/// A state for parked call `n` of `shard` on this node, bound to `bind`, valid for `ttl`,
/// carrying the client's earlier answers `given`.
pub fn mint(
    cluster: &SharedCluster,
    shard: usize,
    n: u64,
    bind: &Binding,
    given: &[Vec<u8>],
    ttl: Duration,
) -> String {
    mint_at(cluster, shard, n, bind, given, unix_now() + ttl.as_secs())
}

fn mint_at(
    cluster: &SharedCluster,
    shard: usize,
    n: u64,
    bind: &Binding,
    given: &[Vec<u8>],
    expires: u64,
) -> String {
    let node = cluster.node.as_deref().unwrap_or(NO_NODE);
    let answers = answers_field(given);
    let f = Fields {
        node,
        process: process(),
        shard: shard as u64,
        n,
        expires,
        answers: &answers,
    };
    let mac = cluster.keys.signer().sign(&[DOMAIN, &f.mac_input(bind)]);
    let mut s = format!(
        "{PREFIX}{node}.{:08x}.{shard}.{n}.{expires}.{answers}.",
        f.process
    );
    for b in &mac[..TAG_BYTES] {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Does this `requestState` claim to be the gateway's (then it must verify)?
pub fn is_ours(s: &str) -> bool {
    s.starts_with(PREFIX)
}

/// Parses a gateway state; `None` when it is malformed.
pub fn parse(s: &str) -> Option<Parsed> {
    let mut it = s.strip_prefix(PREFIX)?.split('.');
    let node = it.next()?;
    let node = match node {
        NO_NODE => None,
        n if crate::cluster::valid_node_id(n) => Some(n.to_string()),
        _ => return None,
    };
    let process = it.next()?;
    if process.len() != 8 {
        return None;
    }
    let process = u32::from_str_radix(process, 16).ok()?;
    let shard = it.next()?.parse().ok()?;
    let n = it.next()?.parse().ok()?;
    let expires = it.next()?.parse().ok()?;
    let answers_text = it.next()?;
    if answers_text.len() > MAX_CARRIED_BYTES * 4 / 3 + 4 {
        return None;
    }
    let hex = it.next()?.as_bytes();
    if it.next().is_some() || hex.len() != TAG_BYTES * 2 {
        return None;
    }
    let mut tag = [0u8; TAG_BYTES];
    for (i, pair) in hex.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        tag[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(Parsed {
        node,
        process,
        shard,
        n,
        expires,
        answers_text: answers_text.to_string(),
        tag,
    })
}

/// Checks a parsed state against the retry's binding under every key (constant time per
/// key), then its expiry.
pub fn verify(cluster: &SharedCluster, p: &Parsed, bind: &Binding) -> Result<(), Refused> {
    verify_at(cluster, p, bind, unix_now())
}

fn verify_at(cluster: &SharedCluster, p: &Parsed, bind: &Binding, now: u64) -> Result<(), Refused> {
    let f = Fields {
        node: p.node.as_deref().unwrap_or(NO_NODE),
        process: p.process,
        shard: p.shard as u64,
        n: p.n,
        expires: p.expires,
        answers: &p.answers_text,
    };
    if !cluster.keys.verifies(&[DOMAIN, &f.mac_input(bind)], &p.tag) {
        return Err(Refused::NotThisRequest);
    }
    if now > p.expires {
        return Err(Refused::Expired);
    }
    Ok(())
}

impl Parsed {
    /// Was the call parked by this very process (the node and its current life)?
    pub fn parked_here(&self, cluster: &SharedCluster) -> bool {
        self.node.as_deref() == cluster.node.as_deref() && self.process == process()
    }

    /// The earlier answers the state carries (only meaningful once verified: then they are
    /// the gateway's own bytes, each one JSON value).
    pub fn carried(&self) -> Carried {
        if self.answers_text == "!" {
            return Carried::TooBig;
        }
        let Ok(json) = URL_SAFE_NO_PAD.decode(&self.answers_text) else {
            return Carried::TooBig;
        };
        // Verified states carry the gateway's own bytes; the depth bound holds anyway.
        if crate::wire::scan::check(&json, crate::wire::scan::max_depth()).is_err() {
            return Carried::TooBig;
        }
        let Ok(items) = sonic_rs::from_slice::<Vec<sonic_rs::LazyValue<'_>>>(&json) else {
            return Carried::TooBig;
        };
        Carried::Answers(
            items
                .iter()
                .map(|v| v.as_raw_str().as_bytes().to_vec())
                .collect(),
        )
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;

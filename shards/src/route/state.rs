//! The gateway's own `requestState` (2026-07-28 multi-round-trip): what it is bound to, the
//! key that signs it, and its wire form.
//!
//! When the gateway parks a 2025 backend's call on a 2026 client's input it hands the client
//! a state naming the parked call. The spec asks servers to bind such state to the request
//! it belongs to, so one request's state cannot resume another: the state carries an
//! HMAC-SHA256 tag over the owner shard, the parked call's number, an expiry, and a digest
//! of the request's method, tool/prompt name or resource URI, raw `arguments` bytes and
//! caller (the authenticated principal, `anonymous` without auth). The retry's own method,
//! name, arguments and caller are digested again, so any difference fails the tag check.
//! Wire form: `o1m1.<shard>.<n>.<expiry unix s>.<tag, 32 hex>`.
//!
//! The key is process-wide and lives only here (`key`): a state minted on one shard is
//! checked on whichever shard the retry lands on, before it is handed to the owner.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

/// `requestState` prefix of gateway-made states.
const PREFIX: &str = "o1m1.";
/// Bytes of the HMAC kept in the state.
const TAG_BYTES: usize = 16;

/// The digest a state is bound to: method, name, arguments and caller of one request.
pub type Binding = [u8; 32];

/// A gateway state, parsed (not yet verified).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    /// The shard that parked the call.
    pub shard: usize,
    /// The parked call's number on that shard.
    pub n: u64,
    /// Unix seconds after which the state is refused.
    pub expires: u64,
    tag: [u8; TAG_BYTES],
}

/// Why a state was refused (each is the client's doing: -32602).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The tag does not match this request: another method, tool, arguments or caller, or a
    /// tampered state.
    NotThisRequest,
    /// Past its expiry.
    Expired,
}

impl Refused {
    /// The client-facing message.
    pub fn message(self) -> &'static str {
        match self {
            Refused::NotThisRequest => {
                "requestState does not belong to this request (it was issued for another method, tool, arguments or caller, or was altered)"
            }
            Refused::Expired => "requestState has expired; send the request again without it",
        }
    }
}

/// The signing key: 32 random bytes drawn once per process. The one place to change when
/// the key becomes a cluster key.
fn key() -> &'static [u8; 32] {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut b = [0u8; 32];
        let mut filled = 0;
        while filled < b.len() {
            // SAFETY: writes at most the remaining bytes of our buffer.
            let n =
                unsafe { libc::getrandom(b[filled..].as_mut_ptr().cast(), b.len() - filled, 0) };
            if n > 0 {
                filled += n as usize;
            }
        }
        b
    })
}

/// HMAC-SHA256 (RFC 2104) with a key of at most 64 bytes.
fn hmac(key: &[u8], msg: &[&[u8]]) -> [u8; 32] {
    let mut ipad = [0x36u8; 64];
    let mut opad = [0x5cu8; 64];
    for (i, k) in key.iter().take(64).enumerate() {
        ipad[i] ^= k;
        opad[i] ^= k;
    }
    let mut inner = Sha256::new();
    inner.update(ipad);
    for part in msg {
        inner.update(part);
    }
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(opad);
    outer.update(inner);
    outer.finalize().into()
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

fn tag(shard: usize, n: u64, expires: u64, bind: &Binding) -> [u8; TAG_BYTES] {
    let mac = hmac(
        key(),
        &[
            &(shard as u64).to_le_bytes(),
            &n.to_le_bytes(),
            &expires.to_le_bytes(),
            bind,
        ],
    );
    let mut t = [0u8; TAG_BYTES];
    t.copy_from_slice(&mac[..TAG_BYTES]);
    t
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A state for parked call `n` of `shard`, bound to `bind`, valid for `ttl`.
pub fn mint(shard: usize, n: u64, bind: &Binding, ttl: Duration) -> String {
    mint_at(shard, n, bind, unix_now() + ttl.as_secs())
}

fn mint_at(shard: usize, n: u64, bind: &Binding, expires: u64) -> String {
    let t = tag(shard, n, expires, bind);
    let mut s = format!("{PREFIX}{shard}.{n}.{expires}.");
    for b in t {
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
    let shard = it.next()?.parse().ok()?;
    let n = it.next()?.parse().ok()?;
    let expires = it.next()?.parse().ok()?;
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
        shard,
        n,
        expires,
        tag,
    })
}

/// Checks a parsed state against the retry's binding (constant time), then its expiry.
pub fn verify(p: &Parsed, bind: &Binding) -> Result<(), Refused> {
    verify_at(p, bind, unix_now())
}

fn verify_at(p: &Parsed, bind: &Binding, now: u64) -> Result<(), Refused> {
    let want = tag(p.shard, p.n, p.expires, bind);
    let diff = want
        .iter()
        .zip(p.tag.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if diff != 0 {
        return Err(Refused::NotThisRequest);
    }
    if now > p.expires {
        return Err(Refused::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2.
        let mac = hmac(b"Jefe", &[b"what do ya ", b"want for nothing?"]);
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_state_verifies_only_for_its_own_binding_and_before_expiry() {
        let bind = binding("tools/call", "ask", br#"{"q":1}"#, "alice");
        let s = mint_at(3, 42, &bind, 1_000);
        assert!(is_ours(&s));
        let p = parse(&s).unwrap();
        assert_eq!((p.shard, p.n, p.expires), (3, 42, 1_000));
        assert_eq!(verify_at(&p, &bind, 999), Ok(()));
        assert_eq!(verify_at(&p, &bind, 1_001), Err(Refused::Expired));
        for other in [
            binding("prompts/get", "ask", br#"{"q":1}"#, "alice"),
            binding("tools/call", "ask2", br#"{"q":1}"#, "alice"),
            binding("tools/call", "ask", br#"{"q":2}"#, "alice"),
            binding("tools/call", "ask", br#"{"q":1}"#, "bob"),
            // Length prefixes: moving bytes between fields changes the binding.
            binding("tools/call", "as", br#"k{"q":1}"#, "alice"),
        ] {
            assert_eq!(verify_at(&p, &other, 999), Err(Refused::NotThisRequest));
        }
        // Any edit of the visible fields breaks the tag.
        for edited in [
            s.replace(".42.", ".43."),
            s.replace(".1000.", ".9000."),
            s.replacen("o1m1.3", "o1m1.2", 1),
        ] {
            let p = parse(&edited).unwrap();
            assert_eq!(verify_at(&p, &bind, 999), Err(Refused::NotThisRequest));
        }
    }

    #[test]
    fn malformed_states_do_not_parse() {
        for s in [
            "o1m1.",
            "o1m1.0.1.2",
            "o1m1.0.1.2.zz",
            "o1m1.0.1.2.00112233445566778899aabbccddeeff.x",
            "o1m1.x.1.2.00112233445566778899aabbccddeeff",
            "other",
        ] {
            assert_eq!(parse(s), None, "{s}");
        }
    }
}

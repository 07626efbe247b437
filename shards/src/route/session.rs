//! Shard-local MCP sessions and session-id minting.
//!
//! A session lives on exactly one shard: the one the consistent-hash ring assigns its id to.
//! A shard mints ids by drawing 128 random bits until the ring maps the id to itself
//! (expected `shards` draws), so the shard that answered `initialize` owns the session and
//! requests on the same connection never move. Ids are 32 lowercase hex chars: visible ASCII
//! as the spec requires, and unguessable. The table of a shard's sessions, with its caps,
//! is [`crate::route::session_table`].

use std::time::Instant;

use ahash::RandomState;

use crate::ring::Ring;

pub use crate::route::session_table::LocalSessionTable;

/// What a client declared it can do (server-to-client requests are relayed only then).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientCaps {
    /// `sampling`
    pub sampling: bool,
    /// `elicitation`
    pub elicitation: bool,
    /// `roots`
    pub roots: bool,
}

impl ClientCaps {
    /// The raw `params.capabilities` object of an `initialize` body (`{}` when absent).
    pub fn raw(body: &[u8]) -> Vec<u8> {
        use sonic_rs::JsonValueTrait;
        sonic_rs::get(body, ["params", "capabilities"])
            .ok()
            .filter(|v| v.is_object())
            .map(|v| v.as_raw_str().as_bytes().to_vec())
            .unwrap_or_else(|| b"{}".to_vec())
    }

    /// Reads `params.capabilities` of an `initialize` request body.
    pub fn from_initialize(body: &[u8]) -> ClientCaps {
        use sonic_rs::JsonValueTrait;
        let has = |k: &str| {
            sonic_rs::get(body, ["params", "capabilities", k]).is_ok_and(|v| v.is_object())
        };
        ClientCaps {
            sampling: has("sampling"),
            elicitation: has("elicitation"),
            roots: has("roots"),
        }
    }

    /// Does the client support the server-to-client request `method`?
    pub fn allows(&self, method: &str) -> bool {
        match method {
            "sampling/createMessage" => self.sampling,
            "elicitation/create" => self.elicitation,
            "roots/list" => self.roots,
            _ => false,
        }
    }
}

/// One client session.
#[derive(Debug, Clone)]
pub struct LocalSession {
    /// The protocol version negotiated at initialize.
    pub version: &'static str,
    /// When it was created.
    pub created: Instant,
    /// The client's declared capabilities.
    pub caps: ClientCaps,
    /// The same, as the client sent them (declared verbatim to per-client upstreams).
    pub caps_json: Vec<u8>,
    /// Last request seen (idle sessions expire).
    pub last_seen: Instant,
    /// The input of the session's standalone GET stream relay, if one was opened.
    pub get_stream: Option<futures_channel::mpsc::UnboundedSender<Vec<u8>>>,
    /// That stream's number (for `Last-Event-ID` and the one-stream rule).
    pub get_stream_no: Option<u64>,
    /// Resource URIs (as the client sees them) this session subscribed to.
    pub subscriptions: hashbrown::HashSet<String, RandomState>,
    /// The principal that created it; another principal's requests get 404 (auth on).
    pub principal: Option<std::sync::Arc<str>>,
    /// The client sent something after its handshake (a request, a GET stream): a session
    /// never used may be evicted to make room under `server.max_sessions`.
    pub used: bool,
}

impl LocalSession {
    /// The session may be used by `principal`: the one that opened it, or anyone when it was
    /// opened without authentication.
    pub fn owned_by(&self, principal: &str) -> bool {
        self.principal
            .as_deref()
            .is_none_or(|owner| owner == principal)
    }

    /// A new session with no stream and no subscriptions.
    pub fn new(version: &'static str, caps: ClientCaps, caps_json: Vec<u8>) -> Self {
        LocalSession {
            version,
            created: Instant::now(),
            caps,
            caps_json,
            last_seen: Instant::now(),
            get_stream: None,
            get_stream_no: None,
            subscriptions: Default::default(),
            principal: None,
            used: false,
        }
    }
}

fn random_128() -> [u8; 16] {
    let mut b = [0u8; 16];
    let mut filled = 0;
    while filled < b.len() {
        // SAFETY: writes at most the remaining bytes of our buffer.
        let n = unsafe { libc::getrandom(b[filled..].as_mut_ptr().cast(), b.len() - filled, 0) };
        if n > 0 {
            filled += n as usize;
        }
    }
    b
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Mints a fresh id owned by `shard` on `ring`.
pub fn mint_id(ring: &Ring, shard: usize) -> String {
    loop {
        let id = hex(&random_128());
        if ring.owner(id.as_bytes()) == shard {
            return id;
        }
    }
}

/// Is `id` shaped like an id we could have minted (cheap reject of garbage)?
pub fn well_formed(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_ids_land_on_their_shard() {
        let ring = Ring::new(4);
        for shard in 0..4 {
            for _ in 0..20 {
                let id = mint_id(&ring, shard);
                assert!(well_formed(&id));
                assert_eq!(ring.owner(id.as_bytes()), shard);
            }
        }
    }

    #[test]
    fn ids_are_unique() {
        let ring = Ring::new(1);
        let a = mint_id(&ring, 0);
        let b = mint_id(&ring, 0);
        assert_ne!(a, b);
    }
}

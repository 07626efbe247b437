//! Shard-local MCP sessions.
//!
//! A session lives on exactly one shard: the one the consistent-hash ring assigns its id to.
//! A shard mints ids (`crate::cluster::session_id`: 128 random bits, and in a cluster the
//! node's id and a MAC) until the ring maps the id to itself (expected `shards` draws), so
//! the shard that answered `initialize` owns the session and requests on the same connection
//! never move. The table of a shard's sessions, with its caps, is
//! [`crate::route::session_table`].

use std::time::Instant;

use ahash::RandomState;

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

    /// The capabilities among `raw` (a client's `capabilities` object) the gateway can
    /// bridge from a 2026 backend's `input_required` (`elicitation`, `sampling`, `roots`),
    /// verbatim, as one `clientCapabilities` object; `None` when the client declared none.
    pub fn bridged(raw: &[u8]) -> Option<std::sync::Arc<[u8]>> {
        use sonic_rs::JsonValueTrait;
        let mut out = b"{".to_vec();
        for key in ["elicitation", "sampling", "roots"] {
            let Some(v) = sonic_rs::get(raw, [key]).ok().filter(|v| v.is_object()) else {
                continue;
            };
            if out.len() > 1 {
                out.push(b',');
            }
            out.push(b'"');
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(b"\":");
            out.extend_from_slice(v.as_raw_str().as_bytes());
        }
        out.push(b'}');
        (out.len() > 2).then(|| out.into())
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
    /// What a 2026 backend is told this client can answer ([`ClientCaps::bridged`]).
    pub input_caps: Option<std::sync::Arc<[u8]>>,
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
    /// The tasks it created, oldest first (at most `MAX_SESSION_TASKS`): its `tasks/list`,
    /// and where a backend's status notification for one of them goes.
    pub tasks: std::collections::VecDeque<crate::route::tables::tasks::SessionTask>,
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
            input_caps: ClientCaps::bridged(&caps_json),
            caps_json,
            last_seen: Instant::now(),
            get_stream: None,
            get_stream_no: None,
            subscriptions: Default::default(),
            principal: None,
            used: false,
            tasks: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ClientCaps;

    #[test]
    fn only_the_bridgeable_capabilities_are_kept_verbatim() {
        let raw = br#"{"experimental":{"x":{}},"roots":{"listChanged":true},"elicitation":{"form":{},"url":{}},"tasks":{}}"#;
        let got = ClientCaps::bridged(raw).unwrap();
        assert_eq!(
            std::str::from_utf8(&got).unwrap(),
            r#"{"elicitation":{"form":{},"url":{}},"roots":{"listChanged":true}}"#
        );
        assert!(ClientCaps::bridged(br#"{"experimental":{}}"#).is_none());
        assert!(ClientCaps::bridged(br#"{"sampling":true}"#).is_none());
        assert!(ClientCaps::bridged(b"{}").is_none());
    }
}

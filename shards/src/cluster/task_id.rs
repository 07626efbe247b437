//! The task ids the gateway hands clients: a backend's own task id, namespaced and bound to
//! the client it was created for.
//!
//! A backend's task id means something only to that backend, and only to the replica (HTTP)
//! or process (stdio) that made it; and a shared upstream session lists every client's tasks.
//! So the gateway never shows it: the client gets `<node>.<body>.<tag>`, where
//!
//! - `node` is `[cluster] node_id` (`_` outside a cluster), first, so a balancer can route
//!   `tasks/*` by the first field of `Mcp-Name` as it routes sessions by `Mcp-Session-Id`;
//! - `body` (base64url) holds the server id, the replica or instance index, the epoch of the
//!   upstream that ran it (a stdio child's pid, a 2025 upstream session; 0 for a stateless
//!   2026 replica), when it was created, when the gateway stops honouring it, and the
//!   backend's task id;
//! - `tag` is a 128-bit HMAC-SHA256 under the cluster's signing key over node and body *and
//!   the owner*: the 2025 session id, or the 2026 caller (the authenticated principal), which
//!   are not in the id. Every key of the key file verifies.
//!
//! [`open`] refuses, all alike, an id that is malformed, forged, altered, signed with a
//! retired key or another process's key, presented by anyone but its owner, or past its
//! expiry: the caller answers each exactly like an id it never issued. No table is needed
//! to tell which backend, replica and node a task belongs to, or whose it is.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::SharedCluster;

/// Domain separation from the other MACs made with the cluster keys.
const DOMAIN: &[u8] = b"o1m-task-id\0";
/// Bytes of the HMAC kept in the id.
const TAG_BYTES: usize = 16;
/// The node field outside a cluster (not a valid node id).
const NO_NODE: &str = "_";
const VERSION: u8 = 1;
/// Tag of the optional [`TaskRef::to_modern`] mark after the backend's id.
const TO_MODERN: u8 = 1;
/// Tag of the optional [`TaskRef::bridged`] field after the backend's id.
const BRIDGED: u8 = b'b';
/// Longest backend task id the gateway carries (a longer one is refused at creation).
pub const MAX_BACKEND_TASK_ID: usize = 512;
/// Longest server id carried (config ids are far shorter).
const MAX_SERVER_ID: usize = 255;
/// Longest id [`open`] reads.
const MAX_ID: usize = 2048;

/// Whom a task belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner<'a> {
    /// A 2025 client: its session id.
    Session(&'a str),
    /// A 2026 client: its principal (`anonymous` without auth).
    Principal(&'a str),
}

impl Owner<'_> {
    fn kind(&self) -> &'static [u8] {
        match self {
            Owner::Session(_) => b"s\0",
            Owner::Principal(_) => b"p\0",
        }
    }

    fn name(&self) -> &[u8] {
        match self {
            Owner::Session(s) | Owner::Principal(s) => s.as_bytes(),
        }
    }
}

/// What a gateway task id names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRef {
    /// The backend (config id).
    pub server: String,
    /// Replica (HTTP) or instance (stdio) index.
    pub replica: u32,
    /// The upstream that ran it (see the module docs); 0 = not known.
    pub epoch: u64,
    /// When the gateway saw it created, Unix milliseconds.
    pub created_ms: u64,
    /// Unix seconds after which the gateway no longer honours the id.
    pub expires: u64,
    /// The backend's own task id.
    pub backend_task: String,
    /// A 2025 client's task carried to a backend that speaks only 2026-07-28
    /// (`route/tasks/to_modern.rs`); with an empty `backend_task`, a plain answer the
    /// gateway holds itself. Encoded as one trailing byte, only when set: other ids are
    /// unchanged.
    pub to_modern: bool,
    /// A 2026 caller's task on a backend reached through its 2025 session
    /// (`route/tasks/to_legacy.rs`): the shard whose upstream session created it, where its
    /// follow-ups run. `None` for a task of the caller's own era. Encoded after the backend's
    /// id (tag `b`), so ids without it read as before.
    pub bridged: Option<u16>,
}

/// A verified id: what it names, and the node that minted it (`None` outside a cluster).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The node field (`None`: minted outside a cluster).
    pub node: Option<String>,
    /// What the id names.
    pub task: TaskRef,
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn body_bytes(t: &TaskRef) -> Option<Vec<u8>> {
    if t.server.len() > MAX_SERVER_ID || t.backend_task.len() > MAX_BACKEND_TASK_ID {
        return None;
    }
    let mut b = Vec::with_capacity(32 + t.server.len() + t.backend_task.len());
    b.push(VERSION);
    b.extend_from_slice(&t.created_ms.to_le_bytes());
    b.extend_from_slice(&t.expires.to_le_bytes());
    b.extend_from_slice(&t.epoch.to_le_bytes());
    b.extend_from_slice(&t.replica.to_le_bytes());
    b.push(t.server.len() as u8);
    b.extend_from_slice(t.server.as_bytes());
    b.extend_from_slice(&(t.backend_task.len() as u16).to_le_bytes());
    b.extend_from_slice(t.backend_task.as_bytes());
    if t.to_modern {
        b.push(TO_MODERN);
    }
    if let Some(shard) = t.bridged {
        b.push(BRIDGED);
        b.extend_from_slice(&shard.to_le_bytes());
    }
    Some(b)
}

fn parse_body(b: &[u8]) -> Option<TaskRef> {
    let mut at = 0usize;
    let mut take = |n: usize| {
        let s = b.get(at..at.checked_add(n)?)?;
        at += n;
        Some(s)
    };
    if take(1)? != [VERSION] {
        return None;
    }
    let u64_of = |s: &[u8]| u64::from_le_bytes(s.try_into().unwrap_or_default());
    let created_ms = u64_of(take(8)?);
    let expires = u64_of(take(8)?);
    let epoch = u64_of(take(8)?);
    let replica = u32::from_le_bytes(take(4)?.try_into().ok()?);
    let n = take(1)?[0] as usize;
    let server = std::str::from_utf8(take(n)?).ok()?.to_string();
    let n = u16::from_le_bytes(take(2)?.try_into().ok()?) as usize;
    let backend_task = std::str::from_utf8(take(n)?).ok()?.to_string();
    // Optional trailers, each a tag byte, in this order; ids without them read as before.
    let to_modern = b.get(at) == Some(&TO_MODERN);
    if to_modern {
        at += 1;
    }
    let bridged = match b.get(at) {
        Some(&BRIDGED) => {
            at += 1;
            let s = b.get(at..at + 2)?;
            at += 2;
            Some(u16::from_le_bytes([s[0], s[1]]))
        }
        _ => None,
    };
    if at != b.len() {
        return None;
    }
    Some(TaskRef {
        server,
        replica,
        epoch,
        created_ms,
        expires,
        backend_task,
        to_modern,
        bridged,
    })
}

fn tag_parts<'a>(node: &'a str, body: &'a str, owner: &'a Owner<'a>) -> [&'a [u8]; 6] {
    [
        DOMAIN,
        node.as_bytes(),
        b".",
        body.as_bytes(),
        owner.kind(),
        owner.name(),
    ]
}

/// The id of `task` for `owner`, signed with the cluster's signing key; `None` when the
/// backend's id (or the server id) is too long to carry.
pub fn mint(cluster: &SharedCluster, task: &TaskRef, owner: Owner<'_>) -> Option<String> {
    let node = cluster.node.as_deref().unwrap_or(NO_NODE);
    let body = URL_SAFE_NO_PAD.encode(body_bytes(task)?);
    let mac = cluster.keys.signer().sign(&tag_parts(node, &body, &owner));
    let mut id = String::with_capacity(node.len() + body.len() + 2 + 22);
    id.push_str(node);
    id.push('.');
    id.push_str(&body);
    id.push('.');
    URL_SAFE_NO_PAD.encode_string(&mac[..TAG_BYTES], &mut id);
    Some(id)
}

/// Opens an id presented by `owner` (module docs). `None`: the gateway must answer as for a
/// task it does not know.
pub fn open(cluster: &SharedCluster, id: &str, owner: Owner<'_>) -> Option<Opened> {
    open_at(cluster, id, owner, now_ms() / 1000)
}

fn open_at(cluster: &SharedCluster, id: &str, owner: Owner<'_>, now: u64) -> Option<Opened> {
    if id.len() > MAX_ID {
        return None;
    }
    let mut f = id.split('.');
    let (Some(node), Some(body), Some(tag), None) = (f.next(), f.next(), f.next(), f.next()) else {
        return None;
    };
    if node != NO_NODE && !super::valid_node_id(node) {
        return None;
    }
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    if tag.len() != TAG_BYTES || !cluster.keys.verifies(&tag_parts(node, body, &owner), &tag) {
        return None;
    }
    let task = parse_body(&URL_SAFE_NO_PAD.decode(body).ok()?)?;
    if now > task.expires {
        return None;
    }
    Some(Opened {
        node: (node != NO_NODE).then(|| node.to_string()),
        task,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::KeyRing;

    fn cluster(node: Option<&str>, keys: &[(&str, u8)]) -> SharedCluster {
        let text: String = keys
            .iter()
            .map(|(kid, fill)| {
                format!(
                    "{kid} {}\n",
                    base64::engine::general_purpose::STANDARD.encode([*fill; 32])
                )
            })
            .collect();
        let ring = KeyRing::parse(&text).unwrap();
        match node {
            Some(n) => SharedCluster::node(n, ring),
            None => SharedCluster {
                node: None,
                keys: ring,
            },
        }
    }

    fn task() -> TaskRef {
        TaskRef {
            server: "fixture".into(),
            replica: 2,
            epoch: 4242,
            created_ms: 1_700_000_000_123,
            expires: 1_700_000_300,
            backend_task: "786512e2-9e0d-44bd-8f29-789f320fe840".into(),
            to_modern: false,
            bridged: None,
        }
    }

    #[test]
    fn an_id_opens_for_its_owner_only() {
        let g1 = cluster(Some("g1"), &[("k", 1)]);
        let me = Owner::Session("s1");
        let id = mint(&g1, &task(), me).unwrap();
        assert!(id.starts_with("g1."), "{id}");
        let opened = open_at(&g1, &id, me, 1_700_000_100).unwrap();
        assert_eq!(opened.node.as_deref(), Some("g1"));
        assert_eq!(opened.task, task());
        // Another session, a principal of the same name, the wrong key: all refused alike.
        assert!(open_at(&g1, &id, Owner::Session("s2"), 1_700_000_100).is_none());
        assert!(open_at(&g1, &id, Owner::Principal("s1"), 1_700_000_100).is_none());
        let other = cluster(Some("g1"), &[("k", 9)]);
        assert!(open_at(&other, &id, me, 1_700_000_100).is_none());
        // Past its expiry.
        assert!(open_at(&g1, &id, me, 1_700_000_301).is_none());
    }

    #[test]
    fn altered_or_malformed_ids_are_refused() {
        let solo = cluster(None, &[("k", 3)]);
        let me = Owner::Principal("alice");
        let id = mint(&solo, &task(), me).unwrap();
        assert!(id.starts_with("_."));
        assert!(open_at(&solo, &id, me, 0).is_some());
        // Every single-character change of the body or tag.
        for i in 2..id.len() {
            let mut b = id.clone().into_bytes();
            if b[i] == b'.' {
                continue;
            }
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(b).unwrap();
            assert!(open_at(&solo, &changed, me, 0).is_none(), "{changed}");
        }
        // The node field rewritten: the tag covers it.
        assert!(open_at(&solo, &id.replacen("_", "g2", 1), me, 0).is_none());
        for bad in ["", "a", "a.b", "a.b.c.d", "_.!!.AAAA", &"x".repeat(5000)] {
            assert!(open_at(&solo, bad, me, 0).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_retired_key_stops_verifying_and_a_new_one_keeps_old_ids() {
        let me = Owner::Session("s");
        let before = cluster(Some("g1"), &[("old", 1)]);
        let id = mint(&before, &task(), me).unwrap();
        let both = cluster(Some("g1"), &[("new", 2), ("old", 1)]);
        assert!(open_at(&both, &id, me, 0).is_some());
        let after = cluster(Some("g1"), &[("new", 2)]);
        assert!(open_at(&after, &id, me, 0).is_none());
    }

    #[test]
    fn a_task_carried_to_a_2026_backend_says_so_and_others_keep_their_encoding() {
        let solo = cluster(None, &[("k", 3)]);
        let me = Owner::Session("s");
        let plain = mint(&solo, &task(), me).unwrap();
        let mut t = task();
        t.to_modern = true;
        let bridged = mint(&solo, &t, me).unwrap();
        assert_eq!(open_at(&solo, &bridged, me, 0).unwrap().task, t);
        assert!(!open_at(&solo, &plain, me, 0).unwrap().task.to_modern);
        // One byte more in the body, nothing else: the ids of other tasks are as before.
        let body = |id: &str| {
            URL_SAFE_NO_PAD
                .decode(id.split('.').nth(1).unwrap())
                .unwrap()
        };
        let (a, b) = (body(&plain), body(&bridged));
        assert_eq!(b.len(), a.len() + 1);
        assert_eq!(&b[..a.len()], &a[..]);
        // Any other trailing byte is refused.
        let mut bad = a.clone();
        bad.push(2);
        assert!(parse_body(&bad).is_none());
    }

    #[test]
    fn too_long_backend_ids_are_not_carried() {
        let solo = cluster(None, &[("k", 3)]);
        let mut t = task();
        t.backend_task = "x".repeat(MAX_BACKEND_TASK_ID + 1);
        assert!(mint(&solo, &t, Owner::Session("s")).is_none());
        t.backend_task = "é".repeat(MAX_BACKEND_TASK_ID / 2);
        let id = mint(&solo, &t, Owner::Session("s")).unwrap();
        assert_eq!(open_at(&solo, &id, Owner::Session("s"), 0).unwrap().task, t);
    }

    #[test]
    fn a_bridged_task_names_its_shard_and_plain_ids_read_as_before() {
        let solo = cluster(None, &[("k", 3)]);
        let me = Owner::Principal("p");
        let plain = mint(&solo, &task(), me).unwrap();
        let mut t = task();
        t.bridged = Some(3);
        let id = mint(&solo, &t, me).unwrap();
        assert_eq!(open_at(&solo, &id, me, 0).unwrap().task.bridged, Some(3));
        assert_eq!(open_at(&solo, &plain, me, 0).unwrap().task.bridged, None);
        // A truncated or unknown trailer is malformed.
        let mut b = body_bytes(&t).unwrap();
        b.pop();
        assert!(parse_body(&b).is_none());
        b.push(0);
        b.push(0);
        assert!(parse_body(&b).is_none());
        let mut b = body_bytes(&task()).unwrap();
        b.push(b'x');
        assert!(parse_body(&b).is_none());
    }
}

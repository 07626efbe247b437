//! 2025-era session ids that say which node minted them, and whether it really did.
//!
//! In a cluster an id is `<node_id>.<random>.<mac>`: 128 random bits and a 96-bit HMAC-SHA256
//! over node id and random part under the cluster's signing key, both base64url. The balancer
//! routes on the first field; a node looks an id up in its own table first (so a request of
//! a live session costs no MAC), and only an id it does not hold is classified, to answer
//! 404 and count why: another node's ([`Verdict::Foreign`]), not minted by any node of the
//! cluster ([`Verdict::Forged`]), not an id at all ([`Verdict::Malformed`]), or its own but
//! ended, expired or from before a restart ([`Verdict::Unknown`]). Outside a cluster ids are
//! 32 lowercase hex characters, as before.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::{random_bytes, valid_node_id, SharedCluster};
use crate::ring::Ring;

/// Characters of the random part (16 bytes).
const RANDOM_CHARS: usize = 22;
/// Characters of the MAC (12 bytes = 96 bits).
const MAC_CHARS: usize = 16;
const MAC_BYTES: usize = 12;
/// Domain separation: a session-id MAC can never pass as any other MAC of the gateway.
const DOMAIN: &[u8] = b"o1m-session-id\0";

/// Why an id the node does not hold is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Minted by this node (ended, expired, or from before a restart).
    Unknown,
    /// Minted by another node of the cluster.
    Foreign,
    /// Shaped like a cluster id, but no key of the cluster made its MAC.
    Forged,
    /// Not shaped like any id this gateway mints.
    Malformed,
}

impl Verdict {
    /// Every verdict, in the order of [`Verdict::index`].
    pub const ALL: [Verdict; 4] = [
        Verdict::Unknown,
        Verdict::Foreign,
        Verdict::Forged,
        Verdict::Malformed,
    ];

    /// Its slot in a per-verdict counter array.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Unknown => "unknown",
            Verdict::Foreign => "foreign",
            Verdict::Forged => "forged",
            Verdict::Malformed => "malformed",
        }
    }
}

/// Mints a fresh id owned by `shard` on `ring` (drawn until the ring maps it there).
pub fn mint(cluster: &SharedCluster, ring: &Ring, shard: usize) -> String {
    loop {
        let id = match cluster.node.as_deref() {
            Some(node) => mint_cluster(cluster, node),
            None => hex(&random_bytes::<16>()),
        };
        if ring.owner(id.as_bytes()) == shard {
            return id;
        }
    }
}

fn mint_cluster(cluster: &SharedCluster, node: &str) -> String {
    let mut id = String::with_capacity(node.len() + 2 + RANDOM_CHARS + MAC_CHARS);
    id.push_str(node);
    id.push('.');
    URL_SAFE_NO_PAD.encode_string(random_bytes::<16>(), &mut id);
    let mac = cluster.keys.signer().sign(&[
        DOMAIN,
        node.as_bytes(),
        b".",
        &id.as_bytes()[node.len() + 1..],
    ]);
    id.push('.');
    URL_SAFE_NO_PAD.encode_string(&mac[..MAC_BYTES], &mut id);
    id
}

/// Why this node does not hold `id` (called only after a table miss).
pub fn classify(cluster: &SharedCluster, id: &str) -> Verdict {
    let Some(node) = cluster.node.as_deref() else {
        return if id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Verdict::Unknown
        } else {
            Verdict::Malformed
        };
    };
    let mut parts = id.split('.');
    let (Some(their), Some(random), Some(mac), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Verdict::Malformed;
    };
    let b64 = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !valid_node_id(their) || !b64(random, RANDOM_CHARS) || !b64(mac, MAC_CHARS) {
        return Verdict::Malformed;
    }
    let Ok(tag) = URL_SAFE_NO_PAD.decode(mac) else {
        return Verdict::Malformed;
    };
    if !cluster
        .keys
        .verifies(&[DOMAIN, their.as_bytes(), b".", random.as_bytes()], &tag)
    {
        return Verdict::Forged;
    }
    if their == node {
        Verdict::Unknown
    } else {
        Verdict::Foreign
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::KeyRing;

    fn node(id: &str, keys: &[(&str, u8)]) -> SharedCluster {
        let text: String = keys
            .iter()
            .map(|(kid, fill)| {
                format!(
                    "{kid} {}\n",
                    base64::engine::general_purpose::STANDARD.encode([*fill; 32])
                )
            })
            .collect();
        SharedCluster::node(id, KeyRing::parse(&text).unwrap())
    }

    #[test]
    fn cluster_ids_have_three_fields_and_land_on_their_shard() {
        let g1 = node("g1", &[("k", 1)]);
        let ring = Ring::new(4);
        for shard in 0..4 {
            let id = mint(&g1, &ring, shard);
            assert_eq!(ring.owner(id.as_bytes()), shard);
            let f: Vec<&str> = id.split('.').collect();
            assert_eq!(f[0], "g1");
            assert_eq!((f[1].len(), f[2].len()), (RANDOM_CHARS, MAC_CHARS));
            assert_eq!(classify(&g1, &id), Verdict::Unknown);
        }
    }

    #[test]
    fn other_nodes_ids_are_foreign_and_forgeries_are_caught() {
        let g1 = node("g1", &[("k", 1)]);
        let g2 = node("g2", &[("k", 1)]);
        let ring = Ring::new(1);
        let theirs = mint(&g2, &ring, 0);
        assert_eq!(classify(&g1, &theirs), Verdict::Foreign);
        // The node field rewritten to ours: the MAC covers it.
        let stolen = theirs.replacen("g2", "g1", 1);
        assert_eq!(classify(&g1, &stolen), Verdict::Forged);
        // Another cluster's key.
        let elsewhere = node("g2", &[("k", 9)]);
        assert_eq!(classify(&g1, &mint(&elsewhere, &ring, 0)), Verdict::Forged);
        // One character of the MAC changed.
        let mut bytes = theirs.clone().into_bytes();
        let last = bytes.len() - 1;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            classify(&g1, &String::from_utf8(bytes).unwrap()),
            Verdict::Forged
        );
    }

    #[test]
    fn rotation_keeps_old_ids_until_the_key_leaves() {
        let ring = Ring::new(1);
        let before = node("g1", &[("old", 1)]);
        let id = mint(&before, &ring, 0);
        let rotated = node("g1", &[("new", 2), ("old", 1)]);
        assert_eq!(classify(&rotated, &id), Verdict::Unknown);
        let retired = node("g1", &[("new", 2)]);
        assert_eq!(classify(&retired, &id), Verdict::Forged);
    }

    #[test]
    fn garbage_is_malformed() {
        let g1 = node("g1", &[("k", 1)]);
        let ring = Ring::new(1);
        let good = mint(&g1, &ring, 0);
        let long = "a".repeat(10_000);
        let truncated = &good[..good.len() - 3];
        for bad in [
            "",
            "g1",
            "g1..",
            truncated,
            &format!("{good}.x"),
            &long,
            "G1.AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAA",
            "g1.AAAAAAAAAAAAAAAAAAAAA*.AAAAAAAAAAAAAAAA",
            "0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(classify(&g1, bad), Verdict::Malformed, "{bad:?}");
        }
    }

    #[test]
    fn solo_ids_are_hex() {
        let solo = SharedCluster::solo();
        let id = mint(&solo, &Ring::new(2), 1);
        assert_eq!(id.len(), 32);
        assert_eq!(classify(&solo, &id), Verdict::Unknown);
        assert_eq!(classify(&solo, "g1.x.y"), Verdict::Malformed);
    }
}

//! HMAC-SHA256 (RFC 2104) with the key's pads absorbed once.
//!
//! The cluster key signs session ids and `requestState`s. Checking a MAC is on the request
//! path (a `requestState` retry, an unknown session id), so each key keeps the SHA-256 states
//! after its inner and outer pad: one MAC then costs two compressions of the message and one
//! of the inner digest, no key schedule per call.

use sha2::{Digest, Sha256};

/// One key, ready to sign.
#[derive(Clone)]
pub struct MacKey {
    inner: Sha256,
    outer: Sha256,
}

impl std::fmt::Debug for MacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Key material never reaches a log line, not even its pads.
        f.write_str("MacKey(..)")
    }
}

impl MacKey {
    /// A key of any length (longer than a SHA-256 block: hashed first, as RFC 2104 says).
    pub fn new(key: &[u8]) -> MacKey {
        let hashed;
        let key = if key.len() > 64 {
            hashed = Sha256::digest(key);
            &hashed[..]
        } else {
            key
        };
        let mut ipad = [0x36u8; 64];
        let mut opad = [0x5cu8; 64];
        for (i, k) in key.iter().enumerate() {
            ipad[i] ^= k;
            opad[i] ^= k;
        }
        let mut inner = Sha256::new();
        inner.update(ipad);
        let mut outer = Sha256::new();
        outer.update(opad);
        MacKey { inner, outer }
    }

    /// HMAC-SHA256 over the concatenation of `parts`.
    pub fn sign(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut inner = self.inner.clone();
        for p in parts {
            inner.update(p);
        }
        let mut outer = self.outer.clone();
        outer.update(inner.finalize());
        outer.finalize().into()
    }
}

/// Compares two tags in time independent of where they differ.
pub fn same_tag(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn rfc4231_case_2() {
        let k = MacKey::new(b"Jefe");
        let mac = k.sign(&[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn rfc4231_case_6_long_key() {
        let key = [0xaau8; 131];
        let mac =
            MacKey::new(&key).sign(&[b"Test Using Larger Than Block-Size Key - Hash Key First"]);
        assert_eq!(
            hex(&mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn tags_compare() {
        assert!(same_tag(b"abc", b"abc"));
        assert!(!same_tag(b"abc", b"abd"));
        assert!(!same_tag(b"abc", b"ab"));
    }

    #[test]
    fn debug_shows_no_key() {
        let k = MacKey::new(b"super-secret-key-material-0123456789");
        assert_eq!(format!("{k:?}"), "MacKey(..)");
    }
}

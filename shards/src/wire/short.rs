//! Short owned bytes and strings kept inline: a client's JSON-RPC id, a session id, a
//! protocol version. A call keeps owned copies of these for as long as it runs (its answer
//! is built after the request buffer is gone), and they are almost always a few dozen bytes:
//! inline they cost no allocation per call. Longer values (a client may send any id up to
//! the body limit) spill to the heap as a `Vec` would.

use smallvec::SmallVec;

/// Inline capacity of [`ShortBytes`]: JSON-RPC ids are numbers or short strings.
pub const SHORT_BYTES: usize = 24;
/// Inline capacity of [`ShortStr`]: the gateway's session ids and header values.
pub const SHORT_STR: usize = 64;

/// Owned bytes, inline up to [`SHORT_BYTES`].
pub type ShortBytes = SmallVec<[u8; SHORT_BYTES]>;

/// An owned UTF-8 string, inline up to [`SHORT_STR`] bytes. Hashes as its `str` does, as
/// `Borrow<str>` requires (a map keyed by it is looked up by `&str`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ShortStr(SmallVec<[u8; SHORT_STR]>);

impl std::hash::Hash for ShortStr {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl ShortStr {
    /// A copy of `s`.
    pub fn new(s: &str) -> ShortStr {
        ShortStr(SmallVec::from_slice(s.as_bytes()))
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        // SAFETY: built only from `&str` (`new`, `From`), never mutated byte-wise.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    /// Is it stored on the heap (longer than [`SHORT_STR`])?
    pub fn spilled(&self) -> bool {
        self.0.spilled()
    }
}

impl std::ops::Deref for ShortStr {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::borrow::Borrow<str> for ShortStr {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for ShortStr {
    fn from(s: &str) -> ShortStr {
        ShortStr::new(s)
    }
}

impl From<String> for ShortStr {
    fn from(s: String) -> ShortStr {
        ShortStr::new(&s)
    }
}

impl PartialEq<str> for ShortStr {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ShortStr {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Debug for ShortStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for ShortStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_hashes_as_its_str_so_a_map_finds_it_by_str() {
        use std::hash::BuildHasher;
        let h = std::collections::hash_map::RandomState::new();
        assert_eq!(h.hash_one(ShortStr::new("sid-1")), h.hash_one("sid-1"));
        let mut m = std::collections::HashMap::new();
        m.insert(ShortStr::new("sid-1"), 7);
        assert_eq!(m.get("sid-1"), Some(&7));
    }

    #[test]
    fn a_session_id_stays_inline_and_reads_back() {
        let sid = "0123456789abcdef0123456789abcdef";
        let s = ShortStr::new(sid);
        assert!(!s.spilled());
        assert_eq!(&*s, sid);
        assert_eq!(s, sid);
        assert_eq!(format!("{s}|{s:?}"), format!("{sid}|{sid:?}"));
    }

    #[test]
    fn a_long_value_spills_and_stays_whole() {
        let long = "é".repeat(SHORT_STR);
        let s = ShortStr::from(long.clone());
        assert!(s.spilled());
        assert_eq!(s.as_str(), long);
        let e = ShortStr::default();
        assert!(!e.spilled());
        assert_eq!(e.as_str(), "");
    }

    #[test]
    fn a_numeric_id_fits_inline() {
        let id: ShortBytes = ShortBytes::from_slice(b"123456789");
        assert!(!id.spilled());
        assert_eq!(&id[..], b"123456789");
        let big = ShortBytes::from_slice(&[b'7'; SHORT_BYTES + 1]);
        assert!(big.spilled());
        assert_eq!(big.len(), SHORT_BYTES + 1);
    }
}

//! The cluster key file: which keys sign and verify, read on start and on every reload.
//!
//! One key per line, `<key_id> <base64 key>`; blank lines and `#` comments are skipped. The
//! first key signs, every key verifies, so a key is rotated in three reloads: add the new key
//! second, make it first, remove the old one (`docs/fleet.md`). A key is at least 32 bytes
//! (standard or URL-safe base64, padded or not). Errors name the file and the line and never
//! the key material; [`KeyRing`]'s `Debug` shows key ids only.

use std::collections::HashSet;
use std::path::Path;

use base64::Engine;

use super::mac::MacKey;

/// Shortest key accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 32;
/// Longest key accepted, in bytes (a bigger one is a mistake, not more security).
pub const MAX_KEY_BYTES: usize = 1024;
/// Most keys in one file.
pub const MAX_KEYS: usize = 16;
/// Largest key file read.
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// The keys of the file, the signing key first.
#[derive(Clone)]
pub struct KeyRing {
    keys: Vec<(String, MacKey)>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("KeyRing").field("ids", &ids).finish()
    }
}

/// What is wrong with a key file, at which line (0: the file as a whole).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct KeyFileError {
    /// 1-based line, or 0.
    pub line: usize,
    /// What is wrong; never contains key material.
    pub message: String,
}

fn at(line: usize, message: impl Into<String>) -> KeyFileError {
    KeyFileError {
        line,
        message: message.into(),
    }
}

impl KeyRing {
    /// One key (the process-wide key of a gateway outside a cluster, and tests).
    pub fn single(id: &str, key: &[u8]) -> KeyRing {
        KeyRing {
            keys: vec![(id.to_string(), MacKey::new(key))],
        }
    }

    /// Parses a key file's text.
    pub fn parse(text: &str) -> Result<KeyRing, KeyFileError> {
        let mut keys = Vec::new();
        let mut seen = HashSet::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let l = raw.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let mut fields = l.split_whitespace();
            let (Some(id), Some(b64), None) = (fields.next(), fields.next(), fields.next()) else {
                return Err(at(line, "expected `<key_id> <base64 key>`"));
            };
            if id.is_empty()
                || id.len() > 32
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(at(
                    line,
                    "key id must be 1-32 characters of letters, digits, `-` and `_`",
                ));
            }
            if !seen.insert(id.to_string()) {
                return Err(at(line, format!("duplicate key id `{id}`")));
            }
            let key = decode(b64).ok_or_else(|| {
                at(
                    line,
                    format!("key `{id}` is not valid base64 (standard or URL-safe)"),
                )
            })?;
            if key.len() < MIN_KEY_BYTES {
                return Err(at(
                    line,
                    format!(
                        "key `{id}` is {} bytes; at least {MIN_KEY_BYTES} are needed (head -c 32 /dev/urandom | base64)",
                        key.len()
                    ),
                ));
            }
            if key.len() > MAX_KEY_BYTES {
                return Err(at(
                    line,
                    format!("key `{id}` is longer than {MAX_KEY_BYTES} bytes"),
                ));
            }
            if keys.len() == MAX_KEYS {
                return Err(at(line, format!("more than {MAX_KEYS} keys")));
            }
            keys.push((id.to_string(), MacKey::new(&key)));
        }
        if keys.is_empty() {
            return Err(at(
                0,
                "no key in the file (lines of `<key_id> <base64 key>`)",
            ));
        }
        Ok(KeyRing { keys })
    }

    /// Reads and parses `path`; the second value is a warning to log (permissions).
    pub fn load(path: &Path) -> Result<(KeyRing, Option<String>), KeyFileError> {
        let meta = std::fs::metadata(path).map_err(|e| at(0, format!("cannot read: {e}")))?;
        if !meta.is_file() {
            return Err(at(0, "not a regular file"));
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(at(0, format!("larger than {MAX_FILE_BYTES} bytes")));
        }
        let text = std::fs::read_to_string(path).map_err(|e| at(0, format!("cannot read: {e}")))?;
        let ring = KeyRing::parse(&text)?;
        Ok((ring, permission_warning(&meta)))
    }

    /// The key that signs.
    pub fn signer(&self) -> &MacKey {
        &self.keys[0].1
    }

    /// Every key, the signer first.
    pub fn all(&self) -> impl Iterator<Item = &MacKey> {
        self.keys.iter().map(|(_, k)| k)
    }

    /// The key ids, in file order (logged on load and reload; never the keys).
    pub fn ids(&self) -> Vec<&str> {
        self.keys.iter().map(|(id, _)| id.as_str()).collect()
    }

    /// Does `tag` (a MAC truncated to its length) match `parts` under any key?
    pub fn verifies(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        // Every key is tried whatever the outcome, so timing tells nothing about which.
        self.all().fold(false, |ok, k| {
            let mac = k.sign(parts);
            super::mac::same_tag(&mac[..tag.len().min(32)], tag) | ok
        })
    }
}

fn decode(b64: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let cfg = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let standard = GeneralPurpose::new(&base64::alphabet::STANDARD, cfg);
    let url = GeneralPurpose::new(&base64::alphabet::URL_SAFE, cfg);
    standard.decode(b64).or_else(|_| url.decode(b64)).ok()
}

/// A warning when the file is readable or writable by group or others.
fn permission_warning(meta: &std::fs::Metadata) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    (mode & 0o077 != 0)
        .then(|| format!("mode {mode:04o} lets other users read the cluster keys; chmod 600 it"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // 32 bytes
    const K2: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA"; // 32 bytes, no padding

    #[test]
    fn first_key_signs_every_key_verifies() {
        let ring = KeyRing::parse(&format!("# rotated 2026-12\nnew {K2}\n\nold {K1}\n")).unwrap();
        assert_eq!(ring.ids(), ["new", "old"]);
        let old = KeyRing::parse(&format!("old {K1}\n")).unwrap();
        let by_old = old.signer().sign(&[b"x"]);
        assert!(
            ring.verifies(&[b"x"], &by_old[..12]),
            "the second key verifies"
        );
        let by_new = ring.signer().sign(&[b"x"]);
        assert!(
            !old.verifies(&[b"x"], &by_new[..12]),
            "a retired key's ring refuses"
        );
    }

    #[test]
    fn errors_name_the_line_and_never_the_key() {
        let short = "c2hvcnQ="; // "short"
        let cases = [
            (format!("a {K1}\nb {short}\n"), 2, "at least 32"),
            (format!("a {K1}\nb not*base64!\n"), 2, "not valid base64"),
            (format!("a {K1}\na {K2}\n"), 2, "duplicate key id `a`"),
            ("only-an-id\n".to_string(), 1, "expected"),
            (format!("a {K1} extra\n"), 1, "expected"),
            (format!("bad/id {K1}\n"), 1, "key id"),
            ("# nothing\n\n".to_string(), 0, "no key"),
        ];
        for (text, line, want) in cases {
            let e = KeyRing::parse(&text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e:?}");
            assert!(e.message.contains(want), "{text:?}: {}", e.message);
            assert!(
                !e.message.contains(K1) && !e.message.contains(K2) && !e.message.contains(short)
            );
        }
    }

    #[test]
    fn debug_shows_ids_only() {
        let ring = KeyRing::parse(&format!("k1 {K1}\n")).unwrap();
        let dbg = format!("{ring:?}");
        assert!(dbg.contains("k1") && !dbg.contains(K1), "{dbg}");
    }

    #[test]
    fn load_warns_on_loose_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("o1m-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("keys");
        std::fs::write(&p, format!("k1 {K1}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (_, warn) = KeyRing::load(&p).unwrap();
        assert!(warn.unwrap().contains("0644"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(KeyRing::load(&p).unwrap().1, None);
        assert!(KeyRing::load(&dir.join("missing")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! MCP header values: a value that is not plain visible ASCII travels as `=?base64?…?=`
//! (2026-07-28, `Mcp-Name` and `Mcp-Param-*`); this decodes it strictly, encodes what the
//! gateway sends backends, and says which bytes a field value may hold at all.

use std::borrow::Cow;

const PREFIX: &str = "=?base64?";
const SUFFIX: &str = "?=";

/// May `v` travel as is? Visible ASCII and inner spaces only (no edge whitespace, which
/// HTTP strips), and not shaped like the sentinel (a literal `=?base64?…?=` is encoded too,
/// so it cannot be read as one).
fn plain(v: &str) -> bool {
    let visible = v.bytes().all(|b| (0x20..0x7f).contains(&b));
    let edge_space = v.starts_with(' ') || v.ends_with(' ');
    let sentinel_shaped = v.starts_with(PREFIX) && v.ends_with(SUFFIX);
    visible && !edge_space && !sentinel_shaped
}

/// A header value for `v` as the spec's clients write it: `v` itself when it is plain,
/// else `=?base64?…?=` of its UTF-8.
pub fn encode_value(v: &str) -> Cow<'_, str> {
    if plain(v) {
        Cow::Borrowed(v)
    } else {
        Cow::Owned(base64_sentinel(v.as_bytes()))
    }
}

/// `=?base64?…?=` of `data` (standard alphabet, padded).
pub fn base64_sentinel(data: &[u8]) -> String {
    use base64::Engine;
    let mut s = String::with_capacity(11 + data.len().div_ceil(3) * 4);
    s.push_str(PREFIX);
    base64::engine::general_purpose::STANDARD.encode_string(data, &mut s);
    s.push_str(SUFFIX);
    s
}

/// Is `v` a field value an MCP header may carry (RFC 9110 5.5 without obs-text: visible
/// ASCII, space and tab)? A value with other bytes is refused, not decoded.
pub fn field_value_ok(v: &[u8]) -> bool {
    v.iter().all(|&b| b == b'\t' || (0x20..0x7f).contains(&b))
}

/// Decodes `=?base64?…?=` header values (strictly), else returns the value as is.
pub fn header_value(v: &str) -> Option<String> {
    match v.strip_prefix(PREFIX).and_then(|r| r.strip_suffix(SUFFIX)) {
        Some(b64) => decode_base64(b64).and_then(|b| String::from_utf8(b).ok()),
        None => Some(v.to_string()),
    }
}

/// Standard alphabet, padding required; unused trailing bits tolerated (as the values
/// clients send are, and as the spec's examples do not forbid).
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    use base64::engine::{
        general_purpose::GeneralPurposeConfig, DecodePaddingMode, GeneralPurpose,
    };
    use base64::Engine;
    const STRICT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
    );
    STRICT.decode(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_header_values_decode_strictly() {
        assert_eq!(
            header_value("=?base64?SGVsbG8=?=").as_deref(),
            Some("Hello")
        );
        assert_eq!(header_value("plain").as_deref(), Some("plain"));
        assert_eq!(header_value("=?base64?SGVsbG8?="), None, "bad padding");
        assert_eq!(
            header_value("=?base64?SGVsbG8==?="),
            None,
            "too much padding"
        );
        assert_eq!(header_value("=?base64?SGVs=bG8=?="), None, "padding inside");
        assert_eq!(
            header_value("=?base64?SGVsbG9=?=").as_deref(),
            Some("Hello"),
            "unused trailing bits tolerated"
        );
        assert_eq!(header_value("=?base64?/w==?="), None, "not UTF-8");
        assert_eq!(
            header_value("=?base64?SGVs!!!bG8=?="),
            None,
            "bad characters"
        );
        assert_eq!(
            header_value("=?base64?SGVsbG8=").as_deref(),
            Some("=?base64?SGVsbG8="),
            "no suffix: literal"
        );
    }

    #[test]
    fn values_are_encoded_as_the_spec_table_says() {
        // The table of "Value Encoding" (2026-07-28 transports) and SEP-2243's edge cases.
        for (value, header) in [
            ("us-west1", "us-west1"),
            ("us west 1", "us west 1"),
            ("", ""),
            ("Hello, 世界", "=?base64?SGVsbG8sIOS4lueVjA==?="),
            (" padded ", "=?base64?IHBhZGRlZCA=?="),
            (" us-west1", "=?base64?IHVzLXdlc3Qx?="),
            ("us-west1 ", "=?base64?dXMtd2VzdDEg?="),
            ("line1\nline2", "=?base64?bGluZTEKbGluZTI=?="),
            ("line1\r\nline2", "=?base64?bGluZTENCmxpbmUy?="),
            ("\tindented", "=?base64?CWluZGVudGVk?="),
            ("日本語", "=?base64?5pel5pys6Kqe?="),
            ("=?base64?literal?=", "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?="),
        ] {
            assert_eq!(encode_value(value), header, "{value:?}");
            assert_eq!(header_value(header).as_deref(), Some(value), "{header:?}");
        }
        // Only one marker: literal, sent as is.
        assert_eq!(encode_value("=?base64?x"), "=?base64?x");
    }

    #[test]
    fn field_values_are_visible_ascii_space_and_tab() {
        assert!(field_value_ok(b"us-west1 \t=?base64?x?="));
        assert!(field_value_ok(b""));
        for bad in [&b"caf\xc3\xa9"[..], b"a\x7fb", b"a\x00b", b"\x80"] {
            assert!(!field_value_ok(bad), "{bad:?}");
        }
    }
}

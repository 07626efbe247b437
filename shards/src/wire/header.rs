//! MCP header values: a value that is not plain visible ASCII travels as `=?base64?…?=`
//! (2026-07-28, `Mcp-Name` and `Mcp-Param-*`); this decodes it strictly.

/// Decodes `=?base64?…?=` header values (strictly), else returns the value as is.
pub fn header_value(v: &str) -> Option<String> {
    match v
        .strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
    {
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
}

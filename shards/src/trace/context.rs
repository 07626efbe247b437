//! W3C Trace Context (`traceparent`, `tracestate`) read and written without allocating.
//!
//! The rules are the W3C Recommendation's (https://www.w3.org/TR/trace-context/): a
//! `traceparent` is `version-traceid-parentid-flags` in lowercase hex; version `ff` is
//! invalid; version `00` is exactly 55 bytes; a later version is at least 55 bytes and
//! anything past them starts with `-`; an all-zero trace id or parent id is invalid. A value
//! that breaks a rule is ignored and the gateway starts a fresh trace, as the Recommendation
//! asks of a receiver. A `tracestate` is passed on as received when it is at most 512 bytes
//! of visible ASCII and spaces, and dropped otherwise.

/// Length of a version-00 `traceparent`.
pub const TRACEPARENT_LEN: usize = 55;

/// Longest `tracestate` passed on (the Recommendation's 32 members of at most 256 bytes
/// need not all be kept; 512 is what it asks a vendor to be able to propagate).
pub const TRACESTATE_MAX: usize = 512;

/// One span's identity as it travels: trace id, span id and the sampled flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanContext {
    /// 16 bytes, never all zero.
    pub trace_id: [u8; 16],
    /// 8 bytes, never all zero.
    pub span_id: [u8; 8],
    /// Trace flags; bit 0 is "sampled" (other bits are dropped when read).
    pub flags: u8,
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

fn hex_bytes<const N: usize>(s: &[u8]) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = hex_digit(s[2 * i])? << 4 | hex_digit(s[2 * i + 1])?;
    }
    Some(out)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn put_hex(out: &mut [u8], bytes: &[u8]) {
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = HEX[usize::from(b >> 4)];
        out[2 * i + 1] = HEX[usize::from(b & 15)];
    }
}

impl SpanContext {
    /// Reads a `traceparent` value (surrounding spaces and tabs allowed); `None` when it
    /// breaks a rule of the Recommendation.
    pub fn parse(value: &[u8]) -> Option<SpanContext> {
        let v = value.trim_ascii();
        if v.len() < TRACEPARENT_LEN {
            return None;
        }
        let version = hex_bytes::<1>(&v[0..2])?[0];
        if version == 0xff || (version == 0 && v.len() != TRACEPARENT_LEN) {
            return None;
        }
        if v.len() > TRACEPARENT_LEN && v[TRACEPARENT_LEN] != b'-' {
            return None;
        }
        if v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
            return None;
        }
        let trace_id = hex_bytes::<16>(&v[3..35])?;
        let span_id = hex_bytes::<8>(&v[36..52])?;
        let flags = hex_bytes::<1>(&v[53..55])?[0];
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(SpanContext {
            trace_id,
            span_id,
            flags: flags & 1,
        })
    }

    /// The sampled flag.
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    /// This context as a version-00 `traceparent`.
    pub fn traceparent(&self) -> [u8; TRACEPARENT_LEN] {
        let mut out = [b'-'; TRACEPARENT_LEN];
        out[0] = b'0';
        out[1] = b'0';
        put_hex(&mut out[3..35], &self.trace_id);
        put_hex(&mut out[36..52], &self.span_id);
        put_hex(&mut out[53..55], &[self.flags & 1]);
        out
    }
}

/// A `tracestate` value worth passing on: at most [`TRACESTATE_MAX`] bytes of visible
/// ASCII and spaces, not blank.
pub fn tracestate_ok(value: &[u8]) -> bool {
    let v = value.trim_ascii();
    !v.is_empty() && v.len() <= TRACESTATE_MAX && v.iter().all(|b| (0x20..=0x7e).contains(b))
}

/// Lowercase hex of `bytes` (span and trace ids in logs and tests).
pub fn hex(bytes: &[u8]) -> String {
    let mut out = vec![0u8; bytes.len() * 2];
    put_hex(&mut out, bytes);
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn reads_and_writes_a_version_00_traceparent() {
        let c = SpanContext::parse(GOOD.as_bytes()).unwrap();
        assert_eq!(hex(&c.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hex(&c.span_id), "00f067aa0ba902b7");
        assert!(c.sampled());
        assert_eq!(&c.traceparent()[..], GOOD.as_bytes());
        let unsampled = GOOD.replace("-01", "-00");
        let c = SpanContext::parse(unsampled.as_bytes()).unwrap();
        assert!(!c.sampled());
        // Spaces around the value (an HTTP field's OWS) are not part of it.
        assert!(SpanContext::parse(format!("  {GOOD}\t").as_bytes()).is_some());
        // Unknown flag bits are read but not kept.
        let c = SpanContext::parse(GOOD.replace("-01", "-ff").as_bytes()).unwrap();
        assert_eq!(c.flags, 1);
    }

    #[test]
    fn refuses_what_the_recommendation_refuses() {
        let bad = [
            // Uppercase hex.
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01".to_string(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01".to_string(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A".to_string(),
            // All-zero ids.
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01".to_string(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01".to_string(),
            // Version ff, and version 00 with more after it.
            GOOD.replacen("00", "ff", 1),
            format!("{GOOD}-extra"),
            // Malformed: short, wrong separators, not hex.
            GOOD[..54].to_string(),
            GOOD.replace('-', "_"),
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01".to_string(),
            String::new(),
            "garbage".to_string(),
        ];
        for b in &bad {
            assert_eq!(SpanContext::parse(b.as_bytes()), None, "{b:?}");
        }
    }

    #[test]
    fn a_later_version_is_read_for_the_fields_it_shares() {
        let v = GOOD.replacen("00", "01", 1);
        assert!(SpanContext::parse(v.as_bytes()).is_some());
        assert!(SpanContext::parse(format!("{v}-what-comes-next").as_bytes()).is_some());
        assert_eq!(SpanContext::parse(format!("{v}x").as_bytes()), None);
    }

    #[test]
    fn tracestate_is_bounded_and_visible_ascii() {
        assert!(tracestate_ok(b"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"));
        assert!(!tracestate_ok(b""));
        assert!(!tracestate_ok(b"   "));
        assert!(!tracestate_ok(b"a=\x01"));
        assert!(!tracestate_ok("a=é".as_bytes()));
        assert!(tracestate_ok(&[b'a'; TRACESTATE_MAX]));
        assert!(!tracestate_ok(&[b'a'; TRACESTATE_MAX + 1]));
    }
}

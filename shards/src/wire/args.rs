//! A `tools/call`'s arguments as its `Mcp-Param-*` headers see them (2026-07-28, SEP-2243):
//! the value at a property path of `params.arguments`, read from the raw body without
//! allocating (a string with escapes is the one exception), how a value is written as a
//! header value, and whether a header value says the same as the body.
//!
//! The body has passed [`Envelope::parse`](super::jsonrpc::Envelope::parse) (valid JSON,
//! nesting bounded), which is what the walk ([`super::scan::members`]) needs. A member named
//! twice on the path is reported as [`Arg::Ambiguous`]: readers that take the first and the
//! last copy would disagree, so no header can be said to match it.

use std::borrow::Cow;
use std::ops::Range;

use super::scan::{members, skip_ws};

/// The value at a property path of the arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg<'a> {
    /// No value: a step is missing or not an object, or the value is `null` (no header).
    Absent,
    /// A string, unescaped.
    Text(Cow<'a, str>),
    /// `true` or `false`.
    Bool(bool),
    /// A number, as the body writes it.
    Number(&'a str),
    /// An object or an array: no header value represents it.
    Other,
    /// A step of the path names the same member twice.
    Ambiguous,
}

/// The range of `params.arguments` in `body`, given the range of `params`.
pub fn arguments(body: &[u8], params: Range<usize>) -> Option<Range<usize>> {
    members(body, params.start)
        .find(|(k, _)| key_is(body, k.clone(), "arguments"))
        .map(|(_, v)| v)
}

/// The value at `path` (member names from the arguments object down) of the arguments at
/// `args` in `body`.
pub fn at<'a, S: AsRef<str>>(body: &'a [u8], args: Option<Range<usize>>, path: &[S]) -> Arg<'a> {
    let Some(mut node) = args else {
        return Arg::Absent;
    };
    for step in path {
        if body.get(skip_ws(body, node.start)) != Some(&b'{') {
            return Arg::Absent;
        }
        let mut found = None;
        for (k, v) in members(body, node.start) {
            if key_is(body, k, step.as_ref()) {
                if found.is_some() {
                    return Arg::Ambiguous;
                }
                found = Some(v);
            }
        }
        match found {
            Some(v) => node = v,
            None => return Arg::Absent,
        }
    }
    let raw = &body[node.clone()];
    match raw.first() {
        Some(b'"') => {
            let inner = &raw[1..raw.len().saturating_sub(1).max(1)];
            let text = if inner.contains(&b'\\') {
                sonic_rs::from_slice::<String>(raw).ok().map(Cow::Owned)
            } else {
                std::str::from_utf8(inner).ok().map(Cow::Borrowed)
            };
            text.map_or(Arg::Other, Arg::Text)
        }
        Some(b't') => Arg::Bool(true),
        Some(b'f') => Arg::Bool(false),
        Some(b'-' | b'0'..=b'9') => std::str::from_utf8(raw).map_or(Arg::Other, Arg::Number),
        Some(b'{' | b'[') => Arg::Other,
        _ => Arg::Absent,
    }
}

/// Is the member key at `key` (inside its quotes) `want`? Unescaped only when it holds an
/// escape, which real clients never send.
fn key_is(body: &[u8], key: Range<usize>, want: &str) -> bool {
    let raw = &body[key.clone()];
    if !raw.contains(&b'\\') {
        return raw == want.as_bytes();
    }
    let quoted = &body[key.start - 1..key.end + 1];
    sonic_rs::from_slice::<String>(quoted).is_ok_and(|k| k == want)
}

/// `arg` as a header value's text (before encoding): strings as they are, booleans as
/// `true`/`false`, integers in decimal; `None` for what has no header.
pub fn render<'a>(arg: &'a Arg<'a>) -> Option<Cow<'a, str>> {
    match arg {
        Arg::Text(s) => Some(Cow::Borrowed(s)),
        Arg::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        Arg::Number(n) if is_integer_literal(n) => Some(Cow::Borrowed(n)),
        // `42.0` or `4.2e1` for an integer: the decimal integer, as JavaScript writes it.
        Arg::Number(n) => match n.parse::<f64>() {
            Ok(f) if f.fract() == 0.0 && f.abs() <= MAX_SAFE => Some(Cow::Owned(format!("{f:.0}"))),
            _ => Some(Cow::Borrowed(n)),
        },
        Arg::Absent | Arg::Other | Arg::Ambiguous => None,
    }
}

/// 2^53 - 1: integers beyond it are not exact in JavaScript (the spec's bound).
const MAX_SAFE: f64 = 9_007_199_254_740_991.0;

/// Does the header text `text` (decoded) say the same as `arg`? Strings compare exactly,
/// booleans as `true`/`false`, numbers numerically (`42.0` is `42`) when the header is a
/// plain decimal.
pub fn matches(arg: &Arg<'_>, text: &str) -> bool {
    match arg {
        Arg::Text(s) => s == text,
        Arg::Bool(b) => text == if *b { "true" } else { "false" },
        Arg::Number(n) => numbers_equal(n, text),
        Arg::Absent | Arg::Other | Arg::Ambiguous => false,
    }
}

fn is_integer_literal(n: &str) -> bool {
    let digits = n.strip_prefix('-').unwrap_or(n);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `-?digits(.digits)?`: the header forms compared numerically.
fn is_plain_decimal(t: &str) -> bool {
    let t = t.strip_prefix('-').unwrap_or(t);
    let (int, frac) = t.split_once('.').unwrap_or((t, "0"));
    [int, frac]
        .iter()
        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn numbers_equal(body: &str, header: &str) -> bool {
    // The body's own literal (what `render` sends for `1e-7` or `1e400`).
    if body == header {
        return true;
    }
    if !is_plain_decimal(header) {
        return false;
    }
    if is_integer_literal(body) && is_integer_literal(header) {
        // Exactly, whatever their size: no float rounding between two integers.
        return canonical_integer(body) == canonical_integer(header);
    }
    match (body.parse::<f64>(), header.parse::<f64>()) {
        (Ok(a), Ok(b)) => a.is_finite() && a == b,
        _ => false,
    }
}

/// An integer literal without leading zeros, and `-0` as `0`.
fn canonical_integer(n: &str) -> (bool, &str) {
    let (neg, digits) = match n.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, n),
    };
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        (false, "0")
    } else {
        (neg, digits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(body: &'a str, path: &[&str]) -> Arg<'a> {
        let b = body.as_bytes();
        let params = sonic_rs::get(b, ["params"]).unwrap();
        let raw = params.as_raw_str();
        let start = raw.as_ptr() as usize - b.as_ptr() as usize;
        let args = arguments(b, start..start + raw.len());
        at(b, args, path)
    }

    #[test]
    fn values_are_found_by_property_path() {
        let body = r#"{"params":{"name":"t","arguments":{"region":"us-west1","n":42,"f":false,
            "nested":{"deep":{"zone":"a\"b"}},"nil":null,"list":[1],"esc\u0061ped":"yes"}}}"#;
        assert_eq!(lookup(body, &["region"]), Arg::Text("us-west1".into()));
        assert_eq!(lookup(body, &["n"]), Arg::Number("42"));
        assert_eq!(lookup(body, &["f"]), Arg::Bool(false));
        assert_eq!(
            lookup(body, &["nested", "deep", "zone"]),
            Arg::Text("a\"b".into())
        );
        assert_eq!(lookup(body, &["nil"]), Arg::Absent);
        assert_eq!(lookup(body, &["list"]), Arg::Other);
        assert_eq!(lookup(body, &["nested"]), Arg::Other);
        assert_eq!(lookup(body, &["escaped"]), Arg::Text("yes".into()));
        assert_eq!(lookup(body, &["missing"]), Arg::Absent);
        assert_eq!(
            lookup(body, &["region", "below"]),
            Arg::Absent,
            "not an object"
        );
        assert_eq!(lookup(body, &["nested", "nope", "zone"]), Arg::Absent);
        assert_eq!(
            lookup(r#"{"params":{"name":"t"}}"#, &["region"]),
            Arg::Absent,
            "no arguments"
        );
    }

    #[test]
    fn a_member_named_twice_on_the_path_is_ambiguous() {
        let body = r#"{"params":{"arguments":{"region":"a","region":"b"}}}"#;
        assert_eq!(lookup(body, &["region"]), Arg::Ambiguous);
        let body = r#"{"params":{"arguments":{"o":{"z":1},"o":{"z":1}}}}"#;
        assert_eq!(lookup(body, &["o", "z"]), Arg::Ambiguous);
        // Twice elsewhere does not matter.
        let body = r#"{"params":{"arguments":{"o":{"z":1,"y":1,"y":2}}}}"#;
        assert_eq!(lookup(body, &["o", "z"]), Arg::Number("1"));
    }

    #[test]
    fn values_render_as_the_spec_converts_them() {
        let r = |a: Arg<'static>| render(&a).map(|c| c.into_owned());
        assert_eq!(r(Arg::Text("x y".into())).as_deref(), Some("x y"));
        assert_eq!(r(Arg::Bool(true)).as_deref(), Some("true"));
        assert_eq!(r(Arg::Number("-7")).as_deref(), Some("-7"));
        assert_eq!(r(Arg::Number("42.0")).as_deref(), Some("42"));
        assert_eq!(r(Arg::Number("4.2e1")).as_deref(), Some("42"));
        assert_eq!(r(Arg::Number("3.14159")).as_deref(), Some("3.14159"));
        assert_eq!(r(Arg::Number("1e300")).as_deref(), Some("1e300"));
        assert_eq!(r(Arg::Other), None);
        assert_eq!(r(Arg::Absent), None);
        assert_eq!(r(Arg::Ambiguous), None);
    }

    #[test]
    fn header_values_match_numerically_and_exactly_otherwise() {
        assert!(matches(&Arg::Number("42"), "42"));
        assert!(matches(&Arg::Number("42"), "42.0"));
        assert!(matches(&Arg::Number("42.0"), "42"));
        assert!(matches(&Arg::Number("-0"), "0"));
        assert!(matches(&Arg::Number("007"), "7"));
        assert!(matches(&Arg::Number("4.2e1"), "42"));
        assert!(!matches(&Arg::Number("42"), "43"));
        assert!(!matches(&Arg::Number("42"), "4.2e1"), "not a plain decimal");
        assert!(
            matches(&Arg::Number("1e400"), "1e400"),
            "the literal itself"
        );
        assert!(matches(&Arg::Number("1e-7"), "0.0000001"));
        // Whatever `render` writes for a number, `matches` accepts.
        for n in [
            "0",
            "-0.0",
            "1.5e2",
            "1e-7",
            "1e400",
            "-1E+3",
            "123456789012345678901234",
        ] {
            let a = Arg::Number(n);
            assert!(matches(&a, &render(&a).unwrap()), "{n}");
        }
        assert!(!matches(&Arg::Number("42"), "+42"));
        assert!(!matches(&Arg::Number("42"), " 42"));
        assert!(!matches(&Arg::Number("42"), ""));
        // Beyond 2^53 two different integers are still different.
        assert!(!matches(
            &Arg::Number("9007199254740993"),
            "9007199254740992"
        ));
        assert!(matches(&Arg::Bool(false), "false"));
        assert!(!matches(&Arg::Bool(false), "False"));
        assert!(matches(&Arg::Text("Us".into()), "Us"));
        assert!(
            !matches(&Arg::Text("Us".into()), "us"),
            "values are case-sensitive"
        );
        assert!(!matches(&Arg::Other, "[1]"));
        assert!(!matches(&Arg::Absent, ""));
    }
}

//! An allocation-free walk over the members of a JSON object that is already known to be
//! valid, yielding byte ranges: what [`Envelope::parse`](super::jsonrpc::Envelope::parse)
//! uses to find `id`, `method` and the few `params` it needs.
//!
//! Why not sonic-rs' lazy object iterator: it returns every key as an owned string (one
//! allocation per member, seven to eleven per request), and it re-validates what the
//! envelope has just validated. Here validation is done once by sonic-rs over the whole
//! body; the walk then only has to find where each member's key and value start and end,
//! which for valid JSON needs no more than quote, backslash and bracket bookkeeping
//! (strings are skipped with `memchr`).
//!
//! Precondition: `body` is valid JSON (checked by the caller). On anything else the walk
//! stops early or returns odd ranges, but never panics or reads out of bounds.
//!
//! [`check`] runs before that validation, on every message from a client or a backend: an
//! iterative pass that bounds nesting (the validating parser recurses once per level, so a
//! 40 KB body of brackets would overflow a shard's stack) and refuses lone UTF-16 surrogates
//! in `\u` escapes (they are not Unicode text; backends reject them, each in its own way).

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Default bound on JSON nesting (`server.max_json_depth`).
pub const DEFAULT_MAX_DEPTH: usize = 128;

/// The bound in force, set once at startup from `server.max_json_depth` (a plain atomic:
/// read on every message, written only by the control thread before shards start).
static MAX_DEPTH: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_DEPTH);

/// Sets the nesting bound every later [`check`] applies (`server.max_json_depth`).
pub fn set_max_depth(depth: usize) {
    MAX_DEPTH.store(depth.max(1), Ordering::Relaxed);
}

/// The nesting bound in force.
pub fn max_depth() -> usize {
    MAX_DEPTH.load(Ordering::Relaxed)
}

/// What [`check`] refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defect {
    /// Objects and arrays nest deeper than the bound.
    TooDeep(usize),
    /// A `\u` escape is a lone surrogate (`\ud800` without its low half, or a stray low half).
    LoneSurrogate,
    /// An escape that JSON does not have (`\u` without four hex digits, `\x`, ...): sonic-rs'
    /// validating skip lets `"\u0z41"` through, and a backend would read it its own way.
    BadEscape,
}

/// Bounds nesting to `max_depth` and refuses lone surrogates, in one iterative pass that
/// never recurses and never reads out of bounds, whatever `body` holds. It does not validate
/// the rest of the JSON: the caller's parser does, after this pass said it is safe to.
pub fn check(body: &[u8], max_depth: usize) -> Result<(), Defect> {
    // Fast path, most messages: no escape anywhere (nothing to check in strings), and fewer
    // opening brackets in all than the bound (so no nesting can pass it; brackets inside
    // strings only make the count larger). Both are counts the compiler vectorises.
    if memchr::memchr(b'\\', body).is_none() && count_opens(body) <= max_depth {
        return Ok(());
    }
    let mut depth = 0usize;
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'"' => i = check_string(body, i)?,
            b'{' | b'[' => {
                depth += 1;
                if depth > max_depth {
                    return Err(Defect::TooDeep(max_depth));
                }
                i += 1;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// How many `{` and `[` bytes `b` holds: `b | 0x20 == b'{'` matches exactly those two, and
/// byte-wide sums over chunks of 255 let the compiler use whole vector registers.
fn count_opens(b: &[u8]) -> usize {
    b.chunks(255)
        .map(|c| {
            let n = c.iter().fold(0u8, |n, &x| n + u8::from(x | 0x20 == b'{'));
            usize::from(n)
        })
        .sum()
}

/// Skips the string opening at `i`, checking each `\u` escape; returns the index after it.
fn check_string(b: &[u8], i: usize) -> Result<usize, Defect> {
    let mut j = i + 1;
    while j < b.len() {
        let Some(k) = memchr::memchr2(b'"', b'\\', &b[j..]) else {
            return Ok(b.len());
        };
        j += k;
        if b[j] == b'"' {
            return Ok(j + 1);
        }
        // A backslash: `\uXXXX` is checked, any other escape is two bytes of JSON's own.
        match b.get(j + 1) {
            Some(b'u') => {}
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                j += 2;
                continue;
            }
            Some(_) => return Err(Defect::BadEscape),
            None => return Ok(b.len()),
        }
        match hex4(b, j + 2) {
            Some(0xD800..=0xDBFF) => {
                // A high surrogate must be followed at once by an escaped low one.
                let low = (b.get(j + 6) == Some(&b'\\') && b.get(j + 7) == Some(&b'u'))
                    .then(|| hex4(b, j + 8))
                    .flatten();
                if !matches!(low, Some(0xDC00..=0xDFFF)) {
                    return Err(Defect::LoneSurrogate);
                }
                j += 12;
            }
            Some(0xDC00..=0xDFFF) => return Err(Defect::LoneSurrogate),
            Some(_) => j += 6,
            // Truncated input is the parser's to report; four non-hex bytes are not JSON.
            None if b.len() < j + 6 => return Ok(b.len()),
            None => return Err(Defect::BadEscape),
        }
    }
    Ok(b.len())
}

/// The four hex digits at `b[at..at + 4]` as a number, if they are four hex digits.
fn hex4(b: &[u8], at: usize) -> Option<u32> {
    let d = b.get(at..at + 4)?;
    d.iter().try_fold(0u32, |n, &c| {
        let v = (c as char).to_digit(16)?;
        Some(n * 16 + v)
    })
}

/// The members of the object starting at `start` (the `{`), in document order: (key range
/// without the quotes, value range).
pub struct Members<'a> {
    body: &'a [u8],
    i: usize,
    done: bool,
}

/// Walks the object at `body[start]`.
pub fn members(body: &[u8], start: usize) -> Members<'_> {
    let i = skip_ws(body, start);
    Members {
        body,
        i: i + 1,
        done: body.get(i) != Some(&b'{'),
    }
}

impl Iterator for Members<'_> {
    type Item = (Range<usize>, Range<usize>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let b = self.body;
        let mut i = skip_ws(b, self.i);
        if b.get(i) == Some(&b',') {
            i = skip_ws(b, i + 1);
        }
        if b.get(i) != Some(&b'"') {
            self.done = true;
            return None;
        }
        let key_end = string_end(b, i);
        let key = i + 1..key_end.saturating_sub(1).max(i + 1);
        i = skip_ws(b, key_end);
        if b.get(i) != Some(&b':') {
            self.done = true;
            return None;
        }
        let v = skip_ws(b, i + 1);
        let end = value_end(b, v);
        self.i = end;
        Some((key, v..end))
    }
}

/// The first index at or after `i` that is not JSON whitespace.
pub fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while let Some(c) = b.get(i) {
        if !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
            break;
        }
        i += 1;
    }
    i
}

/// The index just after the string whose opening quote is at `i`.
fn string_end(b: &[u8], i: usize) -> usize {
    let mut j = i + 1;
    while j < b.len() {
        match memchr::memchr2(b'"', b'\\', &b[j..]) {
            Some(k) if b[j + k] == b'\\' => j += k + 2,
            Some(k) => return j + k + 1,
            None => return b.len(),
        }
    }
    b.len()
}

/// The index just after the value starting at `i`.
pub fn value_end(b: &[u8], i: usize) -> usize {
    match b.get(i) {
        Some(b'"') => string_end(b, i),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = string_end(b, j);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return j + 1;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            b.len()
        }
        Some(_) => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
            {
                j += 1;
            }
            j
        }
        None => i,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(s: &str) -> Vec<(String, String)> {
        let b = s.as_bytes();
        members(b, 0)
            .map(|(k, v)| (s[k].to_string(), s[v].to_string()))
            .collect()
    }

    #[test]
    fn check_bounds_depth_without_recursing() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert_eq!(check(deep(128).as_bytes(), 128), Ok(()));
        assert_eq!(check(deep(129).as_bytes(), 128), Err(Defect::TooDeep(128)));
        // Far deeper than any stack: refused by counting, not by descending.
        assert_eq!(
            check(deep(1_000_000).as_bytes(), 128),
            Err(Defect::TooDeep(128))
        );
        // Brackets inside strings do not count; escaped quotes do not end the string.
        let s = format!(r#"{{"a":"{}\"{}"}}"#, "[".repeat(500), "{".repeat(500));
        assert_eq!(check(s.as_bytes(), 4), Ok(()));
        // Unbalanced or truncated input never panics.
        for s in [
            "]]]]",
            "{{{",
            "\"",
            "\"\\",
            "\"\\u",
            "\"\\ud800\\u",
            "[\"\\",
        ] {
            let _ = check(s.as_bytes(), 2);
        }
    }

    #[test]
    fn count_opens_counts_both_brackets_only() {
        let all: Vec<u8> = (0..=255u8).collect();
        assert_eq!(count_opens(&all), 2);
        let many = "[{".repeat(1000);
        assert_eq!(count_opens(many.as_bytes()), 2000);
        assert_eq!(count_opens(b""), 0);
    }

    #[test]
    fn check_refuses_lone_surrogates_only() {
        let ok = [
            r#"{"x":"\ud83d\ude00"}"#,
            r#"{"x":"\u00e9\uffff\u0041"}"#,
            r#"{"x":"\\ud800"}"#,
            r#"{"x":"\uD83D\uDE00 and \n"}"#,
        ];
        for s in ok {
            assert_eq!(check(s.as_bytes(), 8), Ok(()), "{s}");
        }
        let bad = [
            r#"{"x":"x\ud800y"}"#,
            r#"{"x":"\udc00"}"#,
            r#"{"x":"\ud800\u0041"}"#,
            r#"{"x":"\ud800\ud800"}"#,
            r#"{"\ud800":1}"#,
            r#"{"x":"\ud800"#,
        ];
        for s in bad {
            assert_eq!(check(s.as_bytes(), 8), Err(Defect::LoneSurrogate), "{s}");
        }
        // Found by the envelope_differential fuzz target: sonic-rs accepted these.
        for s in [
            r#"{"id":"a\u0z41"}"#,
            r#"{"x":"\x41"}"#,
            r#"{"x":"\u00G0"}"#,
            r#"{"x":"\'"}"#,
        ] {
            assert_eq!(check(s.as_bytes(), 8), Err(Defect::BadEscape), "{s}");
        }
    }

    #[test]
    fn members_of_every_value_kind_with_whitespace_and_escapes() {
        let s = r#" { "a" : 1 , "b\"c":"x\\\"}y" ,"d":{"e":[1,{"f":"]}"}]},"g":[ ],"h":true,"i":-1.5e3,"j":null } "#;
        assert_eq!(
            walk(s),
            [
                ("a", "1"),
                (r#"b\"c"#, r#""x\\\"}y""#),
                ("d", r#"{"e":[1,{"f":"]}"}]}"#),
                ("g", "[ ]"),
                ("h", "true"),
                ("i", "-1.5e3"),
                ("j", "null"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
    }

    #[test]
    fn empty_and_non_objects_have_no_members_and_truncation_is_safe() {
        assert!(walk("{}").is_empty() && walk(" { } ").is_empty());
        assert!(walk("[1]").is_empty() && walk("").is_empty() && walk("\"x\"").is_empty());
        // Not valid JSON (the caller validates first): still no panic.
        for s in [
            r#"{"a"#,
            r#"{"a":"#,
            r#"{"a":{"b":"#,
            r#"{"a":"\"#,
            r#"{"a" 1}"#,
        ] {
            let _ = walk(s);
        }
    }

    #[test]
    fn agrees_with_sonic_rs_on_the_demo_and_conformance_shapes() {
        let s = r#"{"jsonrpc":"2.0","id":"a\u0041","method":"tools/call","params":{"name":"x__y","arguments":{"q":"\u00e9\n","n":[1,2,{"z":null}]},"_meta":{"progressToken":7}}}"#;
        let ours: Vec<(String, String)> = walk(s);
        let theirs: Vec<(String, String)> = sonic_rs::to_object_iter(s)
            .map(|r| {
                let (k, v) = r.unwrap();
                (k.to_string(), v.as_raw_str().to_string())
            })
            .collect();
        assert_eq!(ours, theirs);
    }
}

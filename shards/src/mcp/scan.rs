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

use std::ops::Range;

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

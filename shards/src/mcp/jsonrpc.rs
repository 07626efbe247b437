//! Reading a JSON-RPC envelope without building a tree, and rewriting it by splicing bytes.
//!
//! The gateway routes bodies it does not own. It only needs `jsonrpc`, `id`, `method`,
//! `params.name` and whether `result`/`error` is present, so [`Envelope::parse`] walks the
//! top-level object once with sonic-rs' lazy iterator and records byte ranges into the
//! original body. Rewriting the tool name or the id is then a splice ([`splice`]) of those
//! ranges: the rest of the body, arguments and results included, travels untouched.

use std::borrow::Cow;
use std::ops::Range;

use crate::error::McpError;
use crate::mcp::scan;

/// What kind of JSON-RPC message a body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Has `method` and `id`.
    Request,
    /// Has `method`, no `id`.
    Notification,
    /// Has `result` or `error` and an `id`.
    Response,
}

/// The 2026-07-28 per-request keys of `params._meta`.
#[derive(Debug, Clone, Default)]
pub struct ModernMeta<'a> {
    /// `params._meta` is an object.
    pub present: bool,
    /// Where that object sits in the body.
    pub range: Option<Range<usize>>,
    /// `io.modelcontextprotocol/protocolVersion`.
    pub version: Option<Cow<'a, str>>,
    /// `io.modelcontextprotocol/clientCapabilities` (an object), raw range.
    pub capabilities: Option<Range<usize>>,
    /// `io.modelcontextprotocol/logLevel`.
    pub log_level: Option<Cow<'a, str>>,
}

/// Byte ranges and small fields of one JSON-RPC message; borrows the body.
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    /// Message kind.
    pub kind: Kind,
    /// The `id` value's range (raw JSON: number or quoted string).
    pub id: Option<Range<usize>>,
    /// The method name, unescaped.
    pub method: Option<Cow<'a, str>>,
    /// The `params` value's range.
    pub params: Option<Range<usize>>,
    /// `params.name`'s range, including its quotes.
    pub name: Option<Range<usize>>,
    /// `params.name`, unescaped.
    pub name_str: Option<Cow<'a, str>>,
    /// `params.cursor`, when present (raw JSON).
    pub cursor: Option<Range<usize>>,
    /// `params._meta.progressToken`'s range (raw JSON: string or number).
    pub progress_token: Option<Range<usize>>,
    /// `params.requestId` (cancellation notifications), raw JSON.
    pub request_id: Option<Range<usize>>,
    /// The modern per-request metadata, when `params._meta` carries it.
    pub meta: ModernMeta<'a>,
    /// `params.uri`'s range, including its quotes.
    pub uri: Option<Range<usize>>,
    /// `params.uri`, unescaped.
    pub uri_str: Option<Cow<'a, str>>,
    /// `params.protocolVersion` (initialize only matters), unescaped.
    pub protocol_version: Option<Cow<'a, str>>,
}

/// A member's key (the range inside its quotes) as bytes; unescaped (allocating) only when
/// it holds an escape, which real clients never send.
fn key_of(body: &[u8], key: Range<usize>) -> Cow<'_, [u8]> {
    let raw = &body[key.clone()];
    if !raw.contains(&b'\\') {
        return Cow::Borrowed(raw);
    }
    let quoted = &body[key.start - 1..key.end + 1];
    Cow::Owned(
        sonic_rs::from_slice::<String>(quoted)
            .unwrap_or_default()
            .into_bytes(),
    )
}

/// Could a JSON value starting with `first` be a number?
fn is_number_start(first: Option<u8>) -> bool {
    matches!(first, Some(b'-' | b'0'..=b'9'))
}

/// Unescapes the JSON string at `range` of `body` (which includes the quotes).
fn unescape(is_str: bool, body: &[u8], range: Range<usize>) -> Option<Cow<'_, str>> {
    if !is_str {
        return None;
    }
    let raw = &body[range];
    let inner = &raw[1..raw.len() - 1];
    if !inner.contains(&b'\\') {
        return std::str::from_utf8(inner).ok().map(Cow::Borrowed);
    }
    sonic_rs::from_slice::<String>(raw).ok().map(Cow::Owned)
}

impl<'a> Envelope<'a> {
    /// Parses and validates one JSON-RPC 2.0 message. Errors say what is wrong; the caller
    /// answers with the matching JSON-RPC error (id `null` for parse errors).
    pub fn parse(body: &'a [u8]) -> Result<Self, McpError> {
        let first = body.iter().find(|b| !b.is_ascii_whitespace()).copied();
        match first {
            None => return Err(McpError::Parse("empty body".into())),
            Some(b'[') => {
                return Err(McpError::InvalidRequest(
                    "JSON-RPC batches are not supported (removed in MCP 2025-06-18); send one message per request".into(),
                ))
            }
            Some(b'{') => {}
            Some(_) => {
                // Either valid JSON that is not an object, or not JSON at all.
                return Err(if sonic_rs::from_slice::<sonic_rs::Value>(body).is_ok() {
                    McpError::InvalidRequest("a JSON-RPC message must be a JSON object".into())
                } else {
                    McpError::Parse("body is not valid JSON".into())
                });
            }
        }
        let mut env = Envelope {
            kind: Kind::Notification,
            id: None,
            method: None,
            params: None,
            name: None,
            name_str: None,
            cursor: None,
            uri: None,
            uri_str: None,
            progress_token: None,
            request_id: None,
            meta: ModernMeta::default(),
            protocol_version: None,
        };
        // Nesting bounded and lone surrogates refused before anything recursive reads the
        // body, then one validating pass over the whole body (trailing garbage included);
        // the walk below then only locates members (`scan.rs`).
        match scan::check(body, scan::max_depth()) {
            Ok(()) => {}
            Err(scan::Defect::TooDeep(n)) => {
                return Err(McpError::InvalidRequest(format!(
                    "JSON nests deeper than {n} levels (server.max_json_depth)"
                )))
            }
            Err(scan::Defect::BadEscape) => {
                return Err(McpError::Parse(
                    "body is not valid JSON: an escape JSON does not have".into(),
                ))
            }
            Err(scan::Defect::LoneSurrogate) => {
                return Err(McpError::Parse(
                    "body is not valid JSON: a \\u escape is a lone UTF-16 surrogate".into(),
                ))
            }
        }
        if let Err(e) = sonic_rs::from_slice::<serde::de::IgnoredAny>(body) {
            return Err(McpError::Parse(format!("body is not valid JSON: {e}")));
        }
        let mut jsonrpc_ok = false;
        let mut has_result = false;
        let mut names = Names::default();
        for (key, val) in scan::members(body, 0) {
            let first = body.get(val.start).copied();
            let key = key_of(body, key);
            match &*names.insert(key)? {
                b"jsonrpc" => {
                    jsonrpc_ok = unescape(first == Some(b'"'), body, val).as_deref() == Some("2.0")
                }
                b"id" => {
                    if !(first == Some(b'"') || is_number_start(first)) {
                        return Err(McpError::InvalidRequest(
                            "`id` must be a string or a number".into(),
                        ));
                    }
                    env.id = Some(val);
                }
                b"method" => {
                    env.method =
                        Some(unescape(first == Some(b'"'), body, val).ok_or_else(|| {
                            McpError::InvalidRequest("`method` must be a string".into())
                        })?)
                }
                b"params" => {
                    env.params = Some(val.clone());
                    if first == Some(b'{') {
                        env.read_params(body, val)?;
                    } else if first != Some(b'[') {
                        return Err(McpError::InvalidRequest(
                            "`params` must be an object".into(),
                        ));
                    }
                }
                b"result" | b"error" => has_result = true,
                _ => {}
            }
        }
        if !jsonrpc_ok {
            return Err(McpError::InvalidRequest("`jsonrpc` must be \"2.0\"".into()));
        }
        env.kind = match (&env.method, &env.id, has_result) {
            (Some(_), Some(_), false) => Kind::Request,
            (Some(_), None, false) => Kind::Notification,
            (None, Some(_), true) => Kind::Response,
            (None, _, false) => return Err(McpError::InvalidRequest("missing `method`".into())),
            _ => {
                return Err(McpError::InvalidRequest(
                    "a message cannot be both a request and a response".into(),
                ))
            }
        };
        Ok(env)
    }

    fn read_params(&mut self, body: &'a [u8], params: Range<usize>) -> Result<(), McpError> {
        let mut names = Names::default();
        for (key, val) in scan::members(body, params.start) {
            let first = body.get(val.start).copied();
            let is_str = first == Some(b'"');
            let key = key_of(body, key);
            match &*names.insert(key)? {
                b"name" if is_str => {
                    self.name = Some(val.clone());
                    self.name_str = unescape(true, body, val);
                }
                b"cursor" => self.cursor = Some(val),
                b"uri" if is_str => {
                    self.uri = Some(val.clone());
                    self.uri_str = unescape(true, body, val);
                }
                b"requestId" if is_str || is_number_start(first) => self.request_id = Some(val),
                // `_meta` is an object (MCP); anything else is refused, since the gateway adds
                // its own `_meta` toward 2026 backends and must never send two.
                b"_meta" if first != Some(b'{') => {
                    return Err(McpError::InvalidRequest(
                        "`params._meta` must be an object".into(),
                    ))
                }
                b"_meta" => {
                    let mut meta_names = Names::default();
                    for (k, v) in scan::members(body, val.start) {
                        let f = body.get(v.start).copied();
                        let k = key_of(body, k);
                        match &*meta_names.insert(k)? {
                            b"progressToken" if f == Some(b'"') || is_number_start(f) => {
                                self.progress_token = Some(v)
                            }
                            b"io.modelcontextprotocol/protocolVersion" => {
                                self.meta.version = unescape(f == Some(b'"'), body, v)
                            }
                            b"io.modelcontextprotocol/clientCapabilities" if f == Some(b'{') => {
                                self.meta.capabilities = Some(v)
                            }
                            b"io.modelcontextprotocol/logLevel" => {
                                self.meta.log_level = unescape(f == Some(b'"'), body, v)
                            }
                            _ => {}
                        }
                    }
                    self.meta.present = true;
                    self.meta.range = Some(val);
                }
                b"protocolVersion" => self.protocol_version = unescape(is_str, body, val),
                _ => {}
            }
        }
        Ok(())
    }

    /// The id of a message that [`Envelope::parse`] refused, when it can still be read
    /// safely: exactly one top-level `id`, a valid string or number. Else `null`. Error
    /// answers carry it so a client can match them to its request.
    pub fn id_hint(body: &[u8]) -> &[u8] {
        let mut found: Option<Range<usize>> = None;
        for (key, val) in scan::members(body, 0) {
            if &*key_of(body, key) != b"id" {
                continue;
            }
            if found.is_some() {
                return b"null";
            }
            found = Some(val);
        }
        let Some(r) = found else {
            return b"null";
        };
        let raw = &body[r];
        let token_ok = match raw.first() {
            Some(b'"') => {
                scan::check(raw, 1).is_ok() && sonic_rs::from_slice::<String>(raw).is_ok()
            }
            Some(b'-' | b'0'..=b'9') => sonic_rs::from_slice::<f64>(raw).is_ok(),
            _ => false,
        };
        if token_ok && raw.len() <= 256 {
            raw
        } else {
            b"null"
        }
    }

    /// The raw id bytes, or `null`.
    pub fn id_bytes<'b>(&self, body: &'b [u8]) -> &'b [u8] {
        match &self.id {
            Some(r) => &body[r.clone()],
            None => b"null",
        }
    }
}

/// The member names of one object seen so far, to refuse a repeated one: JSON parsers
/// disagree on which of two `id`s or `name`s counts (first or last), so a body with one
/// must never be routed by the gateway's reading and run by a backend's other reading.
/// Names are compared unescaped, each unescaped once. No allocation for the usual handful of
/// members; a hash set beyond [`Names::SMALL`].
#[derive(Default)]
struct Names<'b> {
    small: [Option<Cow<'b, [u8]>>; Names::SMALL],
    n: usize,
    big: Option<hashbrown::HashSet<Cow<'b, [u8]>, ahash::RandomState>>,
}

impl<'b> Names<'b> {
    const SMALL: usize = 16;

    /// Records `name` and gives it back; a name seen before in this object is an invalid
    /// request.
    fn insert(&mut self, name: Cow<'b, [u8]>) -> Result<Cow<'b, [u8]>, McpError> {
        let dup = match &mut self.big {
            Some(set) => !set.insert(name.clone()),
            None if self.n < Self::SMALL => {
                let dup = self.small[..self.n]
                    .iter()
                    .any(|seen| seen.as_deref() == Some(&*name));
                self.small[self.n] = Some(name.clone());
                self.n += 1;
                dup
            }
            None => {
                let mut set: hashbrown::HashSet<_, _> =
                    self.small.iter_mut().filter_map(Option::take).collect();
                let dup = !set.insert(name.clone());
                self.big = Some(set);
                dup
            }
        };
        if dup {
            let shown = String::from_utf8_lossy(&name[..name.len().min(64)]).into_owned();
            return Err(McpError::InvalidRequest(format!(
                "duplicate member `{shown}`: a message, its params and params._meta may not repeat a name"
            )));
        }
        Ok(name)
    }
}

/// Replaces the byte ranges in `edits` (sorted, non-overlapping) with new bytes, writing the
/// result into `out` (cleared first). One pass, one allocation at most (`out` is reused).
pub fn splice(body: &[u8], edits: &[(Range<usize>, &[u8])], out: &mut Vec<u8>) {
    out.clear();
    let extra: usize = edits.iter().map(|(_, b)| b.len()).sum();
    out.reserve(body.len() + extra);
    let mut at = 0;
    for (r, with) in edits {
        out.extend_from_slice(&body[at..r.start]);
        out.extend_from_slice(with);
        at = r.end;
    }
    out.extend_from_slice(&body[at..]);
}

/// Splices `edits` (any order, non-overlapping) and reports where `track` (a range of `body`
/// not touched by any edit) ends up in `out`.
pub fn splice_tracking(
    body: &[u8],
    edits: &mut [(Range<usize>, &[u8])],
    track: Range<usize>,
    out: &mut Vec<u8>,
) -> Range<usize> {
    edits.sort_by_key(|e| e.0.start);
    splice(body, edits, out);
    let mut start = track.start as isize;
    for (r, with) in edits.iter() {
        if r.start < track.start {
            start += with.len() as isize - r.len() as isize;
        }
    }
    let start = start as usize;
    start..start + track.len()
}

/// Replaces the request id at `id` with the 1-byte placeholder `0` (each transport splices
/// its own id over it) and applies up to two `others` edits (non-overlapping, not touching
/// the id), in one pass into `out`; returns where the placeholder landed.
pub fn splice_placeholder(
    body: &[u8],
    id: Range<usize>,
    others: &[(Range<usize>, &[u8])],
    out: &mut Vec<u8>,
) -> Range<usize> {
    debug_assert!(others.len() <= 2);
    let mut all: [(Range<usize>, &[u8]); 3] = [(id.clone(), b"0"), (0..0, b""), (0..0, b"")];
    let n = 1 + others.len().min(2);
    all[1..n].clone_from_slice(&others[..n - 1]);
    let all = &mut all[..n];
    all.sort_by_key(|e| e.0.start);
    splice(body, all, out);
    let shift: isize = all
        .iter()
        .filter(|(r, _)| r.start < id.start)
        .map(|(r, with)| with.len() as isize - r.len() as isize)
        .sum();
    let at = (id.start as isize + shift) as usize;
    at..at + 1
}

/// Writes `s` as a JSON string literal (with quotes) into `out`.
pub fn push_json_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(sonic_rs::to_string(s).unwrap_or_default().as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::code;

    #[test]
    fn reads_a_tools_call() {
        let b = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"a__b","arguments":{"name":"x"}}}"#;
        let e = Envelope::parse(b).unwrap();
        assert_eq!(e.kind, Kind::Request);
        assert_eq!(&b[e.id.clone().unwrap()], b"7");
        assert_eq!(e.method.as_deref(), Some("tools/call"));
        assert_eq!(e.name_str.as_deref(), Some("a__b"));
        assert_eq!(&b[e.name.clone().unwrap()], b"\"a__b\"");
    }

    #[test]
    fn splices_name_and_id() {
        let b = br#"{"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"name":"a__b"}}"#;
        let e = Envelope::parse(b).unwrap();
        let mut out = Vec::new();
        splice(
            b,
            &[
                (e.id.clone().unwrap(), b"42"),
                (e.name.clone().unwrap(), b"\"b\""),
            ],
            &mut out,
        );
        assert_eq!(
            out,
            br#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"b"}}"#
        );
    }

    #[test]
    fn classifies_bad_input() {
        let cases: &[(&[u8], i32)] = &[
            (b"", code::PARSE_ERROR),
            (b"{not json", code::PARSE_ERROR),
            (
                b"{\"jsonrpc\":\"2.0\",\"method\":\"x\"} trailing",
                code::PARSE_ERROR,
            ),
            (
                b"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]",
                code::INVALID_REQUEST,
            ),
            (b"42", code::INVALID_REQUEST),
            (b"{\"id\":1,\"method\":\"ping\"}", code::INVALID_REQUEST),
            (b"{\"jsonrpc\":\"2.0\",\"id\":1}", code::INVALID_REQUEST),
            (
                b"{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"ping\"}",
                code::INVALID_REQUEST,
            ),
            (
                b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":7}",
                code::INVALID_REQUEST,
            ),
            // Found by the envelope fuzz target: a string `_meta` let the 2026 rewrite add a
            // second one toward the backend.
            (
                b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":{\"_meta\":\"\"}}",
                code::INVALID_REQUEST,
            ),
        ];
        for (body, want) in cases {
            let got = Envelope::parse(body).unwrap_err().code();
            assert_eq!(got, *want, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn reads_progress_token_and_tracks_id_through_splices() {
        let b = br#"{"jsonrpc":"2.0","method":"tools/call","params":{"_meta":{"progressToken":"tok"},"name":"a__b"},"id":9}"#;
        let e = Envelope::parse(b).unwrap();
        assert_eq!(&b[e.progress_token.clone().unwrap()], b"\"tok\"");
        let mut out = Vec::new();
        let mut edits = [
            (e.id.clone().unwrap(), &b"0"[..]),
            (e.name.clone().unwrap(), &b"\"b\""[..]),
            (e.progress_token.clone().unwrap(), &b"\"o1m.0.1\""[..]),
        ];
        let id_at = splice_tracking(b, &mut edits[1..], e.id.clone().unwrap(), &mut out);
        assert_eq!(&out[id_at], b"9");
        assert!(String::from_utf8(out).unwrap().contains("\"o1m.0.1\""));
    }

    #[test]
    fn the_placeholder_lands_where_the_two_step_splice_put_it() {
        let cases: [&[u8]; 3] = [
            br#"{"jsonrpc":"2.0","method":"tools/call","params":{"_meta":{"progressToken":"tok"},"name":"a__b"},"id":9}"#,
            br#"{"jsonrpc":"2.0","id":"abc-123","method":"tools/call","params":{"name":"a__b","_meta":{"progressToken":17}}}"#,
            br#"{"id":1,"jsonrpc":"2.0","method":"tools/call","params":{"name":"long_prefix__tool"}}"#,
        ];
        for b in cases {
            let e = Envelope::parse(b).unwrap();
            let id = e.id.clone().unwrap();
            let mut others = vec![(e.name.clone().unwrap(), &b"\"b\""[..])];
            if let Some(t) = e.progress_token.clone() {
                others.push((t, &b"\"o1m.0.1\""[..]));
            }
            // The old way: splice the others tracking the id, then the id.
            let mut tmp = Vec::new();
            let at = splice_tracking(b, &mut others.clone(), id.clone(), &mut tmp);
            let mut want = Vec::new();
            splice(&tmp, &[(at.clone(), b"0")], &mut want);
            let mut got = Vec::new();
            let ph = splice_placeholder(b, id, &others, &mut got);
            assert_eq!(got, want, "{}", String::from_utf8_lossy(b));
            assert_eq!((ph.start, &got[ph.clone()]), (at.start, &b"0"[..]));
        }
    }

    #[test]
    fn notification_and_response() {
        let n =
            Envelope::parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert_eq!(n.kind, Kind::Notification);
        let r = Envelope::parse(br#"{"jsonrpc":"2.0","id":3,"result":{}}"#).unwrap();
        assert_eq!(r.kind, Kind::Response);
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        // The attack: 20,000 levels in params; sonic-rs' validating skip recursed per level.
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"x":{}{}}}}}"#,
            "[".repeat(20_000),
            "]".repeat(20_000)
        );
        // Refused before anything recursive runs: even a small stack is enough.
        let e = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || Envelope::parse(body.as_bytes()).unwrap_err())
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(e.code(), code::INVALID_REQUEST, "{e}");
        assert!(e.to_string().contains("deeper than 128"), "{e}");
        let ok = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"x":{}{}}}}}"#,
            "[".repeat(126),
            "]".repeat(126)
        );
        // At the bound the validating parser recurses 128 times: it fits a shard's stack
        // (`THREAD_STACK_BYTES`), even unoptimised.
        let parsed = std::thread::Builder::new()
            .stack_size(crate::rt::THREAD_STACK_BYTES)
            .spawn(move || Envelope::parse(ok.as_bytes()).is_ok())
            .unwrap()
            .join()
            .unwrap();
        assert!(parsed);
    }

    #[test]
    fn duplicate_members_that_route_are_refused() {
        let cases: &[&[u8]] = &[
            br#"{"jsonrpc":"2.0","id":11,"id":"x","method":"tools/call","params":{"name":"a__b"}}"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fail","name":"web__echo"}}"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"ping"}"#,
            br#"{"jsonrpc":"2.0","jsonrpc":"2.0","id":1,"method":"ping"}"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"a","uri":"b"}}"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"_meta":{"progressToken":1,"progressToken":2}}}"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"_meta":{},"_meta":{}}}"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"arguments":{},"arguments":{"a":1}}}"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"x","params":{},"params":{}}"#,
            // The same name once escaped is still the same name.
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","n\u0061me":"b"}}"#,
        ];
        for body in cases {
            let e = Envelope::parse(body).unwrap_err();
            assert_eq!(
                e.code(),
                code::INVALID_REQUEST,
                "{}",
                String::from_utf8_lossy(body)
            );
            assert!(e.to_string().contains("duplicate member"), "{e}");
        }
        // Repeats below the routed levels (inside arguments) are the backend's business.
        let b = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"q":1,"q":2}}}"#;
        assert!(Envelope::parse(b).is_ok());
        // Many members: past the small array, the hash set still finds the repeat.
        let mut many = String::from(r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"#);
        for i in 0..40 {
            many.push_str(&format!(r#""k{i}":{i},"#));
        }
        let distinct = format!(r#"{many}"k40":0}}}}"#);
        many.push_str(r#""k3":0}}"#);
        assert!(Envelope::parse(many.as_bytes()).is_err());
        assert!(Envelope::parse(distinct.as_bytes()).is_ok(), "{distinct}");
    }

    #[test]
    fn lone_surrogates_are_parse_errors() {
        let b = br#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"a","arguments":{"s":"x\ud800y"}}}"#;
        let e = Envelope::parse(b).unwrap_err();
        assert_eq!(e.code(), code::PARSE_ERROR, "{e}");
        let pair = br#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"a","arguments":{"s":"x\ud83d\ude00y"}}}"#;
        assert!(Envelope::parse(pair).is_ok());
    }

    #[test]
    fn id_hint_reads_only_a_single_valid_id() {
        let deep = format!(
            r#"{{"jsonrpc":"2.0","id":"r-1","params":{}}}"#,
            "[".repeat(300)
        );
        assert_eq!(Envelope::id_hint(deep.as_bytes()), br#""r-1""#);
        let cases: &[(&[u8], &[u8])] = &[
            (br#"{"id":7,"x":"\ud800"}"#, b"7"),
            (br#"{"id":-2.5e3,"x":"\ud800"}"#, b"-2.5e3"),
            (br#"{"id":1,"id":2}"#, b"null"),
            (br#"{"id":"\ud800"}"#, b"null"),
            (br#"{"id":{"a":1}}"#, b"null"),
            (br#"{"id":tru}"#, b"null"),
            (br#"{"id":"unterminated"#, b"null"),
            (b"not json", b"null"),
            (b"", b"null"),
        ];
        for (body, want) in cases {
            assert_eq!(
                Envelope::id_hint(body),
                *want,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn escaped_names_are_unescaped() {
        let b = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a\u005fb"}}"#;
        let e = Envelope::parse(b).unwrap();
        assert_eq!(e.name_str.as_deref(), Some("a_b"));
    }
}

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
use crate::wire::scan;

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
    /// `traceparent` (W3C Trace Context, MCP's convention): its value's range, whatever its type.
    pub traceparent: Option<Range<usize>>,
    /// `tracestate`: its value's range, whatever its type.
    pub tracestate: Option<Range<usize>>,
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
    /// `params.taskId`'s range, including its quotes (`tasks/*`).
    pub task_id: Option<Range<usize>>,
    /// `params.taskId`, unescaped.
    pub task_id_str: Option<Cow<'a, str>>,
    /// `params.task` is an object (a 2025 task-augmented request).
    pub task: bool,
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
            task_id: None,
            task_id_str: None,
            task: false,
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
                            b"traceparent" => self.meta.traceparent = Some(v),
                            b"tracestate" => self.meta.tracestate = Some(v),
                            _ => {}
                        }
                    }
                    self.meta.present = true;
                    self.meta.range = Some(val);
                }
                b"protocolVersion" => self.protocol_version = unescape(is_str, body, val),
                b"taskId" if is_str => {
                    self.task_id = Some(val.clone());
                    self.task_id_str = unescape(true, body, val);
                }
                b"task" => self.task = first == Some(b'{'),
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
/// its own id over it) and applies up to three `others` edits (non-overlapping, not touching
/// the id), in one pass into `out`; returns where the placeholder landed.
pub fn splice_placeholder(
    body: &[u8],
    id: Range<usize>,
    others: &[(Range<usize>, &[u8])],
    out: &mut Vec<u8>,
) -> Range<usize> {
    debug_assert!(others.len() <= 3);
    let mut all: [(Range<usize>, &[u8]); 4] =
        [(id.clone(), b"0"), (0..0, b""), (0..0, b""), (0..0, b"")];
    let n = 1 + others.len().min(3);
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
#[path = "jsonrpc_tests.rs"]
mod tests;

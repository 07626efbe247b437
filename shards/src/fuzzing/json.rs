//! JSON-RPC messages: the envelope scan and the splices made with its ranges (client side),
//! the envelope checked against a full serde_json parse, the member walk alone, and what the
//! gateway does with a backend's messages (routing, the id spliced back, result stamps).

use std::cell::RefCell;
use std::ops::Range;

use super::{in_bounds, serde_limit, valid_json};
use crate::catalog::{cache_hints, uri, BackendCaps};
use crate::error::McpError;
use crate::upstream::routes::{handle_message, LocalRoutes};
use crate::upstream::BackendReply;
use crate::wire::jsonrpc::{splice, splice_placeholder, splice_tracking, Envelope, Kind};
use crate::wire::scan;

fn ranges(env: &Envelope<'_>) -> Vec<Range<usize>> {
    [
        env.id.clone(),
        env.params.clone(),
        env.name.clone(),
        env.cursor.clone(),
        env.progress_token.clone(),
        env.request_id.clone(),
        env.uri.clone(),
        env.meta.range.clone(),
        env.meta.capabilities.clone(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn is_string(raw: &[u8]) -> bool {
    raw.len() >= 2 && raw[0] == b'"' && raw[raw.len() - 1] == b'"'
}

/// The envelope of a client's body, and every splice the gateway makes with its ranges: the
/// id replaced by the placeholder, the name and progress token by the gateway's, `_meta`
/// added for a modern backend, `Mcp-Method`/`Mcp-Name` computed from it. Ranges are in
/// bounds and hold the values they claim; spliced bodies are valid and read back the same.
pub fn envelope(data: &[u8]) {
    let env = match Envelope::parse(data) {
        Ok(env) => env,
        Err(e) => {
            assert!(
                valid_json(&e.to_response(b"null")),
                "error answer is not JSON"
            );
            return;
        }
    };
    for r in ranges(&env) {
        assert!(in_bounds(&r, data.len()), "{r:?} outside the body");
    }
    match env.kind {
        Kind::Request => assert!(env.id.is_some() && env.method.is_some()),
        Kind::Notification => assert!(env.id.is_none() && env.method.is_some()),
        Kind::Response => assert!(env.id.is_some() && env.method.is_none()),
    }
    if let Some(id) = &env.id {
        let raw = &data[id.clone()];
        assert!(is_string(raw) || matches!(raw[0], b'-' | b'0'..=b'9'));
        assert!(valid_json(raw), "id range is not one JSON value");
    }
    for r in [&env.name, &env.uri].into_iter().flatten() {
        assert!(
            is_string(&data[r.clone()]),
            "name/uri range is not a string"
        );
    }
    let (Some(id), Some(method)) = (env.id.clone(), env.method.as_deref()) else {
        return;
    };
    // The forward path: id to the placeholder, name and progress token to the gateway's.
    let mut others: Vec<(Range<usize>, &[u8])> = Vec::new();
    if let Some(n) = env.name.clone() {
        others.push((n, b"\"x__y\""));
    }
    if let Some(t) = env.progress_token.clone() {
        others.push((t, b"\"o1m.0.1\""));
    }
    let mut out = Vec::new();
    let at = splice_placeholder(data, id.clone(), &others, &mut out);
    assert_eq!(
        &out[at.clone()],
        b"0",
        "the placeholder is not where it was said to be"
    );
    // The same as the two-step splice it replaced.
    let mut tmp = Vec::new();
    let tracked = splice_tracking(data, &mut others.clone(), id.clone(), &mut tmp);
    assert_eq!(
        &tmp[tracked.clone()],
        &data[id.clone()],
        "tracking lost the id"
    );
    let mut want = Vec::new();
    splice(&tmp, &[(tracked, b"0")], &mut want);
    assert_eq!(out, want);
    // Valid values spliced over value ranges leave a valid message that reads the same.
    let back = Envelope::parse(&out).unwrap_or_else(|e| panic!("spliced body refused: {e}"));
    assert_eq!(back.kind, env.kind);
    assert_eq!(back.id, Some(at.clone()));
    assert_eq!(back.method.as_deref(), Some(method));
    if env.name.is_some() {
        assert_eq!(back.name_str.as_deref(), Some("x__y"));
    }
    if env.progress_token.is_some() {
        assert_eq!(&out[back.progress_token.clone().unwrap()], b"\"o1m.0.1\"");
    }
    // The backend's own id over the placeholder.
    let mut wire = Vec::new();
    splice(&out, &[(at.clone(), b"12345")], &mut wire);
    assert_eq!(wire[..at.start], out[..at.start]);
    assert_eq!(wire[at.start + 5..], out[at.end..]);
    // A modern backend: `_meta` added, the id followed.
    if let Ok((modern, id_at)) =
        crate::upstream::modern::to_modern(&wire, at.start..at.start + 5, None)
    {
        assert_eq!(&modern[id_at], b"12345");
        let m = Envelope::parse(&modern).unwrap_or_else(|e| panic!("to_modern broke it: {e}"));
        assert_eq!(
            m.meta.version.as_deref(),
            Some(
                back.meta
                    .version
                    .as_deref()
                    .unwrap_or(crate::upstream::modern::MODERN)
            )
        );
    }
    // `Mcp-Name` computed from the body is visible ASCII and decodes back to the name; the
    // `Mcp-Param-*` headers computed for a backend pass the gateway's own check of them.
    let tool = mirroring_tool();
    let headers = crate::upstream::modern::request_headers(&wire, Some(tool));
    if let Ok(w) = Envelope::parse(&wire) {
        let sent: Vec<crate::http::request::SentParam> = headers
            .iter()
            .filter_map(|(k, v)| {
                let name = k.strip_prefix("mcp-param-")?;
                assert!(v.bytes().all(|b| (0x20..0x7f).contains(&b)), "{k}: {v:?}");
                Some(crate::http::request::SentParam {
                    name: name.to_ascii_lowercase().into(),
                    value: v.as_bytes().into(),
                })
            })
            .collect();
        let ambiguous = tool.mirrored.iter().any(|m| {
            let args = w
                .params
                .clone()
                .and_then(|p| crate::wire::args::arguments(&wire, p));
            crate::wire::args::at(&wire, args, &m.path) == crate::wire::args::Arg::Ambiguous
        });
        if w.method.as_deref() == Some("tools/call") && !ambiguous {
            let checked = crate::route::params::check(tool, Some(&sent), &wire, &w);
            assert!(checked.is_ok(), "own headers refused: {checked:?}");
        }
    }
    for (k, v) in headers {
        if k == "mcp-name" {
            assert!(v.bytes().all(|b| (0x20..0x7f).contains(&b)), "{k}: {v:?}");
            let name = crate::wire::header::header_value(&v);
            assert!(
                name.as_deref() == back.name_str.as_deref()
                    || name.as_deref() == back.uri_str.as_deref(),
                "{v:?} does not decode to the name"
            );
        }
    }
}

/// A tool mirroring a top-level and a nested argument, as fuzzed bodies may carry them.
fn mirroring_tool() -> &'static crate::catalog::params::ToolHeaders {
    static TOOL: std::sync::OnceLock<crate::catalog::params::ToolHeaders> =
        std::sync::OnceLock::new();
    TOOL.get_or_init(|| {
        let t = br#"{"name":"t","inputSchema":{"type":"object","properties":{"message":{"type":"string","x-mcp-header":"Message"},"a":{"type":"object","properties":{"b":{"type":"integer","x-mcp-header":"B"}}}}}}"#;
        crate::catalog::params::of_tool(t)
            .expect("a valid annotation")
            .expect("two mirrored arguments")
    })
}

fn serde_str(v: Option<&serde_json::Value>) -> Option<&str> {
    v.and_then(|v| v.as_str())
}

fn raw_value(data: &[u8], r: &Option<Range<usize>>) -> Option<serde_json::Value> {
    r.as_ref()
        .map(|r| serde_json::from_slice(&data[r.clone()]).expect("range holds one JSON value"))
}

/// The envelope against a full parse by serde_json (which keeps the last of duplicate
/// members): both accept or refuse the same texts, and where the envelope accepts they
/// agree on `jsonrpc`, `id`, `method`, `params.name`, `params.uri`,
/// `params._meta.progressToken` and whether a result or error is present.
pub fn envelope_differential(data: &[u8]) {
    let full = serde_json::from_slice::<serde_json::Value>(data);
    if let Err(e) = &full {
        if serde_limit(e) {
            return;
        }
    }
    let env = match Envelope::parse(data) {
        Ok(env) => env,
        Err(McpError::Parse(why)) => {
            assert!(
                full.is_err(),
                "envelope: not JSON ({why}); serde_json: JSON"
            );
            return;
        }
        Err(e) => {
            // A batch is refused before its JSON is checked: `[` is -32600 even when what
            // follows is not JSON (-32700 would be more exact; either way it is refused).
            let batch = data.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
            // Nesting is bounded before the JSON is validated: too deep is -32600 whether
            // or not the rest is JSON.
            let too_deep = e.to_string().contains("nests deeper than");
            assert!(
                full.is_ok() || batch || too_deep,
                "envelope: valid JSON ({e}); serde_json: {full:?}"
            );
            return;
        }
    };
    let v = full.unwrap_or_else(|e| panic!("envelope accepted what serde_json refuses: {e}"));
    let obj = v.as_object().expect("an accepted envelope is an object");
    assert_eq!(serde_str(obj.get("jsonrpc")), Some("2.0"));
    assert_eq!(raw_value(data, &env.id).as_ref(), obj.get("id"), "id");
    assert_eq!(
        env.method.as_deref(),
        serde_str(obj.get("method")),
        "method"
    );
    let params = obj.get("params").and_then(|p| p.as_object());
    let member = |k: &str| params.and_then(|p| p.get(k)).filter(|v| v.is_string());
    assert_eq!(
        raw_value(data, &env.name).as_ref(),
        member("name"),
        "params.name"
    );
    assert_eq!(
        env.name_str.as_deref(),
        serde_str(member("name")),
        "params.name text"
    );
    assert_eq!(
        raw_value(data, &env.uri).as_ref(),
        member("uri"),
        "params.uri"
    );
    let token = params
        .and_then(|p| p.get("_meta"))
        .and_then(|m| m.as_object())
        .and_then(|m| m.get("progressToken"))
        .filter(|t| t.is_string() || t.is_number());
    assert_eq!(
        raw_value(data, &env.progress_token).as_ref(),
        token,
        "progressToken"
    );
    let answered = obj.contains_key("result") || obj.contains_key("error");
    assert_eq!(
        env.kind == Kind::Response,
        answered,
        "result/error presence"
    );
}

/// The allocation-free member walk on any bytes: ranges in bounds and in order, and on a
/// valid object exactly the members sonic-rs' own iterator yields, in document order.
pub fn scan_members(data: &[u8]) {
    let start = scan::skip_ws(data, 0);
    let mut last = start;
    let mut walked = Vec::new();
    for (k, v) in scan::members(data, start) {
        assert!(in_bounds(&k, data.len()) && in_bounds(&v, data.len()));
        assert!(
            k.start > last && k.end < v.start && v.start <= v.end,
            "{k:?} {v:?}"
        );
        last = v.end;
        walked.push((k, v));
        assert!(walked.len() <= data.len(), "the walk does not advance");
    }
    if data.get(start) != Some(&b'{') || !valid_json(data) {
        return;
    }
    let mut theirs = Vec::new();
    for m in sonic_rs::to_object_iter(data) {
        let Ok((key, value)) = m else { return };
        theirs.push((key.to_string(), value.as_raw_str().to_string()));
    }
    let ours: Vec<(String, String)> = walked
        .iter()
        .map(|(k, v)| {
            let key = serde_json::from_slice::<String>(&data[k.start - 1..k.end + 1])
                .expect("a key of a valid object");
            (key, String::from_utf8_lossy(&data[v.clone()]).into_owned())
        })
        .collect();
    assert_eq!(ours, theirs, "the walk and sonic-rs disagree");
}

/// A backend's message as the gateway handles it: routed like a stdio line or legacy SSE
/// event (replies to the waiting call by id, answers written back to the backend), and as a
/// response: its id replaced by the client's, the result stamped for a modern client, its
/// URIs namespaced, its capabilities and cache hints read.
pub fn backend_message(data: &[u8]) {
    let routes = LocalRoutes::default();
    let mut waiting = Vec::new();
    for k in 0..4u64 {
        let (tx, rx) = futures_channel::oneshot::channel();
        routes.pending.borrow_mut().insert(k, tx);
        waiting.push((k, rx));
    }
    let link = crate::upstream::Deadline::none();
    let (sink, mut events) = link.events();
    if data.first().is_some_and(|b| b & 1 == 1) {
        routes.sinks.borrow_mut().push((0, sink.clone()));
    }
    routes
        .progress
        .borrow_mut()
        .insert(b"\"o1m.0.1\"".to_vec(), sink);
    let sent = RefCell::new(Vec::new());
    handle_message(
        "fuzz",
        data,
        &routes,
        &|m| sent.borrow_mut().push(m),
        "fuzz",
    );
    for m in sent.into_inner() {
        let env = Envelope::parse(&m).unwrap_or_else(|e| panic!("answer to the backend: {e}"));
        assert_eq!(env.kind, Kind::Response, "answer to the backend");
        let asked = Envelope::parse(data.strip_suffix(b"\r").unwrap_or(data)).unwrap();
        assert_eq!(
            env.id_bytes(&m),
            asked.id_bytes(data),
            "answer to another id"
        );
    }
    for (k, mut rx) in waiting {
        if let Ok(Some(Ok(reply))) = rx.try_recv() {
            assert_eq!(&reply.body[reply.id.clone()], k.to_string().as_bytes());
        }
    }
    while let Some(ev) = events.try_recv() {
        assert!(
            Envelope::parse(&ev.msg).is_ok(),
            "an event that is no message"
        );
    }
    let Ok(reply) = BackendReply::from_message("fuzz", data.to_vec()) else {
        return;
    };
    assert!(in_bounds(&reply.id, reply.body.len()));
    let mut out = Vec::new();
    splice(
        &reply.body,
        &[(reply.id.clone(), b"\"client-7\"")],
        &mut out,
    );
    let back = Envelope::parse(&out).unwrap_or_else(|e| panic!("client's id spliced in: {e}"));
    assert_eq!(back.kind, Kind::Response);
    assert_eq!(back.id_bytes(&out), b"\"client-7\"");
    let Ok(result) = reply.result("fuzz") else {
        return;
    };
    assert!(valid_json(result), "result range is not one JSON value");
    let start = result.as_ptr() as usize - reply.body.as_ptr() as usize;
    let mut stamped = Vec::new();
    if crate::route::finish::stamp_object(
        &reply.body,
        start..start + result.len(),
        "resultType",
        b"\"resultType\":\"complete\",",
        &mut stamped,
    ) {
        assert!(valid_json(&stamped), "stamped result is not JSON");
    }
    if let Some(new) = uri::rewrite_result(result, "srv") {
        assert!(valid_json(&new), "namespaced result is not JSON");
    }
    let _ = BackendCaps::from_initialize_result(result);
    let _ = cache_hints(result);
}

/// A client's body read as a 2025-03-26 batch (`wire::batch::split`): on any bytes, no panic;
/// when it splits, at least one and at most the bound of elements, in bounds, in order and
/// apart, each one JSON value, and exactly the elements a full serde_json parse of the array
/// sees, in order.
pub fn batch(data: &[u8]) {
    const MAX: usize = 8;
    let array = crate::wire::batch::is_array(data);
    let Ok(ranges) = crate::wire::batch::split(data, MAX) else {
        return;
    };
    assert!(array, "split a body that is not an array");
    assert!((1..=MAX).contains(&ranges.len()), "{ranges:?}");
    let mut last = 0;
    let mut elements = Vec::with_capacity(ranges.len());
    for r in &ranges {
        assert!(
            in_bounds(r, data.len()) && r.start > last && r.start < r.end,
            "{r:?}"
        );
        last = r.end;
        match serde_json::from_slice::<serde_json::Value>(&data[r.clone()]) {
            Ok(v) => elements.push(v),
            Err(e) if serde_limit(&e) => return,
            Err(e) => panic!("element {r:?} is not one JSON value: {e}"),
        }
    }
    match serde_json::from_slice::<serde_json::Value>(data) {
        Ok(serde_json::Value::Array(all)) => assert_eq!(all, elements),
        Ok(other) => panic!("split a non-array: {other}"),
        Err(e) if serde_limit(&e) => {}
        Err(e) => panic!("split a body serde_json refuses: {e}"),
    }
}

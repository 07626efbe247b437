//! Short values clients send: `Mcp-Name`/`Mcp-Param` header values (`=?base64?…?=`),
//! session ids and `Last-Event-ID`, list cursors, and the `requestState` of a retried call.

use super::valid_json;
use crate::catalog::{page_of, page_range, parse_cursor};
use crate::ring::Ring;
use crate::route::resume::parse_event_id;
use crate::route::state;
use crate::wire::header::{base64_sentinel, header_value};
use crate::wire::jsonrpc::Envelope;

/// A header value as the front reads it (UTF-8, trimmed): the strict `=?base64?…?=` decoder
/// against the `base64` crate's standard engine, and the encoder the gateway uses toward
/// backends decoded back to the bytes it encoded.
pub fn mcp_headers(data: &[u8]) {
    use base64::Engine;
    let text = String::from_utf8_lossy(data);
    let v = text.trim();
    let ours = header_value(v);
    match v
        .strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
    {
        Some(b64) => {
            // Padding is required and checked; unused low bits of the last symbol are not
            // (`SGVsbG9=` reads as `SGVsbG8=`): the decoded name is compared, not re-sent.
            let lenient = base64::engine::GeneralPurpose::new(
                &base64::alphabet::STANDARD,
                base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
            );
            let theirs = lenient
                .decode(b64)
                .ok()
                .and_then(|b| String::from_utf8(b).ok());
            assert_eq!(ours, theirs, "base64 of {b64:?}");
        }
        None => assert_eq!(ours.as_deref(), Some(v)),
    }
    let sentinel = base64_sentinel(data);
    assert!(sentinel.bytes().all(|b| (0x21..0x7f).contains(&b)));
    assert_eq!(
        header_value(&sentinel),
        std::str::from_utf8(data).ok().map(str::to_string),
        "the sentinel does not decode to what was encoded"
    );
}

/// `Mcp-Session-Id` and `Last-Event-ID`: an id is classified without panicking, only a
/// shape-correct id can be called the node's own or another node's, and one the node did not
/// sign is never either; an event id that parses prints back to the same numbers.
pub fn session_id(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let sid = text.trim();
    use crate::cluster::session_id::{classify, Verdict};
    let solo = crate::cluster::SharedCluster::solo();
    if classify(&solo, sid) == Verdict::Unknown {
        assert!(sid.len() == 32 && sid.bytes().all(|b| b.is_ascii_hexdigit()));
    }
    let node = fuzz_node();
    match classify(node, sid) {
        Verdict::Unknown | Verdict::Foreign => {
            assert_eq!(
                sid.split('.').count(),
                3,
                "only a cluster-shaped id verifies"
            );
            // The fuzzer cannot find a MAC under a key it does not know: only ids minted
            // here verify.
            assert!(sid.len() <= 16 + 2 + 22 + 16);
        }
        Verdict::Forged | Verdict::Malformed => {}
    }
    for shards in [1, 2, 3, 8] {
        assert!(Ring::new(shards).owner(sid.as_bytes()) < shards);
    }
    if let Some((stream, seq)) = parse_event_id(text) {
        assert_eq!(
            parse_event_id(&format!("{stream}-{seq}")),
            Some((stream, seq))
        );
    }
}

/// A node `g1` with a fixed key, for classifying fuzzed session ids.
fn fuzz_node() -> &'static crate::cluster::SharedCluster {
    static NODE: std::sync::OnceLock<crate::cluster::SharedCluster> = std::sync::OnceLock::new();
    NODE.get_or_init(|| {
        crate::cluster::SharedCluster::node(
            "g1",
            crate::cluster::KeyRing::single("k", b"fuzzing-key-0123456789abcdef0123"),
        )
    })
}

/// A list request with a fuzzed cursor, resolved against a list of fuzzed size and page
/// size: a cursor is the gateway's own or refused, and every page served is a valid array
/// of the items from that offset.
pub fn cursor(data: &[u8]) {
    let [n, page_size, value @ ..] = data else {
        return;
    };
    let (n, page_size) = (usize::from(n % 40), usize::from(page_size % 8));
    let mut body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"cursor":"#.to_vec();
    body.extend_from_slice(value);
    body.extend_from_slice(b"}}");
    let Ok(env) = Envelope::parse(&body) else {
        return;
    };
    let Some(r) = env.cursor.clone() else {
        return;
    };
    let Some(offset) = sonic_rs::from_slice::<String>(&body[r])
        .ok()
        .and_then(|c| parse_cursor(&c))
    else {
        return;
    };
    let mut json = b"[".to_vec();
    let mut items = Vec::new();
    for i in 0..n {
        if i > 0 {
            json.push(b',');
        }
        let s = json.len() as u32;
        json.extend_from_slice(format!(r#"{{"name":"t{i}"}}"#).as_bytes());
        items.push((s, json.len() as u32));
    }
    json.push(b']');
    let Some((range, whole, next)) = page_range(json.len(), &items, offset, page_size) else {
        assert!(
            offset > n || (offset == n && n > 0),
            "offset {offset} of {n} refused"
        );
        return;
    };
    assert!(offset <= n && range.end <= json.len());
    assert!(!whole || range == (0..json.len()));
    let (page, next2) = page_of(&json, &items, offset, page_size).expect("same as page_range");
    assert_eq!(next, next2);
    let page: Vec<serde_json::Value> = serde_json::from_slice(&page).expect("a JSON array");
    let want = match page_size {
        0 => n - offset,
        p => p.min(n - offset),
    };
    assert_eq!(page.len(), want, "page at {offset} of {n} by {page_size}");
    assert_eq!(next, (offset + want < n).then_some(offset + want));
    assert!(page
        .iter()
        .enumerate()
        .all(|(i, v)| v["name"] == format!("t{}", offset + i).as_str()));
    assert!(valid_json(&json));
}

/// A `requestState` as a retried request carries it (in `params.requestState`, or the bytes
/// themselves): parsing never fails loudly; a state that parses verifies only against the
/// binding it was minted for; the gateway's own states parse back to what they name.
pub fn request_state(data: &[u8]) {
    use sonic_rs::JsonValueTrait;
    // The product reads `params.requestState` only from a body the envelope accepted
    // (nesting bounded); so does this.
    let from_body = Envelope::parse(data)
        .ok()
        .and_then(|_| sonic_rs::get(data, ["params", "requestState"]).ok())
        .and_then(|v| v.as_str().map(str::to_string));
    let raw = String::from_utf8_lossy(data).into_owned();
    let bind = state::binding("tools/call", "demo__echo", data, "anonymous");
    let node = fuzz_node();
    for s in from_body.iter().chain([&raw]) {
        if let Some(p) = state::parse(s) {
            assert!(state::is_ours(s));
            // A forged state verifies only if it guessed the keyed tag: never in practice.
            let _ = state::verify(node, &p, &bind);
            // Carried answers of an unverified state are read without panicking.
            let _ = p.carried();
        }
    }
    if let Some(&first) = data.first() {
        let n = u64::from(first) << 40 | data.len() as u64;
        let shard = data.len() % 4;
        // The fuzzed bytes as an earlier answer, when they are one JSON value.
        // (Depth checked first, as the product does for every body an answer comes from.)
        let given: Vec<Vec<u8>> = (crate::wire::scan::check(data, 128).is_ok()
            && sonic_rs::from_slice::<sonic_rs::Value>(data).is_ok())
        .then(|| data.to_vec())
        .into_iter()
        .collect();
        let s = state::mint(
            node,
            shard,
            n,
            &bind,
            &given,
            std::time::Duration::from_secs(60),
        );
        let p = state::parse(&s).expect("our own state parses");
        assert_eq!((p.shard, p.n), (shard, n));
        assert_eq!(state::verify(node, &p, &bind), Ok(()));
        if data.len() < state::MAX_CARRIED_BYTES - 2 && data.trim_ascii() == data {
            assert_eq!(
                p.carried(),
                state::Carried::Answers(given),
                "answers carried intact"
            );
        }
        let mut changed = data.to_vec();
        changed.push(b' ');
        let other = state::binding("tools/call", "demo__echo", &changed, "anonymous");
        assert_ne!(
            state::verify(node, &p, &other),
            Ok(()),
            "bound to its arguments"
        );
    }
}

//! Envelope parsing, refusals and splices, on bytes.

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
    let n = Envelope::parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
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

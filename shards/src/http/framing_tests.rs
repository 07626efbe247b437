//! RFC 9112 framing rules, and the head parser that applies them, on bytes (no socket).

use super::*;
use crate::http::request::parse_head;

fn status(head: &str) -> u16 {
    match parse_head(head.as_bytes()) {
        Ok(Some(_)) => 200,
        Ok(None) => 0,
        Err(ReadError::Status(s, _)) => s,
        Err(e) => panic!("{e:?}"),
    }
}

const POST: &str = "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n";

#[test]
fn a_wrapping_chunk_size_is_413_not_a_panic() {
    // The attack: 2 bytes of body, then a size that wraps `len + size` around 2^64.
    let buf = b"2\r\nab\r\nfffffffffffffffe\r\nxx\r\n0\r\n\r\n";
    assert_eq!(
        chunk_step(buf, 0, 0, 1 << 20).unwrap(),
        ChunkStep::Data(3..5)
    );
    match chunk_step(buf, 7, 2, 1 << 20) {
        Err(ReadError::Status(413, _)) => {}
        other => panic!("{other:?}"),
    }
    for size in ["ffffffffffffffff", "10000000000000000", "7fffffffffffffff"] {
        let b = format!("{size}\r\n");
        assert!(
            chunk_step(b.as_bytes(), 0, usize::MAX, usize::MAX).is_err(),
            "{size}"
        );
    }
}

#[test]
fn chunks_decode_and_refuse_what_is_malformed() {
    let buf = b"3;ext=1\r\nabc\r\n0\r\n\r\nNEXT";
    assert_eq!(chunk_step(buf, 0, 0, 10).unwrap(), ChunkStep::Data(9..12));
    assert_eq!(chunk_step(buf, 14, 3, 10).unwrap(), ChunkStep::End(19));
    assert_eq!(chunk_step(b"3\r\nab", 0, 0, 10).unwrap(), ChunkStep::Need);
    assert_eq!(chunk_step(b"", 0, 0, 10).unwrap(), ChunkStep::Need);
    assert_eq!(chunk_step(b"x", 5, 0, 10).unwrap(), ChunkStep::Need);
    let bad: [(&[u8], u16); 4] = [
        (b"3\r\nabcXY", 400),
        (b"zz\r\n", 400),
        (b"0\r\nTrailer: x\r\n\r\n", 400),
        (b"b\r\nhello world\r\n", 413),
    ];
    for (b, want) in bad {
        match chunk_step(b, 0, 0, 10) {
            Err(ReadError::Status(s, _)) => assert_eq!(s, want, "{:?}", String::from_utf8_lossy(b)),
            other => panic!("{other:?}"),
        }
    }
    let long = format!("1;{}", "e".repeat(2000));
    assert!(chunk_step(long.as_bytes(), 0, 0, 10).is_err());
}

#[test]
fn transfer_encoding_must_end_in_one_chunked() {
    let te = |v: &str| status(&format!("{POST}Transfer-Encoding: {v}\r\n\r\n"));
    assert_eq!(te("chunked"), 200);
    assert_eq!(te("Chunked"), 200);
    assert_eq!(te("chunked, identity"), 400);
    assert_eq!(te("identity"), 400);
    assert_eq!(te("gzip"), 400);
    assert_eq!(te("chunked, chunked"), 400);
    assert_eq!(te("gzip, chunked"), 501);
    // Two lines are one list.
    assert_eq!(
        status(&format!(
            "{POST}Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n"
        )),
        400
    );
    assert_eq!(
        status(&format!(
            "{POST}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
        )),
        400
    );
}

#[test]
fn content_length_is_digits_only() {
    let cl = |v: &str| status(&format!("{POST}Content-Length: {v}\r\n\r\n"));
    assert_eq!(cl("40"), 200);
    assert_eq!(cl("0"), 200);
    for v in ["+40", "-1", "4 0", "40, 40", "0x10", "", "4e1"] {
        assert_eq!(cl(v), 400, "{v:?}");
    }
    assert_eq!(cl("99999999999999999999999"), 413);
    assert_eq!(
        status(&format!(
            "{POST}Content-Length: 1\r\nContent-Length: 1\r\n\r\n"
        )),
        400
    );
}

#[test]
fn host_exactly_once_and_absolute_form_targets() {
    assert_eq!(status("POST /mcp HTTP/1.1\r\n\r\n"), 400, "no Host");
    assert_eq!(
        status("GET /health HTTP/1.0\r\n\r\n"),
        200,
        "HTTP/1.0 needs none"
    );
    assert_eq!(
        status("POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n\r\n"),
        400
    );
    let head = b"POST http://127.0.0.1:8080/mcp?x=1 HTTP/1.1\r\nHost: evil.example\r\n\r\n";
    let (req, _, _) = parse_head(head).unwrap().unwrap();
    assert_eq!(&head[req.path.clone()], b"/mcp");
    assert_eq!(&head[req.query.clone().unwrap()], b"x=1");
    // The target's authority replaces Host (RFC 9112 3.2.2), so the Host check sees it.
    assert_eq!(&head[req.headers.host.clone().unwrap()], b"127.0.0.1:8080");
    assert_eq!(split_absolute("https://h").unwrap(), (Some("h"), "/"));
    for t in ["ftp://h/x", "http:///x", "http://u@h/x", "mcp", "http:/x"] {
        assert!(split_absolute(t).is_err(), "{t}");
    }
}

#[test]
fn headers_the_gateway_acts_on_appear_once() {
    for h in [
        "Mcp-Session-Id: a",
        "Authorization: Bearer x",
        "Origin: http://localhost",
        "Content-Type: application/json",
        "MCP-Protocol-Version: 2025-11-25",
        "Mcp-Method: tools/call",
        "Mcp-Name: x",
    ] {
        assert_eq!(status(&format!("{POST}{h}\r\n\r\n")), 200, "{h}");
        assert_eq!(
            status(&format!("{POST}{h}\r\n{h}\r\n\r\n")),
            400,
            "{h} twice"
        );
    }
    // Accept is a list: two lines are fine.
    let two = format!("{POST}Accept: application/json\r\nAccept: text/event-stream\r\n\r\n");
    assert_eq!(status(&two), 200);
}

#[test]
fn idle_connections_give_back_a_large_requests_memory() {
    use crate::http::request::{ConnBuffers, KEEP_CAPACITY};
    let mut b = ConnBuffers::default();
    b.buf.extend_from_slice(&vec![b'x'; 4 << 20]);
    b.body.extend_from_slice(&vec![b'y'; 4 << 20]);
    b.buf.clear();
    b.body.clear();
    b.buf.extend_from_slice(b"GET /health HTTP/1.1\r\n");
    b.shrink();
    assert!(b.buf.capacity() <= KEEP_CAPACITY, "{}", b.buf.capacity());
    assert!(b.body.capacity() <= KEEP_CAPACITY, "{}", b.body.capacity());
    assert_eq!(
        &b.buf[..],
        b"GET /health HTTP/1.1\r\n",
        "what it holds stays"
    );
    assert!(max_chunked_raw(4096) < 100_000);
    assert_eq!(max_chunked_raw(usize::MAX), usize::MAX);
}

#[test]
fn mcp_param_headers_are_noted_and_read_only_when_sent() {
    use crate::http::request::mcp_params;
    let plain = format!("{POST}Mcp-Name: x\r\nMcp-Params: no\r\nMcp-Param-: no\r\n\r\n");
    let (req, _, _) = parse_head(plain.as_bytes()).unwrap().unwrap();
    assert!(!req.headers.mcp_params, "no Mcp-Param-{{Name}} header");
    assert_eq!(mcp_params(plain.as_bytes()), None);
    let head = format!(
        "{POST}MCP-PARAM-Region:  us-west1 \r\nmcp-param-region: again\r\nMcp-Param-Flag: \r\nX: y\r\nMcp-Param-Greeting: =?base64?SGk=?=\r\n\r\n"
    );
    let (req, _, _) = parse_head(head.as_bytes()).unwrap().unwrap();
    assert!(req.headers.mcp_params);
    let sent = mcp_params(head.as_bytes()).unwrap();
    let got: Vec<(&str, &[u8])> = sent.iter().map(|p| (&*p.name, &*p.value)).collect();
    assert_eq!(
        got,
        [
            ("region", &b"us-west1"[..]),
            ("region", b"again"),
            ("flag", b""),
            ("greeting", b"=?base64?SGk=?="),
        ],
        "names lower-cased, values trimmed, repeats kept for the check to refuse"
    );
}

//! HTTP/1.1 from clients (request heads, Content-Length and chunked bodies, pipelining) and
//! from backends (response heads, Content-Length, chunked and until-close bodies).
//!
//! `read_request` is the connection's real reader, driven over an in-memory stream whose
//! reads return the pieces [`super::pieces`] cut, on a monoio runtime kept per thread: no
//! socket, and every read is ready at once, so no timer ever fires.

use std::cell::RefCell;
use std::io;

use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent};
use monoio::BufResult;

use super::{in_bounds, pieces};
use crate::balance::{AffinityValues, BalanceKey};
use crate::http::client::{parse_response_head, ClientError};
use crate::http::request::{
    parse_head, read_request, ConnBuffers, Framing, Limits, ReadError, Request,
};
use crate::http::sse::SseDecoder;

/// Reads return the given pieces, one per read (split further when the buffer is smaller),
/// then EOF. Writes (a `100 Continue`) are accepted and counted.
struct Scripted<'a> {
    pieces: std::collections::VecDeque<&'a [u8]>,
    written: usize,
}

impl AsyncReadRent for Scripted<'_> {
    async fn read<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        let Some(mut piece) = self.pieces.pop_front() else {
            return (Ok(0), buf);
        };
        let (res, buf) = piece.read(buf).await;
        if !piece.is_empty() {
            self.pieces.push_front(piece);
        }
        (res, buf)
    }

    async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        (Err(io::Error::other("readv is not scripted")), buf)
    }
}

impl AsyncWriteRent for Scripted<'_> {
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        let n = buf.bytes_init();
        self.written += n;
        (Ok(n), buf)
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        (Err(io::Error::other("writev is not scripted")), buf)
    }

    async fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        Ok(())
    }
}

type Rt = monoio::Runtime<monoio::time::TimeDriver<monoio::LegacyDriver>>;

thread_local! {
    static RT: RefCell<Option<Rt>> = const { RefCell::new(None) };
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    RT.with(|rt| {
        let mut rt = rt.borrow_mut();
        let rt = rt.get_or_insert_with(|| {
            monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                .enable_timer()
                .build()
                .expect("a monoio runtime for the fuzz targets")
        });
        rt.block_on(f)
    })
}

fn check_ranges(req: &Request, head: &[u8]) {
    let h = &req.headers;
    let all = [
        Some(req.path.clone()),
        req.query.clone(),
        h.host.clone(),
        h.origin.clone(),
        h.content_type.clone(),
        h.accept.clone(),
        h.session_id.clone(),
        h.protocol_version.clone(),
        h.last_event_id.clone(),
        h.authorization.clone(),
        h.mcp_method.clone(),
        h.mcp_name.clone(),
        h.discovery.clone(),
    ];
    for r in all.into_iter().flatten() {
        assert!(
            in_bounds(&r, head.len()),
            "header range {r:?} outside the head"
        );
    }
}

/// A client's request head: `parse_head` alone, then the affinity keys read from the same
/// head (header values and the unsigned claims of a bearer token).
pub fn http_head(data: &[u8]) {
    match parse_head(data) {
        Ok(Some((req, framing, expect))) => {
            assert!(req.head_len <= data.len());
            let head = &data[..req.head_len];
            check_ranges(&req, head);
            // The head alone parses the same: nothing after it was read.
            match parse_head(head) {
                Ok(Some((again, f2, e2))) => {
                    assert_eq!((again.head_len, f2, e2), (req.head_len, framing, expect));
                }
                _ => panic!("the head alone does not parse the same"),
            }
            let keys = [
                BalanceKey::Session,
                BalanceKey::Header("x-tenant".into()),
                BalanceKey::Claim("sub".into()),
                BalanceKey::Claim("org.id".into()),
            ];
            let values = AffinityValues::from_head(&keys, head);
            assert!(values.0.len() <= keys.len());
            // `Mcp-Param-*` headers: read exactly when the parse noted one.
            let params = crate::http::request::mcp_params(head);
            assert_eq!(params.is_some(), req.headers.mcp_params);
            assert!(params
                .iter()
                .flat_map(|p| p.iter())
                .all(|p| !p.name.is_empty()));
        }
        Ok(None) => {
            // Incomplete: every prefix is incomplete too.
            assert!(matches!(parse_head(&data[..data.len() / 2]), Ok(None)));
        }
        Err(ReadError::Status(code, _)) => assert!(matches!(code, 400 | 413 | 431 | 501), "{code}"),
        Err(e) => panic!("parse_head did I/O? {e:?}"),
    }
}

const LIMITS: Limits = Limits {
    max_head: 4096,
    max_body: 16 * 1024,
    idle_timeout: std::time::Duration::from_secs(5),
    read_timeout: std::time::Duration::from_secs(5),
};

/// What one connection read: the bodies of the requests it accepted, and how it ended.
#[derive(Debug, PartialEq)]
struct Read {
    requests: Vec<(Vec<u8>, Framing, Vec<u8>)>,
}

fn read_all(reads: Vec<&[u8]>) -> Read {
    block_on(async {
        let mut stream = Scripted {
            pieces: reads.into(),
            written: 0,
        };
        let mut bufs = ConnBuffers::default();
        let mut out = Read {
            requests: Vec::new(),
        };
        // Pipelined requests, bounded.
        for _ in 0..16 {
            match read_request(&mut stream, &mut bufs, &LIMITS).await {
                Ok(req) => {
                    assert!(bufs.consumed <= bufs.buf.len());
                    assert!(req.head_len <= bufs.consumed);
                    assert!(req.head_len <= LIMITS.max_head, "head over the limit");
                    let head = &bufs.buf[..req.head_len];
                    check_ranges(&req, head);
                    assert!(bufs.body.len() <= LIMITS.max_body, "body over the limit");
                    let Ok(Some((_, framing, _))) = parse_head(head) else {
                        panic!("an accepted head does not parse again");
                    };
                    match framing {
                        Framing::None => assert!(bufs.body.is_empty()),
                        Framing::Length(n) => assert_eq!(bufs.body.len(), n),
                        Framing::Chunked => {}
                    }
                    let path = bufs.buf[req.path.clone()].to_vec();
                    out.requests.push((path, framing, bufs.body.clone()));
                }
                Err(ReadError::Closed) => break,
                Err(ReadError::Status(code, _)) => {
                    assert!(matches!(code, 400 | 408 | 413 | 431 | 501), "{code}");
                    break;
                }
                Err(ReadError::Io(e)) => panic!("scripted reads never fail: {e}"),
            }
        }
        assert!(
            stream.written <= 25 * 16,
            "more than one 100 Continue per request"
        );
        out
    })
}

/// Requests read from a client connection (head, Content-Length or chunked body, pipelined
/// requests) by the real `read_request`, over reads cut at fuzzed boundaries. Requests both
/// a cut and an uncut read accepted must be the same; limits may refuse earlier when less
/// is buffered, so only the common accepted prefix is compared.
pub fn http_request(data: &[u8]) {
    let (reads, stream) = pieces(data);
    let cut = read_all(reads);
    let whole = read_all(vec![stream]);
    let n = cut.requests.len().min(whole.requests.len());
    assert_eq!(
        cut.requests[..n],
        whole.requests[..n],
        "read boundaries changed a request"
    );
}

/// What one backend response decoded to.
#[derive(Debug, PartialEq)]
struct Decoded {
    status: Option<u16>,
    session_id: Option<String>,
    body: Vec<u8>,
    end: Result<(), String>,
    events: Vec<Vec<u8>>,
}

fn decode_response(reads: Vec<&[u8]>) -> Decoded {
    let mut reads = reads.into_iter();
    let mut buf = Vec::new();
    let mut out = Decoded {
        status: None,
        session_id: None,
        body: Vec::new(),
        end: Ok(()),
        events: Vec::new(),
    };
    let protocol = |e: ClientError| match e {
        ClientError::Protocol(m) => m,
        ClientError::Io(e) => panic!("no I/O here: {e}"),
    };
    // The head, as `LocalHttpConn::read_head` reads it.
    let (mut head, mut at) = loop {
        match parse_response_head(&buf) {
            Ok(Some((head, n))) => break (head, n),
            Ok(None) => {}
            Err(e) => {
                out.end = Err(protocol(e));
                return out;
            }
        }
        assert!(buf.len() <= 64 * 1024);
        match reads.next() {
            Some(r) => buf.extend_from_slice(r),
            None => {
                out.end = Err("closed before a response".into());
                return out;
            }
        }
    };
    assert!(at <= buf.len());
    out.status = Some(head.status);
    out.session_id = head.session_id.clone();
    let mut dec = SseDecoder::default();
    // The body, as `read_body_piece` reads it.
    loop {
        let before = out.body.len();
        match head.decode_piece(&buf[at..], &mut out.body) {
            Ok((used, piece)) => {
                assert!(at + used <= buf.len());
                at += used;
                match piece {
                    Some(more) => {
                        if head.sse {
                            dec.push(&out.body[before..]);
                            while let Some(ev) = dec.next_event() {
                                out.events.push(ev.data);
                            }
                        }
                        if !more {
                            assert!(head.done());
                            break;
                        }
                    }
                    None => match reads.next() {
                        Some(r) => {
                            buf.drain(..at);
                            at = 0;
                            buf.extend_from_slice(r);
                        }
                        None => {
                            // EOF: the end of an until-close body, else an early close.
                            out.end = Err("eof".into());
                            break;
                        }
                    },
                }
            }
            Err(e) => {
                out.end = Err(protocol(e));
                break;
            }
        }
    }
    out
}

/// A backend's response (head, then a Content-Length, chunked or until-close body, and SSE
/// events when it streams) decoded over reads cut at fuzzed boundaries: exactly the same
/// result as one read of everything.
pub fn http_response(data: &[u8]) {
    let (reads, stream) = pieces(data);
    let cut = decode_response(reads);
    let whole = decode_response(vec![stream]);
    assert_eq!(cut, whole, "read boundaries changed a response");
}

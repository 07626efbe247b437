//! The exporter against a real socket: a tiny HTTP server in a thread that answers with the
//! statuses a test scripts and records what it received.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use only1mcp_shards::trace::{SpanKind, SpanRecord, TraceCounters};

use super::*;

fn span(i: u8) -> SpanRecord {
    SpanRecord {
        trace_id: [i; 16],
        span_id: [i; 8],
        parent: None,
        trace_state: None,
        name: format!("tools/call t{i}"),
        kind: SpanKind::Server,
        start_ns: 1,
        end_ns: 2,
        attrs: Vec::new(),
        error: None,
        link: None,
    }
}

/// (path, content-type, body) of each request an [`endpoint`] got.
type Seen = Vec<(String, String, Vec<u8>)>;

/// Serves one request per status in `statuses`, returning (path, content-type, body) of each.
fn endpoint(statuses: Vec<u16>) -> (String, std::thread::JoinHandle<Seen>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for status in statuses {
            let (mut s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let path = line.split(' ').nth(1).unwrap_or("").to_string();
            let (mut len, mut ctype) = (0usize, String::new());
            loop {
                let mut h = String::new();
                r.read_line(&mut h).unwrap();
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                let (k, v) = h.split_once(':').unwrap();
                match k.to_ascii_lowercase().as_str() {
                    "content-length" => len = v.trim().parse().unwrap(),
                    "content-type" => ctype = v.trim().to_string(),
                    _ => {}
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            seen.push((path, ctype, body));
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
        seen
    });
    (format!("http://{addr}"), t)
}

fn exporter(url: &str) -> (Exporter, Arc<TraceCounters>) {
    let (_tx, rx) = crossbeam_channel::bounded(1);
    let counters = Arc::new(TraceCounters::default());
    let e = Exporter::new(url.to_string(), "svc".into(), rx, counters.clone());
    (e, counters)
}

#[test]
fn the_traces_path_is_added_only_to_a_bare_endpoint() {
    assert_eq!(
        traces_url("http://127.0.0.1:4318").unwrap(),
        "http://127.0.0.1:4318/v1/traces"
    );
    assert_eq!(
        traces_url("http://c:4318/").unwrap(),
        "http://c:4318/v1/traces"
    );
    assert_eq!(
        traces_url("http://c:4318/otlp/v1/traces").unwrap(),
        "http://c:4318/otlp/v1/traces"
    );
    assert!(traces_url("https://c:4318").is_err());
}

#[test]
fn a_batch_is_posted_as_protobuf_and_counted() {
    let (base, server) = endpoint(vec![200]);
    let (mut e, counters) = exporter(&traces_url(&base).unwrap());
    let mut buf = Vec::new();
    e.send(&[span(1), span(2)], &mut buf);
    let seen = server.join().unwrap();
    assert_eq!(seen[0].0, "/v1/traces");
    assert_eq!(seen[0].1, "application/x-protobuf");
    let mut want = Vec::new();
    otlp::encode("svc", &[span(1), span(2)], &mut want);
    assert_eq!(seen[0].2, want);
    assert_eq!(counters.exported.load(Ordering::Relaxed), 2);
    assert_eq!(counters.export_failed.load(Ordering::Relaxed), 0);
}

#[test]
fn a_retryable_status_is_retried_and_a_refusal_is_not() {
    let (base, server) = endpoint(vec![503, 200, 400]);
    let (mut e, counters) = exporter(&traces_url(&base).unwrap());
    let mut buf = Vec::new();
    e.send(&[span(1)], &mut buf);
    assert_eq!(counters.exported.load(Ordering::Relaxed), 1);
    e.send(&[span(2), span(3)], &mut buf);
    assert_eq!(server.join().unwrap().len(), 3);
    assert_eq!(counters.export_failed.load(Ordering::Relaxed), 2);
    assert_eq!(e.up, Some(false));
}

#[test]
fn a_dead_endpoint_drops_and_counts_and_is_tried_once_per_batch_while_down() {
    // A port nothing listens on: bound, then closed.
    let url = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/v1/traces", l.local_addr().unwrap())
    };
    let (mut e, counters) = exporter(&url);
    let mut buf = Vec::new();
    e.send(&[span(1), span(2)], &mut buf);
    assert_eq!(counters.export_failed.load(Ordering::Relaxed), 2);
    assert_eq!(e.up, Some(false));
    // Down: one try, no backoff pauses.
    let t = Instant::now();
    e.send(&[span(3)], &mut buf);
    assert!(t.elapsed() < RETRY_PAUSE, "{:?}", t.elapsed());
    assert_eq!(counters.export_failed.load(Ordering::Relaxed), 3);
    assert_eq!(counters.exported.load(Ordering::Relaxed), 0);
}

#[test]
fn run_batches_what_is_queued_and_sends_the_rest_when_the_shards_stop() {
    let (base, server) = endpoint(vec![200, 200]);
    let (tx, rx) = crossbeam_channel::bounded(MAX_BATCH * 2);
    let counters = Arc::new(TraceCounters::default());
    let e = Exporter::new(
        traces_url(&base).unwrap(),
        "svc".into(),
        rx,
        counters.clone(),
    );
    // A full batch and three more, all queued before the exporter looks.
    for i in 0..(MAX_BATCH + 3) {
        tx.send(span(i as u8)).unwrap();
    }
    drop(tx);
    let t = std::thread::spawn(move || e.run());
    t.join().unwrap();
    let seen = server.join().unwrap();
    assert_eq!(seen.len(), 2, "one full batch, then the rest at the end");
    let mut want = Vec::new();
    let rest: Vec<SpanRecord> = (MAX_BATCH..MAX_BATCH + 3).map(|i| span(i as u8)).collect();
    otlp::encode("svc", &rest, &mut want);
    assert_eq!(seen[1].2, want);
    assert_eq!(
        counters.exported.load(Ordering::Relaxed),
        (MAX_BATCH + 3) as u64
    );
}

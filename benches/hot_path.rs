//! Micro-benchmarks of the shard-local hot path of `only1mcp_shards` (no I/O, no runtime).
//!
//! What is measured, and why:
//!
//! - `envelope_parse/*`: [`Envelope::parse`] on a typical ~200 B `tools/call` body and on a
//!   body with 64 KiB of arguments. Every request on `/mcp` and every backend reply goes
//!   through it; the lazy walk should cost a small constant plus one validation pass over
//!   the bytes, never a tree.
//! - `tools_call_rewrite/catalog_{50,5000}`: the request side of `tools/call` in
//!   `shards/src/route/dispatch.rs` (`by_name`, then `forward`) as it runs per call: parse,
//!   [`Catalog::route`] of the exposed name (copying the route out of the snapshot), then one
//!   [`splice`] of the id placeholder and the backend's own tool name. Two catalog sizes show
//!   that routing is a hash lookup whose cost does not grow with the catalog.
//! - `reply/*`: the reply side: the backend's response parsed and its id checked
//!   ([`BackendReply::from_message`]), then the client's id spliced back in; `splice_id`
//!   alone isolates the copy.
//! - `ring/owner_4_shards`: [`Ring::owner`] of a session id, done for every 2025-era request
//!   to decide whether it must be handed to another shard.
//! - `session/mint_id_4_shards`: [`mint`] at `initialize` (random draws until the id
//!   lands on the minting shard: one `getrandom` per draw, 4 draws expected with 4 shards);
//!   `mint_cluster_id_4_shards` the same for a node of a cluster (plus one HMAC per draw);
//!   `classify_foreign_id` the MAC check a request with an id this node does not hold pays.
//! - `sse/decode_3_events`: [`SseDecoder`] on a backend SSE reply with two notifications and
//!   the response, the shape streamed replies have.
//! - `catalog/*`: [`parse_tools_page`] of a 50-tool `tools/list` page and [`Catalog::build`]
//!   of 5,000 tools: control-thread work at discovery time, measured so a large fleet of
//!   backends cannot make catalog refreshes slow unnoticed.
//!
//! Run: `cargo bench --bench hot_path` (full), or in CI
//! `cargo bench --bench hot_path -- --quick` (stops each benchmark as soon as it is stable).
//! Results and the machine they were taken on: `docs/benchmarks.md`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use only1mcp_shards::catalog::{page_of, parse_tools_page, Catalog, ListKind};
use only1mcp_shards::cluster::session_id::{classify, mint};
use only1mcp_shards::cluster::{KeyRing, SharedCluster};
use only1mcp_shards::http::request::{parse_head, Framing};
use only1mcp_shards::http::response::{encode, Reply};
use only1mcp_shards::http::sse::SseDecoder;
use only1mcp_shards::ring::Ring;
use only1mcp_shards::upstream::BackendReply;
use only1mcp_shards::wire::jsonrpc::{splice, Envelope, Kind};

mod common;
use common::hot_fixtures::*;

fn bench_envelope(c: &mut Criterion) {
    let mut g = c.benchmark_group("envelope_parse");
    for (label, body) in [
        ("tools_call_small", small_call(3)),
        ("tools_call_64k", big_call()),
    ] {
        let env = Envelope::parse(&body).expect("benchmark body must parse");
        assert_eq!(env.kind, Kind::Request);
        assert_eq!(env.name_str.as_deref(), Some("srv003__tool_0025"));
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(label, |b| {
            b.iter(|| {
                let env = Envelope::parse(black_box(&body)).unwrap();
                black_box(env.name.clone())
            })
        });
    }
    g.finish();
}

fn bench_rewrite(c: &mut Criterion) {
    let mut g = c.benchmark_group("tools_call_rewrite");
    for tools in [50usize, 5_000] {
        let catalog = catalog_of(tools);
        // A tool of the middle backend.
        let body = small_call(tools / TOOLS_PER_BACKEND / 2);
        let mut out = Vec::new();
        rewrite(&catalog, &body, &mut out);
        assert!(out.starts_with(br#"{"jsonrpc":"2.0","id":0,"#));
        assert!(out
            .windows(b"\"name\":\"tool_0025\"".len())
            .any(|w| w == b"\"name\":\"tool_0025\""));
        g.bench_function(format!("catalog_{tools}"), |b| {
            // `out` is a fresh Vec per call in dispatch.rs; do the same.
            b.iter(|| {
                let mut out = Vec::new();
                black_box(rewrite(black_box(&catalog), black_box(&body), &mut out))
            })
        });
    }
    g.finish();
}

fn bench_reply(c: &mut Criterion) {
    // What the demo backend answers to `echo`, with the id the transport sent.
    let reply = br#"{"jsonrpc":"2.0","id":1234,"result":{"content":[{"type":"text","text":"hello from the benchmark"}],"isError":false}}"#.to_vec();
    let client_id: &[u8] = b"42";
    let parsed = BackendReply::from_message("srv003", reply.clone()).expect("valid reply");
    assert_eq!(&parsed.body[parsed.id.clone()], b"1234");
    let mut g = c.benchmark_group("reply");
    g.bench_function("parse_check_splice_id", |b| {
        b.iter_batched(
            || reply.clone(),
            |body| {
                let r = BackendReply::from_message("srv003", body).unwrap();
                assert!(&r.body[r.id.clone()] == b"1234");
                let mut out = Vec::new();
                splice(&r.body, &[(r.id.clone(), black_box(client_id))], &mut out);
                out
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("splice_id", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            splice(
                black_box(&parsed.body),
                &[(parsed.id.clone(), black_box(client_id))],
                &mut out,
            );
            out
        })
    });
    g.finish();
}

fn bench_ring_and_sessions(c: &mut Criterion) {
    let ring = Ring::new(4);
    let solo = SharedCluster::solo();
    let sid = mint(&solo, &ring, 2);
    assert_eq!(ring.owner(sid.as_bytes()), 2);
    let mut g = c.benchmark_group("ring");
    g.bench_function("owner_4_shards", |b| {
        b.iter(|| ring.owner(black_box(sid.as_bytes())))
    });
    g.finish();
    let mut g = c.benchmark_group("session");
    g.bench_function("mint_id_4_shards", |b| {
        b.iter(|| mint(&solo, black_box(&ring), black_box(2)))
    });
    let g1 = SharedCluster::node("g1", KeyRing::single("k", &[7; 32]));
    let g2 = SharedCluster::node("g2", KeyRing::single("k", &[7; 32]));
    g.bench_function("mint_cluster_id_4_shards", |b| {
        b.iter(|| mint(&g1, black_box(&ring), black_box(2)))
    });
    let theirs = mint(&g2, &ring, 0);
    g.bench_function("classify_foreign_id", |b| {
        b.iter(|| classify(&g1, black_box(&theirs)))
    });
    g.finish();
}

fn bench_sse(c: &mut Criterion) {
    let stream: &[u8] = b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":\"p-42\",\"progress\":1,\"total\":2}}\n\n\
event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":\"halfway\"}}\n\n\
id: 7\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1234,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"done\"}],\"isError\":false}}\n\n";
    let mut d = SseDecoder::default();
    d.push(stream);
    let mut n = 0;
    while d.next_event().is_some() {
        n += 1;
    }
    assert_eq!(n, 3);
    let mut g = c.benchmark_group("sse");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.bench_function("decode_3_events", |b| {
        b.iter(|| {
            let mut d = SseDecoder::default();
            d.push(black_box(stream));
            let mut bytes = 0;
            while let Some(ev) = d.next_event() {
                bytes += ev.data.len();
            }
            bytes
        })
    });
    g.finish();
}

fn bench_catalog(c: &mut Criterion) {
    let mut page = b"{\"tools\":[".to_vec();
    for i in 0..50 {
        if i > 0 {
            page.push(b',');
        }
        page.extend_from_slice(&tool_json(&format!("tool_{i:04}"), i));
    }
    page.extend_from_slice(b"],\"nextCursor\":\"page-2\"}");
    let (tools, cursor) = parse_tools_page(&page).expect("valid page");
    assert_eq!(tools.len(), 50);
    assert_eq!(cursor.as_deref(), Some("page-2"));

    let mut g = c.benchmark_group("catalog");
    g.throughput(Throughput::Bytes(page.len() as u64));
    g.bench_function("parse_tools_page_50", |b| {
        b.iter(|| parse_tools_page(black_box(&page)).unwrap())
    });

    let (ids, raw) = fleet(5_000 / TOOLS_PER_BACKEND);
    let input = inputs(&ids, &raw);
    assert_eq!(Catalog::build(&input, "__").len(), 5_000);
    g.throughput(Throughput::Elements(5_000));
    // ~1 ms per build: fewer samples keep the full run inside its measurement time.
    g.sample_size(30);
    g.bench_function("build_5000_tools", |b| {
        b.iter(|| Catalog::build(black_box(&input), "__"))
    });
    g.finish();
}

/// The `tools/list` answer as dispatch builds it per request: the page of the rendered
/// catalog (the whole 50-tool list borrowed; a 500-tool page of 5,000 copied) into the
/// response body.
fn bench_list(c: &mut Criterion) {
    let mut g = c.benchmark_group("list");
    for (tools, page) in [(50usize, 500usize), (5_000, 500), (5_000, 0)] {
        let catalog = catalog_of(tools);
        let (json, items, _) = catalog.list(ListKind::Tools);
        let label = format!("tools_{tools}_page_{page}");
        g.throughput(Throughput::Bytes(json.len() as u64));
        g.bench_function(label, |b| {
            b.iter(|| {
                let (body, next) = page_of(black_box(json), items, 0, page).unwrap();
                let mut out = Vec::with_capacity(4096);
                out.extend_from_slice(br#"{"jsonrpc":"2.0","id":7,"result":{"tools":"#);
                out.extend_from_slice(&body);
                out.extend_from_slice(b"}}");
                black_box((out, next))
            })
        });
    }
    g.finish();
}

/// The HTTP/1.1 codec of the client side: a `POST /mcp` head parsed (httparse plus the
/// gateway's header picks), and a JSON reply encoded into the reused write buffer.
fn bench_http(c: &mut Criterion) {
    let head = post_head(small_call(3).len());
    let (req, framing, _) = parse_head(&head).unwrap().unwrap();
    assert!(matches!(framing, Framing::Length(_)) && req.head_len == head.len());
    let mut g = c.benchmark_group("http");
    g.bench_function("parse_post_head", |b| {
        b.iter(|| black_box(parse_head(black_box(&head)).unwrap()))
    });
    let body = br#"{"jsonrpc":"2.0","id":42,"result":{"content":[{"type":"text","text":"hello from the benchmark"}],"isError":false}}"#;
    let reply = Reply::json(200, body.to_vec());
    let mut out = Vec::with_capacity(4096);
    g.bench_function("encode_json_reply", |b| {
        b.iter(|| {
            encode(black_box(&reply), true, &mut out);
            black_box(out.len())
        })
    });
    g.finish();
}

fn config() -> Criterion {
    // Short defaults keep a full run around a minute on a small machine; `--quick` (CI) stops
    // each benchmark as soon as two samples agree, and never runs one longer than this.
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_envelope, bench_rewrite, bench_reply, bench_ring_and_sessions, bench_sse,
        bench_catalog, bench_list, bench_http
}
criterion_main!(benches);

//! Instruction counts of the shard-local hot path, by valgrind's callgrind through
//! iai-callgrind: unlike times, the counts are the same on a busy machine (the same binary
//! and inputs give the same total), so a change that adds work shows as a number, not noise.
//!
//! What is counted (each function alone; fixtures are built in `setup`, outside the count):
//!
//! - `envelope_parse`: [`Envelope::parse`] of a typical `tools/call` (~200 B).
//! - `route_rewrite`: parse, route in a 5,000-tool catalog, splice the id and the backend's
//!   tool name: the request side of a proxied call.
//! - `reply_check_splice`: a backend's answer parsed, its id checked and the client's spliced.
//! - `list_page`: the first 500-tool page of a 5,000-tool catalog copied into a response,
//!   and the whole 50-tool list (what small pages still do); `list_shared`: the same 500-tool
//!   page as `route/lists.rs` serves it, from the shared rendering.
//! - `cache_hit`, `cache_miss_put`: the response cache (10,000 entries).
//! - `batcher_8`: one leader, seven identical requests joining and getting its answer.
//! - `ring_owner`: which shard owns a session.
//! - `http_parse_head`, `http_encode_reply`: the client-side HTTP/1.1 codec.
//!
//! Run: `cargo bench --bench iai` with `iai-callgrind-runner` 0.16.1 on PATH
//! (`cargo install --locked --root target/perf-tools iai-callgrind-runner --version 0.16.1`;
//! `tests/run-all.sh` does this) and valgrind installed.

// The harness passes the teardown's `()` on to `black_box`.
#![allow(clippy::unit_arg)]

use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant};

use iai_callgrind::{library_benchmark, library_benchmark_group, main};
use only1mcp_shards::cache::{key, Cacheable, LocalCache, Shared};
use only1mcp_shards::catalog::{page_of, page_range, shared_bytes, Catalog, ListKind};
use only1mcp_shards::http::request::parse_head;
use only1mcp_shards::http::response::{encode, Reply};
use only1mcp_shards::ring::Ring;
use only1mcp_shards::upstream::BackendReply;
use only1mcp_shards::wire::jsonrpc::{splice, Envelope};

mod common;
use common::hot_fixtures::*;

const ECHO_REPLY: &[u8] = br#"{"jsonrpc":"2.0","id":1234,"result":{"content":[{"type":"text","text":"hello from the benchmark"}],"isError":false}}"#;

/// Builds what a bench needs, then lets the allocator settle: building a large structure
/// leaves glibc's heap with free chunks to consolidate, which the first allocation after it
/// would otherwise pay (about 300,000 instructions) inside the measured function.
fn settled<T>(value: T) -> T {
    for n in [16usize, 256, 4096] {
        black_box(Vec::<u8>::with_capacity(n));
    }
    value
}

fn catalog_and_call() -> (Catalog, Vec<u8>) {
    settled((catalog_of(5_000), small_call(50)))
}

fn full_cache() -> (Rc<LocalCache>, Vec<u8>) {
    let (cache, k, _) = filled_cache();
    settled((cache, k))
}

#[library_benchmark]
#[bench::tools_call(small_call(3))]
fn envelope_parse(body: Vec<u8>) -> usize {
    let env = Envelope::parse(black_box(&body)).unwrap();
    env.name.map_or(0, |r| r.len())
}

#[library_benchmark]
#[bench::catalog_5000(setup = catalog_and_call, teardown = std::mem::drop)]
fn route_rewrite((catalog, body): (Catalog, Vec<u8>)) -> (Catalog, usize) {
    let mut out = Vec::new();
    let n = black_box(rewrite(&catalog, black_box(&body), &mut out));
    (catalog, n)
}

#[library_benchmark]
#[bench::echo(ECHO_REPLY.to_vec())]
fn reply_check_splice(body: Vec<u8>) -> Vec<u8> {
    let r = BackendReply::from_message("srv003", black_box(body)).unwrap();
    assert!(&r.body[r.id.clone()] == b"1234");
    let mut out = Vec::new();
    splice(&r.body, &[(r.id.clone(), &b"42"[..])], &mut out);
    out
}

#[library_benchmark]
#[bench::page_500_of_5000(args = (5_000, 500), setup = list_setup, teardown = std::mem::drop)]
#[bench::whole_50(args = (50, 500), setup = list_setup, teardown = std::mem::drop)]
fn list_page((catalog, page): (Catalog, usize)) -> (Catalog, usize) {
    let (json, items, _) = catalog.list(ListKind::Tools);
    let (body, _) = page_of(json, items, 0, page).unwrap();
    let mut out = Vec::with_capacity(4096);
    out.extend_from_slice(br#"{"jsonrpc":"2.0","id":7,"result":{"tools":"#);
    out.extend_from_slice(&body);
    out.extend_from_slice(b"}}");
    let n = black_box(out).len();
    drop(body);
    (catalog, n)
}

// What `route/lists.rs` does per request for a page of 16 KiB or more: find the page's range
// and take it from the shared rendering (the socket write then sends those bytes as they are).
#[library_benchmark]
#[bench::page_500_of_5000(args = (5_000, 500), setup = list_setup, teardown = std::mem::drop)]
fn list_shared((catalog, page): (Catalog, usize)) -> (Catalog, usize) {
    let (json, items, _) = catalog.list(ListKind::Tools);
    let (range, _, next) = page_range(json.len(), items, 0, page).unwrap();
    let mut head = Vec::with_capacity(96);
    head.extend_from_slice(br#"{"jsonrpc":"2.0","id":7,"result":{"tools":["#);
    let shared = shared_bytes(json).slice(range);
    let tail = format!(r#"],"nextCursor":"o1m-{}"}}}}"#, next.unwrap_or(0));
    let n = black_box(head.len() + shared.len() + tail.len());
    drop((head, shared, tail));
    (catalog, n)
}

fn list_setup(tools: usize, page: usize) -> (Catalog, usize) {
    settled((catalog_of(tools), page))
}

#[library_benchmark]
#[bench::of_10000(setup = full_cache, teardown = std::mem::drop)]
fn cache_hit((cache, k): (Rc<LocalCache>, Vec<u8>)) -> (Rc<LocalCache>, bool) {
    let r = cache.get(black_box(&k), 1, Instant::now());
    cache.looked_up(Cacheable::Call, r.is_some());
    (cache, r.is_some())
}

#[library_benchmark]
#[bench::of_10000(setup = full_cache, teardown = std::mem::drop)]
fn cache_miss_put((cache, mut k): (Rc<LocalCache>, Vec<u8>)) -> (Rc<LocalCache>, bool) {
    let far = Instant::now() + Duration::from_secs(3600);
    key(
        &mut k,
        Cacheable::Call,
        false,
        3,
        "demo__add",
        b"new",
        "reader",
        None,
    );
    let miss = cache.get(&k, 1, Instant::now()).is_none();
    cache.put(&k, Rc::from(&b"{}"[..]), 1, far, (10_000, 1 << 30));
    (cache, miss)
}

#[library_benchmark]
fn batcher_8() -> usize {
    let cache = Rc::new(LocalCache::default());
    let flight = cache.lead(b"k");
    let mut waiters: Vec<_> = (0..7).map(|_| cache.join(b"k").unwrap()).collect();
    flight.land(Cacheable::Call, Shared::Result(Rc::from(&b"{}"[..])));
    waiters
        .iter_mut()
        .map(|w| matches!(w.try_recv(), Ok(Some(_))))
        .filter(|ok| *ok)
        .count()
}

#[library_benchmark]
#[bench::four_shards(Ring::new(4))]
fn ring_owner(ring: Ring) -> usize {
    ring.owner(black_box(b"7f3a9c2e4b5d6a7f8e9d0c1b2a3f4e5d"))
}

#[library_benchmark]
#[bench::post(post_head(200))]
fn http_parse_head(head: Vec<u8>) -> usize {
    let (req, _, _) = parse_head(black_box(&head)).unwrap().unwrap();
    req.head_len
}

#[library_benchmark]
#[bench::echo(Reply::json(200, ECHO_REPLY.to_vec()))]
fn http_encode_reply(reply: Reply) -> usize {
    let mut out = Vec::with_capacity(4096);
    encode(black_box(&reply), true, &mut out);
    out.len()
}

library_benchmark_group!(
    name = hot_path;
    benchmarks = envelope_parse, route_rewrite, reply_check_splice, list_page, list_shared, cache_hit,
        cache_miss_put, batcher_8, ring_owner, http_parse_head, http_encode_reply
);

main!(library_benchmark_groups = hot_path);

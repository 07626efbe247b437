//! Micro-benchmarks of the shard-local structures a call touches besides parsing and
//! splicing (those are in `hot_path.rs`): what they cost per call, on one core, no I/O.
//!
//! - `stats/series_hit` + `stats/count`: looking up a backend-call series that exists (by
//!   borrowed labels: no allocation) and counting one call in it (outcome + histogram).
//! - `stats/request`: counting one client request by method.
//! - `hist/observe`, `hist/p99`: one latency into the fixed buckets; a quantile (control
//!   thread work, per series every 500 ms).
//! - `balance/pick_*`: choosing one of 4 replicas with each strategy.
//! - `breaker/allow_success`: a closed breaker's check and its success bookkeeping.
//! - `spawn_gate/acquire_release`: the gateway-wide stdio start permit (one CAS, one
//!   decrement; only on process starts, measured to show it is not a lock).
//! - `cache/key`, `cache/hit`, `cache/miss_put`: building a response-cache key, a hit in a
//!   10,000-entry cache (the whole hit path but the reply), and a miss then an insert that
//!   evicts the least recently used entry.
//! - `batcher/lead_join_land`: single-flight for 8 identical requests: one leads, seven join
//!   and get its answer.
//! - `pool/idle_take_put_back`: a call's whole use of the upstream connection pool when a
//!   keep-alive connection is idle (take it, give it back); one real loopback connection.
//!
//! - `bufs/take_fill_give` vs `bufs/alloc_fill_drop`: a call's buffer from the shard's free
//!   list (`rt/bufs.rs`), filled with a 300-byte answer and given back, against a fresh
//!   `Vec` filled and dropped (what it replaces, four times per proxied call).
//! - `short/session_id` vs `short/session_id_string`: a session id copied inline
//!   (`wire/short.rs`) against the `String` it replaces.
//!
//! Run: `cargo bench --bench shard_local`. Results: `docs/benchmarks.md`.

use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use only1mcp_shards::balance::breaker::{BreakerSpec, LocalBreaker};
use only1mcp_shards::balance::{LocalBalancer, Strategy};
use only1mcp_shards::cache::{key, Cacheable, LocalCache, Shared};
use only1mcp_shards::http::client::LocalHttpConn;
use only1mcp_shards::rt::bufs::LocalBufs;
use only1mcp_shards::stats::{Hist, LocalStats, Outcome};
use only1mcp_shards::upstream::http::pool::LocalPool;
use only1mcp_shards::upstream::stdio::gate::SharedSpawnGate;
use only1mcp_shards::wire::short::ShortStr;

mod common;
use common::hot_fixtures::filled_cache;

fn bench_stats(c: &mut Criterion) {
    let stats = LocalStats::default();
    for s in 0..20 {
        for t in 0..10 {
            stats.call(
                &format!("server{s}"),
                "tools/call",
                &format!("tool{t}"),
                Outcome::Ok,
                Duration::from_millis(1),
            );
        }
    }
    let mut g = c.benchmark_group("stats");
    g.bench_function("series_hit", |b| {
        b.iter(|| {
            stats.series(
                black_box("server7"),
                black_box("tools/call"),
                black_box("tool3"),
            )
        })
    });
    let series = stats.series("server7", "tools/call", "tool3");
    g.bench_function("count", |b| {
        b.iter(|| {
            series.borrow_mut().add(
                black_box(Outcome::Ok),
                black_box(Duration::from_micros(830)),
            )
        })
    });
    g.bench_function("request", |b| {
        b.iter(|| {
            stats.request(
                black_box("tools/call"),
                Outcome::Ok,
                black_box(Duration::from_micros(900)),
            )
        })
    });
    g.finish();
}

fn bench_hist(c: &mut Criterion) {
    let mut g = c.benchmark_group("hist");
    let mut h = Hist::default();
    g.bench_function("observe", |b| {
        b.iter(|| h.observe(black_box(Duration::from_micros(3_300))))
    });
    g.bench_function("p99", |b| b.iter(|| black_box(&h).quantile_ms(0.99)));
    g.finish();
}

fn bench_balance(c: &mut Criterion) {
    let mut g = c.benchmark_group("balance");
    for (name, s) in [
        ("pick_round_robin", Strategy::RoundRobin),
        ("pick_least_connections", Strategy::LeastConnections),
        ("pick_consistent_hash", Strategy::ConsistentHash),
        ("pick_random", Strategy::Random),
        ("pick_weighted_random", Strategy::WeightedRandom),
    ] {
        let lb = LocalBalancer::new(s, vec![1, 2, 3, 4], 7);
        let mut key = 0u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                key = key.wrapping_add(0x9e37_79b9_7f4a_7c15);
                lb.pick(black_box(key), |_| true)
            })
        });
    }
    g.finish();
}

fn bench_breaker_and_gate(c: &mut Criterion) {
    let breaker = LocalBreaker::new(BreakerSpec::default(), "bench http://x".into());
    c.bench_function("breaker/allow_success", |b| {
        b.iter(|| {
            let ok = breaker.allow(Instant::now());
            breaker.success();
            ok
        })
    });
    let gate = SharedSpawnGate::new(8);
    c.bench_function("spawn_gate/acquire_release", |b| {
        b.iter(|| drop(black_box(gate.try_acquire())))
    });
}

fn bench_cache(c: &mut Criterion) {
    let (cache, mut k, result) = filled_cache();
    let far = Instant::now() + Duration::from_secs(3600);
    let args = br#"{"a":2,"b":2}"#;
    let mut g = c.benchmark_group("cache");
    g.bench_function("key", |b| {
        b.iter(|| {
            key(
                &mut k,
                Cacheable::Call,
                false,
                3,
                "demo__add",
                black_box(args),
                "reader",
                None,
            );
            black_box(k.len())
        })
    });
    key(
        &mut k,
        Cacheable::Call,
        false,
        3,
        "demo__add",
        &7u32.to_le_bytes(),
        "reader",
        None,
    );
    g.bench_function("hit", |b| {
        b.iter(|| {
            let r = cache.get(black_box(&k), 1, Instant::now());
            cache.looked_up(Cacheable::Call, r.is_some());
            black_box(r)
        })
    });
    let mut n = 10_000u32;
    g.bench_function("miss_put", |b| {
        b.iter(|| {
            n += 1;
            key(
                &mut k,
                Cacheable::Call,
                false,
                3,
                "demo__add",
                &n.to_le_bytes(),
                "reader",
                None,
            );
            let miss = cache.get(&k, 1, Instant::now()).is_none();
            cache.put(&k, result.clone(), 1, far, (10_000, 1 << 30));
            black_box(miss)
        })
    });
    g.finish();
    let flights = Rc::new(LocalCache::default());
    c.bench_function("batcher/lead_join_land", |b| {
        b.iter(|| {
            let flight = flights.lead(b"k");
            let mut waiters: Vec<_> = (0..7).map(|_| flights.join(b"k").unwrap()).collect();
            flight.land(Cacheable::Call, Shared::Result(result.clone()));
            let got = waiters
                .iter_mut()
                .map(|w| matches!(w.try_recv(), Ok(Some(_))))
                .filter(|ok| *ok)
                .count();
            black_box(got)
        })
    });
}

fn bench_pool(c: &mut Criterion) {
    let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .unwrap();
    // A real connection (the kernel accepts it into the listener's backlog); the pool never
    // does I/O on the fast path, so nothing reads it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    rt.block_on(async {
        let pool = LocalPool::new(256);
        let addrs = [addr];
        let connect = || LocalHttpConn::connect_tcp(&addrs, Duration::from_secs(2));
        pool.take(connect).await.unwrap().0.put_back();
        c.bench_function("pool/idle_take_put_back", |b| {
            b.iter(|| {
                let conn = pool.idle().expect("one idle connection");
                black_box(&conn);
                conn.put_back();
            })
        });
    });
}

fn bench_bufs(c: &mut Criterion) {
    let answer = [b'x'; 300];
    let bufs = LocalBufs::default();
    let mut g = c.benchmark_group("bufs");
    g.bench_function("take_fill_give", |b| {
        b.iter(|| {
            let mut buf = bufs.take();
            buf.extend_from_slice(black_box(&answer));
            black_box(&buf);
            bufs.give(buf);
        })
    });
    g.bench_function("alloc_fill_drop", |b| {
        b.iter(|| {
            let mut buf = Vec::with_capacity(answer.len());
            buf.extend_from_slice(black_box(&answer));
            black_box(&buf);
        })
    });
    g.finish();
    let sid = "0c7d4e1f9a2b4c6d8e0f1a2b3c4d5e6f";
    let mut g = c.benchmark_group("short");
    g.bench_function("session_id", |b| b.iter(|| ShortStr::new(black_box(sid))));
    g.bench_function("session_id_string", |b| {
        b.iter(|| black_box(sid).to_string())
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_stats, bench_hist, bench_balance, bench_breaker_and_gate, bench_cache,
        bench_pool, bench_bufs
}
criterion_main!(benches);

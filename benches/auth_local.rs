//! Micro-benchmarks of the shard-local auth structures a request touches: what they cost per
//! request, on one core, no I/O.
//!
//! - `limit/hit_principal`: a rate-limit check of a principal whose bucket exists (10 000
//!   principals in the map): one borrowed-key lookup, no allocation, token taken.
//! - `limit/hit_principal_tool`: the same for a limited tool: the principal's bucket and the
//!   (principal, tool) bucket, both taken.
//! - `limit/refused`: a check that is refused (empty bucket): the 429 path.
//! - `limit/unlimited_tool`: a `tools/call` to a tool without its own limit when only tools
//!   are limited: no bucket at all.
//! - `store/buckets_principal_tool`: with `store = "redis"`, what a shard computes before it
//!   asks: the tool's rate looked up and the principal and tool hashed (two SHA-256).
//! - `store/ask_round`: the shard's side of one decision without the other thread: a oneshot,
//!   the `StoreAsk` onto the bounded channel, taken off it, answered, and the answer read.
//!   The cross-thread wakes and Redis itself are measured end to end by
//!   `perf/rate_store.sh` (docs/decisions/0004-rate-limit-store.md).
//!
//! Run: `cargo bench --bench auth_local`. Results: `docs/benchmarks.md`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use only1mcp_shards::auth::limit::{BucketSpec, LocalRateLimiter, RateLimitSpec};
use only1mcp_shards::auth::limit_store::{SharedRateStore, StoreAnswer, StoreAsk, StoreRates};

/// A rate no bench run can exhaust: one token per nanosecond, a burst of about 4 s of them.
const ENDLESS: BucketSpec = BucketSpec {
    per_s: 1e9,
    burst: u32::MAX,
};

fn populated(spec: RateLimitSpec, now: Instant) -> LocalRateLimiter {
    let l = LocalRateLimiter::new(spec, 1);
    for i in 0..10_000 {
        let _ = l.check(&format!("principal-{i}"), Some("demo__sleep"), now);
    }
    l
}

fn bench_limit(c: &mut Criterion) {
    let now = Instant::now();
    let mut g = c.benchmark_group("limit");

    let l = populated(
        RateLimitSpec {
            per_principal: Some(ENDLESS),
            per_tool: vec![("demo__sleep".into(), ENDLESS)],
        },
        now,
    );
    assert!(l.check("principal-4242", Some("demo__sleep"), now).is_ok());
    g.bench_function("hit_principal", |b| {
        b.iter(|| l.check(black_box("principal-4242"), black_box(None), black_box(now)))
    });
    g.bench_function("hit_principal_tool", |b| {
        b.iter(|| {
            l.check(
                black_box("principal-4242"),
                black_box(Some("demo__sleep")),
                black_box(now),
            )
        })
    });

    let refusing = populated(
        RateLimitSpec {
            per_principal: Some(BucketSpec {
                per_s: 0.001,
                burst: 1,
            }),
            per_tool: Vec::new(),
        },
        now,
    );
    assert!(refusing.check("principal-4242", None, now).is_err());
    g.bench_function("refused", |b| {
        b.iter(|| refusing.check(black_box("principal-4242"), black_box(None), black_box(now)))
    });

    let tools_only = populated(
        RateLimitSpec {
            per_principal: None,
            per_tool: vec![("demo__sleep".into(), ENDLESS)],
        },
        now,
    );
    g.bench_function("unlimited_tool", |b| {
        b.iter(|| {
            tools_only.check(
                black_box("principal-4242"),
                black_box(Some("demo__echo")),
                black_box(now),
            )
        })
    });
    g.finish();
}

fn bench_store(c: &mut Criterion) {
    let mut g = c.benchmark_group("store");
    let rates = StoreRates::new(RateLimitSpec {
        per_principal: Some(ENDLESS),
        per_tool: vec![("demo__sleep".into(), ENDLESS)],
    });
    g.bench_function("buckets_principal_tool", |b| {
        b.iter(|| rates.buckets(black_box("principal-4242"), black_box(Some("demo__sleep"))))
    });
    let (store, inbox) = SharedRateStore::channel(16);
    let (p, pr, t) = rates
        .buckets("principal-4242", Some("demo__sleep"))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(3600);
    g.bench_function("ask_round", |b| {
        b.iter(|| {
            let (reply, mut rx) = futures_channel::oneshot::channel();
            let ask = StoreAsk {
                principal: p,
                principal_rate: pr,
                tool: t,
                deadline,
                reply,
            };
            store.ask(black_box(ask)).unwrap();
            let got = inbox.rx.try_recv().unwrap();
            got.reply.send(StoreAnswer::Admit).unwrap();
            rx.try_recv().unwrap()
        })
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
    targets = bench_limit, bench_store
}
criterion_main!(benches);

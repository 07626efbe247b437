//! Token buckets and the per-principal and per-tool limits, on plain values.

use super::*;

fn spec(per_s: f64, burst: u32) -> BucketSpec {
    BucketSpec { per_s, burst }
}

fn principal_only(per_s: f64, burst: u32) -> RateLimitSpec {
    RateLimitSpec {
        per_principal: Some(spec(per_s, burst)),
        per_tool: Vec::new(),
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Equal to `want` up to the nanosecond rounding of `1 / rate`.
fn about(got: Duration, want: Duration) -> bool {
    got.abs_diff(want) < Duration::from_micros(10)
}

#[test]
fn burst_then_refusal_with_retry_after() {
    let l = LocalRateLimiter::new(principal_only(0.5, 3), 1);
    let t0 = Instant::now();
    for _ in 0..3 {
        assert_eq!(l.check("alice", None, t0), Ok(()));
    }
    let wait = l.check("alice", None, t0).unwrap_err();
    assert!(about(wait, Duration::from_secs(2)), "{wait:?}");
    assert_eq!(retry_after_secs(wait), 2);
    // Half a token later: one more second to go.
    let wait = l
        .check("alice", None, t0 + Duration::from_secs(1))
        .unwrap_err();
    assert!(about(wait, Duration::from_secs(1)), "{wait:?}");
    // A refusal takes nothing: still one second.
    let wait = l
        .check("alice", None, t0 + Duration::from_secs(1))
        .unwrap_err();
    assert!(about(wait, Duration::from_secs(1)), "{wait:?}");
    // Others have their own bucket.
    assert_eq!(l.check("bob", None, t0), Ok(()));
}

#[test]
fn retry_after_rounds_up_to_at_least_one() {
    assert_eq!(retry_after_secs(Duration::ZERO), 1);
    assert_eq!(retry_after_secs(Duration::from_nanos(1)), 1);
    assert_eq!(retry_after_secs(Duration::from_secs(1)), 1);
    assert_eq!(retry_after_secs(ms(1001)), 2);
    assert_eq!(retry_after_secs(ms(2999)), 3);
    assert_eq!(retry_after_secs(Duration::from_secs(7)), 7);
}

#[test]
fn refills_over_time_up_to_the_burst() {
    let l = LocalRateLimiter::new(principal_only(10.0, 2), 1);
    let t0 = Instant::now();
    assert!(l.check("a", None, t0).is_ok());
    assert!(l.check("a", None, t0).is_ok());
    let wait = l.check("a", None, t0).unwrap_err();
    assert!(about(wait, ms(100)), "{wait:?}");
    // 50 ms: half a token.
    let wait = l.check("a", None, t0 + ms(50)).unwrap_err();
    assert!(about(wait, ms(50)), "{wait:?}");
    // 100 ms: one token, then empty again.
    assert!(l.check("a", None, t0 + ms(100)).is_ok());
    assert!(l.check("a", None, t0 + ms(100)).is_err());
    // A long pause refills to the burst, not beyond.
    let t1 = t0 + Duration::from_secs(60);
    assert!(l.check("a", None, t1).is_ok());
    assert!(l.check("a", None, t1).is_ok());
    assert!(l.check("a", None, t1).is_err());
    // An older instant refills nothing and does not wind the clock back.
    assert!(l.check("a", None, t0).is_err());
    assert!(l.check("a", None, t1 + ms(100)).is_ok());
}

#[test]
fn per_tool_bucket_is_per_principal_and_tool() {
    let l = LocalRateLimiter::new(
        RateLimitSpec {
            per_principal: Some(spec(100.0, 10)),
            per_tool: vec![("demo__sleep".into(), spec(1.0, 2))],
        },
        1,
    );
    let t0 = Instant::now();
    assert!(l.check("alice", Some("demo__sleep"), t0).is_ok());
    assert!(l.check("alice", Some("demo__sleep"), t0).is_ok());
    let wait = l.check("alice", Some("demo__sleep"), t0).unwrap_err();
    assert!(about(wait, Duration::from_secs(1)), "{wait:?}");
    // Another principal has its own (principal, tool) bucket.
    assert!(l.check("bob", Some("demo__sleep"), t0).is_ok());
    // Other tools and plain requests only take from the principal bucket.
    assert!(l.check("alice", Some("demo__echo"), t0).is_ok());
    assert!(l.check("alice", None, t0).is_ok());
    // alice used 2 sleeps + 1 echo + 1 plain = 4 of 10; the refused sleep took nothing.
    for _ in 0..6 {
        assert!(l.check("alice", None, t0).is_ok());
    }
    let wait = l.check("alice", None, t0).unwrap_err();
    assert!(about(wait, ms(10)), "{wait:?}");
    // Principal bucket empty: a sleep is refused even when its tool bucket has refilled,
    // and takes nothing from the tool bucket.
    let t1 = t0 + ms(1000);
    for _ in 0..10 {
        assert!(l.check("alice", None, t1).is_ok());
    }
    let wait = l.check("alice", Some("demo__sleep"), t1).unwrap_err();
    assert!(about(wait, ms(10)), "{wait:?}");
    let t2 = t1 + ms(20);
    assert!(l.check("alice", Some("demo__sleep"), t2).is_ok());
    // The tool bucket had refilled one token at t1 and kept it through the refusal.
    assert!(l.check("alice", Some("demo__sleep"), t2).is_err());
}

#[test]
fn per_tool_without_principal_limit() {
    let l = LocalRateLimiter::new(
        RateLimitSpec {
            per_principal: None,
            per_tool: vec![("s__t".into(), spec(2.0, 1))],
        },
        1,
    );
    let t0 = Instant::now();
    for _ in 0..1000 {
        assert!(l.check("p", None, t0).is_ok());
        assert!(l.check("p", Some("s__other"), t0).is_ok());
    }
    assert_eq!(l.buckets(), 0, "unlimited requests keep no bucket");
    assert!(l.check("p", Some("s__t"), t0).is_ok());
    let wait = l.check("p", Some("s__t"), t0).unwrap_err();
    assert!(about(wait, ms(500)), "{wait:?}");
    assert_eq!(l.buckets(), 1);
}

#[test]
fn off_when_nothing_limits() {
    let l = LocalRateLimiter::new(
        RateLimitSpec {
            per_principal: Some(spec(0.0, 20)),
            per_tool: vec![("x__y".into(), spec(f64::NAN, 1))],
        },
        4,
    );
    assert!(l.is_off());
    let t0 = Instant::now();
    for _ in 0..100 {
        assert!(l.check("p", Some("x__y"), t0).is_ok());
    }
    assert_eq!(l.buckets(), 0);
    assert_eq!(l.spec().per_principal, Some(spec(0.0, 20)));
    assert!(!LocalRateLimiter::new(principal_only(1.0, 1), 1).is_off());
}

#[test]
fn later_tool_entry_wins() {
    let l = LocalRateLimiter::new(
        RateLimitSpec {
            per_principal: None,
            per_tool: vec![("a__b".into(), spec(1.0, 1)), ("a__b".into(), spec(1.0, 3))],
        },
        1,
    );
    let t0 = Instant::now();
    for _ in 0..3 {
        assert!(l.check("p", Some("a__b"), t0).is_ok());
    }
    assert!(l.check("p", Some("a__b"), t0).is_err());
}

#[test]
fn each_shard_refills_its_share_and_keeps_the_whole_burst() {
    let l = LocalRateLimiter::new(principal_only(8.0, 4), 4);
    let t0 = Instant::now();
    // Whole burst on this shard.
    for _ in 0..4 {
        assert!(l.check("a", None, t0).is_ok());
    }
    // 8/s over 4 shards = 2/s here: a token every 500 ms.
    let wait = l.check("a", None, t0).unwrap_err();
    assert!(about(wait, ms(500)), "{wait:?}");
    assert!(l.check("a", None, t0 + ms(499)).is_err());
    assert!(l.check("a", None, t0 + ms(500)).is_ok());
    // Sustained over 10 s: 2/s on this shard, so 20 more.
    let mut admitted = 0;
    for step in 1..=1000u64 {
        let now = t0 + ms(500) + ms(10 * step);
        while l.check("a", None, now).is_ok() {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 20);
    // Zero shards is treated as one.
    let one = LocalRateLimiter::new(principal_only(8.0, 1), 0);
    assert!(one.check("a", None, t0).is_ok());
    let wait = one.check("a", None, t0).unwrap_err();
    assert!(about(wait, ms(125)), "{wait:?}");
}

#[test]
fn burst_zero_means_one() {
    let l = LocalRateLimiter::new(principal_only(1.0, 0), 1);
    let t0 = Instant::now();
    assert!(l.check("a", None, t0).is_ok());
    assert!(l.check("a", None, t0).is_err());
}

#[test]
fn memory_bound_drops_idle_buckets_first() {
    let l = LocalRateLimiter::with_max_buckets(principal_only(1.0, 2), 1, 10);
    let t0 = Instant::now();
    // Five idle buckets (full again after 2 s), five busy ones.
    for i in 0..5 {
        assert!(l.check(&format!("idle{i}"), None, t0).is_ok());
    }
    let t1 = t0 + Duration::from_secs(5);
    for i in 0..5 {
        assert!(l.check(&format!("busy{i}"), None, t1).is_ok());
        assert!(l.check(&format!("busy{i}"), None, t1).is_ok());
    }
    assert_eq!(l.buckets(), 10);
    // One more principal: the idle ones go, the busy ones stay (and stay empty).
    assert!(l.check("new", None, t1).is_ok());
    assert_eq!(l.buckets(), 6);
    for i in 0..5 {
        assert!(l.check(&format!("busy{i}"), None, t1).is_err());
    }
}

#[test]
fn memory_bound_clears_when_every_bucket_is_busy() {
    let l = LocalRateLimiter::with_max_buckets(principal_only(1.0, 1), 1, 10);
    let t0 = Instant::now();
    for i in 0..10 {
        assert!(l.check(&format!("p{i}"), None, t0).is_ok());
    }
    assert_eq!(l.buckets(), 10);
    assert!(l.check("p0", None, t0).is_err());
    // The eleventh is admitted, not refused: the map is cleared.
    assert!(l.check("p10", None, t0).is_ok());
    assert_eq!(l.buckets(), 1);
    // p0 starts again with a full bucket.
    assert!(l.check("p0", None, t0).is_ok());
}

#[test]
fn memory_bound_counts_both_new_buckets_of_a_request() {
    let l = LocalRateLimiter::with_max_buckets(
        RateLimitSpec {
            per_principal: Some(spec(1.0, 1)),
            per_tool: vec![("s__t".into(), spec(1.0, 1))],
        },
        1,
        3,
    );
    let t0 = Instant::now();
    assert!(l.check("a", Some("s__t"), t0).is_ok());
    assert!(l.check("b", None, t0).is_ok());
    assert_eq!(l.buckets(), 3);
    // Two new buckets do not fit next to three busy ones: cleared, then both inserted
    // (the principal bucket is not evicted by its own tool bucket).
    assert!(l.check("c", Some("s__t"), t0).is_ok());
    assert_eq!(l.buckets(), 2);
    assert!(l.check("c", None, t0).is_err());
    assert!(l.check("c", Some("s__t"), t0).is_err());
}

#[test]
fn default_bound_is_enforced() {
    let l = LocalRateLimiter::new(principal_only(1.0, 1), 1);
    let t0 = Instant::now();
    for i in 0..=MAX_BUCKETS {
        assert!(l.check(&i.to_string(), None, t0).is_ok());
    }
    assert!(l.buckets() <= MAX_BUCKETS);
    assert_eq!(l.buckets(), 1);
}

//! Tests of the shard side of the shared store: units, bucket names, the channel's bounds,
//! and a decision's whole way through `LocalAuth::rate` with a stand-in store thread.

use super::*;

#[test]
fn rates_are_cluster_wide_microseconds() {
    let r = StoreRate::of(&BucketSpec {
        per_s: 5.0,
        burst: 5,
    })
    .unwrap();
    assert_eq!(r.interval_us, 200_000);
    assert_eq!(r.limit_us, 1_000_000);
    let r = StoreRate::of(&BucketSpec {
        per_s: 3.0,
        burst: 0,
    })
    .unwrap();
    assert_eq!(
        (r.interval_us, r.limit_us),
        (333_333, 333_333),
        "burst 0 is 1"
    );
    let fast = StoreRate::of(&BucketSpec {
        per_s: 1e12,
        burst: 2,
    })
    .unwrap();
    assert_eq!(fast.interval_us, 1, "capped at a million a second");
    let slow = StoreRate::of(&BucketSpec {
        per_s: 1e-12,
        burst: u32::MAX,
    })
    .unwrap();
    assert_eq!(slow.interval_us, MAX_INTERVAL_US);
    assert_eq!(slow.limit_us, MAX_LIMIT_US, "exact in the script's doubles");
    for off in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert_eq!(
            StoreRate::of(&BucketSpec {
                per_s: off,
                burst: 1
            }),
            None
        );
    }
}

#[test]
fn bucket_keys_are_hashes_with_one_hash_tag() {
    let p = principal_hash("alice@example.com");
    let k = principal_key(&p);
    let k = std::str::from_utf8(&k).unwrap();
    assert!(k.starts_with("o1m:rl:{") && k.ends_with('}'), "{k}");
    assert!(!k.contains("alice"));
    // SHA-256("alice@example.com"), first 16 bytes.
    assert_eq!(&k[8..40], "ff8d9819fc0e12bf0d24892e45987e24");
    let t = tool_key(&p, &tool_hash("demo__echo"));
    let t = std::str::from_utf8(&t).unwrap();
    assert_eq!(&t[..PRINCIPAL_KEY_LEN], k, "same hash tag: same slot");
    assert_eq!(t.len(), TOOL_KEY_LEN);
    assert!(t[PRINCIPAL_KEY_LEN + 1..]
        .bytes()
        .all(|b| b.is_ascii_hexdigit()));
    assert_ne!(principal_hash("alice"), principal_hash("alice "));
    assert_ne!(tool_hash("a__b"), tool_hash("a__c"));
}

fn spec(principal: Option<f64>, tools: &[(&str, f64)]) -> RateLimitSpec {
    RateLimitSpec {
        per_principal: principal.map(|per_s| BucketSpec { per_s, burst: 4 }),
        per_tool: tools
            .iter()
            .map(|(t, per_s)| {
                (
                    t.to_string(),
                    BucketSpec {
                        per_s: *per_s,
                        burst: 2,
                    },
                )
            })
            .collect(),
    }
}

#[test]
fn buckets_of_a_request() {
    let s = StoreRates::new(spec(Some(10.0), &[("demo__slow", 1.0)]));
    let (p, pr, t) = s.buckets("bob", Some("demo__slow")).unwrap();
    assert_eq!(p, principal_hash("bob"));
    assert_eq!(pr.unwrap().interval_us, 100_000);
    let (th, tr) = t.unwrap();
    assert_eq!(
        (th, tr.interval_us, tr.limit_us),
        (tool_hash("demo__slow"), 1_000_000, 2_000_000)
    );
    let (_, _, t) = s.buckets("bob", Some("demo__fast")).unwrap();
    assert_eq!(
        t, None,
        "a tool without its own limit takes only the principal's token"
    );
    let tools_only = StoreRates::new(spec(None, &[("demo__slow", 1.0), ("demo__x", 0.0)]));
    assert!(
        tools_only.buckets("bob", Some("demo__other")).is_none(),
        "nothing to ask"
    );
    assert!(tools_only.buckets("bob", None).is_none());
    assert!(
        tools_only.buckets("bob", Some("demo__x")).is_none(),
        "a later 0 entry is off"
    );
    assert!(tools_only.buckets("bob", Some("demo__slow")).is_some());
}

fn ask(deadline: Instant) -> (StoreAsk, oneshot::Receiver<StoreAnswer>) {
    let (reply, rx) = oneshot::channel();
    let a = StoreAsk {
        principal: principal_hash("p"),
        principal_rate: None,
        tool: None,
        deadline,
        reply,
    };
    (a, rx)
}

#[test]
fn a_full_channel_or_a_gone_thread_never_blocks() {
    let (store, inbox) = SharedRateStore::channel(2);
    assert!(store.is_shared() && !store.is_up());
    inbox.set_up(true);
    assert!(store.is_up());
    let now = Instant::now();
    assert_eq!(store.ask(ask(now).0), Ok(()));
    assert_eq!(store.ask(ask(now).0), Ok(()));
    assert_eq!(store.ask(ask(now).0), Err(StoreFailure::QueueFull));
    drop(inbox);
    assert_eq!(store.ask(ask(now).0), Err(StoreFailure::Unreachable));
    let local = SharedRateStore::local();
    assert!(!local.is_shared() && local.is_up());
    assert_eq!(local.ask(ask(now).0), Err(StoreFailure::Unreachable));
}

use crate::rt::test_runtime as rt;

#[test]
fn an_answer_from_another_thread_wakes_the_waiting_shard() {
    let (tx, rx) = oneshot::channel();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        let _ = tx.send(StoreAnswer::Wait(Duration::from_millis(1500)));
    });
    let got = rt().block_on(await_answer(rx, Duration::from_secs(5)));
    t.join().unwrap();
    assert_eq!(got, StoreAnswer::Wait(Duration::from_millis(1500)));
}

#[test]
fn no_answer_in_time_is_a_timeout_and_a_dropped_ask_is_unreachable() {
    let (_tx, rx) = oneshot::channel::<StoreAnswer>();
    let started = Instant::now();
    let got = rt().block_on(await_answer(rx, Duration::from_millis(30)));
    assert_eq!(got, StoreAnswer::Failed(StoreFailure::Timeout));
    assert!(started.elapsed() >= Duration::from_millis(30));
    let (tx, rx) = oneshot::channel::<StoreAnswer>();
    drop(tx);
    let got = rt().block_on(await_answer(rx, Duration::from_secs(5)));
    assert_eq!(got, StoreAnswer::Failed(StoreFailure::Unreachable));
}

//! `LocalAuth::rate` with a shared store: what a shard asks, how it follows each answer, and
//! `on_store_error` when no answer comes (a stand-in thread plays the store thread).

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::auth::limit_store::{principal_hash, tool_hash, StoreFailure, StoreInbox};
use crate::catalog::Catalog;

fn snapshot(version: u64, extra: &str) -> SharedSnapshot {
    let text = format!(
        "[rate_limit]\nrequests_per_s = 5.0\nburst = 5\nstore = \"redis\"\nredis_url = \"redis://127.0.0.1:1\"\nredis_timeout_ms = 40\n{extra}\n[rate_limit.tools]\n\"demo__slow\" = {{ requests_per_s = 0.5, burst = 2 }}\n"
    );
    let cfg = crate::config::parse_str(&text, "t.toml").unwrap();
    let empty = || Catalog::build(&[], "__");
    SharedSnapshot::new(version, Arc::new(cfg), Vec::new(), empty(), empty())
}

fn auth(store: SharedRateStore) -> LocalAuth {
    LocalAuth::new(Default::default(), SharedAuditSink::disabled(), store, 4)
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .unwrap()
        .block_on(f)
}

/// A store thread that answers each decision with the next of `answers` and hands the
/// decisions back when they are all used.
fn stand_in(
    inbox: StoreInbox,
    answers: Vec<StoreAnswer>,
) -> std::thread::JoinHandle<Vec<StoreAsk>> {
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        for a in answers {
            let ask: StoreAsk = inbox.rx.recv_timeout(Duration::from_secs(5)).unwrap();
            let StoreAsk {
                principal,
                principal_rate,
                tool,
                deadline,
                reply,
            } = ask;
            let _ = reply.send(a);
            // Kept for the test to read; its reply end is a fresh one nobody waits on.
            let (r, _) = futures_channel::oneshot::channel();
            seen.push(StoreAsk {
                principal,
                principal_rate,
                tool,
                deadline,
                reply: r,
            });
        }
        seen
    })
}

#[test]
fn the_store_decides_with_cluster_wide_rates() {
    let (store, inbox) = SharedRateStore::channel(8);
    let wait = Duration::from_millis(1500);
    let t = stand_in(
        inbox,
        vec![
            StoreAnswer::Admit,
            StoreAnswer::Admit,
            StoreAnswer::Wait(wait),
        ],
    );
    let a = auth(store);
    let snap = snapshot(1, "");
    run(async {
        assert_eq!(a.rate(&snap, "alice", None).await, Ok(()));
        assert_eq!(a.rate(&snap, "alice", Some("demo__slow")).await, Ok(()));
        // A tool without its own limit takes only the principal's token.
        assert_eq!(
            a.rate(&snap, "alice", Some("demo__fast")).await,
            Err(RateRefusal::OverLimit(wait))
        );
    });
    let asks = t.join().unwrap();
    assert!(asks.iter().all(|x| x.principal == principal_hash("alice")));
    // 5/s and a burst of 5 over the whole cluster: not divided by this node's 4 shards.
    let p = asks[0].principal_rate.unwrap();
    assert_eq!((p.interval_us, p.limit_us), (200_000, 1_000_000));
    assert_eq!(asks[0].tool, None);
    let (th, tr) = asks[1].tool.unwrap();
    assert_eq!(
        (th, tr.interval_us, tr.limit_us),
        (tool_hash("demo__slow"), 2_000_000, 4_000_000)
    );
    assert_eq!(asks[2].tool, None);
    assert_eq!(a.store_failures(), [0; 4]);
}

#[test]
fn no_decision_follows_on_store_error_and_is_counted() {
    let (store, inbox) = SharedRateStore::channel(8);
    let failed = StoreAnswer::Failed(StoreFailure::Unreachable);
    let t = stand_in(inbox, vec![failed, failed]);
    let a = auth(store);
    run(async {
        let allow = snapshot(1, "");
        assert_eq!(
            a.rate(&allow, "bob", None).await,
            Ok(()),
            "allow by default"
        );
        let deny = snapshot(2, "on_store_error = \"deny\"");
        assert_eq!(
            a.rate(&deny, "bob", None).await,
            Err(RateRefusal::StoreDown)
        );
    });
    t.join().unwrap();
    let unreachable = StoreFailure::Unreachable.index();
    assert_eq!(a.store_failures()[unreachable], 2);
}

#[test]
fn a_silent_store_times_out_and_a_full_queue_answers_at_once() {
    let (store, inbox) = SharedRateStore::channel(1);
    let a = auth(store);
    let deny = snapshot(1, "on_store_error = \"deny\"");
    run(async {
        let started = Instant::now();
        // Nobody answers: the 40 ms timeout of the config.
        assert_eq!(
            a.rate(&deny, "carol", None).await,
            Err(RateRefusal::StoreDown)
        );
        assert!(started.elapsed() >= Duration::from_millis(40));
        // The one slot of the channel still holds that decision: the next finds it full.
        let started = Instant::now();
        assert_eq!(
            a.rate(&deny, "carol", None).await,
            Err(RateRefusal::StoreDown)
        );
        assert!(started.elapsed() < Duration::from_millis(40));
    });
    let f = a.store_failures();
    assert_eq!(f[StoreFailure::Timeout.index()], 1);
    assert_eq!(f[StoreFailure::QueueFull.index()], 1);
    drop(inbox);
}

#[test]
fn a_request_nothing_limits_never_asks_the_store() {
    let (store, inbox) = SharedRateStore::channel(1);
    let a = auth(store);
    let text = "[rate_limit]\nstore = \"redis\"\nredis_url = \"redis://127.0.0.1:1\"\n[rate_limit.tools]\n\"demo__slow\" = { requests_per_s = 1.0 }\n";
    let cfg = crate::config::parse_str(text, "t.toml").unwrap();
    let empty = || Catalog::build(&[], "__");
    let snap = SharedSnapshot::new(1, Arc::new(cfg), Vec::new(), empty(), empty());
    run(async {
        assert_eq!(a.rate(&snap, "dave", Some("demo__fast")).await, Ok(()));
        assert_eq!(a.rate(&snap, "dave", None).await, Ok(()));
    });
    assert!(inbox.rx.is_empty());
    assert_eq!(a.store_failures(), [0; 4]);
}

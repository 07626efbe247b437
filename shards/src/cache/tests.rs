use std::rc::Rc;
use std::time::{Duration, Instant};

use super::*;

fn k(view: &str, private_to: Option<&str>, args: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    key(
        &mut out,
        Cacheable::Call,
        false,
        3,
        "demo__get",
        args,
        view,
        private_to,
    );
    out
}

#[test]
fn keys_separate_roles_principals_arguments_eras_and_kinds() {
    let base = k("reader", None, b"{}");
    assert_ne!(base, k("admin", None, b"{}"), "another role set");
    assert_ne!(base, k("reader", Some("alice"), b"{}"), "a private entry");
    assert_ne!(
        k("reader", Some("alice"), b"{}"),
        k("reader", Some("bob"), b"{}")
    );
    assert_ne!(base, k("reader", None, br#"{"a":1}"#), "other arguments");
    let mut modern = Vec::new();
    key(
        &mut modern,
        Cacheable::Call,
        true,
        3,
        "demo__get",
        b"{}",
        "reader",
        None,
    );
    assert_ne!(base, modern, "the other era");
    let mut read = Vec::new();
    key(
        &mut read,
        Cacheable::Read,
        false,
        3,
        "demo__get",
        b"{}",
        "reader",
        None,
    );
    assert_ne!(base, read, "another kind");
    // Length prefixes: moving bytes between name and arguments is a different key.
    let (mut a, mut b) = (Vec::new(), Vec::new());
    key(&mut a, Cacheable::Call, false, 1, "ab", b"c", "", None);
    key(&mut b, Cacheable::Call, false, 1, "a", b"bc", "", None);
    assert_ne!(a, b);
}

#[test]
fn entries_die_with_their_ttl_snapshot_and_resource_updates() {
    let c = LocalCache::default();
    let now = Instant::now();
    let r: Rc<[u8]> = Rc::from(&b"{\"x\":1}"[..]);
    let later = now + Duration::from_secs(10);
    c.put(b"k", r.clone(), 7, later, (10, 1 << 20));
    assert_eq!(c.get(b"k", 7, now).as_deref(), Some(&b"{\"x\":1}"[..]));
    assert!(c.get(b"k", 7, later).is_none(), "expired");
    c.put(b"k", r.clone(), 7, later, (10, 1 << 20));
    assert!(c.get(b"k", 8, now).is_none(), "a new snapshot");
    assert_eq!(c.size().0, 0, "a dead entry is dropped when found");
    c.put(b"k", r, 7, later, (10, 1 << 20));
    c.resource_updated();
    assert!(c.get(b"k", 7, now).is_none(), "a resource changed");
}

#[test]
fn bounds_evict_and_are_counted() {
    let c = LocalCache::default();
    let far = Instant::now() + Duration::from_secs(60);
    for i in 0..5u8 {
        c.put(&[i], Rc::from(&b"{}"[..]), 1, far, (3, 1 << 20));
    }
    assert_eq!(c.size().0, 3);
    assert_eq!(c.counters().evictions, 2);
    c.looked_up(Cacheable::Read, true);
    c.looked_up(Cacheable::Call, false);
    let n = c.counters();
    assert_eq!((n.hits, n.misses), ([1, 0], [0, 1]));
}

#[test]
fn identical_requests_join_the_one_in_flight() {
    let c = Rc::new(LocalCache::default());
    assert!(c.join(b"k").is_none(), "nothing in flight: lead");
    let flight = c.lead(b"k");
    let mut a = c.join(b"k").unwrap();
    let mut b = c.join(b"k").unwrap();
    assert!(c.join(b"other").is_none());
    flight.land(Cacheable::Call, Shared::Result(Rc::from(&b"{}"[..])));
    for rx in [&mut a, &mut b] {
        match rx.try_recv() {
            Ok(Some(Shared::Result(r))) => assert_eq!(&*r, b"{}"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(c.counters().coalesced, [0, 2]);
    assert!(c.join(b"k").is_none(), "landed: the next one leads");
}

#[test]
fn a_flight_dropped_without_landing_sends_the_waiters_on_their_own_way() {
    let c = Rc::new(LocalCache::default());
    let flight = c.lead(b"k");
    let mut w = c.join(b"k").unwrap();
    drop(flight);
    assert!(
        w.try_recv().is_err(),
        "the sender is gone: call the backend yourself"
    );
    assert!(c.join(b"k").is_none());
    assert_eq!(c.counters().coalesced, [0, 0]);
}

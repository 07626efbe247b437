//! Distribution tests of the balancers (deterministic seeds, bounded loops).

use super::*;

fn counts(b: &LocalBalancer, n: usize, picks: usize, usable: impl Fn(usize) -> bool) -> Vec<usize> {
    let mut c = vec![0; n];
    for k in 0..picks {
        let i = b.pick(affinity(&k.to_le_bytes()), &usable).unwrap();
        c[i] += 1;
    }
    c
}

#[test]
fn round_robin_is_even_and_skips_excluded_replicas() {
    let b = LocalBalancer::new(Strategy::RoundRobin, vec![1; 3], 1);
    assert_eq!(counts(&b, 3, 300, |_| true), vec![100, 100, 100]);
    let c = counts(&b, 3, 300, |i| i != 1);
    assert_eq!((c[0], c[1], c[2]), (150, 0, 150));
    assert_eq!(
        b.pick(0, |_| false),
        None,
        "no usable replica: fail at once"
    );
}

#[test]
fn least_connections_prefers_the_idle_replica() {
    let b = LocalBalancer::new(Strategy::LeastConnections, vec![1; 3], 1);
    b.started(0);
    b.started(0);
    b.started(1);
    assert_eq!(b.pick(0, |_| true), Some(2));
    b.started(2);
    b.started(2);
    assert_eq!(b.pick(0, |_| true), Some(1));
    b.ended(0);
    b.ended(0);
    assert_eq!(b.pick(0, |_| true), Some(0));
}

#[test]
fn consistent_hash_is_sticky_and_moves_few_keys_when_a_replica_leaves() {
    let b = LocalBalancer::new(Strategy::ConsistentHash, vec![1; 4], 1);
    let keys: Vec<u64> = (0..4000u32)
        .map(|k| affinity(format!("session-{k}").as_bytes()))
        .collect();
    let before: Vec<usize> = keys.iter().map(|&k| b.pick(k, |_| true).unwrap()).collect();
    let again: Vec<usize> = keys.iter().map(|&k| b.pick(k, |_| true).unwrap()).collect();
    assert_eq!(
        before, again,
        "the same key always reaches the same replica"
    );
    let mut per = [0usize; 4];
    for &i in &before {
        per[i] += 1;
    }
    assert!(
        per.iter().all(|&c| (800..1200).contains(&c)),
        "spread {per:?}"
    );
    // Replica 2 leaves: only its keys move; every other key stays where it was.
    let after: Vec<usize> = keys
        .iter()
        .map(|&k| b.pick(k, |i| i != 2).unwrap())
        .collect();
    for (x, y) in before.iter().zip(&after) {
        if *x != 2 {
            assert_eq!(x, y, "a key not on the leaving replica moved");
        } else {
            assert_ne!(*y, 2);
        }
    }
}

#[test]
fn random_is_roughly_uniform() {
    let b = LocalBalancer::new(Strategy::Random, vec![1; 4], 42);
    let c = counts(&b, 4, 40_000, |_| true);
    assert!(c.iter().all(|&x| (9_000..11_000).contains(&x)), "{c:?}");
}

#[test]
fn weighted_random_follows_the_weights() {
    let b = LocalBalancer::new(Strategy::WeightedRandom, vec![1, 3, 0, 6], 7);
    let c = counts(&b, 4, 50_000, |_| true);
    assert_eq!(c[2], 0, "weight 0 is never picked");
    let share = |x: usize| x as f64 / 50_000.0;
    assert!((share(c[0]) - 0.1).abs() < 0.02, "{c:?}");
    assert!((share(c[1]) - 0.3).abs() < 0.02, "{c:?}");
    assert!((share(c[3]) - 0.6).abs() < 0.02, "{c:?}");
}

#[test]
fn balance_keys_parse_and_read_headers_and_token_claims() {
    use super::{AffinityValues, BalanceKey};
    assert_eq!(BalanceKey::parse("session"), Ok(BalanceKey::Session));
    assert_eq!(
        BalanceKey::parse("header:X-Tenant"),
        Ok(BalanceKey::Header("x-tenant".into()))
    );
    assert_eq!(
        BalanceKey::parse("claim:sub"),
        Ok(BalanceKey::Claim("sub".into()))
    );
    assert!(BalanceKey::parse("header:").is_err());
    assert!(BalanceKey::parse("ip").is_err());
    // {"alg":"none"} . {"sub":"alice","n":7} . sig
    let token = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSIsIm4iOjd9.c2ln";
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: x\r\nX-Tenant: acme \r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    let keys = [
        BalanceKey::Header("x-tenant".into()),
        BalanceKey::Claim("sub".into()),
        BalanceKey::Claim("n".into()),
        BalanceKey::Claim("missing".into()),
    ];
    let v = AffinityValues::from_head(&keys, head.as_bytes());
    assert_eq!(
        v.get(keys[0].id()),
        Some(affinity(b"acme")),
        "trimmed header value"
    );
    assert_eq!(v.get(keys[1].id()), Some(affinity(b"alice")));
    assert_eq!(
        v.get(keys[2].id()),
        Some(affinity(b"7")),
        "numbers as written"
    );
    assert_eq!(
        v.get(keys[3].id()),
        None,
        "absent claim: the session decides"
    );
    let garbage = "POST /mcp HTTP/1.1\r\nAuthorization: Bearer not.a-jwt!\r\n\r\n";
    assert_eq!(
        AffinityValues::from_head(&keys, garbage.as_bytes()).get(keys[1].id()),
        None
    );
    assert!(AffinityValues::from_head(&[], head.as_bytes()).0.is_empty());
}

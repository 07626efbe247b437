use super::*;
use crate::cluster::KeyRing;

fn node(id: &str, fill: u8) -> SharedCluster {
    SharedCluster::node(id, KeyRing::single("k", &[fill; 32]))
}

#[test]
fn a_state_verifies_for_its_own_request_only() {
    let g1 = node("g1", 1);
    let bind = binding("tools/call", "ask", br#"{"q":1}"#, "alice");
    let s = mint_at(&g1, 3, 42, &bind, &[], 1_000);
    assert!(is_ours(&s));
    let p = parse(&s).unwrap();
    assert_eq!((p.shard, p.n, p.expires), (3, 42, 1_000));
    assert_eq!(p.node.as_deref(), Some("g1"));
    assert!(p.parked_here(&g1));
    assert_eq!(verify_at(&g1, &p, &bind, 999), Ok(()));
    assert_eq!(verify_at(&g1, &p, &bind, 1_001), Err(Refused::Expired));
    for other in [
        binding("prompts/get", "ask", br#"{"q":1}"#, "alice"),
        binding("tools/call", "ask2", br#"{"q":1}"#, "alice"),
        binding("tools/call", "ask", br#"{"q":2}"#, "alice"),
        binding("tools/call", "ask", br#"{"q":1}"#, "bob"),
        // Length prefixes: moving bytes between fields changes the binding.
        binding("tools/call", "as", br#"k{"q":1}"#, "alice"),
    ] {
        assert_eq!(
            verify_at(&g1, &p, &other, 999),
            Err(Refused::NotThisRequest)
        );
    }
    // Any edit of the visible fields breaks the tag.
    for edited in [
        s.replace(".42.", ".43."),
        s.replace(".1000.", ".9000."),
        s.replacen("o1m2.g1.", "o1m2.g2.", 1),
        s.replacen(".3.42.", ".2.42.", 1),
    ] {
        let p = parse(&edited).unwrap();
        assert_eq!(
            verify_at(&g1, &p, &bind, 999),
            Err(Refused::NotThisRequest),
            "{edited}"
        );
    }
}

#[test]
fn another_node_of_the_cluster_verifies_and_sees_it_is_not_parked_there() {
    let (g1, g2) = (node("g1", 1), node("g2", 1));
    let bind = binding("tools/call", "ask", b"{}", "alice");
    let answers = vec![br#"{"action":"accept"}"#.to_vec()];
    let s = mint_at(&g1, 0, 7, &bind, &answers, 1_000);
    let p = parse(&s).unwrap();
    assert_eq!(verify_at(&g2, &p, &bind, 999), Ok(()));
    assert!(!p.parked_here(&g2));
    assert_eq!(p.carried(), Carried::Answers(answers));
    // Another cluster (another key) refuses it.
    assert_eq!(
        verify_at(&node("g2", 9), &p, &bind, 999),
        Err(Refused::NotThisRequest)
    );
}

#[test]
fn a_retired_key_stops_verifying() {
    let bind = binding("tools/call", "ask", b"{}", "alice");
    let old = SharedCluster::node("g1", KeyRing::single("old", &[1; 32]));
    let s = mint_at(&old, 0, 1, &bind, &[], 1_000);
    let p = parse(&s).unwrap();
    let text = |keys: &[(&str, u8)]| -> String {
        keys.iter()
            .map(|(id, f)| format!("{id} {}\n", URL_SAFE_NO_PAD.encode([*f; 32])))
            .collect()
    };
    let rotated = SharedCluster::node(
        "g1",
        KeyRing::parse(&text(&[("new", 2), ("old", 1)])).unwrap(),
    );
    assert_eq!(verify_at(&rotated, &p, &bind, 999), Ok(()));
    let retired = SharedCluster::node("g1", KeyRing::parse(&text(&[("new", 2)])).unwrap());
    assert_eq!(
        verify_at(&retired, &p, &bind, 999),
        Err(Refused::NotThisRequest)
    );
}

#[test]
fn answers_too_big_to_carry_are_marked() {
    let g1 = node("g1", 1);
    let bind = binding("tools/call", "ask", b"{}", "alice");
    let big = vec![vec![b'1'; MAX_CARRIED_BYTES]];
    let p = parse(&mint_at(&g1, 0, 1, &bind, &big, 1_000)).unwrap();
    assert_eq!(verify_at(&g1, &p, &bind, 999), Ok(()));
    assert_eq!(p.carried(), Carried::TooBig);
}

#[test]
fn solo_states_name_no_node() {
    let solo = SharedCluster::solo();
    let bind = binding("tools/call", "ask", b"{}", "alice");
    let s = mint_at(&solo, 1, 2, &bind, &[], 1_000);
    assert!(s.starts_with("o1m2._."), "{s}");
    let p = parse(&s).unwrap();
    assert!(p.parked_here(&solo));
    assert_eq!(verify_at(&solo, &p, &bind, 999), Ok(()));
}

#[test]
fn malformed_states_do_not_parse() {
    let long = format!(
        "o1m2.g1.00000000.0.1.2.{}.00112233445566778899aabbccddeeff",
        "A".repeat(40_000)
    );
    for s in [
        "o1m2.",
        "o1m2.g1.00000000.0.1.2",
        "o1m2.g1.00000000.0.1.2..zz",
        "o1m2.g1.00000000.0.1.2..00112233445566778899aabbccddeeff.x",
        "o1m2.g1.00000000.x.1.2..00112233445566778899aabbccddeeff",
        "o1m2.G1.00000000.0.1.2..00112233445566778899aabbccddeeff",
        "o1m2.g1.0000.0.1.2..00112233445566778899aabbccddeeff",
        "o1m1.0.1.2.00112233445566778899aabbccddeeff",
        &long,
        "other",
    ] {
        assert_eq!(parse(s), None, "{s}");
    }
    assert!(parse("o1m2.g1.00000000.0.1.2..00112233445566778899aabbccddeeff").is_some());
}

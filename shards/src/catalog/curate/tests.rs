//! Curation rules on hand-written tools; the validity of compaction over real captured tool
//! lists is checked end to end in `tests/compaction_fixtures.rs`.
use super::*;

fn tool(name: &str, extra: &str) -> RawItem {
    RawItem {
        key: name.into(),
        json: format!(
            r#"{{"name":"{name}","description":"  Does   {name}.\n  Twice. ","inputSchema":{{"type":"object","$schema":"http://json-schema.org/draft-07/schema#","properties":{{"user_id":{{"type":"string","title":"User ID","description":"The   user.","examples":["u1"]}}}},"required":["user_id"]}}{extra}}}"#
        )
        .into_bytes(),
    }
}

fn names(c: &[Curated<'_>]) -> Vec<String> {
    c.iter().map(|t| t.name.to_string()).collect()
}

#[test]
fn allow_deny_rename_and_order() {
    let items = [
        tool("zeta", ""),
        tool("alpha", ""),
        tool("delete_all", ""),
        tool("beta", ""),
    ];
    let c = Curation {
        allow: vec!["*a".into(), "delete_*".into()],
        deny: vec!["delete_*".into()],
        rename: vec![("zeta".into(), "omega".into())],
        ..Default::default()
    };
    let mut dropped = Vec::new();
    let out = c.tools(&items, &mut dropped);
    assert_eq!(names(&out), ["alpha", "beta", "omega"]);
    assert_eq!(out[2].original, "zeta");
    assert!(dropped.is_empty());
}

#[test]
fn identity_keeps_the_bytes() {
    let items = [tool("a", "")];
    let out = Curation::default().tools(&items, &mut Vec::new());
    assert!(matches!(out[0].json, Cow::Borrowed(_)));
    assert!(Curation::default().is_identity());
}

#[test]
fn safe_compaction_drops_annotations_only() {
    let items = [tool("a", "")];
    let c = Curation {
        compaction: Compaction::Safe,
        description_budget: 300,
        ..Default::default()
    };
    let out = c.tools(&items, &mut Vec::new());
    let v: Value = sonic_rs::from_slice(&out[0].json).unwrap();
    assert_eq!(v["description"].as_str(), Some("Does a. Twice."));
    let schema = &v["inputSchema"];
    assert!(schema.get("$schema").is_none());
    let p = &schema["properties"]["user_id"];
    assert!(p.get("title").is_none(), "title restated the property name");
    assert!(p.get("examples").is_none());
    assert_eq!(p["description"].as_str(), Some("The user."));
    assert_eq!(p["type"].as_str(), Some("string"));
    assert_eq!(schema["required"][0].as_str(), Some("user_id"));
    assert!(out[0].json.len() < items[0].json.len());
}

#[test]
fn descriptions_are_cut_to_the_budget_at_a_sentence_or_word() {
    assert_eq!(shorten("One. Two three four five six.", 12), "One. Two…");
    assert_eq!(shorten("Alpha beta gamma delta epsilon", 14), "Alpha beta…");
    assert_eq!(shorten("short", 20), "short");
    let long = "First sentence is here. Second sentence is longer than the rest.";
    assert_eq!(shorten(long, 30), "First sentence is here.");
}

#[test]
fn aggressive_also_trims_nested_descriptions() {
    let item = RawItem {
        key: "t".into(),
        json: br#"{"name":"t","inputSchema":{"type":"object","properties":{"q":{"type":"string","description":"A very long description of the query parameter that goes on and on about details nobody needs."}}}}"#.to_vec(),
    };
    let c = Curation {
        compaction: Compaction::Aggressive,
        description_budget: 80,
        ..Default::default()
    };
    let out = c.tools(std::slice::from_ref(&item), &mut Vec::new());
    let v: Value = sonic_rs::from_slice(&out[0].json).unwrap();
    let d = v["inputSchema"]["properties"]["q"]["description"]
        .as_str()
        .unwrap();
    assert!(d.chars().count() <= 20 && d.ends_with('…'), "{d}");
}

#[test]
fn tools_with_unusable_schemas_can_be_hidden_and_say_why() {
    let bad = RawItem {
        key: "bad".into(),
        json: br#"{"name":"bad","inputSchema":{"type":"string"}}"#.to_vec(),
    };
    let items = [tool("ok", ""), bad];
    let c = Curation {
        hide_invalid: true,
        ..Default::default()
    };
    let mut dropped = Vec::new();
    let out = c.tools(&items, &mut dropped);
    assert_eq!(names(&out), ["ok"]);
    assert_eq!(dropped[0].0, "bad");
    assert!(dropped[0].1.contains("not a JSON Schema object"));
}

#[test]
fn a_description_override_replaces_the_backends() {
    let c = Curation {
        descriptions: vec![("a".into(), "Better words.".into())],
        ..Default::default()
    };
    let items = [tool("a", "")];
    let out = c.tools(&items, &mut Vec::new());
    let v: Value = sonic_rs::from_slice(&out[0].json).unwrap();
    assert_eq!(v["description"].as_str(), Some("Better words."));
}

#[test]
fn compaction_keeps_x_mcp_header_so_clients_and_backend_mirror_alike() {
    // The gateway checks clients' `Mcp-Param-*` headers against the schema it shows and
    // computes the backend's from the same map: compaction must not change it.
    let items = [RawItem {
        key: "q".into(),
        json: br#"{"name":"q","inputSchema":{"type":"object","properties":{"region":{"type":"string","title":"Region","description":"Where.   Really.","x-mcp-header":"Region"},"o":{"type":"object","properties":{"n":{"type":"integer","examples":[1],"x-mcp-header":"N"}}}}}}"#.to_vec(),
    }];
    for level in [Compaction::Safe, Compaction::Aggressive] {
        let c = Curation {
            compaction: level,
            description_budget: 16,
            ..Default::default()
        };
        let out = c.tools(&items, &mut Vec::new());
        assert!(out[0].json.len() < items[0].json.len());
        let kept = crate::catalog::params::of_tool(&out[0].json)
            .unwrap()
            .unwrap();
        let sent = crate::catalog::params::of_tool(&items[0].json)
            .unwrap()
            .unwrap();
        assert_eq!(kept, sent, "{level:?}");
        assert_eq!(kept.mirrored.len(), 2);
    }
}

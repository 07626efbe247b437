//! The catalog merge (`build.rs`): namespacing, collisions, cache hints, resources, and the
//! `x-mcp-header` maps derived per tool.

use super::*;
use sonic_rs::{JsonContainerTrait, JsonValueTrait};

fn item(key_field: &str, key: &str) -> RawItem {
    RawItem {
        key: key.into(),
        json: format!(r#"{{"{key_field}":"{key}","x":1}}"#).into_bytes(),
    }
}

fn disc(tools: &[&str]) -> Discovery {
    Discovery {
        tools: tools
            .iter()
            .map(|t| item("name", t))
            .collect::<Vec<_>>()
            .into(),
        ..Default::default()
    }
}

#[test]
fn namespaces_and_routes_tools() {
    let a = disc(&["echo", "add"]);
    let b = disc(&["echo"]);
    let c = Catalog::build(
        &[
            BackendInput {
                id: "a",
                prefix: true,
                state: BackendState::Ready,
                discovery: Some(&a),
                curation: None,
                tasks: false,
            },
            BackendInput {
                id: "b",
                prefix: true,
                state: BackendState::Ready,
                discovery: Some(&b),
                curation: None,
                tasks: false,
            },
        ],
        "__",
    );
    assert_eq!(c.len(), 3);
    assert_eq!(c.route("b__echo").unwrap().backend, 1);
    assert_eq!(c.route("a__add").unwrap().original, "add".into());
    let v: sonic_rs::Value = sonic_rs::from_slice(&c.tools_json).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 3);
}

#[test]
fn drops_collisions_and_bad_names_with_reasons() {
    let a = disc(&["echo"]);
    let long = "x".repeat(70);
    let b = disc(&["echo", "has space", &long]);
    let c = Catalog::build(
        &[
            BackendInput {
                id: "a",
                prefix: false,
                state: BackendState::Ready,
                discovery: Some(&a),
                curation: None,
                tasks: false,
            },
            BackendInput {
                id: "b",
                prefix: false,
                state: BackendState::Down("x".into()),
                discovery: Some(&b),
                curation: None,
                tasks: false,
            },
        ],
        "__",
    );
    assert_eq!(c.len(), 1);
    assert_eq!(c.reports[1].dropped.len(), 3);
    assert!(c.reports[1].dropped[0]
        .1
        .contains("already taken by server `a`"));
}

#[test]
fn mirrored_arguments_are_derived_once_and_invalid_ones_drop_the_tool() {
    let tool = |name: &str, prop: &str| RawItem {
        key: name.into(),
        json: format!(
            r#"{{"name":"{name}","inputSchema":{{"type":"object","properties":{{"r":{prop}}}}}}}"#
        )
        .into_bytes(),
    };
    let d = Discovery {
        tools: vec![
            tool("query", r#"{"type":"string","x-mcp-header":"Region"}"#),
            tool("plain", r#"{"type":"string"}"#),
            tool("bad", r#"{"type":"number","x-mcp-header":"Region"}"#),
        ]
        .into(),
        prompts: vec![item("name", "query")].into(),
        ..Default::default()
    };
    let c = Catalog::build(
        &[BackendInput {
            id: "db",
            prefix: true,
            state: BackendState::Ready,
            discovery: Some(&d),
            curation: None,
            tasks: false,
        }],
        "__",
    );
    let h = c.route("db__query").unwrap().headers.clone().unwrap();
    assert_eq!(&*h.mirrored[0].name, "Region");
    assert_eq!(c.route("db__plain").unwrap().headers, None);
    assert_eq!(c.route_prompt("db__query").unwrap().headers, None);
    assert!(c.route("db__bad").is_none(), "HTTP clients must drop it");
    let (name, why) = &c.reports[0].dropped[0];
    assert_eq!(name, "bad");
    assert!(
        why.starts_with("invalid x-mcp-header: property `r`"),
        "{why}"
    );
    assert_eq!(c.reports[0].tools, 2);
    assert!(!String::from_utf8_lossy(&c.tools_json).contains("db__bad"));
}

#[test]
fn task_support_is_shown_only_where_tasks_are_carried() {
    let tools = |json: &[&str]| Discovery {
        tools: json
            .iter()
            .map(|j| RawItem {
                key: sonic_rs::get(j.as_bytes(), ["name"])
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string(),
                json: j.as_bytes().to_vec(),
            })
            .collect::<Vec<_>>()
            .into(),
        ..Default::default()
    };
    let d = tools(&[
        r#"{"name":"opt","execution":{"taskSupport":"optional"}}"#,
        r#"{"name":"req","execution":{"taskSupport":"required"}}"#,
        r#"{"name":"both","execution":{"taskSupport":"forbidden","other":1}}"#,
        r#"{"name":"plain"}"#,
    ]);
    let input = |tasks| BackendInput {
        id: "a",
        prefix: false,
        state: BackendState::Ready,
        discovery: Some(&d),
        curation: None,
        tasks,
    };
    let carried = Catalog::build(&[input(true)], "__");
    assert_eq!(carried.len(), 4);
    assert!(carried.caps.tasks);
    let v: sonic_rs::Value = sonic_rs::from_slice(&carried.tools_json).unwrap();
    assert_eq!(v[1]["execution"]["taskSupport"].as_str(), Some("required"));
    let not = Catalog::build(&[input(false)], "__");
    assert!(!not.caps.tasks);
    assert_eq!(not.len(), 3, "the tool that requires a task is hidden");
    assert!(not.route("req").is_none());
    assert!(not.reports[0].dropped[0].1.contains("requires a task"));
    let v: sonic_rs::Value = sonic_rs::from_slice(&not.tools_json).unwrap();
    assert!(v[0].get("execution").is_none(), "{}", v[0]);
    assert!(v[1]["execution"].get("taskSupport").is_none());
    assert_eq!(v[1]["execution"]["other"].as_i64(), Some(1));
}

#[test]
fn cache_hints_merge_to_the_minimum_ttl_and_private_wins() {
    let a = Discovery {
        ttl_ms: Some(60_000),
        ..Default::default()
    };
    let b = Discovery {
        ttl_ms: Some(5_000),
        private: true,
        ..Default::default()
    };
    let c = Discovery::default();
    let input = |id, d| BackendInput {
        id,
        prefix: true,
        state: BackendState::Ready,
        discovery: Some(d),
        curation: None,
        tasks: false,
    };
    let cat = Catalog::build(&[input("a", &a), input("b", &b), input("c", &c)], "__");
    assert_eq!(cat.min_ttl_ms, Some(5_000));
    assert!(cat.private);
    let cat = Catalog::build(&[input("a", &a), input("c", &c)], "__");
    assert_eq!((cat.min_ttl_ms, cat.private), (Some(60_000), false));
}

#[test]
fn resources_are_namespaced_and_routed() {
    let a = Discovery {
        resources: vec![item("uri", "test://static-text")].into(),
        templates: vec![item("uriTemplate", "test://template/{id}/data")].into(),
        prompts: vec![item("name", "greet")].into(),
        caps: BackendCaps {
            resources: true,
            prompts: true,
            ..Default::default()
        },
        ..Default::default()
    };
    let b = Discovery {
        resources: vec![item("uri", "file:///x")].into(),
        templates: vec![item("uriTemplate", "file:///{+path}")].into(),
        ..Default::default()
    };
    let c = Catalog::build(
        &[
            BackendInput {
                id: "ns",
                prefix: true,
                state: BackendState::Ready,
                discovery: Some(&a),
                curation: None,
                tasks: false,
            },
            BackendInput {
                id: "bare",
                prefix: false,
                state: BackendState::Ready,
                discovery: Some(&b),
                curation: None,
                tasks: false,
            },
        ],
        "__",
    );
    assert!(c.caps.resources && c.caps.prompts);
    let r = c.route_uri("o1m://ns/test://static-text").unwrap();
    assert_eq!((r.backend, r.original), (0, "test://static-text"));
    assert_eq!(c.route_uri("file:///x").unwrap().backend, 1);
    assert_eq!(c.route_uri("file:///deep/er.txt").unwrap().backend, 1);
    assert!(c.route_uri("nope://x").is_none());
    assert_eq!(
        c.route_prompt("ns__greet").unwrap().original,
        "greet".into()
    );
    let v: sonic_rs::Value = sonic_rs::from_slice(&c.resources_json).unwrap();
    assert_eq!(v[0]["uri"].as_str(), Some("o1m://ns/test://static-text"));
    let t: sonic_rs::Value = sonic_rs::from_slice(&c.templates_json).unwrap();
    assert_eq!(
        t[0]["uriTemplate"].as_str(),
        Some("o1m://ns/test://template/{id}/data")
    );
}

#[test]
fn a_2026_only_backends_tools_offer_tasks_unless_they_name_their_own() {
    let item = |key: &str, json: &str| RawItem {
        key: key.into(),
        json: json.as_bytes().to_vec(),
    };
    let d = Discovery {
        tools: vec![
            item("plain", r#"{"name":"plain"}"#),
            item(
                "req",
                r#"{"name":"req","execution":{"taskSupport":"required"}}"#,
            ),
            item("exec", r#"{"name":"exec","execution":{"other":1}}"#),
            item("odd", r#"{"name":"odd","execution":3}"#),
        ]
        .into(),
        ..Default::default()
    };
    let offered = super::offer_tasks(&d);
    let support = |i: usize| {
        let v: sonic_rs::Value = sonic_rs::from_slice(&offered.tools[i].json).unwrap();
        v["execution"]["taskSupport"].as_str().map(str::to_string)
    };
    assert_eq!(support(0).as_deref(), Some("optional"));
    assert_eq!(
        offered.tools[1].json, d.tools[1].json,
        "its own is kept as sent"
    );
    assert_eq!(support(2).as_deref(), Some("optional"));
    let v: sonic_rs::Value = sonic_rs::from_slice(&offered.tools[2].json).unwrap();
    assert_eq!(v["execution"]["other"].as_i64(), Some(1));
    assert_eq!(
        offered.tools[3].json, d.tools[3].json,
        "not an object: left alone"
    );
    // Carried, the tool that requires a task is listed.
    let input = BackendInput {
        id: "a",
        prefix: false,
        state: BackendState::Ready,
        discovery: Some(&offered),
        curation: None,
        tasks: true,
    };
    let c = Catalog::build(&[input], "__");
    assert!(c.route("req").is_some() && c.caps.tasks);
}

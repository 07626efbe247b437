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
            },
            BackendInput {
                id: "b",
                prefix: true,
                state: BackendState::Ready,
                discovery: Some(&b),
                curation: None,
            },
        ],
        "__",
    );
    assert_eq!(c.len(), 3);
    assert_eq!(c.route("b__echo").unwrap().backend, 1);
    assert_eq!(c.route("a__add").unwrap().original, "add");
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
            },
            BackendInput {
                id: "b",
                prefix: false,
                state: BackendState::Down("x".into()),
                discovery: Some(&b),
                curation: None,
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
            },
            BackendInput {
                id: "bare",
                prefix: false,
                state: BackendState::Ready,
                discovery: Some(&b),
                curation: None,
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
    assert_eq!(c.route_prompt("ns__greet").unwrap().original, "greet");
    let v: sonic_rs::Value = sonic_rs::from_slice(&c.resources_json).unwrap();
    assert_eq!(v[0]["uri"].as_str(), Some("o1m://ns/test://static-text"));
    let t: sonic_rs::Value = sonic_rs::from_slice(&c.templates_json).unwrap();
    assert_eq!(
        t[0]["uriTemplate"].as_str(),
        Some("o1m://ns/test://template/{id}/data")
    );
}

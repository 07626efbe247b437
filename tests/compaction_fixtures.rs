//! Schema compaction over real tool lists (`perf/context/fixtures/`, captured from 15 popular
//! MCP servers by `perf/context/capture.py`): at `safe` and `aggressive`, every tool is
//! kept, and its input and output schemas keep every validation keyword exactly; only
//! annotations (descriptions, titles, `$schema`, `$comment`, `examples`) and definitions no
//! `$ref` reaches may differ. JSON Schema validation never reads either, so every instance
//! valid before is valid after. (The reachability here is computed independently of the
//! gateway's, over the serialized schema text.)

#[path = "../benches/common/context_fixtures.rs"]
mod context_fixtures;

use only1mcp_shards::catalog::curate::{Compaction, Curation};
use sonic_rs::{JsonContainerTrait, JsonValueMutTrait, JsonValueTrait, Value};

const ANNOTATIONS: [&str; 5] = ["description", "title", "$schema", "$comment", "examples"];

/// The schema without annotation keywords (keywords only at schema positions: a property
/// *named* `description` is kept).
fn strip(node: &mut Value) {
    if let Some(arr) = node.as_array_mut() {
        for v in arr.iter_mut() {
            strip(v);
        }
        return;
    }
    let Some(obj) = node.as_object_mut() else {
        return;
    };
    for k in ANNOTATIONS {
        obj.remove(&k);
    }
    let keys: Vec<String> = obj.iter().map(|(k, _)| k.to_string()).collect();
    for k in keys {
        let Some(child) = obj.get_mut(&k) else {
            continue;
        };
        match k.as_str() {
            "properties" | "patternProperties" | "$defs" | "definitions" => {
                if let Some(m) = child.as_object_mut() {
                    for (_, s) in m.iter_mut() {
                        strip(s);
                    }
                }
            }
            "items"
            | "additionalProperties"
            | "anyOf"
            | "oneOf"
            | "allOf"
            | "not"
            | "prefixItems"
            | "contains"
            | "if"
            | "then"
            | "else" => strip(child),
            _ => {}
        }
    }
}

/// Drops definitions whose `#/$defs/<name>` (or `#/definitions/<name>`) appears nowhere in
/// the schema's text outside that definition itself, until nothing changes.
fn drop_unreferenced(schema: &mut Value) {
    loop {
        let mut changed = false;
        for key in ["$defs", "definitions"] {
            let text = sonic_rs::to_string(&*schema).unwrap();
            let Some(defs) = schema.get(key).and_then(|d| d.as_object()).cloned() else {
                continue;
            };
            for (name, def) in defs.iter() {
                let needle = format!("\"#/{key}/{name}\"");
                let own = sonic_rs::to_string(def).unwrap();
                if text.matches(&needle).count() == own.matches(&needle).count() {
                    if let Some(d) = schema.get_mut(key).and_then(|d| d.as_object_mut()) {
                        d.remove(&name);
                        changed = true;
                    }
                }
            }
            if schema
                .get(key)
                .and_then(|d| d.as_object())
                .is_some_and(|d| d.is_empty())
            {
                schema.as_object_mut().unwrap().remove(&key);
            }
        }
        if !changed {
            return;
        }
    }
}

#[test]
fn compaction_keeps_every_tool_and_every_validation_keyword() {
    let all = context_fixtures::load();
    let total: usize = all.iter().map(|(_, t)| t.len()).sum();
    assert!(
        all.len() >= 8 && total >= 200,
        "{} servers, {total} tools",
        all.len()
    );
    for level in [Compaction::Safe, Compaction::Aggressive] {
        let c = Curation {
            compaction: level,
            description_budget: 200,
            ..Default::default()
        };
        let (mut before, mut after) = (0usize, 0usize);
        for (server, tools) in &all {
            let mut dropped = Vec::new();
            let out = c.tools(tools, &mut dropped);
            assert!(dropped.is_empty(), "{server}: {dropped:?}");
            // The same bytes every time (stable prompt caches): no hash-ordered output.
            let again = c.tools(tools, &mut Vec::new());
            for (x, y) in out.iter().zip(&again) {
                assert_eq!(
                    x.json, y.json,
                    "{server}/{}: output not deterministic",
                    x.original
                );
            }
            assert_eq!(out.len(), tools.len(), "{server}: a tool was lost");
            for t in &out {
                let orig = tools.iter().find(|o| o.key == t.original).unwrap();
                let a: Value = sonic_rs::from_slice(&orig.json).unwrap();
                let b: Value = sonic_rs::from_slice(&t.json).unwrap();
                for key in ["inputSchema", "outputSchema"] {
                    let (mut sa, mut sb) = (a[key].clone(), b[key].clone());
                    drop_unreferenced(&mut sa);
                    strip(&mut sa);
                    strip(&mut sb);
                    assert_eq!(
                        sa, sb,
                        "{server}/{}: {key} changed beyond annotations ({level:?})",
                        t.original
                    );
                }
                assert_eq!(a["name"], b["name"]);
                before += orig.json.len();
                after += t.json.len();
            }
        }
        assert!(after < before, "{level:?}: {after} >= {before}");
        eprintln!("{level:?}: {before} -> {after} bytes over {total} tools");
    }
}

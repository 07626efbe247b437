//! The `search` discovery mode's BM25 index over the real tool lists of
//! `perf/context/fixtures/` (216 tools, 15 servers, names namespaced as the gateway exposes
//! them): for each of the 50 fixed tasks of `perf/context/tasks.json` (a request in plain
//! words, written without the tool's name), the tool the task needs is among the first ten
//! results, and for at least 45 of the 50 among the first five (the figures are printed:
//! `cargo test --test search_fixtures -- --nocapture`).

use std::path::Path;

#[path = "../benches/common/context_fixtures.rs"]
mod context_fixtures;

use only1mcp_shards::catalog::search::SearchIndex;
use sonic_rs::{JsonContainerTrait, JsonValueMutTrait, JsonValueTrait, Value};

#[test]
fn every_task_finds_its_tool_among_the_first_results() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("perf/context");
    let mut names = Vec::new();
    let mut jsons = Vec::new();
    for (server, tools) in context_fixtures::load() {
        for t in tools {
            let mut t: Value = sonic_rs::from_slice(&t.json).unwrap();
            let exposed = format!("{server}__{}", t["name"].as_str().unwrap());
            t.as_object_mut()
                .unwrap()
                .insert("name", Value::from(exposed.as_str()));
            names.push(exposed);
            jsons.push(sonic_rs::to_vec(&t).unwrap());
        }
    }
    let idx = SearchIndex::build(jsons.iter().map(|j| j.as_slice()));
    let tasks: Value =
        sonic_rs::from_slice(&std::fs::read(root.join("tasks.json")).unwrap()).unwrap();
    let (mut first, mut top5) = (0, 0);
    let mut misses = Vec::new();
    for t in tasks.as_array().unwrap().iter() {
        let want = format!(
            "{}__{}",
            t["server"].as_str().unwrap(),
            t["tool"].as_str().unwrap()
        );
        let hits = idx.search(t["ask"].as_str().unwrap(), 10, &|_| true);
        let rank = hits.iter().position(|(i, _)| names[*i] == want);
        match rank {
            Some(0) => {
                first += 1;
                top5 += 1
            }
            Some(r) if r < 5 => top5 += 1,
            Some(_) => {}
            None => misses.push(format!(
                "{}: {want} not in {:?}",
                t["id"],
                hits.iter().map(|(i, _)| &names[*i]).collect::<Vec<_>>()
            )),
        }
    }
    eprintln!(
        "search over {} tools: {first}/50 first, {top5}/50 in the top five",
        names.len()
    );
    assert!(misses.is_empty(), "not in the top ten: {misses:#?}");
    assert!(top5 >= 45, "only {top5}/50 in the top five");
}

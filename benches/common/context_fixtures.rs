//! The captured real tool lists of `perf/context/fixtures/` (see `perf/context/README.md`),
//! loaded once for the context bench and the compaction and search tests.

// Each bench binary uses a subset of these.
#![allow(dead_code)]

use std::path::Path;

use only1mcp_shards::catalog::RawItem;
use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

/// Every fixture, sorted by server: (server id, its tools as the server sent them).
pub fn load() -> Vec<(String, Vec<RawItem>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("perf/context/fixtures");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("perf/context/fixtures (run perf/context/capture.py)")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let doc: Value = sonic_rs::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            let tools = doc["tools"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| RawItem {
                    key: t["name"].as_str().unwrap().to_string(),
                    json: sonic_rs::to_vec(t).unwrap(),
                })
                .collect();
            (p.file_stem().unwrap().to_string_lossy().to_string(), tools)
        })
        .collect()
}

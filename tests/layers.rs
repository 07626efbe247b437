//! The layer rule of the data plane (`docs/architecture.md`, "Layers"), checked on the source:
//! a module of `shards/src` names only its own layer and those below it. Only the shard, the
//! composition root, names them all.
//!
//! Layers, lowest first: wire (`wire/`, `http/`, `rt/`, `error.rs`), model (`config/`,
//! `catalog/`, `cluster/`, `balance/`, `cache/`, `auth/`, `stats/`, `ring.rs`, `snapshot.rs`,
//! `audit.rs`, `readiness.rs`, `trace/`), upstream (`upstream/`), route (`route/`), front (`front/`),
//! shard (`shard/` and `lib.rs`).
//! `fuzzing/` is a test harness over every layer and is not checked. Unit tests
//! (`#[cfg(test)]` onwards, `*tests.rs`) may name anything.
//!
//! A module is named by a `crate::<module>` path anywhere in code, or inside a
//! `use crate::{...}` group; comments are skipped. A second test resolves those paths to
//! files and fails when more than four files import each other in a circle (one small
//! module may; a layer may not).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const LAYERS: [&str; 6] = ["wire", "model", "upstream", "route", "front", "shard"];

/// The layer of a top-level module of `shards/src`: `Some(None)` for one that is not
/// checked, `None` for a name that is not a module of the crate.
fn layer_of(top: &str) -> Option<Option<usize>> {
    Some(Some(match top {
        "wire" | "http" | "rt" | "error" => 0,
        "config" | "catalog" | "cluster" | "balance" | "cache" | "auth" | "stats" | "ring"
        | "snapshot" | "audit" | "readiness" | "trace" => 1,
        "upstream" => 2,
        "route" => 3,
        "front" => 4,
        "shard" | "lib" => 5,
        "fuzzing" => return Some(None),
        _ => return None,
    }))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file up to its unit tests, without comments.
fn product_code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    text.lines()
        .map(|l| match l.find("//") {
            // A `//` inside a string literal ("http://...") is not a comment.
            Some(i) if l[..i].matches('"').count() % 2 == 0 => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules a piece of code names through `crate::`.
fn named_modules(code: &str) -> BTreeSet<String> {
    named_paths(code)
        .into_iter()
        .filter_map(|p| p.into_iter().next())
        .collect()
}

/// Every `crate::a::b::c` path a piece of code names, as its segments (lower-case ones only:
/// modules; a `use crate::{...}` group gives one path per top-level entry).
fn named_paths(code: &str) -> BTreeSet<Vec<String>> {
    let segments = |s: &str| -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = s;
        loop {
            let seg: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if seg.is_empty() || !seg.starts_with(|c: char| c.is_ascii_lowercase()) {
                break;
            }
            rest = &rest[seg.len()..];
            out.push(seg);
            match rest.strip_prefix("::") {
                Some(r) => rest = r,
                None => break,
            }
        }
        out
    };
    let mut found = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find(';').unwrap_or(group.len())];
            let mut depth = 0;
            let mut start = true;
            for (j, ch) in group.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && depth == 0 && !c.is_whitespace() => {
                        found.insert(segments(&group[j..]));
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            found.insert(segments(rest));
        }
    }
    found.retain(|p| !p.is_empty());
    found
}

#[test]
fn no_layer_names_a_layer_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("shards/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut broken = Vec::new();
    let mut checked = 0;
    for path in files {
        let rel = path
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let top = rel.split('/').next().unwrap().trim_end_matches(".rs");
        let own = match layer_of(top) {
            Some(Some(own)) => own,
            Some(None) => continue,
            None => {
                panic!("shards/src/{rel}: a new top-level module needs a layer in tests/layers.rs")
            }
        };
        if rel.ends_with("tests.rs") {
            continue;
        }
        checked += 1;
        let code = product_code(&std::fs::read_to_string(&path).unwrap());
        for named in named_modules(&code) {
            // `crate::X` where X is an item of lib.rs, not a module, has no layer.
            let Some(Some(theirs)) = layer_of(&named) else {
                continue;
            };
            if theirs > own {
                broken.push(format!(
                    "{rel} ({}) names crate::{named} ({})",
                    LAYERS[own], LAYERS[theirs]
                ));
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} files checked: is the path right?"
    );
    assert!(
        broken.is_empty(),
        "lower layers name higher ones:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_scan_sees_paths_and_use_groups_but_not_comments() {
    let code = product_code(
        "use crate::{wire::jsonrpc::Envelope, route, upstream::{a, b}};\n\
         let x = crate::front::http::serve(); // crate::shard::LocalShard\n\
         let u = \"http://crate::nothing\";\n\
         #[cfg(test)]\nmod tests { use crate::shard::X; }",
    );
    let named = named_modules(&code);
    let want: BTreeSet<String> = ["front", "nothing", "route", "upstream", "wire"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(named, want);
}

/// The file of `crate::<path>`: the longest prefix of the path that is a module file.
fn file_of(src: &Path, path: &[String]) -> Option<String> {
    (1..=path.len()).rev().find_map(|n| {
        let base = path[..n].join("/");
        [format!("{base}.rs"), format!("{base}/mod.rs")]
            .into_iter()
            .find(|f| src.join(f).is_file())
    })
}

#[test]
fn no_more_than_four_files_import_each_other_in_a_circle() {
    use std::collections::BTreeMap;
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("shards/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in &files {
        let rel = path
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if rel.starts_with("fuzzing/") || rel.ends_with("tests.rs") {
            continue;
        }
        let code = product_code(&std::fs::read_to_string(path).unwrap());
        let to: BTreeSet<String> = named_paths(&code)
            .iter()
            .filter_map(|p| file_of(&src, p))
            .filter(|f| *f != rel && !f.starts_with("fuzzing/"))
            .collect();
        edges.insert(rel, to);
    }
    // Tarjan's strongly connected components, iteratively.
    let names: Vec<&String> = edges.keys().collect();
    let index_of: BTreeMap<&String, usize> =
        names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let adj: Vec<Vec<usize>> = names
        .iter()
        .map(|n| {
            edges[*n]
                .iter()
                .filter_map(|t| index_of.get(t).copied())
                .collect()
        })
        .collect();
    let n = names.len();
    let (mut index, mut low, mut on) = (vec![usize::MAX; n], vec![0; n], vec![false; n]);
    let (mut stack, mut next, mut circles) = (Vec::new(), 0, Vec::new());
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut work = vec![(root, 0usize)];
        while let Some(&mut (v, ref mut child)) = work.last_mut() {
            if *child == 0 {
                index[v] = next;
                low[v] = next;
                next += 1;
                stack.push(v);
                on[v] = true;
            }
            if let Some(&w) = adj[v].get(*child) {
                *child += 1;
                if index[w] == usize::MAX {
                    work.push((w, 0));
                } else if on[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut circle = Vec::new();
                while let Some(w) = stack.pop() {
                    on[w] = false;
                    circle.push(names[w].clone());
                    if w == v {
                        break;
                    }
                }
                if circle.len() > 4 {
                    circle.sort();
                    circles.push(circle);
                }
            }
        }
    }
    assert!(n > 100, "only {n} files read");
    assert!(
        circles.is_empty(),
        "files that import each other in a circle of more than four:\n{circles:#?}"
    );
}

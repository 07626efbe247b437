//! The layer rule of the data plane (`docs/architecture.md`, "Layers"), checked on the source:
//! a module of `shards/src` names only its own layer and those below it. Only the shard, the
//! composition root, names them all.
//!
//! Layers, lowest first: codec (`wire/`, `http/`, `rt/`, `error.rs`), model (`config/`,
//! `catalog/`, `balance/`, `cache/`, `auth/`, `stats/`, `ring.rs`, `snapshot.rs`, `audit.rs`),
//! upstream (`upstream/`), router (`route/`), front (`front/`), shard (`shard.rs`, `setup.rs`,
//! `apply.rs`, `report.rs`, `lib.rs`). `fuzzing/` is a test harness over every layer and is
//! not checked. Unit tests (`#[cfg(test)]` onwards, `*tests.rs`) may name anything.
//!
//! A module is named by a `crate::<module>` path anywhere in code, or inside a
//! `use crate::{...}` group; comments are skipped.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const LAYERS: [&str; 6] = ["wire", "model", "upstream", "route", "front", "shard"];

/// The layer of a top-level module of `shards/src`: `Some(None)` for one that is not
/// checked, `None` for a name that is not a module of the crate.
fn layer_of(top: &str) -> Option<Option<usize>> {
    Some(Some(match top {
        "wire" | "http" | "rt" | "error" => 0,
        "config" | "catalog" | "balance" | "cache" | "auth" | "stats" | "ring" | "snapshot"
        | "audit" => 1,
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
    let mut found = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `use crate::{a::X, b, c::{..}}`: each top-level name in the group.
            let group = &group[..group.find(';').unwrap_or(group.len())];
            let mut depth = 0;
            let mut start = true;
            for (j, ch) in group.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && depth == 0 && !c.is_whitespace() => {
                        found.insert(ident(&group[j..]));
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            found.insert(ident(rest));
        }
    }
    found.retain(|m| !m.is_empty());
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

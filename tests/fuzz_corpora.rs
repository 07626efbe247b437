//! Replays the fuzz corpora on stable: every file of `fuzz/corpus/<target>/` (the minimised
//! corpus of the long runs) and `fuzz/regressions/<target>/` (minimised crashes, kept once
//! fixed) goes through the same body libFuzzer runs (`only1mcp_shards::fuzzing`), so a
//! regression on any input the fuzzers once reached fails `cargo test`. One test per target;
//! the long runs are `fuzz/run.sh`.

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for e in entries.flatten() {
            if e.path().is_file() {
                files.push(e.path());
            }
        }
    }
    files.sort();
    files
}

fn replay(target: &str) {
    let (_, body) = only1mcp_shards::fuzzing::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("a target of that name");
    let files = inputs(target);
    assert!(!files.is_empty(), "no corpus for {target}");
    // On a stack the size of a shard's (the product bounds nesting; an unoptimised
    // sonic-rs needs ~16 KiB a level to validate what it allows).
    let failed = std::thread::Builder::new()
        .stack_size(only1mcp_shards::rt::THREAD_STACK_BYTES)
        .spawn(move || {
            let mut failed = Vec::new();
            for f in &files {
                let data = std::fs::read(f).unwrap();
                if std::panic::catch_unwind(|| body(&data)).is_err() {
                    failed.push(f.display().to_string());
                }
            }
            failed
        })
        .unwrap()
        .join()
        .unwrap();
    assert!(
        failed.is_empty(),
        "{target}: {} inputs fail: {failed:#?}",
        failed.len()
    );
}

macro_rules! targets {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                replay(stringify!($name));
            }
        )*

        #[test]
        fn every_target_has_a_replay_test() {
            let tested = [$(stringify!($name)),*];
            for (name, _) in only1mcp_shards::fuzzing::TARGETS {
                assert!(tested.contains(name), "no replay test for {name}");
            }
        }
    };
}

targets!(
    http_head,
    http_request,
    http_response,
    envelope,
    envelope_differential,
    scan_members,
    batch,
    backend_message,
    backend_lists,
    sse,
    stdio_lines,
    mcp_headers,
    session_id,
    cursor,
    request_state,
    jwt,
    jwks,
    config,
    accept_encoding,
    unix_url,
    gzip_frame,
);

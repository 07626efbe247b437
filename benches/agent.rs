//! The scripted-agent benchmark (issue 7): what a whole task costs in model tokens, per tool
//! discovery mode, through the real gateway in front of the 15 real MCP servers of
//! `perf/context/fixtures/`.
//!
//! Run: `cargo bench --bench agent` (optionally `-- RUN...` to run only the named runs).
//! It needs the pinned servers installed (`perf/context/README.md`).
//!
//! How: for each run it writes a gateway config (`perf/context/capture.py --gateway-config`:
//! one stdio `[[servers]]` per pinned server, fresh work dirs, dummy tokens, 15 s per-request
//! timeout; plus the run's `[proxy]` keys), starts the gateway binary on a free loopback port
//! with one shard, waits until every backend is ready, and runs the 50 tasks of
//! `perf/context/tasks.json` over MCP Streamable HTTP, each as one fresh conversation (its
//! own session, `tools/list` re-read: hybrid's eager set changes as it learns usage). Runs:
//! `full-off` (`full`, compaction off), `full-safe`, `search` and `hybrid` (most used 8,
//! budget 3000 tokens, no pins), compaction `safe` for the last three.
//!
//! The agent is scripted and deterministic, and picks its tool by oracle (the task names it):
//! this measures what each mode costs in tokens, not a model's judgement. If the target is in
//! the listed tools (always in `full`, the eager set in `hybrid`) it calls it; otherwise it
//! calls `search_tools {query: ask}` and, if the target is among the hits, `get_tool_schema`
//! and `call_tool`; if not, it searches once more with `limit: 50`, and if that misses too the
//! task fails. Every conversation ends with a final model turn that reads the last result.
//!
//! Tokens (o200k_base, and cl100k_base in results.json, via tiktoken-rs; each segment counted
//! on its own): the context is the `tools` array as listed (compact JSON), the ask, every call
//! the model writes (`{"name":..,"arguments":..}`) and every answer (the `result`'s `content`
//! array, or the JSON-RPC `error` object, as compact JSON). `transcript` counts each segment
//! once; `billed` is the input of every model turn (the whole context so far, re-read each
//! turn) summed, plus the output (the calls).
//!
//! A task completes when its tool was reached through the gateway with the task's arguments:
//! the gateway answered that `tools/call` (direct, or through `call_tool`) with a `result`
//! (`isError: true` included: a server with a dummy token and no network still ran the tool)
//! or with a JSON-RPC error the backend sent. A JSON-RPC error the gateway made (it carries
//! `data.blame`: unknown tool, backend unavailable or timed out) does not count. Tool errors
//! are counted apart, and each task's outcome class must agree across the runs (mismatches
//! are listed). Per-task rows go to `target/agent-bench/results.json`; the process exits 1
//! if any task failed in any run.

#[path = "agent/client.rs"]
mod client;
#[path = "agent/gateway.rs"]
mod gateway;
#[path = "agent/report.rs"]
mod report;
#[path = "agent/script.rs"]
mod script;

use std::time::Instant;

use anyhow::Context;

/// `[proxy]` keys of every run: a slow server start (15 Node processes at once) is not a
/// failure.
const COMMON: &str = "connect_timeout_ms = 30000";

/// (run, its `[proxy]` keys, whether the mode has the meta tools).
const RUNS: [(&str, &str, bool); 4] = [
    ("full-off", "discovery = \"full\"\ncompaction = \"off\"", false),
    ("full-safe", "discovery = \"full\"\ncompaction = \"safe\"", false),
    ("search", "discovery = \"search\"\ncompaction = \"safe\"", true),
    (
        "hybrid",
        "discovery = \"hybrid\"\ncompaction = \"safe\"\nhybrid_most_used = 8\nhybrid_token_budget = 3000\nhybrid_pinned = []",
        true,
    ),
];

fn main() {
    match bench() {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("agent bench: {e:#}");
            std::process::exit(2);
        }
    }
}

fn bench() -> anyhow::Result<bool> {
    // `cargo bench` passes `--bench`; other arguments name runs to keep.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let tasks_path = gateway::repo().join("perf/context/tasks.json");
    let tasks: Vec<script::Task> = sonic_rs::from_str(&std::fs::read_to_string(&tasks_path)?)
        .context("perf/context/tasks.json")?;
    let tok = script::Tokenizers::new();
    let mut runs = Vec::new();
    for (name, keys, search) in RUNS {
        if !only.is_empty() && !only.iter().any(|o| o == name) {
            continue;
        }
        let proxy = format!("{COMMON}\n{keys}");
        let config = gateway::write_config(name, &proxy)?;
        let log = gateway::out_dir().join(format!("{name}.log"));
        let t0 = Instant::now();
        let mut gw = gateway::Gateway::start(&config, &log)
            .with_context(|| format!("run {name}: gateway on {}", config.display()))?;
        eprintln!(
            "run {name}: gateway ready at {} in {:.1} s",
            gw.url,
            t0.elapsed().as_secs_f64()
        );
        let t1 = Instant::now();
        let mut rows = Vec::new();
        for task in &tasks {
            let t = Instant::now();
            let row = script::run(&tok, &gw.url, name, search, task);
            eprintln!(
                "  {name} {} {:<45} {:?} ({} turns, {:.1} s)",
                row.id,
                row.target,
                row.outcome,
                row.turns,
                t.elapsed().as_secs_f64()
            );
            rows.push(row);
        }
        let seconds = t1.elapsed().as_secs_f64();
        let (status, took) = gw.stop();
        runs.push(report::Run {
            name: name.to_string(),
            proxy,
            seconds,
            gateway_exit: status.to_string(),
            gateway_stop_ms: took.as_millis(),
            gateway_log_issues: gateway::log_issues(&log),
            rows,
        });
    }
    let ok = report::print(&runs);
    let out = gateway::out_dir().join("results.json");
    report::write(&out, &runs)?;
    eprintln!("per-task rows: {}", out.display());
    Ok(ok)
}

//! The benchmark's outputs: the markdown table, the failures, tool errors and cross-mode
//! mismatches, and `target/agent-bench/results.json`.

use std::path::Path;

use serde::Serialize;

use crate::script::{Outcome, Row};

/// One run (a mode on a fresh gateway) and its task rows.
#[derive(Serialize)]
pub struct Run {
    pub name: String,
    /// Its `[proxy]` section.
    pub proxy: String,
    pub seconds: f64,
    /// The gateway's exit status after SIGTERM, and how long it took to exit.
    pub gateway_exit: String,
    pub gateway_stop_ms: u128,
    /// The gateway log's WARN and ERROR lines.
    pub gateway_log_issues: Vec<String>,
    pub rows: Vec<Row>,
}

fn median(mut v: Vec<usize>) -> f64 {
    v.sort_unstable();
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2] as f64,
        n => (v[n / 2 - 1] + v[n / 2]) as f64 / 2.0,
    }
}

fn mean(v: &[usize]) -> f64 {
    v.iter().sum::<usize>() as f64 / v.len().max(1) as f64
}

/// `1234567` → `1,234,567`.
fn thousands(x: f64) -> String {
    let s = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Prints the table and the task notes; whether every task of every run completed.
pub fn print(runs: &[Run]) -> bool {
    let base = runs.iter().find(|r| r.name == "full-off").map(initial);
    println!("| mode | initial tool tokens (o200k) | vs full-off | tasks completed | tool errors (isError / backend error) | billed tokens per task, median / mean | transcript tokens per task, median / mean | turns per task, mean (min–max) |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in runs {
        let n = r.rows.len();
        let done = r.rows.iter().filter(|x| x.outcome.reached()).count();
        let count = |o: Outcome| r.rows.iter().filter(|x| x.outcome == o).count();
        let (is_err, be) = (count(Outcome::ToolError), count(Outcome::BackendError));
        let billed: Vec<usize> = r.rows.iter().map(|x| x.billed[0]).collect();
        let trans: Vec<usize> = r.rows.iter().map(|x| x.transcript[0]).collect();
        let turns: Vec<usize> = r.rows.iter().map(|x| x.turns).collect();
        println!(
            "| {} | {} | {} | {done}/{n} | {} ({is_err} / {be}) | {} / {} | {} / {} | {:.2} ({}–{}) |",
            r.name,
            thousands(initial(r) as f64),
            base.map_or("n/a".to_string(), |b| format!(
                "{:.1}%",
                100.0 * initial(r) as f64 / b.max(1) as f64
            )),
            is_err + be,
            thousands(median(billed.clone())),
            thousands(mean(&billed)),
            thousands(median(trans.clone())),
            thousands(mean(&trans)),
            mean(&turns),
            turns.iter().min().unwrap_or(&0),
            turns.iter().max().unwrap_or(&0),
        );
    }
    println!();
    for r in runs {
        let tools: Vec<usize> = r.rows.iter().map(|x| x.tool_tokens[0]).collect();
        let listed = r.rows.iter().filter(|x| x.listed).count();
        let ranks: Vec<usize> = r.rows.iter().filter_map(|x| x.search_rank).collect();
        let billed_cl: Vec<usize> = r.rows.iter().map(|x| x.billed[1]).collect();
        println!(
            "- {}: {:.0} s; {} tools listed at first; tool tokens listed per task mean {} (o200k); target listed up front in {listed}/{} tasks; \
             found by search in {} (rank 1: {}, top 3: {}); billed cl100k median {}; gateway stop: {} in {} ms",
            r.name,
            r.seconds,
            r.rows.first().map_or(0, |x| x.tools_listed),
            thousands(mean(&tools)),
            r.rows.len(),
            ranks.len(),
            ranks.iter().filter(|&&k| k == 1).count(),
            ranks.iter().filter(|&&k| k <= 3).count(),
            thousands(median(billed_cl)),
            r.gateway_exit,
            r.gateway_stop_ms,
        );
    }
    for r in runs.iter().filter(|r| !r.gateway_log_issues.is_empty()) {
        println!("- {}: gateway log WARN/ERROR lines:", r.name);
        for l in &r.gateway_log_issues {
            println!("  - {}", crate::client::short(l, 240));
        }
    }
    let mut ok = true;
    println!();
    for r in runs {
        for x in r.rows.iter().filter(|x| !x.outcome.reached()) {
            ok = false;
            println!(
                "FAILED {} {} {}: {:?}: {}",
                r.name, x.id, x.target, x.outcome, x.detail
            );
        }
        for x in r.rows.iter().filter(|x| x.close_error.is_some()) {
            println!(
                "warning: {} {}: {}",
                r.name,
                x.id,
                x.close_error.as_deref().unwrap_or_default()
            );
        }
    }
    if let Some(first) = runs.first() {
        println!("Tool errors (run {}):", first.name);
        for x in first
            .rows
            .iter()
            .filter(|x| matches!(x.outcome, Outcome::ToolError | Outcome::BackendError))
        {
            println!("- {} {} ({:?}): {}", x.id, x.target, x.outcome, x.detail);
        }
        let mut mismatches = 0;
        for (i, x) in first.rows.iter().enumerate() {
            let classes: Vec<String> = runs
                .iter()
                .map(|r| format!("{}={:?}", r.name, r.rows[i].outcome))
                .collect();
            if runs.iter().any(|r| r.rows[i].outcome != x.outcome) {
                mismatches += 1;
                println!("outcome mismatch {}: {}", x.id, classes.join(", "));
            }
        }
        println!(
            "outcome classes identical across modes for {}/{} tasks",
            first.rows.len() - mismatches,
            first.rows.len()
        );
    }
    ok
}

/// The tool tokens a client of a fresh gateway loads (the run's first task).
fn initial(r: &Run) -> usize {
    r.rows.first().map_or(0, |x| x.tool_tokens[0])
}

/// Writes every run and task row as JSON.
pub fn write(path: &Path, runs: &[Run]) -> anyhow::Result<()> {
    std::fs::write(path, sonic_rs::to_string_pretty(runs)?)?;
    Ok(())
}

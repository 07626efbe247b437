//! Context reduction, measured in tokens (not time): for every captured real tool list in
//! `perf/context/fixtures/`, the tools, bytes and tokens (o200k_base and cl100k_base, the
//! tokenizers of current OpenAI models, via tiktoken-rs) of the `tools` array a client loads,
//! at compaction `off`, `safe` and `aggressive` (description budget 200). The table goes to
//! stdout in the form `docs/context-reduction.md` keeps.
//!
//! Run: `cargo bench --bench context`.

mod common;
use common::context_fixtures;

use only1mcp_shards::catalog::curate::{Compaction, Curation};

fn render(tools: &[Vec<u8>]) -> String {
    let mut s = String::from("[");
    for (i, t) in tools.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(std::str::from_utf8(t).unwrap());
    }
    s.push(']');
    s
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is expected.
    let o200k = tiktoken_rs::o200k_base().unwrap();
    let cl100k = tiktoken_rs::cl100k_base().unwrap();
    let levels = [Compaction::Off, Compaction::Safe, Compaction::Aggressive];
    println!("| server | tools | bytes off / safe / aggressive | o200k tokens off / safe / aggressive | cl100k tokens off / safe / aggressive | safe saves (o200k) |");
    println!("|---|---:|---|---|---|---:|");
    let mut totals = [[0usize; 3]; 3];
    let mut tools_total = 0;
    for (name, items) in context_fixtures::load() {
        tools_total += items.len();
        let mut row = [[0usize; 3]; 3];
        for (li, level) in levels.iter().enumerate() {
            let c = Curation {
                compaction: *level,
                description_budget: 200,
                ..Default::default()
            };
            let out: Vec<Vec<u8>> = if *level == Compaction::Off {
                items.iter().map(|t| t.json.clone()).collect()
            } else {
                c.tools(&items, &mut Vec::new())
                    .into_iter()
                    .map(|t| t.json.into_owned())
                    .collect()
            };
            let text = render(&out);
            row[0][li] = text.len();
            row[1][li] = o200k.encode_with_special_tokens(&text).len();
            row[2][li] = cl100k.encode_with_special_tokens(&text).len();
        }
        for m in 0..3 {
            for l in 0..3 {
                totals[m][l] += row[m][l];
            }
        }
        print_row(&name, items.len(), &row);
    }
    print_row("**all**", tools_total, &totals);
    let meta = only1mcp_shards::route::meta::TOOLS;
    println!();
    println!(
        "search mode: the initial tool context is the 3 meta tools, {} bytes, {} o200k / {} cl100k tokens, whatever the catalog ({:.1}% of the full list's o200k tokens)",
        meta.len(),
        o200k.encode_with_special_tokens(meta).len(),
        cl100k.encode_with_special_tokens(meta).len(),
        100.0 * o200k.encode_with_special_tokens(meta).len() as f64 / totals[1][0].max(1) as f64
    );
}

fn print_row(name: &str, tools: usize, r: &[[usize; 3]; 3]) {
    let saved = 100.0 * (1.0 - r[1][1] as f64 / r[1][0].max(1) as f64);
    println!(
        "| {name} | {tools} | {} / {} / {} | {} / {} / {} | {} / {} / {} | {saved:.0}% |",
        r[0][0], r[0][1], r[0][2], r[1][0], r[1][1], r[1][2], r[2][0], r[2][1], r[2][2]
    );
}

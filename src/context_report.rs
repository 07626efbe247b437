//! `only1mcp-uring context-report --config FILE...`: what a client of this config would load
//! into its model's context, per server and per discovery mode: tools, bytes and tokens
//! (o200k_base and cl100k_base, via tiktoken-rs).
//!
//! It runs the real gateway on the file (a child process on a free loopback port, one
//! shard), waits for the backends to list their tools, reads `tools/list` once per mode the
//! way a client would (`X-MCP-Discovery: full | search | hybrid`), and stops the gateway.
//! What it prints is what clients get, curation and compaction included.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

/// Runs the report; prints the table to stdout.
pub fn run(config: &[PathBuf]) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the gateway's own executable")?;
    let mut child = Command::new(exe)
        .args([
            "start",
            "--port",
            "0",
            "--cores",
            "1",
            "--host",
            "127.0.0.1",
        ])
        .args(
            config
                .iter()
                .flat_map(|c| [OsStr::new("--config"), c.as_os_str()]),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start the gateway")?;
    let result = report(&mut child);
    // SAFETY: plain syscall on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    result
}

fn report(child: &mut std::process::Child) -> anyhow::Result<()> {
    let stdout = child.stdout.take().context("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://") || w.starts_with("https://"))
        .with_context(|| format!("the gateway did not start: {line:?}"))?
        .to_string();
    let base = url.trim_end_matches("/mcp").to_string();
    // Wait (at most a minute) until no backend is still starting.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let health: Value =
            sonic_rs::from_str(&ureq::get(&format!("{base}/health")).call()?.into_string()?)?;
        let starting = health["backends"]
            .as_array()
            .is_some_and(|a| a.iter().any(|b| b["state"].as_str() == Some("starting")));
        if !starting || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let o200k = tiktoken_rs::o200k_base().map_err(|e| anyhow::anyhow!("{e}"))?;
    let cl100k = tiktoken_rs::cl100k_base().map_err(|e| anyhow::anyhow!("{e}"))?;
    let sep = "__";
    println!("| mode | server | tools | bytes | o200k tokens | cl100k tokens |");
    println!("|---|---|---:|---:|---:|---:|");
    for mode in ["full", "search", "hybrid"] {
        let tools = list(&url, mode)?;
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for t in tools.as_array().context("no tools array")?.iter() {
            let name = t["name"].as_str().unwrap_or_default();
            let server = match name.split_once(sep) {
                Some((s, _)) => s.to_string(),
                None => "(gateway)".to_string(),
            };
            let json = sonic_rs::to_string(t)?;
            match groups.iter_mut().find(|(s, _)| *s == server) {
                Some((_, v)) => v.push(json),
                None => groups.push((server, vec![json])),
            }
        }
        let mut total = (0, 0, 0, 0);
        for (server, items) in &groups {
            let text = format!("[{}]", items.join(","));
            let (a, b) = (
                o200k.encode_with_special_tokens(&text).len(),
                cl100k.encode_with_special_tokens(&text).len(),
            );
            println!(
                "| {mode} | {server} | {} | {} | {a} | {b} |",
                items.len(),
                text.len()
            );
            total = (
                total.0 + items.len(),
                total.1 + text.len(),
                total.2 + a,
                total.3 + b,
            );
        }
        println!(
            "| {mode} | **all** | {} | {} | {} | {} |",
            total.0, total.1, total.2, total.3
        );
    }
    Ok(())
}

/// `tools/list` as a client in `mode` sees it (every page).
fn list(url: &str, mode: &str) -> anyhow::Result<Value> {
    let post = |body: &str, sid: Option<&str>| -> anyhow::Result<ureq::Response> {
        let mut r = ureq::post(url)
            .set("content-type", "application/json")
            .set("accept", "application/json, text/event-stream")
            .set("x-mcp-discovery", mode);
        if let Some(s) = sid {
            r = r
                .set("mcp-session-id", s)
                .set("mcp-protocol-version", "2025-11-25");
        }
        Ok(r.send_string(body)?)
    };
    let init = post(
        r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"context-report","version":"1"}}}"#,
        None,
    )?;
    let sid = init
        .header("mcp-session-id")
        .context("no session id")?
        .to_string();
    post(
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        Some(&sid),
    )?;
    let mut all: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let params = match &cursor {
            Some(c) => format!(r#"{{"cursor":{}}}"#, sonic_rs::to_string(c)?),
            None => "{}".into(),
        };
        let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{params}}}"#);
        let v: Value = sonic_rs::from_str(&post(&body, Some(&sid))?.into_string()?)?;
        if let Some(a) = v["result"]["tools"].as_array() {
            all.extend(a.iter().cloned());
        }
        match v["result"]["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    Ok(Value::from(all))
}

//! The command line: help, config errors as one line with file and line, templates, validate.

mod common;

use std::process::Command;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(common::bin()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn broken_config_is_one_clear_line_with_file_and_line() {
    let dir = common::scratch("cli");
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[server]\nport = 8080\n\n[[servers]]\nid = \"a\"\ntransport = \"stdio\"\ncomand = \"x\"\n",
    )
    .unwrap();
    let (code, _, err) = run(&["start", "--config", bad.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains("bad.toml:7"), "{line}");
    assert!(line.contains("comand"), "{line}");
    let (code, _, err) = run(&["validate", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("bad.toml:7"), "{err}");
    let garbage = dir.join("garbage.toml");
    std::fs::write(&garbage, "this is = = not toml").unwrap();
    let (code, _, err) = run(&["validate", garbage.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("garbage.toml:1"), "{err}");
}

#[test]
fn templates_generate_and_validate() {
    let dir = common::scratch("cli-tpl");
    for t in ["solo", "team", "gateway"] {
        let (code, out, err) = run(&["config", "generate", "--template", t]);
        assert_eq!(code, 0, "{err}");
        let f = dir.join(format!("{t}.toml"));
        std::fs::write(&f, out).unwrap();
        let (code, out, err) = run(&["validate", f.to_str().unwrap()]);
        assert_eq!(code, 0, "{t}: {err}");
        assert!(out.contains(": ok"));
    }
    let (code, _, err) = run(&["config", "generate", "--template", "nope"]);
    assert_ne!(code, 0);
    assert!(err.contains("possible values"), "{err}");
}

#[test]
fn help_lists_the_commands() {
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    for c in ["start", "validate", "config", "demo-server"] {
        assert!(out.contains(c), "{out}");
    }
    let (code, out, _) = run(&["start", "--help"]);
    assert_eq!(code, 0);
    for f in ["--cores", "--driver", "--port", "--host", "--config"] {
        assert!(out.contains(f), "{out}");
    }
}

#[test]
fn occupied_port_is_a_clear_error() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    let (code, _, err) = run(&["start", "--port", &port, "--cores", "1"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot listen on"), "{err}");
}

#[test]
fn context_report_counts_what_each_mode_lists() {
    // Two real demo servers behind the real gateway (started by the command itself): one
    // as sent, one curated and compacted.
    let dir = common::scratch("cli-context");
    let cfg = dir.join("ctx.toml");
    std::fs::write(
        &cfg,
        format!(
            "[proxy]\nhybrid_pinned = [\"demo__echo\"]\n[metrics]\nsocket_enabled = false\n{}{}",
            common::demo_stdio("demo", ""),
            common::demo_stdio(
                "lean",
                "compaction = \"aggressive\"\ntools_deny = [\"crash\", \"garbage\"]"
            )
        ),
    )
    .unwrap();
    let (code, out, err) = run(&["context-report", "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let row = |mode: &str, server: &str| -> Vec<u64> {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("| {mode} | {server} |")))
            .unwrap_or_else(|| panic!("no {mode}/{server} row:\n{out}"));
        line.split('|')
            .skip(3)
            .filter_map(|c| c.trim().parse().ok())
            .collect()
    };
    let (demo, lean) = (row("full", "demo"), row("full", "lean"));
    assert_eq!(demo[0], 11, "{out}");
    assert_eq!(lean[0], 9, "{out}");
    assert!(
        lean[2] < demo[2],
        "compaction and curation cost fewer tokens:\n{out}"
    );
    assert_eq!(row("search", "**all**")[0], 3, "{out}");
    assert_eq!(row("hybrid", "demo")[0], 1, "{out}");
    assert!(
        row("search", "**all**")[2] < row("full", "**all**")[2] / 3,
        "{out}"
    );
}

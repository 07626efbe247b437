//! The TUI against a live gateway, read off a real terminal.
//!
//! The gateway binary runs with a `[metrics] socket` in a scratch directory and the built-in
//! demo server behind it; the test sends MCP traffic, starts `only1mcp-uring tui --socket`
//! inside a detached tmux session of a fixed size, presses keys with `send-keys` and asserts
//! on what `capture-pane` shows: every tab with live figures, the log filter, and the
//! reconnect after the gateway is killed and started again on the same socket. Every wait
//! polls the screen up to a deadline. A guard kills the tmux server (and the TUI in it) on
//! every exit path, panics included; the gateways are stopped by their own guards.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{demo_stdio, Gateway};
use sonic_rs::JsonValueTrait;

/// How long one screen may take to show what is expected.
const SCREEN_DEADLINE: Duration = Duration::from_secs(30);

/// A tmux server of our own (`-S`, its socket in the scratch directory), killed with
/// everything in it on drop.
struct Tmux {
    socket: PathBuf,
    /// The pane's process (the shell running the TUI), killed too in case it outlives the
    /// server.
    pane_pid: Option<i32>,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(["-f", "/dev/null", "-u"])
            .args(args)
            .env("LANG", "C.UTF-8")
            .env("LC_ALL", "C.UTF-8")
            .output()
            .expect("tmux runs")
    }

    /// Starts `command` (run by the shell) in a detached 140x40 session named `tui`; the
    /// pane stays after the command exits so its last screen can be inspected.
    fn start(dir: &Path, command: &str) -> Tmux {
        let mut t = Tmux {
            socket: dir.join("tmux.sock"),
            pane_pid: None,
        };
        let out = t.cmd(&[
            "new-session",
            "-d",
            "-x",
            "140",
            "-y",
            "40",
            "-s",
            "tui",
            command,
            ";",
            "set-option",
            "-t",
            "tui",
            "remain-on-exit",
            "on",
        ]);
        assert!(out.status.success(), "tmux new-session: {out:?}");
        let pid =
            String::from_utf8_lossy(&t.cmd(&["display", "-p", "-t", "tui", "#{pane_pid}"]).stdout)
                .trim()
                .parse()
                .ok();
        t.pane_pid = pid;
        t
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "tui"]).stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "tui"];
        args.extend_from_slice(keys);
        let out = self.cmd(&args);
        assert!(out.status.success(), "send-keys {keys:?}: {out:?}");
    }

    /// Polls the screen until `pred` holds; panics with the last screen after the deadline.
    fn wait(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + SCREEN_DEADLINE;
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            if Instant::now() > deadline {
                panic!("the screen never showed {what} within {SCREEN_DEADLINE:?}:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_for(&self, text: &str) -> String {
        self.wait(&format!("{text:?}"), |s| s.contains(text))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // The shell and the TUI under it; found before the server goes, killed after.
        let pids: Vec<u32> = self
            .pane_pid
            .map(|p| {
                let mut all = common::descendants(p as u32);
                all.push(p as u32);
                all
            })
            .unwrap_or_default();
        let _ = self.cmd(&["kill-server"]);
        let _ = std::fs::remove_file(&self.socket);
        for pid in pids {
            // SAFETY: plain kill(2) on processes this test started; ESRCH (gone) is fine.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
        }
    }
}

fn tmux_installed() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The numbers in the row of `screen` that contains every one of `marks`.
fn row_numbers(screen: &str, marks: &[&str]) -> Option<Vec<u64>> {
    let row = screen
        .lines()
        .find(|l| marks.iter().all(|m| l.contains(m)))?;
    Some(
        row.split(|c: char| c.is_whitespace() || c == '│')
            .filter_map(|w| w.parse().ok())
            .collect(),
    )
}

fn config(socket: &Path) -> String {
    format!(
        "[metrics]\nsocket = \"{}\"\n\n{}",
        socket.display(),
        demo_stdio("demo", "")
    )
}

fn traffic(gw: &Gateway, calls: usize) {
    let sid = gw.initialize();
    for i in 0..calls {
        let r = gw.call(&sid, "demo__echo", &format!(r#"{{"message":"tui{i}"}}"#));
        assert!(r["result"]["isError"].as_bool() != Some(true), "{r:?}");
        assert!(r["result"].is_object(), "{r:?}");
    }
}

/// Every tab shows live figures from a real gateway; the log filter narrows the list; the
/// TUI says it lost the gateway when it is killed and that it reconnected when a new one
/// comes up on the same socket; `q` quits cleanly.
#[test]
fn tui_shows_every_tab_live_and_survives_a_gateway_restart() {
    if !tmux_installed() {
        // tests/run-all.sh installs tmux (or fails saying why) and sets this: there, a
        // missing tmux is a failure, never a silent skip.
        assert!(
            std::env::var_os("ONLY1MCP_REQUIRE_TMUX").is_none(),
            "tmux is required for the TUI test (Debian: apt-get install tmux)"
        );
        println!("SKIPPED tui_shows_every_tab_live_and_survives_a_gateway_restart: tmux is not installed");
        return;
    }
    let dir = common::scratch("tui");
    let socket: PathBuf = dir.join("m.sock");
    let _ = std::fs::remove_file(&socket);
    let cfg = config(&socket);
    let gw = Gateway::start(&cfg, "auto", 2, &["demo"]);
    traffic(&gw, 5);

    let tui_err = dir.join("tui-stderr.log");
    let tui_status = dir.join("tui-status");
    let _ = std::fs::remove_file(&tui_status);
    // The shell records how the TUI ended (tmux's own pane exit status is racy).
    let command = format!(
        "{} tui --socket {} 2>{}; echo $? >{}",
        common::bin().display(),
        socket.display(),
        tui_err.display(),
        tui_status.display()
    );
    let tmux = Tmux::start(&dir, &command);
    let sock = socket.display().to_string();

    // 1 Overview: connected, totals with the requests we sent, uptime.
    let s = tmux.wait("connected with a nonzero request count", |s| {
        s.contains(&format!("connected to {sock}"))
            && row_numbers(s, &["requests", "errors"]).is_some_and(|n| n.first() >= Some(&6))
    });
    for want in ["1 Overview", "5 Logs", "uptime", "p99", "req/s, last"] {
        assert!(s.contains(want), "Overview lacks {want:?}:\n{s}");
    }

    // 2 Servers: the demo server's replica, healthy, with its requests counted.
    tmux.keys(&["2"]);
    let s = tmux.wait("the demo replica with requests", |s| {
        s.contains("servers: 1")
            && row_numbers(s, &["demo", "healthy"])
                .is_some_and(|n| n.len() >= 2 && n[n.len() - 2] > 0)
    });
    let row = s
        .lines()
        .find(|l| l.contains("healthy"))
        .unwrap_or_default();
    assert!(row.contains("stdio"), "{s}");

    // 3 Requests: tools/call by tool.
    tmux.keys(&["3"]);
    let s = tmux.wait("tools/call of the echo tool with 5 requests", |s| {
        row_numbers(s, &["tools/call", "echo"]).is_some_and(|n| n.first() >= Some(&5))
    });
    assert!(s.contains("initialize"), "{s}");

    // 4 Cache: this config has none, and the tab says so.
    tmux.keys(&["4"]);
    tmux.wait_for("no cache configured on this gateway");

    // 5 Logs: the gateway's own lines, then the filter.
    tmux.keys(&["5"]);
    let s = tmux.wait_for("gateway started");
    assert!(s.contains("metrics watcher connected"), "{s}");
    tmux.keys(&["/"]);
    tmux.keys(&["-l", "watcher"]);
    tmux.wait_for("filter: /watcher");
    tmux.keys(&["Enter"]);
    let s = tmux.wait_for("filter: \"watcher\"");
    assert!(s.contains("metrics watcher connected"), "{s}");
    assert!(
        !s.contains("gateway started"),
        "the filter hides other lines:\n{s}"
    );
    tmux.keys(&["Escape"]);
    tmux.wait_for("gateway started");

    // Kill the gateway outright (its socket file stays behind, stale): the TUI says so.
    // SAFETY: plain kill(2) on the gateway we started.
    unsafe {
        libc::kill(gw.pid() as i32, libc::SIGKILL);
    }
    drop(gw); // reaps it
    tmux.keys(&["1"]);
    tmux.wait_for(&format!("disconnected — reconnecting to {sock} (attempt"));

    // A new gateway on the same socket: the TUI comes back by itself with new figures.
    let gw2 = Gateway::start(&cfg, "auto", 2, &["demo"]);
    traffic(&gw2, 1);
    tmux.wait_for(&format!("reconnected to {sock} (the gateway restarted)"));
    tmux.keys(&["3"]);
    tmux.wait("the new gateway's tools/call count", |s| {
        row_numbers(s, &["tools/call", "echo"]).is_some_and(|n| n.first() == Some(&1))
    });

    // q quits with status 0.
    tmux.keys(&["q"]);
    let deadline = Instant::now() + SCREEN_DEADLINE;
    let status = loop {
        match std::fs::read_to_string(&tui_status) {
            Ok(s) if s.ends_with('\n') => break s,
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "the TUI did not exit on q:\n{}\nstderr: {}",
            tmux.screen(),
            std::fs::read_to_string(&tui_err).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        status.trim(),
        "0",
        "TUI stderr: {}",
        std::fs::read_to_string(&tui_err).unwrap_or_default()
    );
    drop(gw2);
}

//! /proc probes of the fault-injection test: open fds, process state, children by name,
//! and "was this pid reaped".

use std::time::{Duration, Instant};

use crate::common;

pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The process state letter from /proc/PID/stat (`Z` = zombie), if the pid exists.
pub fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

/// Descendants of the gateway with `needle` as one of their arguments (a stdio backend's
/// `--name`).
pub fn pids_with(gw_pid: u32, needle: &str) -> Vec<u32> {
    common::descendants(gw_pid)
        .into_iter()
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).split('\0').any(|a| a == needle))
                .unwrap_or(false)
        })
        .collect()
}

/// Polls `name`'s processes until exactly one exists and it is not `old` (bounded).
pub fn wait_replaced(gw_pid: u32, name: &str, old: u32, within: Duration) -> Vec<u32> {
    let deadline = Instant::now() + within;
    loop {
        let now = pids_with(gw_pid, name);
        if (now.len() == 1 && now[0] != old) || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (bounded) until `pid` is gone from /proc, i.e. reaped by its parent (a zombie still
/// has its /proc entry). Panics with its state if it is still there.
pub fn assert_reaped(pid: u32, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    while common::alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !common::alive(pid),
        "{what}: pid {pid} not reaped after {within:?} (state {:?})",
        proc_state(pid)
    );
}

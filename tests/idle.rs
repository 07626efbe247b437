//! An idle gateway sleeps: with two stdio backends and no client, a shard thread wakes only
//! for its own timers (stats, health pings), not to poll. Counted from the kernel's
//! voluntary context switches of each shard thread (`/proc/PID/task/*/status`), which is
//! what an idle gateway costs the machine; `perf/idle_cpu.sh` measures the CPU.

mod common;

use std::time::Duration;

use common::{Gateway, DRIVERS};

/// Voluntary context switches of every `o1m-shard-*` thread of `pid`.
fn shard_sleeps(pid: u32) -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.starts_with("o1m-shard") {
            continue;
        }
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        total += status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
    }
    total
}

#[test]
fn idle_shards_do_not_poll_their_stdio_backends() {
    for driver in DRIVERS {
        let cfg = format!(
            "[server]\nhost = \"127.0.0.1\"\n[metrics]\nsocket_enabled = false\n{}{}",
            common::demo_stdio("one", ""),
            common::demo_stdio("two", "")
        );
        let gw = Gateway::start(&cfg, driver, 2, &["one", "two"]);
        std::thread::sleep(Duration::from_millis(500));
        let before = shard_sleeps(gw.pid());
        std::thread::sleep(Duration::from_secs(3));
        let per_sec = (shard_sleeps(gw.pid()) - before) as f64 / 3.0;
        // Two shards' own timers wake them about 10 times a second in all; each stdio
        // backend's supervisor polling its stop flag every 50 ms added 20 more per backend.
        assert!(
            per_sec < 25.0,
            "{driver}: idle shards woke {per_sec:.1} times a second"
        );
    }
}

//! Running under systemd: the unit in `deploy/systemd/` passes `systemd-analyze verify` with no
//! warning, and the gateway speaks the notification protocol to the `$NOTIFY_SOCKET` a test
//! binds (a path and an abstract-namespace name), on both drivers: `READY=1` once it serves,
//! `RELOADING=1` + `MONOTONIC_USEC=` then `READY=1` around a SIGHUP reload, `STOPPING=1` at
//! SIGTERM; nothing when `$NOTIFY_SOCKET` is unset.

mod common;

use std::io::{BufRead, BufReader};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{bin, demo_stdio, scratch, Client, DRIVERS};

const UNIT: &str = "deploy/systemd/only1mcp-uring.service";

#[test]
fn the_unit_passes_systemd_analyze_verify_without_a_warning() {
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join(UNIT);
    let text = std::fs::read_to_string(&unit).unwrap();
    assert!(text.contains("/usr/local/bin/only1mcp-uring start"));
    // verify checks that ExecStart exists: point it at the binary under test.
    let dir = scratch("unit");
    let copy = dir.join("only1mcp-uring.service");
    let built = bin().display().to_string();
    std::fs::write(&copy, text.replace("/usr/local/bin/only1mcp-uring", &built)).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .expect("systemd-analyze is installed (apt-get install systemd)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "verify failed: {said}");
    assert_eq!(said.trim(), "", "systemd-analyze verify warned");
    for key in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "KillMode=mixed",
        "LimitMEMLOCK=infinity",
        "ProtectHome=read-only",
        "LogsDirectory=only1mcp",
    ] {
        assert!(text.lines().any(|l| l == key), "{key} missing");
    }
}

/// The drain grace of the unit's `TimeoutStopSec` covers: what `gateway.toml` sets plus the
/// shards' 15 s stop margin must be below it.
#[test]
fn the_units_stop_timeout_exceeds_the_example_graces() {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(UNIT)).unwrap();
    let secs: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .and_then(|v| v.trim_end_matches('s').parse().ok())
        .expect("TimeoutStopSec=<n>s");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/gateway.toml");
    let cfg = only1mcp_shards::config::load_file(&path).unwrap();
    let needed_ms = cfg.server.drain_grace_ms + cfg.server.shutdown_grace_ms + 15_000;
    assert!(secs * 1000 > needed_ms, "{secs} s <= {needed_ms} ms");
}

/// A notification socket the test owns.
struct Listener {
    socket: UnixDatagram,
    /// The `$NOTIFY_SOCKET` value naming it.
    env: String,
    seen: Vec<String>,
}

impl Listener {
    fn path(dir: &Path) -> Listener {
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let socket = UnixDatagram::bind(&path).unwrap();
        Listener::with(socket, path.display().to_string())
    }

    fn abstract_name(tag: &str) -> Listener {
        let name = format!("o1m-test-notify-{}-{tag}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let socket = UnixDatagram::bind_addr(&addr).unwrap();
        Listener::with(socket, format!("@{name}"))
    }

    fn with(socket: UnixDatagram, env: String) -> Listener {
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Listener {
            socket,
            env,
            seen: Vec::new(),
        }
    }

    /// Waits for a message starting with `prefix`; returns it.
    fn expect(&mut self, prefix: &str, within: Duration, child: &mut Child) -> String {
        let deadline = Instant::now() + within;
        let mut buf = [0u8; 4096];
        loop {
            if let Ok(n) = self.socket.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                self.seen.push(msg.clone());
                if msg.starts_with(prefix) {
                    return msg;
                }
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("no {prefix:?} within {within:?}; got {:?}", self.seen);
            }
        }
    }
}

fn start(cfg: &Path, driver: &str, notify: Option<&str>, log: &Path) -> (Child, Client) {
    let mut cmd = Command::new(bin());
    cmd.args(["start", "--config"])
        .arg(cfg)
        .args(["--host", "127.0.0.1", "--port", "0", "--cores", "1"])
        .args(["--driver", driver])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .env_remove("NOTIFY_SOCKET");
    if let Some(n) = notify {
        cmd.env("NOTIFY_SOCKET", n);
    }
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .map(str::to_string);
    match addr {
        Some(addr) => (child, Client { addr }),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no start line: {}", std::fs::read_to_string(log).unwrap());
        }
    }
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill on the pid of a child this test started and has not reaped.
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
}

fn lifecycle(driver: &str, mut n: Listener, dir: &Path) {
    let cfg: PathBuf = dir.join(format!("{driver}.toml"));
    let base = "[server]\ndrain_grace_ms = 1000\n\n".to_string() + &demo_stdio("demo", "");
    std::fs::write(&cfg, &base).unwrap();
    let log = dir.join(format!("{driver}.log"));
    let (mut child, client) = start(&cfg, driver, Some(&n.env), &log);
    let ready = n.expect("READY=1", Duration::from_secs(30), &mut child);
    assert!(
        ready.contains("\nSTATUS=serving 1 of 1 backends"),
        "{ready:?}"
    );
    // READY=1 comes once it serves: /ready already answers 200 and the backend is listed.
    assert_eq!(client.get("/ready").status, 200);
    assert!(client.get("/health").text().contains("\"ready\""));
    assert_eq!(
        n.seen.len(),
        1,
        "READY=1 is the first message: {:?}",
        n.seen
    );

    // A reload (a second server added) between RELOADING=1 and READY=1.
    std::fs::write(&cfg, base.clone() + &demo_stdio("demo2", "")).unwrap();
    signal(&child, libc::SIGHUP);
    let reloading = n.expect("RELOADING=1", Duration::from_secs(10), &mut child);
    let usec: u64 = reloading
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{reloading:?}"));
    // SAFETY: clock_gettime writes the timespec we own.
    let now_usec = unsafe {
        let mut ts: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
        ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
    };
    assert!(usec <= now_usec && now_usec - usec < 10_000_000, "{usec}");
    let after = n.expect("READY=1", Duration::from_secs(10), &mut child);
    assert!(after.contains("STATUS="), "{after:?}");
    assert!(
        client.get("/health").text().contains("\"demo2\""),
        "the reload was applied before READY=1"
    );

    signal(&child, libc::SIGTERM);
    let stopping = n.expect("STOPPING=1", Duration::from_secs(5), &mut child);
    assert!(stopping.contains("STATUS=stopping"), "{stopping:?}");
    // STOPPING=1 comes at the signal, while the drain grace still serves.
    assert_eq!(client.get("/ready").status, 503);
    let st = wait_exit(&mut child, Duration::from_secs(20));
    assert!(
        st.success(),
        "{st}: {}",
        std::fs::read_to_string(&log).unwrap()
    );
}

#[test]
fn ready_reloading_stopping_reach_a_path_socket_on_both_drivers() {
    for driver in DRIVERS {
        let dir = scratch(&format!("notify-path-{driver}"));
        lifecycle(driver, Listener::path(&dir), &dir);
    }
}

#[test]
fn ready_reloading_stopping_reach_an_abstract_socket_on_both_drivers() {
    for driver in DRIVERS {
        let dir = scratch(&format!("notify-abstract-{driver}"));
        lifecycle(driver, Listener::abstract_name(driver), &dir);
    }
}

/// Without `$NOTIFY_SOCKET` the gateway sends nothing (a socket nobody named hears nothing),
/// and its stdio children do not inherit the variable when it is set.
#[test]
fn nothing_is_sent_without_notify_socket_and_children_do_not_inherit_it() {
    for driver in DRIVERS {
        let dir = scratch(&format!("notify-none-{driver}"));
        let mut n = Listener::path(&dir);
        let cfg = dir.join("c.toml");
        std::fs::write(&cfg, demo_stdio("demo", "")).unwrap();
        let log = dir.join("none.log");
        let (mut child, client) = start(&cfg, driver, None, &log);
        let deadline = Instant::now() + Duration::from_secs(30);
        while client.get("/ready").status != 200 {
            assert!(Instant::now() < deadline, "never ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        signal(&child, libc::SIGTERM);
        assert!(wait_exit(&mut child, Duration::from_secs(20)).success());
        let mut buf = [0u8; 64];
        assert!(n.socket.recv(&mut buf).is_err(), "nothing was sent");
        n.seen.clear();

        // Set: the demo child's environment (read from /proc) has no NOTIFY_SOCKET.
        let (mut child, client) = start(&cfg, driver, Some(&n.env), &log);
        n.expect("READY=1", Duration::from_secs(30), &mut child);
        let mut checked = 0;
        for task in std::fs::read_dir(format!("/proc/{}/task", child.id())).unwrap() {
            let task = task.unwrap().path();
            let kids = std::fs::read_to_string(task.join("children")).unwrap_or_default();
            for pid in kids.split_whitespace() {
                let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
                assert!(
                    !env.split(|b| *b == 0)
                        .any(|v| v.starts_with(b"NOTIFY_SOCKET=")),
                    "child {pid} inherited NOTIFY_SOCKET"
                );
                checked += 1;
            }
        }
        assert!(checked >= 1, "no stdio child found");
        assert_eq!(client.get("/ready").status, 200);
        signal(&child, libc::SIGTERM);
        assert!(wait_exit(&mut child, Duration::from_secs(20)).success());
    }
}

//! Streamable HTTP backends on unix sockets (`url = "unix:/path.sock:/mcp"`), through the real
//! gateway on both drivers, in front of the demo server listening on a unix socket
//! (`demo-server --http unix:PATH`): tools/list and tools/call, the pool's bound, the backend
//! missing at start, dying (stale socket, no socket, a plain file in its place) and coming
//! back, the health probe over the socket, replicas mixing unix and TCP, a per-client backend on
//! a socket, and the errors known at config time.
//!
//! Socket files live in a short temp directory each test creates and removes (a socket path
//! holds at most 107 bytes).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{bin, Gateway, DRIVERS};
use sonic_rs::{JsonContainerTrait, JsonValueTrait};

/// A temp directory for sockets, removed on drop.
struct SockDir(PathBuf);

impl SockDir {
    fn new(tag: &str) -> SockDir {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir = std::env::temp_dir().join(format!("o1u-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        SockDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for SockDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The demo server on a unix socket; killed (SIGKILL: the socket file stays) and reaped on
/// drop.
struct UnixDemo(Child);

impl UnixDemo {
    fn start(sock: &Path, name: &str) -> UnixDemo {
        let mut child = Command::new(bin())
            .args(["demo-server", "--http"])
            .arg(format!("unix:{}", sock.display()))
            .args(["--name", name])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("demo-server starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
        let demo = UnixDemo(child);
        let want = format!("listening on unix:{}:/mcp", sock.display());
        assert!(line.contains(&want), "demo-server did not start: {line:?}");
        demo
    }
}

impl Drop for UnixDemo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `[[servers]]` entry for an HTTP backend on the unix socket `sock`, HTTP path `/mcp`.
fn unix_server(id: &str, sock: &Path, extra: &str) -> String {
    format!(
        "[[servers]]\nid = \"{id}\"\ntransport = \"http\"\nurl = \"unix:{}:/mcp\"\n{extra}\n",
        sock.display()
    )
}

/// Connections accepted on the socket at `sock` and still open (from /proc/net/unix: an
/// accepted socket shows its listener's path, state 03 = connected).
fn connected(sock: &Path) -> usize {
    let want = sock.to_str().unwrap();
    std::fs::read_to_string("/proc/net/unix")
        .unwrap()
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() >= 8 && f[5] == "03" && f[7] == want
        })
        .count()
}

/// A tools/call in `sid` with id `id`; the JSON-RPC response.
fn call(gw: &common::Client, sid: &str, id: &str, tool: &str, args: &str) -> sonic_rs::Value {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":"{id}","method":"tools/call","params":{{"name":"{tool}","arguments":{args}}}}}"#
    );
    let r = gw.post(&[("mcp-session-id", sid)], &body);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn text(r: &sonic_rs::Value) -> &str {
    r["result"]["content"][0]["text"].as_str().unwrap_or("")
}

/// The error of `r`, which must answer request `id` with a backend-unavailable error
/// naming the server `web` and containing `want`.
fn assert_unavailable(r: &sonic_rs::Value, id: &str, want: &str, driver: &str) {
    assert_eq!(r["id"].as_str(), Some(id), "{driver}: {r:?}");
    let msg = r["error"]["message"].as_str().unwrap_or("");
    assert!(msg.contains("web"), "{driver}: names the backend: {r:?}");
    assert!(msg.contains(want), "{driver}: wanted {want:?}: {r:?}");
}

#[test]
fn calls_over_a_unix_socket_and_the_backend_missing_dying_and_coming_back() {
    for driver in DRIVERS {
        let dir = SockDir::new("life");
        let sock = dir.path("web.sock");
        // Not there yet: the gateway starts, the backend is down with a reason naming the
        // socket.
        let cfg = unix_server(
            "web",
            &sock,
            "health_interval_ms = 200\nbreaker_failures = 1000",
        );
        let gw = Gateway::start(&cfg, driver, 2, &[]);
        let h = gw.wait_state("web", "down", Duration::from_secs(20));
        let reason = h["reason"].as_str().unwrap_or("");
        assert!(
            reason.contains(&format!("unix socket {} does not exist", sock.display())),
            "{driver}: {h:?}"
        );
        let demo = UnixDemo::start(&sock, "web");
        gw.wait_state("web", "ready", Duration::from_secs(60));
        let c = gw.client();
        let sid = c.initialize();
        let list = c.post(
            &[("mcp-session-id", &sid)],
            r#"{"jsonrpc":"2.0","id":"l1","method":"tools/list"}"#,
        );
        let names: Vec<String> = list.json()["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["name"].as_str().map(str::to_string))
            .collect();
        assert!(
            names.contains(&"web__echo".to_string()),
            "{driver}: {names:?}"
        );
        for i in 0..5 {
            let r = call(
                &c,
                &sid,
                "c1",
                "web__echo",
                &format!(r#"{{"message":"u{i}"}}"#),
            );
            assert_eq!(text(&r), format!("u{i}"), "{driver}: {r:?}");
        }
        assert_eq!(text(&call(&c, &sid, "w", "web__whoami", "{}")), "web");
        // Killed: the socket file stays, nobody listens (ECONNREFUSED).
        drop(demo);
        let r = call(&c, &sid, "k1", "web__echo", r#"{"message":"x"}"#);
        assert_unavailable(&r, "k1", "refused the connection", driver);
        // The health probe, over the socket too, takes it out of rotation.
        let url = format!("unix:{}:/mcp", sock.display());
        let logged = |what: &str| {
            gw.log()
                .lines()
                .any(|l| l.contains(what) && l.contains(&url))
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !logged("replica unhealthy") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(logged("replica unhealthy"), "{driver}: {}", gw.log());
        // No socket file at all.
        std::fs::remove_file(&sock).unwrap();
        let r = call(&c, &sid, "k2", "web__echo", r#"{"message":"x"}"#);
        assert_unavailable(&r, "k2", "does not exist", driver);
        // A plain file in its place.
        std::fs::write(&sock, b"not a socket").unwrap();
        let r = call(&c, &sid, "k3", "web__echo", r#"{"message":"x"}"#);
        assert_unavailable(&r, "k3", "or it is not a socket", driver);
        // Back on a re-created socket: the client's session carries on (the gateway opens a
        // new upstream session), and the health probe puts the replica back.
        std::fs::remove_file(&sock).unwrap();
        let _demo = UnixDemo::start(&sock, "web");
        let deadline = Instant::now() + Duration::from_secs(15);
        let r = loop {
            let r = call(&c, &sid, "b1", "web__echo", r#"{"message":"back"}"#);
            if text(&r) == "back" || Instant::now() > deadline {
                break r;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(text(&r), "back", "{driver}: {r:?}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !logged("healthy again") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(logged("healthy again"), "{driver}: {}", gw.log());
    }
}

#[test]
fn concurrent_calls_share_a_bounded_set_of_unix_connections() {
    for driver in DRIVERS {
        let dir = SockDir::new("pool");
        let sock = dir.path("p.sock");
        let _demo = UnixDemo::start(&sock, "web");
        let cfg = unix_server("web", &sock, "pool_size = 2\nhealth_interval_ms = 0");
        let gw = Gateway::start(&cfg, driver, 1, &["web"]);
        let c = gw.client();
        let sid = c.initialize();
        assert_eq!(
            text(&call(&c, &sid, "w", "web__echo", r#"{"message":"warm"}"#)),
            "warm"
        );
        // Discovery's and the GET stream's connections are not pooled; the warm-up's is.
        let base = connected(&sock);
        let peak = Arc::new(AtomicUsize::new(base));
        let done = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (peak, done, sock) = (peak.clone(), done.clone(), sock.clone());
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(30);
                while !done.load(Ordering::Relaxed) && Instant::now() < deadline {
                    peak.fetch_max(connected(&sock), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        };
        let started = Instant::now();
        let calls: Vec<_> = (0..8)
            .map(|i| {
                let (c, sid) = (c.clone(), sid.clone());
                std::thread::spawn(move || {
                    let r = call(
                        &c,
                        &sid,
                        &format!("b{i}"),
                        "web__big",
                        r#"{"kb":1,"delay_ms":400}"#,
                    );
                    text(&r).len()
                })
            })
            .collect();
        let lens: Vec<usize> = calls.into_iter().map(|t| t.join().unwrap()).collect();
        let elapsed = started.elapsed();
        done.store(true, Ordering::Relaxed);
        watcher.join().unwrap();
        assert_eq!(lens, vec![1024; 8], "{driver}");
        let peak = peak.load(Ordering::Relaxed);
        // Without the bound, eight calls opened eight connections.
        assert!(peak <= base + 2, "{driver}: base {base}, peak {peak}");
        // Four waves of two 400 ms calls on two connections.
        assert!(
            elapsed >= Duration::from_millis(1550),
            "{driver}: {elapsed:?}"
        );
        // Calls in a row reuse the pooled connections: none opened per call.
        for i in 0..20 {
            let r = call(
                &c,
                &sid,
                "s",
                "web__echo",
                &format!(r#"{{"message":"s{i}"}}"#),
            );
            assert_eq!(text(&r), format!("s{i}"));
        }
        assert!(connected(&sock) <= base + 2, "{driver}");
    }
}

/// Runs `only1mcp-uring validate FILE` on `config`; (exit code, stderr + stdout).
fn validate(dir: &SockDir, config: &str) -> (i32, String) {
    let f = dir.path("cfg.toml");
    std::fs::write(&f, config).unwrap();
    let out = Command::new(bin())
        .arg("validate")
        .arg(&f)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn unix_url_errors_known_from_the_config_are_refused_before_start() {
    let dir = SockDir::new("cfg");
    let long = PathBuf::from(format!("/{}", "s".repeat(107)));
    let (code, out) = validate(&dir, &unix_server("web", &long, ""));
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("servers[0].url"), "{out}");
    assert!(out.contains("longer than the 107"), "{out}");
    let plain = dir.path("plain");
    std::fs::write(&plain, b"x").unwrap();
    let (code, out) = validate(&dir, &unix_server("web", &plain, ""));
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("server `web`"), "{out}");
    assert!(out.contains("exists but is not a socket"), "{out}");
    let tls = "[[servers]]\nid = \"web\"\ntransport = \"http\"\nurl = \"https+unix:/run/a.sock\"\n";
    let (code, out) = validate(&dir, tls);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("TLS does not apply"), "{out}");
    // A socket path that does not exist yet is fine (the backend may start later).
    let (code, out) = validate(&dir, &unix_server("web", &dir.path("later.sock"), ""));
    assert_eq!(code, 0, "{out}");
}

#[test]
fn unix_replicas_mix_with_tcp_ones_and_per_client_backends_use_the_socket() {
    for driver in DRIVERS {
        let dir = SockDir::new("mix");
        let (s1, s2) = (dir.path("r1.sock"), dir.path("pc.sock"));
        let _r1 = UnixDemo::start(&s1, "r1");
        let r2 = common::DemoHttp::start("127.0.0.1:0", "r2");
        let _pc = UnixDemo::start(&s2, "pc");
        let cfg = format!(
            "[[servers]]\nid = \"web\"\ntransport = \"http\"\nurls = [\"unix:{}:/mcp\", \"http://{}/mcp\"]\nhealth_interval_ms = 0\n\n{}",
            s1.display(),
            r2.addr,
            unix_server("pc", &s2, "session = \"per_client\"\nhealth_interval_ms = 0"),
        );
        let gw = Gateway::start(&cfg, driver, 1, &["web", "pc"]);
        let c = gw.client();
        let sid = c.initialize();
        // Round robin over the two replicas: both answer, the unix one and the TCP one.
        let mut seen: Vec<String> = (0..6)
            .map(|i| text(&call(&c, &sid, &format!("m{i}"), "web__whoami", "{}")).to_string())
            .collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen, ["r1", "r2"], "{driver}");
        // A per-client backend on a socket: this client's own upstream session.
        let r = call(&c, &sid, "p1", "pc__whoami", "{}");
        assert_eq!(text(&r), "pc", "{driver}: {r:?}");
        let other = c.initialize();
        let r = call(&c, &other, "p2", "pc__echo", r#"{"message":"mine"}"#);
        assert_eq!(text(&r), "mine", "{driver}: {r:?}");
        // Each client session opened its own upstream session over the socket.
        let sessions = std::fs::read_to_string(&gw.stderr)
            .unwrap_or_default()
            .lines()
            .filter(|l| {
                l.contains("upstream session ready")
                    && l.contains(&format!("unix:{}", s2.display()))
            })
            .count();
        // Discovery's session, then one per client session.
        assert!(sessions >= 3, "{driver}: {sessions} {}", gw.log());
    }
}

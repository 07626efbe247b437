//! The gateway under test: its config (the real servers, from `perf/context/capture.py
//! --gateway-config`, plus the run's `[proxy]` keys) and its process, started on a free
//! loopback port and always stopped and reaped (a [`Drop`] guard, also on panic).

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

/// How long the backends may take to list their tools after the gateway is up.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the gateway may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// The repository root.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Where the benchmark writes its configs, logs and results.
pub fn out_dir() -> PathBuf {
    repo().join("target/agent-bench")
}

/// Writes `<out_dir>/<run>.toml`: a fresh server config from capture.py (fresh work dirs,
/// so every run starts from the same server state) with `proxy` as its `[proxy]` section.
pub fn write_config(run: &str, proxy: &str) -> anyhow::Result<PathBuf> {
    let dir = out_dir();
    std::fs::create_dir_all(&dir)?;
    let servers = dir.join("gateway.toml");
    let python = repo().join("target/test-env/venv/bin/python");
    let script = repo().join("perf/context/capture.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg("--no-install")
        .arg("--gateway-config")
        .arg(&servers)
        .current_dir(repo())
        .output();
    let install = format!("{} {}", python.display(), script.display());
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => bail!(
            "capture.py --gateway-config failed ({}):\n{}\ninstall the pinned servers with: {install}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => bail!(
            "cannot run {} ({e}): set up the test env (tests/run-all.sh), then install the \
             pinned servers with: {install}",
            python.display()
        ),
    }
    let text = format!(
        "# agent benchmark run `{run}`\n[proxy]\n{proxy}\n[metrics]\nsocket_enabled = false\n\n{}",
        std::fs::read_to_string(&servers)?
    );
    let path = dir.join(format!("{run}.toml"));
    std::fs::write(&path, text)?;
    Ok(path)
}

/// A running gateway; stopped (SIGTERM, then SIGKILL) and reaped when dropped.
pub struct Gateway {
    child: Child,
    /// The MCP endpoint (`http://127.0.0.1:<port>/mcp`).
    pub url: String,
    reaped: Option<(ExitStatus, Duration)>,
}

impl Gateway {
    /// Starts the gateway binary on `config` (stderr to `log`) and waits until every backend
    /// is ready; an error if one is not within [`READY_TIMEOUT`].
    pub fn start(config: &Path, log: &Path) -> anyhow::Result<Gateway> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_only1mcp-uring"));
        cmd.args([
            "start",
            "--port",
            "0",
            "--cores",
            "1",
            "--host",
            "127.0.0.1",
        ])
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log)?);
        // SAFETY: prctl is async-signal-safe. The gateway gets SIGTERM if this thread dies
        // without running the guard (e.g. the benchmark is killed).
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().context("cannot start the gateway")?;
        let mut gw = Gateway {
            child,
            url: String::new(),
            reaped: None,
        };
        // The first stdout line names the URL; the rest is drained so the pipe never fills.
        let stdout = gw.child.stdout.take().context("no stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut line = String::new();
            let _ = r.read_line(&mut line);
            let _ = tx.send(line);
            let _ = std::io::copy(&mut r, &mut std::io::sink());
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .context("the gateway printed no URL within 30 s")?;
        gw.url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .with_context(|| {
                format!(
                    "the gateway did not start: {line:?} (log: {})",
                    log.display()
                )
            })?
            .to_string();
        gw.wait_ready(log)?;
        Ok(gw)
    }

    fn wait_ready(&self, log: &Path) -> anyhow::Result<()> {
        let health_url = format!("{}/health", self.url.trim_end_matches("/mcp"));
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let text = ureq::get(&health_url)
                .timeout(Duration::from_secs(10))
                .call()?
                .into_string()?;
            let health: Value = sonic_rs::from_str(&text)?;
            let backends = health["backends"]
                .as_array()
                .context("/health lists no backends")?;
            let state = |b: &Value| b["state"].as_str().unwrap_or_default().to_string();
            let waiting: Vec<String> = backends
                .iter()
                .filter(|b| state(b) != "ready")
                .map(|b| format!("{} {}: {}", b["id"], state(b), b["reason"]))
                .collect();
            if waiting.is_empty() {
                return Ok(());
            }
            // A backend may be down for a moment and restarting (a failed handshake is
            // retried): wait for all, up to the deadline.
            if Instant::now() > deadline {
                bail!(
                    "backends not ready after {READY_TIMEOUT:?}: {} (gateway log: {})",
                    waiting.join("; "),
                    log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops the gateway (SIGTERM; SIGKILL after [`STOP_TIMEOUT`]) and reaps it: its exit
    /// status and how long it took to exit.
    pub fn stop(&mut self) -> (ExitStatus, Duration) {
        if let Some(r) = self.reaped {
            return r;
        }
        let t0 = Instant::now();
        // SAFETY: plain syscall on our own, not yet reaped, child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if t0.elapsed() < STOP_TIMEOUT => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => {
                    let _ = self.child.kill();
                    break self.child.wait().expect("reap the gateway");
                }
            }
        };
        let r = (status, t0.elapsed());
        self.reaped = Some(r);
        r
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The gateway log's WARN and ERROR lines (timestamps cut), for the report.
pub fn log_issues(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .map(|l| {
            l.split_once(' ')
                .map_or(l, |(_, rest)| rest)
                .trim()
                .to_string()
        })
        .collect()
}

//! The built-in demo server run over HTTP as a child process, for tests that need a real
//! HTTP MCP backend they can kill and restart on the same address.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Starts `demo-server --http listen --name name` and returns the child and the address it
/// listens on (`IP:PORT`, or `unix:PATH` for a `unix:PATH` listen). Retries briefly (bounded) when the address is not free yet, as on a restart
/// on the same port.
pub fn spawn_demo_http(listen: &str, name: &str) -> (Child, String) {
    spawn_demo_http_with(listen, name, &[], None)
}

/// [`spawn_demo_http`] with `env` set (`DEMO_*` knobs) and its stderr appended to `stderr`
/// (`DEMO_VERBOSE` logs each request there) instead of discarded.
pub fn spawn_demo_http_with(
    listen: &str,
    name: &str,
    env: &[(&str, &str)],
    stderr: Option<&std::path::Path>,
) -> (Child, String) {
    let mut last = String::new();
    for _ in 0..50 {
        let err = match stderr {
            Some(p) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .expect("demo stderr file"),
            ),
            None => Stdio::null(),
        };
        let mut child = Command::new(super::bin())
            .args(["demo-server", "--http", listen, "--name", name])
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(err)
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
        if let Some(addr) = line
            .split("http://")
            .nth(1)
            .and_then(|r| r.split('/').next())
        {
            return (child, addr.to_string());
        }
        // `--http unix:PATH`: the address is `unix:PATH`.
        if let Some(path) = line.trim().strip_prefix("demo-server listening on unix:") {
            let path = path.strip_suffix(":/mcp").unwrap_or(path);
            return (child, format!("unix:{path}"));
        }
        let _ = child.kill();
        let _ = child.wait();
        last = line;
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("demo-server --http {listen} never started: {last:?}");
}

/// The demo server over HTTP; killed and reaped on drop.
pub struct DemoHttp {
    pub child: Child,
    pub addr: String,
}

impl DemoHttp {
    pub fn start(listen: &str, name: &str) -> DemoHttp {
        let (child, addr) = spawn_demo_http(listen, name);
        DemoHttp { child, addr }
    }

    /// [`DemoHttp::start`] with `env` and a stderr file (see [`spawn_demo_http_with`]).
    pub fn start_with(
        listen: &str,
        name: &str,
        env: &[(&str, &str)],
        stderr: Option<&std::path::Path>,
    ) -> DemoHttp {
        let (child, addr) = spawn_demo_http_with(listen, name, env, stderr);
        DemoHttp { child, addr }
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for DemoHttp {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A `[[servers]]` entry for an HTTP backend at `addr`.
pub fn http_server(id: &str, addr: &str, extra: &str) -> String {
    format!(
        "[[servers]]\nid = \"{id}\"\ntransport = \"http\"\nurl = \"http://{addr}/mcp\"\n{extra}\n"
    )
}

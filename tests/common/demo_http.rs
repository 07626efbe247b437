//! The built-in demo server run over HTTP as a child process, for tests that need a real
//! HTTP MCP backend they can kill and restart on the same address.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Starts `demo-server --http listen --name name` and returns the child and the address it
/// listens on. Retries briefly (bounded) when the address is not free yet, as on a restart
/// on the same port.
pub fn spawn_demo_http(listen: &str, name: &str) -> (Child, String) {
    spawn_demo_http_env(listen, name, &[])
}

/// [`spawn_demo_http`] with extra environment (e.g. `DEMO_CONFORMANCE=1`).
pub fn spawn_demo_http_env(listen: &str, name: &str, env: &[(&str, &str)]) -> (Child, String) {
    let mut last = String::new();
    for _ in 0..50 {
        let mut child = Command::new(super::bin())
            .args(["demo-server", "--http", listen, "--name", name])
            .envs(env.iter().copied())
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
        if let Some(addr) = line
            .split("http://")
            .nth(1)
            .and_then(|r| r.split('/').next())
        {
            return (child, addr.to_string());
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
        Self::start_env(listen, name, &[])
    }

    /// [`DemoHttp::start`] with extra environment.
    pub fn start_env(listen: &str, name: &str, env: &[(&str, &str)]) -> DemoHttp {
        let (child, addr) = spawn_demo_http_env(listen, name, env);
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

//! The misbehaving peers and the /proc probes of the fault-injection test: the demo server
//! run over HTTP as a killable child, the `Hang` fake, and fd / process-state counts.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::common;

/// The built-in demo server over HTTP, as a child process; killed and reaped on drop.
pub struct DemoHttp {
    pub child: Child,
    pub addr: String,
}

impl DemoHttp {
    /// Starts `demo-server --http listen`; retries briefly (bounded) if the address is not
    /// free yet (restart on the same port).
    pub fn start(listen: &str, name: &str) -> DemoHttp {
        let mut last = String::new();
        for _ in 0..50 {
            let mut child = Command::new(common::bin())
                .args(["demo-server", "--http", listen, "--name", name])
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
                return DemoHttp {
                    child,
                    addr: addr.to_string(),
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            last = line;
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("demo-server --http {listen} never started: {last:?}");
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

/// A deliberate fake: an HTTP "backend" that accepts connections, reads whatever comes and
/// never answers. No real MCP server can be made to misbehave like this on demand, so the
/// test plays it. Every thread it starts is bounded and joined on drop.
pub struct Hang {
    pub addr: String,
    pub stop: Arc<AtomicBool>,
    pub thread: Option<JoinHandle<()>>,
}

impl Hang {
    pub fn start() -> Hang {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        l.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut conns: Vec<JoinHandle<()>> = Vec::new();
            while !s.load(Ordering::Relaxed) && Instant::now() < deadline {
                match l.accept() {
                    Ok((mut c, _)) => {
                        let s = s.clone();
                        conns.push(std::thread::spawn(move || {
                            let _ = c.set_nonblocking(false);
                            let _ = c.set_read_timeout(Some(Duration::from_millis(100)));
                            let mut buf = [0u8; 4096];
                            while !s.load(Ordering::Relaxed) && Instant::now() < deadline {
                                match c.read(&mut buf) {
                                    Ok(0) => return,
                                    Ok(_) => {}
                                    Err(e)
                                        if matches!(
                                            e.kind(),
                                            std::io::ErrorKind::WouldBlock
                                                | std::io::ErrorKind::TimedOut
                                        ) => {}
                                    Err(_) => return,
                                }
                            }
                        }));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
            for c in conns {
                let _ = c.join();
            }
        });
        Hang {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Hang {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

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

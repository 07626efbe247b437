//! The child process of a stdio backend: spawning it in its own process group over socket
//! pairs, the writer, reader and stderr tasks, and reaping it with escalating signals.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_channel::mpsc;
use monoio::io::{AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::UnixStream;

use super::MAX_LINE;
use crate::error::McpError;
use crate::rt::io::read_more;
use crate::snapshot::BackendSpec;
use crate::upstream::routes::{handle_message, LocalRoutes};

fn socket_pair() -> io::Result<(StdUnixStream, StdUnixStream)> {
    StdUnixStream::pair()
}

pub(super) fn spawn_child(
    spec: &BackendSpec,
) -> io::Result<(Child, UnixStream, UnixStream, UnixStream)> {
    let (in_ours, in_theirs) = socket_pair()?;
    let (out_ours, out_theirs) = socket_pair()?;
    let (err_ours, err_theirs) = socket_pair()?;
    let mut cmd = Command::new(&spec.command);
    cmd.args(&spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::from(OwnedFd::from(in_theirs)))
        .stdout(Stdio::from(OwnedFd::from(out_theirs)))
        .stderr(Stdio::from(OwnedFd::from(err_theirs)))
        .process_group(0);
    if let Some(dir) = &spec.cwd {
        cmd.current_dir(dir);
    }
    // SAFETY: prctl is async-signal-safe; the child dies if the owning shard thread dies.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    for s in [&in_ours, &out_ours, &err_ours] {
        s.set_nonblocking(true)?;
    }
    Ok((
        child,
        UnixStream::from_std(in_ours)?,
        UnixStream::from_std(out_ours)?,
        UnixStream::from_std(err_ours)?,
    ))
}

pub(super) async fn writer_task(mut stdin: UnixStream, mut rx: mpsc::UnboundedReceiver<Vec<u8>>) {
    while let Some(msg) = crate::rt::next(&mut rx).await {
        if msg.is_empty() {
            break;
        }
        let (res, _) = stdin.write_all(msg).await;
        if res.is_err() {
            break;
        }
    }
    let _ = stdin.shutdown().await;
}

/// Splits a child's stdout into lines as it arrives, dropping lines longer than `max` (and
/// the rest of such a line when its newline comes later). No I/O: the reader task reads.
#[derive(Debug)]
pub struct LineSplitter {
    max: usize,
    scanned: usize,
    skipping: bool,
}

impl LineSplitter {
    /// A splitter that drops lines longer than `max` bytes.
    pub fn new(max: usize) -> Self {
        LineSplitter {
            max,
            scanned: 0,
            skipping: false,
        }
    }

    /// Hands every complete line of `buf` (without its `\n`) to `each` and removes them from
    /// `buf`. Returns true when a partial line grew past `max` and was dropped.
    pub fn split(&mut self, buf: &mut Vec<u8>, mut each: impl FnMut(&[u8])) -> bool {
        let mut start = 0;
        while let Some(pos) = memchr::memchr(b'\n', &buf[self.scanned..]) {
            let end = self.scanned + pos;
            if self.skipping {
                self.skipping = false;
            } else {
                each(&buf[start..end]);
            }
            start = end + 1;
            self.scanned = start;
        }
        if start > 0 {
            buf.drain(..start);
        }
        self.scanned = buf.len();
        if buf.len() > self.max {
            buf.clear();
            self.scanned = 0;
            self.skipping = true;
            return true;
        }
        false
    }
}

pub(super) async fn reader_task(
    server: String,
    mut stdout: UnixStream,
    routes: Rc<LocalRoutes>,
    writer: mpsc::UnboundedSender<Vec<u8>>,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut lines = LineSplitter::new(MAX_LINE);
    let send = |mut m: Vec<u8>| {
        m.push(b'\n');
        let _ = writer.unbounded_send(m);
    };
    loop {
        let dropped = lines.split(&mut buf, |line| {
            handle_message(&server, line, &routes, &send, "stdout")
        });
        if dropped {
            tracing::warn!(server = %server, "stdout line longer than {MAX_LINE} bytes dropped");
        }
        let (res, b) = read_more(&mut stdout, buf, 64 * 1024).await;
        buf = b;
        match res {
            Ok(0) | Err(_) => break,
            // Give way: on epoll a full pipe would otherwise keep this loop from ever
            // suspending, and the calls it feeds from ever draining (`rt::fair`).
            Ok(_) => crate::rt::fair::yield_now().await,
        }
    }
    let waiters: Vec<_> = routes.pending.borrow_mut().drain().collect();
    for (_, tx) in waiters {
        let _ = tx.send(Err(McpError::BackendUnavailable {
            server: server.clone(),
            reason: "process exited before answering".into(),
        }));
    }
}

pub(super) async fn stderr_task(server: String, mut stderr: UnixStream) {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    loop {
        let (res, b) = read_more(&mut stderr, buf, 4096).await;
        buf = b;
        let eof = !matches!(res, Ok(n) if n > 0);
        let mut start = 0;
        while let Some(pos) = memchr::memchr(b'\n', &buf[start..]) {
            let line = String::from_utf8_lossy(&buf[start..start + pos]);
            tracing::info!(target: "backend_stderr", server = %server, "{}", line.trim_end());
            start += pos + 1;
        }
        buf.drain(..start);
        if buf.len() > 16 * 1024 || (eof && !buf.is_empty()) {
            let line = String::from_utf8_lossy(&buf);
            tracing::info!(target: "backend_stderr", server = %server, "{}", line.trim_end());
            buf.clear();
        }
        if eof {
            return;
        }
        // A child flooding its stderr must not hold the shard either (`rt::fair`).
        crate::rt::fair::yield_now().await;
    }
}

pub(super) fn kill_group(pid: i32, sig: i32) {
    // SAFETY: plain syscall; a negative pid addresses the child's process group.
    unsafe {
        libc::kill(-pid, sig);
    }
}

/// Waits for `child` to exit, escalating: stdin is already closed, then SIGTERM after
/// `grace`, then SIGKILL. Always ends with a SIGKILL to the whole group so grandchildren
/// (e.g. `npx` → `node`) are never left behind. Never blocks the shard: polls `try_wait`.
pub async fn reap(child: &mut Child, grace: Duration) -> String {
    let pid = child.id() as i32;
    let mut deadline = Instant::now() + grace;
    let mut stage = 0;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st.to_string(),
            Ok(None) => {}
            Err(e) => break format!("wait failed: {e}"),
        }
        if Instant::now() >= deadline {
            match stage {
                0 => {
                    kill_group(pid, libc::SIGTERM);
                    deadline = Instant::now() + Duration::from_secs(1);
                }
                _ => {
                    kill_group(pid, libc::SIGKILL);
                    deadline = Instant::now() + Duration::from_secs(5);
                }
            }
            stage += 1;
        }
        monoio::time::sleep(Duration::from_millis(20)).await;
    };
    kill_group(pid, libc::SIGKILL);
    status
}

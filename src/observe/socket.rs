//! The metrics socket server: one std thread that streams snapshots and log lines to every
//! watcher connected to a Unix socket.
//!
//! Owns the socket file (bound 0600, removed on shutdown), the set of watchers and the
//! 500 ms cadence. Every tick it encodes the latest [`MetricsSnapshot`] once and appends it,
//! plus each watcher's unseen log lines, to that watcher's outgoing buffer, then writes as
//! much as the kernel takes without blocking. A watcher that lets more than
//! [`MAX_PENDING_BYTES`] pile up, or whose socket errors, is dropped with a log line: the
//! gateway never waits on a watcher. The thread sleeps in `poll(2)` on the listener, the
//! watchers and a wake-up socket, so a new watcher gets its first snapshot at once and
//! dropping the [`ObserveHandle`] returns promptly.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use arc_swap::ArcSwap;

use super::logs::LogRing;
use super::snapshot::{log_line, snapshot_line, MetricsSnapshot};
use super::watcher::{Gone, Watcher};

/// How often every watcher gets a snapshot.
pub const TICK: Duration = Duration::from_millis(500);

/// Unsent bytes a watcher may have queued; beyond this it is too slow and is dropped.
pub const MAX_PENDING_BYTES: usize = 256 * 1024;

/// Log lines a new watcher gets at once (the newest ones).
pub const BACKLOG_LINES: usize = 200;

/// How long accepting pauses after an accept error such as EMFILE.
const ACCEPT_PAUSE: Duration = Duration::from_secs(1);

/// The backlog is also capped in bytes, well under [`MAX_PENDING_BYTES`], so a new watcher
/// is never dropped for the backlog alone.
const BACKLOG_BYTES: usize = MAX_PENDING_BYTES / 2;

/// The running socket server; dropping it ends the thread and removes the socket file.
#[derive(Debug)]
pub struct ObserveHandle {
    stop: Arc<AtomicBool>,
    wake: UnixStream,
    thread: Option<JoinHandle<()>>,
}

impl Drop for ObserveHandle {
    /// Stops the thread (it wakes at once), closes every watcher and removes the socket file.
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.stop.store(true, Ordering::Release);
            let _ = (&self.wake).write(&[1]);
            let _ = t.join();
        }
    }
}

/// Binds `path` and starts the socket thread, streaming `source` and `logs`.
///
/// A socket file nobody answers on is left over from a gateway that died: it is replaced.
/// One that answers belongs to a running gateway, and starting fails with an error that
/// says so; anything at `path` that is not a socket is never touched.
pub fn start(
    path: &Path,
    source: Arc<ArcSwap<MetricsSnapshot>>,
    logs: Arc<LogRing>,
) -> anyhow::Result<ObserveHandle> {
    let bound = bind(path)?;
    let (wake_rx, wake_tx) =
        UnixStream::pair().context("cannot create the metrics wake-up pair")?;
    wake_rx.set_nonblocking(true)?;
    wake_tx.set_nonblocking(true)?;
    let stop = Arc::new(AtomicBool::new(false));
    let server = Server {
        bound,
        wake: wake_rx,
        stop: stop.clone(),
        source,
        logs,
        watchers: Vec::new(),
        accept_paused_until: None,
    };
    let thread = std::thread::Builder::new()
        .name("o1m-metrics".into())
        .spawn(move || server.run())
        .context("cannot start the metrics socket thread")?;
    tracing::info!(path = %path.display(), "metrics socket listening");
    Ok(ObserveHandle {
        stop,
        wake: wake_tx,
        thread: Some(thread),
    })
}

/// The listening socket and the identity of its file, removed on drop if still ours.
struct Bound {
    listener: UnixListener,
    path: PathBuf,
    dev_ino: (u64, u64),
}

impl Drop for Bound {
    fn drop(&mut self) {
        // Remove the file only if it is still the one we bound (not a successor's).
        if let Ok(m) = std::fs::symlink_metadata(&self.path) {
            if (m.dev(), m.ino()) == self.dev_ino {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

fn bind(path: &Path) -> anyhow::Result<Bound> {
    let shown = path.display();
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => {
            bail!("metrics socket {shown}: something that is not a socket is in the way")
        }
        Ok(_) => match UnixStream::connect(path) {
            Ok(_) => bail!(
                "metrics socket {shown} is in use: another gateway is listening on it \
                 (stop it, or give this one another `[metrics] socket`)"
            ),
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                std::fs::remove_file(path)
                    .with_context(|| format!("cannot remove the stale metrics socket {shown}"))?;
                tracing::info!(path = %shown, "removed a stale metrics socket (nobody answered)");
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot check metrics socket {shown}"))
            }
        },
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot check metrics socket {shown}")),
    }
    // Bind under a temporary name, restrict it to the owner, then move it into place: the
    // socket is never reachable at `path` with wider permissions than 0600.
    let name = path
        .file_name()
        .with_context(|| format!("metrics socket {shown}: not a file path"))?;
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp)
        .with_context(|| format!("cannot bind metrics socket {}", tmp.display()))?;
    let placed = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
        .and_then(|_| std::fs::rename(&tmp, path));
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot create metrics socket {shown}"));
    }
    listener.set_nonblocking(true)?;
    let m = std::fs::symlink_metadata(path)
        .with_context(|| format!("metrics socket {shown} vanished after bind"))?;
    Ok(Bound {
        listener,
        path: path.to_path_buf(),
        dev_ino: (m.dev(), m.ino()),
    })
}

struct Server {
    bound: Bound,
    wake: UnixStream,
    stop: Arc<AtomicBool>,
    source: Arc<ArcSwap<MetricsSnapshot>>,
    logs: Arc<LogRing>,
    watchers: Vec<Watcher>,
    /// After an accept error (out of fds), the listener is not polled until then.
    accept_paused_until: Option<Instant>,
}

impl Server {
    fn run(mut self) {
        let mut next_tick = Instant::now() + TICK;
        while !self.stop.load(Ordering::Acquire) {
            let wait = next_tick.saturating_duration_since(Instant::now());
            let ready = self.wait(wait);
            if ready.wake {
                let mut buf = [0u8; 16];
                while matches!((&self.wake).read(&mut buf), Ok(n) if n > 0) {}
                continue;
            }
            if ready.listener {
                self.accept_all();
            }
            for i in (0..self.watchers.len()).rev() {
                let (readable, writable) = ready.watchers.get(i).copied().unwrap_or_default();
                let w = &mut self.watchers[i];
                let result = if readable { w.drain_input() } else { Ok(()) };
                let result = result.and_then(|_| if writable { w.flush() } else { Ok(()) });
                if let Err(why) = result {
                    self.drop_watcher(i, why);
                }
            }
            if Instant::now() >= next_tick {
                self.tick();
                next_tick += TICK;
                let now = Instant::now();
                if next_tick <= now {
                    next_tick = now + TICK;
                }
            }
        }
        let n = self.watchers.len();
        tracing::debug!(watchers = n, "metrics socket stopped");
        // Dropping `self.bound` removes the socket file.
    }

    /// `poll(2)` on the wake-up socket, the listener and the watchers, up to `timeout`.
    fn wait(&self, timeout: Duration) -> Ready {
        let ev = |fd: i32, events: i16| libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        let mut fds = Vec::with_capacity(2 + self.watchers.len());
        fds.push(ev(self.wake.as_raw_fd(), libc::POLLIN));
        // A negative fd is skipped by poll(2): the listener while accepting is paused.
        let paused = self.accept_paused_until.is_some_and(|t| Instant::now() < t);
        let listener = if paused {
            -1
        } else {
            self.bound.listener.as_raw_fd()
        };
        fds.push(ev(listener, libc::POLLIN));
        for w in &self.watchers {
            let out = if w.has_unsent() { libc::POLLOUT } else { 0 };
            fds.push(ev(w.stream.as_raw_fd(), libc::POLLIN | out));
        }
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: `fds` is a valid, exclusively borrowed array of `fds.len()` pollfd.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n <= 0 {
            // Timeout, or EINTR: the caller's loop re-checks the clock and the stop flag.
            return Ready::default();
        }
        let bad = libc::POLLHUP | libc::POLLERR | libc::POLLNVAL;
        Ready {
            wake: fds[0].revents != 0,
            listener: fds[1].revents != 0,
            watchers: fds[2..]
                .iter()
                .map(|p| {
                    (
                        p.revents & (libc::POLLIN | bad) != 0,
                        p.revents & libc::POLLOUT != 0,
                    )
                })
                .collect(),
        }
    }

    fn accept_all(&mut self) {
        loop {
            match self.bound.listener.accept() {
                Ok((stream, _)) => self.welcome(stream),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    // EMFILE and friends: the listener stays readable, so stop polling it
                    // for a while (the rest wait in the kernel's queue) instead of spinning.
                    tracing::warn!("metrics socket: cannot accept a watcher: {e}");
                    self.accept_paused_until = Some(Instant::now() + ACCEPT_PAUSE);
                    return;
                }
            }
        }
    }

    /// A new watcher gets the current snapshot and the recent log lines right away.
    fn welcome(&mut self, stream: UnixStream) {
        if let Err(e) = stream.set_nonblocking(true) {
            tracing::warn!("metrics socket: dropping a new watcher: {e}");
            return;
        }
        let mut w = Watcher::new(stream);
        w.queue(&snapshot_line(&self.source.load()));
        let backlog = self.logs.tail(BACKLOG_LINES);
        let mut lines: Vec<String> = Vec::new();
        let mut bytes = 0;
        for l in backlog.iter().rev() {
            let line = log_line(l);
            bytes += line.len();
            if bytes > BACKLOG_BYTES {
                break;
            }
            lines.push(line);
        }
        lines.iter().rev().for_each(|l| w.queue(l));
        w.last_seq = backlog.last().map_or(0, |l| l.seq);
        match w.flush() {
            Ok(()) => {
                self.watchers.push(w);
                let n = self.watchers.len();
                tracing::info!(watchers = n, "metrics watcher connected");
            }
            Err(why) => {
                self.watchers.push(w);
                self.drop_watcher(self.watchers.len() - 1, why);
            }
        }
    }

    /// Every 500 ms: the latest snapshot and the unseen log lines to every watcher.
    fn tick(&mut self) {
        if self.watchers.is_empty() {
            return;
        }
        let snap = snapshot_line(&self.source.load());
        let oldest = self.watchers.iter().map(|w| w.last_seq).min().unwrap_or(0);
        let logs: Vec<(u64, String)> = self
            .logs
            .since(oldest)
            .iter()
            .map(|l| (l.seq, log_line(l)))
            .collect();
        for i in (0..self.watchers.len()).rev() {
            let w = &mut self.watchers[i];
            w.queue(&snap);
            let after = w.last_seq;
            for (seq, line) in logs.iter().filter(|(seq, _)| *seq > after) {
                w.queue(line);
                w.last_seq = *seq;
            }
            if let Err(why) = w.flush() {
                self.drop_watcher(i, why);
            }
        }
    }

    fn drop_watcher(&mut self, i: usize, why: Gone) {
        self.watchers.swap_remove(i);
        let n = self.watchers.len();
        match why {
            Gone::Left => tracing::info!(watchers = n, "metrics watcher disconnected"),
            Gone::Failed(e) => tracing::warn!(watchers = n, "metrics watcher dropped: {e}"),
            Gone::Slow(unsent) => tracing::warn!(
                watchers = n,
                "metrics watcher dropped: not reading ({} KiB unsent)",
                unsent / 1024
            ),
        }
    }
}

/// What `poll(2)` reported: the wake-up socket, the listener, and per watcher
/// (readable or hung up, writable).
#[derive(Default)]
struct Ready {
    wake: bool,
    listener: bool,
    watchers: Vec<(bool, bool)>,
}

#[cfg(test)]
#[path = "socket_tests.rs"]
mod tests;

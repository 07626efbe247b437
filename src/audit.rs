//! The audit log writer: one JSON line per audited request, written off the shards.
//!
//! Shards hand [`AuditRecord`]s to a [`SharedAuditSink`] (a bounded channel; a full channel
//! drops and counts, see `only1mcp_shards::audit`). [`start`] opens the output and starts the
//! `o1m-audit` thread, which formats each record as one line and writes it.
//!
//! # Line format
//!
//! ```text
//! {"ts":"2026-11-24T12:00:00.123Z","principal":"alice","session":null,"method":"tools/call",
//!  "server":"demo","tool":"echo","outcome":"ok","status":200,"latency_ms":1.23,
//!  "bytes_in":123,"bytes_out":456}
//! ```
//!
//! (one line in the file). `ts` is RFC 3339 UTC with milliseconds, `latency_ms` has two
//! decimals (rounded half up from microseconds), a missing string is `null`. Strings are
//! escaped by sonic-rs, so any principal or session name yields valid JSON and one line.
//!
//! # Buffering
//!
//! Lines go through a 64 KiB buffer. It is flushed when nothing arrived for 10 ms (the channel
//! is idle), at least every 200 ms while records keep coming, when it is full, before a
//! rotation and when the writer stops. So a quiet gateway shows each line within about 10 ms,
//! and a busy one makes a few large writes per second instead of one per request.
//!
//! # Rotation
//!
//! With a file path, a line that would take the file past `max_bytes` first rotates it:
//! `path.<k>` becomes `path.<k+1>` for k from `keep - 1` down to 1 (the oldest, `path.<keep>`,
//! is replaced), `path` becomes `path.1`, and a new `path` is opened. `keep = 0` keeps no old
//! files: `path` is truncated by reopening it. Lines are never split across files, so every
//! file holds whole lines and stays within `max_bytes` (a single line longer than `max_bytes`
//! still gets written, alone in its file). `max_bytes = 0` turns rotation off. A failed
//! rotation is logged and writing goes on in the current file; the next attempt comes after
//! another `max_bytes`. `path = "-"` writes to stdout and never rotates.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Stdout, Write};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use crossbeam_channel::{select, Receiver, Sender};
use only1mcp_shards::audit::{AuditRecord, SharedAuditSink};

mod dir;
pub use dir::check_path;

/// Longest time a written line waits in the buffer while records keep coming.
const FLUSH_EVERY: Duration = Duration::from_millis(200);

/// A channel quiet for this long counts as idle: the buffer is flushed.
const IDLE_FLUSH: Duration = Duration::from_millis(10);

/// Output buffer size.
const BUFFER_BYTES: usize = 64 * 1024;

/// Opens the audit log at `path` (`"-"`: stdout) and starts the writer thread. Returns the
/// sink the shards log to and the writer to stop at shutdown. Fails, naming the path, when
/// the file cannot be opened.
pub fn start(
    path: &str,
    max_bytes: u64,
    keep: u32,
) -> anyhow::Result<(SharedAuditSink, AuditWriter)> {
    let out = Output::open(path, max_bytes, keep)?;
    let (sink, rx) = SharedAuditSink::channel();
    let writer = AuditWriter::spawn(rx, out)?;
    Ok((sink, writer))
}

/// The running writer thread. [`AuditWriter::stop`] (or dropping it) writes what is queued,
/// flushes and joins.
#[derive(Debug)]
pub struct AuditWriter {
    /// Dropped to tell the thread to stop (nothing is ever sent).
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl AuditWriter {
    fn spawn(rx: Receiver<AuditRecord>, out: Output) -> anyhow::Result<AuditWriter> {
        let (stop_tx, stop_rx) = crossbeam_channel::bounded(1);
        let worker = Worker {
            rx,
            stop: stop_rx,
            out,
            line: Vec::with_capacity(512),
        };
        let thread = std::thread::Builder::new()
            .name("o1m-audit".into())
            .spawn(move || worker.run())
            .context("cannot start the audit log thread")?;
        Ok(AuditWriter {
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// Writes the records queued so far, flushes, and ends the thread. Records logged after
    /// this are dropped (and counted by the sink).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!("audit log thread panicked");
            }
        }
    }
}

impl Drop for AuditWriter {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The `o1m-audit` thread's state.
struct Worker {
    rx: Receiver<AuditRecord>,
    /// Disconnects when the [`AuditWriter`] stops.
    stop: Receiver<()>,
    out: Output,
    /// The line being formatted (reused).
    line: Vec<u8>,
}

/// What woke the worker.
enum Wake {
    Record(AuditRecord),
    Idle,
    Stop,
}

impl Worker {
    fn run(mut self) {
        // When the oldest unflushed line was written (`None`: nothing to flush).
        let mut dirty_since: Option<Instant> = None;
        loop {
            let wake = match dirty_since {
                None => select! {
                    recv(self.rx) -> r => r.map_or(Wake::Stop, Wake::Record),
                    recv(self.stop) -> _ => Wake::Stop,
                },
                Some(since) => {
                    let wait = IDLE_FLUSH.min(FLUSH_EVERY.saturating_sub(since.elapsed()));
                    select! {
                        recv(self.rx) -> r => r.map_or(Wake::Stop, Wake::Record),
                        recv(self.stop) -> _ => Wake::Stop,
                        default(wait) => Wake::Idle,
                    }
                }
            };
            match wake {
                Wake::Record(r) => {
                    self.write(&r);
                    let since = *dirty_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= FLUSH_EVERY {
                        self.out.flush();
                        dirty_since = None;
                    }
                }
                Wake::Idle => {
                    self.out.flush();
                    dirty_since = None;
                }
                Wake::Stop => {
                    // What is queued now; senders that keep going cannot hold the stop up.
                    for _ in 0..self.rx.len() {
                        let Ok(r) = self.rx.try_recv() else { break };
                        self.write(&r);
                    }
                    self.out.flush();
                    return;
                }
            }
        }
    }

    fn write(&mut self, r: &AuditRecord) {
        self.line.clear();
        format_line(r, &mut self.line);
        self.out.write_line(&self.line);
    }
}

/// Where lines go.
enum Dest {
    Stdout(Stdout),
    File(File),
}

impl Write for Dest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Dest::Stdout(s) => s.write(buf),
            Dest::File(f) => f.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Dest::Stdout(s) => s.flush(),
            Dest::File(f) => f.flush(),
        }
    }
}

/// A file's rotation state.
struct Rotation {
    path: String,
    max_bytes: u64,
    keep: u32,
    /// Bytes in the current file, including the buffered ones.
    written: u64,
}

/// The buffered output, with rotation for a file.
struct Output {
    w: BufWriter<Dest>,
    /// `None` for stdout.
    rotation: Option<Rotation>,
    /// A write error was logged and no write has succeeded since (log once per episode).
    failing: bool,
}

impl Output {
    /// Stdout for `"-"`, else `path` opened for appending (created if missing).
    fn open(path: &str, max_bytes: u64, keep: u32) -> anyhow::Result<Output> {
        if path == "-" {
            return Ok(Output {
                w: BufWriter::with_capacity(BUFFER_BYTES, Dest::Stdout(io::stdout())),
                rotation: None,
                failing: false,
            });
        }
        dir::create(path)?;
        let file =
            open_append(path).with_context(|| format!("cannot open the audit log {path}"))?;
        let written = file
            .metadata()
            .with_context(|| format!("cannot read the size of the audit log {path}"))?
            .len();
        Ok(Output {
            w: BufWriter::with_capacity(BUFFER_BYTES, Dest::File(file)),
            rotation: Some(Rotation {
                path: path.to_owned(),
                max_bytes,
                keep,
                written,
            }),
            failing: false,
        })
    }

    /// Writes one whole line, rotating first when it would not fit.
    fn write_line(&mut self, line: &[u8]) {
        let len = line.len() as u64;
        let full = self.rotation.as_ref().is_some_and(|r| {
            r.max_bytes > 0 && r.written > 0 && r.written.saturating_add(len) > r.max_bytes
        });
        if full {
            self.rotate();
        }
        match self.w.write_all(line) {
            Ok(()) => {
                if let Some(r) = &mut self.rotation {
                    r.written += len;
                }
                self.ok();
            }
            Err(e) => self.failed("write", &e),
        }
    }

    fn flush(&mut self) {
        match self.w.flush() {
            Ok(()) => self.ok(),
            Err(e) => self.failed("flush", &e),
        }
    }

    /// Moves the files along and opens a fresh `path` (see the module docs).
    fn rotate(&mut self) {
        self.flush();
        let Some(r) = &mut self.rotation else {
            return;
        };
        // Whatever happens, the next attempt is another `max_bytes` away.
        r.written = 0;
        let reopened = if r.keep == 0 {
            OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .open(&r.path)
        } else {
            shift(&r.path, r.keep).and_then(|()| open_append(&r.path))
        };
        match reopened {
            Ok(f) => {
                // Flushed above: replacing the writer loses nothing.
                self.w = BufWriter::with_capacity(BUFFER_BYTES, Dest::File(f));
            }
            Err(e) => tracing::warn!(
                path = %r.path,
                error = %e,
                "cannot rotate the audit log; writing on in the current file"
            ),
        }
    }

    fn ok(&mut self) {
        if self.failing {
            self.failing = false;
            tracing::info!("audit log writes succeed again");
        }
    }

    fn failed(&mut self, what: &str, e: &io::Error) {
        if !self.failing {
            self.failing = true;
            let path = self.rotation.as_ref().map_or("-", |r| r.path.as_str());
            tracing::warn!(path, error = %e, "audit log {what} failed; lines are being lost");
        }
    }
}

fn open_append(path: &str) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// `path.<k>` -> `path.<k+1>` for k = keep-1 .. 1, then `path` -> `path.1`. Missing files are
/// skipped.
fn shift(path: &str, keep: u32) -> io::Result<()> {
    for k in (1..keep).rev() {
        rename_if_exists(&format!("{path}.{k}"), &format!("{path}.{}", k + 1))?;
    }
    rename_if_exists(path, &format!("{path}.1"))
}

fn rename_if_exists(from: &str, to: &str) -> io::Result<()> {
    match std::fs::rename(from, to) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// Appends `r` as one JSON line (with its `\n`) to `out`.
fn format_line(r: &AuditRecord, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"ts\":\"");
    push_rfc3339_ms(r.ts_ms, out);
    out.extend_from_slice(b"\",\"principal\":");
    push_opt_str(r.principal.as_deref(), out);
    out.extend_from_slice(b",\"session\":");
    push_opt_str(r.session.as_deref(), out);
    out.extend_from_slice(b",\"method\":");
    push_str(&r.method, out);
    out.extend_from_slice(b",\"server\":");
    push_opt_str(r.server.as_deref(), out);
    out.extend_from_slice(b",\"tool\":");
    push_opt_str(r.tool.as_deref(), out);
    out.extend_from_slice(b",\"outcome\":");
    push_str(r.outcome, out);
    // Writing to a Vec cannot fail.
    let _ = write!(out, ",\"status\":{},\"latency_ms\":", r.status);
    push_ms_2dp(r.latency_us, out);
    let _ = writeln!(
        out,
        ",\"bytes_in\":{},\"bytes_out\":{}}}",
        r.bytes_in, r.bytes_out
    );
}

/// A JSON string (quoted and escaped by sonic-rs).
fn push_str(s: &str, out: &mut Vec<u8>) {
    let at = out.len();
    if sonic_rs::to_writer(&mut *out, s).is_err() {
        // Serializing a str into a Vec does not fail; keep the line valid JSON regardless.
        out.truncate(at);
        out.extend_from_slice(b"null");
    }
}

fn push_opt_str(s: Option<&str>, out: &mut Vec<u8>) {
    match s {
        Some(s) => push_str(s, out),
        None => out.extend_from_slice(b"null"),
    }
}

/// Microseconds as milliseconds with two decimals, rounded half up (exact integer math).
fn push_ms_2dp(us: u64, out: &mut Vec<u8>) {
    let hundredths = us / 10 + u64::from(us % 10 >= 5);
    let _ = write!(out, "{}.{:02}", hundredths / 100, hundredths % 100);
}

/// Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn push_rfc3339_ms(ts_ms: u64, out: &mut Vec<u8>) {
    let secs = ts_ms / 1000;
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let sod = secs % 86_400;
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60,
        ts_ms % 1000
    );
}

/// Year, month, day of the day `z` days after 1970-01-01 (proleptic Gregorian; Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of year from March 1, [0, 365]
    let mp = (5 * doy + 2) / 153; // month from March, [0, 11]
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests;

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
mod tests {
    use std::path::{Path, PathBuf};

    use sonic_rs::{JsonValueTrait, Value};

    use super::*;

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            let dir = std::env::temp_dir()
                .join(format!("o1m-audit-{name}-{}-{nanos}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn file(&self, name: &str) -> String {
            self.0.join(name).to_str().unwrap().to_owned()
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn record(i: u64) -> AuditRecord {
        AuditRecord {
            ts_ms: 1_795_521_600_123,
            principal: Some("alice".into()),
            session: Some("s-1".into()),
            method: "tools/call".into(),
            server: Some("demo".into()),
            tool: Some("echo".into()),
            outcome: "ok",
            status: 200,
            latency_us: 1234,
            bytes_in: i,
            bytes_out: 456,
        }
    }

    fn line(r: &AuditRecord) -> String {
        let mut out = Vec::new();
        format_line(r, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn read_lines(path: &str) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn bytes_in(line: &str) -> u64 {
        let v: Value = sonic_rs::from_str(line).unwrap();
        v.get("bytes_in").and_then(|b| b.as_u64()).unwrap()
    }

    #[test]
    fn line_format() {
        let l = line(&record(123));
        assert_eq!(
            l,
            "{\"ts\":\"2026-11-24T12:00:00.123Z\",\"principal\":\"alice\",\"session\":\"s-1\",\
             \"method\":\"tools/call\",\"server\":\"demo\",\"tool\":\"echo\",\"outcome\":\"ok\",\
             \"status\":200,\"latency_ms\":1.23,\"bytes_in\":123,\"bytes_out\":456}\n"
        );
        let v: Value = sonic_rs::from_str(l.trim_end()).unwrap();
        assert_eq!(
            v.get("ts").and_then(|x| x.as_str()),
            Some("2026-11-24T12:00:00.123Z")
        );
        assert_eq!(v.get("principal").and_then(|x| x.as_str()), Some("alice"));
        assert_eq!(v.get("method").and_then(|x| x.as_str()), Some("tools/call"));
        assert_eq!(v.get("outcome").and_then(|x| x.as_str()), Some("ok"));
        assert_eq!(v.get("status").and_then(|x| x.as_u64()), Some(200));
        assert_eq!(v.get("latency_ms").and_then(|x| x.as_f64()), Some(1.23));
        assert_eq!(v.get("bytes_in").and_then(|x| x.as_u64()), Some(123));
        assert_eq!(v.get("bytes_out").and_then(|x| x.as_u64()), Some(456));
    }

    #[test]
    fn nulls_for_missing_fields() {
        let r = AuditRecord {
            principal: None,
            session: None,
            server: None,
            tool: None,
            outcome: "unauthenticated",
            status: 401,
            ..record(0)
        };
        let l = line(&r);
        let v: Value = sonic_rs::from_str(l.trim_end()).unwrap();
        for k in ["principal", "session", "server", "tool"] {
            assert!(v.get(k).is_some_and(|x| x.is_null()), "{k} in {l}");
        }
        assert_eq!(
            v.get("outcome").and_then(|x| x.as_str()),
            Some("unauthenticated")
        );
        assert_eq!(v.get("status").and_then(|x| x.as_u64()), Some(401));
    }

    #[test]
    fn odd_names_are_escaped() {
        let odd = "al\"ice\\\n\r\t\u{1}\u{1f}é😀</script>\u{2028}";
        let r = AuditRecord {
            principal: Some(odd.into()),
            session: Some("\"},\"outcome\":\"ok".into()),
            method: "a\nb".into(),
            ..record(0)
        };
        let l = line(&r);
        assert_eq!(l.matches('\n').count(), 1, "one line: {l:?}");
        assert!(l.ends_with('\n'));
        let v: Value = sonic_rs::from_str(l.trim_end()).unwrap();
        assert_eq!(v.get("principal").and_then(|x| x.as_str()), Some(odd));
        assert_eq!(
            v.get("session").and_then(|x| x.as_str()),
            Some("\"},\"outcome\":\"ok")
        );
        assert_eq!(v.get("method").and_then(|x| x.as_str()), Some("a\nb"));
        assert_eq!(v.get("outcome").and_then(|x| x.as_str()), Some("ok"));
    }

    #[test]
    fn timestamps() {
        let ts = |ms: u64| {
            let mut out = Vec::new();
            push_rfc3339_ms(ms, &mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(ts(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(ts(1_795_521_600_123), "2026-11-24T12:00:00.123Z");
        assert_eq!(ts(1_709_251_199_999), "2024-02-29T23:59:59.999Z");
        assert_eq!(ts(1_709_251_200_000), "2024-03-01T00:00:00.000Z");
        assert_eq!(ts(951_868_800_007), "2000-03-01T00:00:00.007Z");
        assert_eq!(ts(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(ts(946_684_799_050), "1999-12-31T23:59:59.050Z");
        assert_eq!(ts(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
        assert_eq!(ts(4_107_456_000_000), "2100-02-28T00:00:00.000Z");
        // Day after day for 200 years: each date follows the previous one.
        let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let days_in = |y: i64, m: u32| match m {
            2 if leap(y) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let mut prev = (1969_i64, 12_u32, 31_u32);
        for day in 0..200 * 366 {
            let (y, m, d) = prev;
            let want = if d < days_in(y, m) {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
            let got = civil_from_days(day);
            assert_eq!(got, want, "day {day}");
            prev = got;
        }
    }

    #[test]
    fn latency_two_decimals() {
        let ms = |us: u64| {
            let mut out = Vec::new();
            push_ms_2dp(us, &mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(ms(0), "0.00");
        assert_eq!(ms(4), "0.00");
        assert_eq!(ms(5), "0.01");
        assert_eq!(ms(1234), "1.23");
        assert_eq!(ms(1235), "1.24");
        assert_eq!(ms(999_995), "1000.00");
        assert_eq!(ms(30_000_000), "30000.00");
    }

    /// Lines of 50 records, rotated at 1000 bytes with 2 old files kept.
    #[test]
    fn rotation_keeps_whole_lines_and_bounded_files() {
        let dir = TempDir::new("rotate");
        let path = dir.file("audit.log");
        let (sink, writer) = start(&path, 1000, 2).unwrap();
        for i in 1000..1050 {
            sink.log(record(i));
        }
        writer.stop();
        assert_eq!(sink.dropped(), 0);
        let line_len = line(&record(1000)).len() as u64;
        let per_file = 1000 / line_len;
        assert!(per_file >= 2, "test needs several lines per file");
        let files = [format!("{path}.2"), format!("{path}.1"), path.clone()];
        let mut seen = Vec::new();
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap();
            let size = text.len() as u64;
            assert!(size <= 1000, "{f}: {size} bytes");
            assert!(text.ends_with('\n'), "{f} ends mid-line");
            assert_eq!(size % line_len, 0, "{f} holds whole lines");
            seen.extend(text.lines().map(bytes_in));
        }
        assert!(!Path::new(&format!("{path}.3")).exists());
        // The old files are as full as whole lines allow.
        for f in &files[..2] {
            assert_eq!(
                std::fs::metadata(f).unwrap().len(),
                per_file * line_len,
                "{f}"
            );
        }
        // The newest lines, in order, none lost at the rotations.
        let first = 1050 - seen.len() as u64;
        assert_eq!(seen, (first..1050).collect::<Vec<_>>());
        assert!(seen.len() as u64 > 2 * per_file);
    }

    #[test]
    fn rotation_keep_zero_truncates_in_place() {
        let dir = TempDir::new("truncate");
        let path = dir.file("audit.log");
        let (sink, writer) = start(&path, 1000, 0).unwrap();
        for i in 1000..1050 {
            sink.log(record(i));
        }
        writer.stop();
        let lines = read_lines(&path);
        assert!(std::fs::metadata(&path).unwrap().len() <= 1000);
        assert!(!Path::new(&format!("{path}.1")).exists());
        let seen: Vec<u64> = lines.iter().map(|l| bytes_in(l)).collect();
        let first = 1050 - seen.len() as u64;
        assert_eq!(seen, (first..1050).collect::<Vec<_>>());
    }

    #[test]
    fn existing_file_is_appended_and_rotated_when_full() {
        let dir = TempDir::new("append");
        let path = dir.file("audit.log");
        std::fs::write(&path, "x".repeat(990) + "\n").unwrap();
        let (sink, writer) = start(&path, 1000, 3).unwrap();
        sink.log(record(7));
        writer.stop();
        assert_eq!(
            std::fs::read_to_string(format!("{path}.1")).unwrap().len(),
            991
        );
        assert_eq!(
            read_lines(&path)
                .iter()
                .map(|l| bytes_in(l))
                .collect::<Vec<_>>(),
            [7]
        );

        // Room left: appended to what is there.
        let (sink, writer) = start(&path, 100_000, 3).unwrap();
        sink.log(record(8));
        writer.stop();
        assert_eq!(
            read_lines(&path)
                .iter()
                .map(|l| bytes_in(l))
                .collect::<Vec<_>>(),
            [7, 8]
        );
        assert!(!Path::new(&format!("{path}.2")).exists());
    }

    #[test]
    fn max_bytes_zero_never_rotates() {
        let dir = TempDir::new("norotate");
        let path = dir.file("audit.log");
        let (sink, writer) = start(&path, 0, 2).unwrap();
        for i in 0..20 {
            sink.log(record(i));
        }
        writer.stop();
        assert_eq!(read_lines(&path).len(), 20);
        assert!(!Path::new(&format!("{path}.1")).exists());
    }

    #[test]
    fn drops_are_counted_when_the_channel_is_full() {
        let dir = TempDir::new("drops");
        let path = dir.file("audit.log");
        let (sink, rx) = SharedAuditSink::bounded(2);
        // The writer is not running yet: the channel fills after two.
        for i in 0..5 {
            sink.log(record(i));
        }
        assert_eq!(sink.dropped(), 3);
        let writer = AuditWriter::spawn(rx, Output::open(&path, 0, 0).unwrap()).unwrap();
        writer.stop();
        let seen: Vec<u64> = read_lines(&path).iter().map(|l| bytes_in(l)).collect();
        assert_eq!(seen, [0, 1]);
        // After the writer stopped, records are dropped and counted too.
        sink.log(record(9));
        assert_eq!(sink.dropped(), 4);
    }

    #[test]
    fn stop_flushes_everything() {
        let dir = TempDir::new("stop");
        let path = dir.file("audit.log");
        let (sink, writer) = start(&path, 0, 0).unwrap();
        for i in 0..10_000 {
            sink.log(record(i));
        }
        writer.stop();
        assert_eq!(sink.dropped(), 0);
        let seen: Vec<u64> = read_lines(&path).iter().map(|l| bytes_in(l)).collect();
        assert_eq!(seen, (0..10_000).collect::<Vec<_>>());
    }

    #[test]
    fn drop_flushes_everything() {
        let dir = TempDir::new("drop");
        let path = dir.file("audit.log");
        let (sink, writer) = start(&path, 0, 0).unwrap();
        for i in 0..100 {
            sink.log(record(i));
        }
        drop(writer);
        assert_eq!(read_lines(&path).len(), 100);
    }

    #[test]
    fn idle_channel_flushes_without_stop() {
        let dir = TempDir::new("idle");
        let path = dir.file("audit.log");
        let (sink, writer) = start(&path, 0, 0).unwrap();
        sink.log(record(1));
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::read_to_string(&path).unwrap().is_empty() {
            assert!(Instant::now() < deadline, "the line was not flushed");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(read_lines(&path).len(), 1);
        writer.stop();
    }

    #[test]
    fn busy_channel_flushes_every_200ms() {
        let dir = TempDir::new("busy");
        let path = dir.file("audit.log");
        let (sink, writer) = start(&path, 0, 0).unwrap();
        // One record every 2 ms never leaves the channel idle for 10 ms.
        let t0 = Instant::now();
        let mut i = 0;
        while std::fs::read_to_string(&path).unwrap().is_empty() {
            assert!(
                t0.elapsed() < Duration::from_secs(2),
                "not flushed within 2 s"
            );
            sink.log(record(i));
            i += 1;
            std::thread::sleep(Duration::from_millis(2));
        }
        // Flushed by the timer, not because the buffer filled up.
        let line_len = line(&record(i)).len();
        assert!(
            (i as usize) * line_len < BUFFER_BYTES,
            "{i} lines before the first flush"
        );
        writer.stop();
        assert_eq!(read_lines(&path).len() as u64, i);
    }

    #[test]
    fn unopenable_path_is_named() {
        let dir = TempDir::new("bad");
        let path = dir.file("missing-dir/audit.log");
        let err = start(&path, 0, 0).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains(&path), "{msg}");
    }

    #[test]
    fn stdout_starts_and_stops() {
        let (sink, writer) = start("-", 0, 0).unwrap();
        assert!(sink.is_enabled());
        writer.stop();
    }
}

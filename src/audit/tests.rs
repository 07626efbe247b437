//! The audit writer: line format, rotation, drops, flushing.
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
        let dir =
            std::env::temp_dir().join(format!("o1m-audit-{name}-{}-{nanos}", std::process::id()));
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
fn a_missing_directory_is_created_and_an_uncreatable_one_is_named() {
    let dir = TempDir::new("bad");
    let path = dir.file("missing-dir/audit.log");
    let (_sink, writer) = start(&path, 0, 0).unwrap();
    writer.stop();
    assert!(
        std::path::Path::new(&path).is_file(),
        "directory and log created"
    );
    // Below a regular file no directory can be made, not even by root.
    let below = format!("{path}/sub/audit.log");
    let err = start(&below, 0, 0).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains(&format!("mkdir -p {path}/sub")), "{msg}");
    assert!(msg.contains("or set audit.path"), "{msg}");
}

#[test]
fn an_unwritable_log_is_named() {
    let dir = TempDir::new("bad");
    // A directory where the log file should be: it cannot be opened for appending.
    let path = dir.file("is-a-dir");
    std::fs::create_dir_all(&path).unwrap();
    let err = start(&path, 0, 0).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains(&format!("cannot open the audit log {path}")),
        "{msg}"
    );
}

#[test]
fn stdout_starts_and_stops() {
    let (sink, writer) = start("-", 0, 0).unwrap();
    assert!(sink.is_enabled());
    writer.stop();
}

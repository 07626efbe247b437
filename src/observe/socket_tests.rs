//! Tests of the metrics socket server: real Unix sockets in a scratch directory.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use super::*;
use crate::observe::snapshot::{MethodStats, SocketLine};

/// The global ring: the socket thread logs through the global subscriber, so the tests
/// install one (once per test binary) that feeds this ring and read its lines back.
fn ring() -> Arc<LogRing> {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        use tracing_subscriber::layer::SubscriberExt;
        let sub = tracing_subscriber::registry().with(crate::observe::log_layer());
        let _ = tracing::subscriber::set_global_default(sub);
    });
    crate::observe::log_ring().clone()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("o1m-obs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("m.sock")
}

fn source(cores: u32) -> Arc<ArcSwap<MetricsSnapshot>> {
    Arc::new(ArcSwap::from_pointee(MetricsSnapshot::initial(
        cores, "epoll",
    )))
}

/// Reads lines until `pred` holds for one (or panics after `within`).
fn read_until(
    r: &mut BufReader<UnixStream>,
    within: Duration,
    mut pred: impl FnMut(&SocketLine) -> bool,
) -> SocketLine {
    let deadline = Instant::now() + within;
    r.get_ref()
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut line = String::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "no matching line within {within:?}"
        );
        match r.read_line(&mut line) {
            Ok(0) => panic!("socket closed before a matching line"),
            Ok(_) if line.ends_with('\n') => {
                let parsed = SocketLine::parse(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
                line.clear();
                if pred(&parsed) {
                    return parsed;
                }
            }
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("read: {e}"),
        }
    }
}

fn is_log_with(text: &'static str) -> impl FnMut(&SocketLine) -> bool {
    move |l| matches!(l, SocketLine::Log(l) if l.message.contains(text))
}

/// A watcher gets a snapshot at once, then snapshots on the cadence and new log lines;
/// the socket is 0600, two watchers are served together, and stopping removes the file.
#[test]
fn streams_snapshots_and_logs_to_several_watchers() {
    let logs = ring();
    let path = scratch("stream");
    let src = source(3);
    let handle = start(&path, src.clone(), logs.clone()).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let mut a = BufReader::new(UnixStream::connect(&path).unwrap());
    let mut b = BufReader::new(UnixStream::connect(&path).unwrap());
    let first = read_until(&mut a, Duration::from_secs(2), |_| true);
    assert!(
        matches!(first, SocketLine::Snapshot(ref s) if s.cores == 3),
        "{first:?}"
    );

    // A changed snapshot shows up on the next tick, on both watchers.
    let mut next = MetricsSnapshot::initial(3, "epoll");
    next.totals.requests = 42;
    src.store(Arc::new(next));
    for w in [&mut a, &mut b] {
        read_until(
            w,
            Duration::from_secs(3),
            |l| matches!(l, SocketLine::Snapshot(s) if s.totals.requests == 42),
        );
    }
    logs.push("WARN", "test", "hello from the stream test".into());
    for w in [&mut a, &mut b] {
        read_until(
            w,
            Duration::from_secs(3),
            is_log_with("hello from the stream test"),
        );
    }

    drop(handle);
    assert!(!path.exists(), "socket file removed on stop");
    // The watcher sees the end of the stream.
    let mut rest = Vec::new();
    a.get_ref()
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    a.read_to_end(&mut rest).unwrap();
}

/// A new watcher gets the recent log lines at once, each exactly once.
#[test]
fn new_watcher_gets_the_backlog() {
    let logs = ring();
    let path = scratch("backlog");
    logs.push("INFO", "test", "backlog line one".into());
    let handle = start(&path, source(1), logs.clone()).unwrap();
    let mut a = BufReader::new(UnixStream::connect(&path).unwrap());
    let l = read_until(
        &mut a,
        Duration::from_secs(2),
        is_log_with("backlog line one"),
    );
    let SocketLine::Log(first) = l else {
        unreachable!()
    };
    // Over two more ticks, the same seq never comes again.
    let deadline = Instant::now() + Duration::from_millis(1200);
    a.get_ref()
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut line = String::new();
    while Instant::now() < deadline {
        if matches!(a.read_line(&mut line), Ok(n) if n > 0) && line.ends_with('\n') {
            if let Ok(SocketLine::Log(l)) = SocketLine::parse(&line) {
                assert_ne!(l.seq, first.seq, "a log line was sent twice");
            }
            line.clear();
        }
    }
    drop(handle);
    assert!(!path.exists());
}

/// A left-over socket file nobody answers on is replaced; a live one is refused, and a
/// regular file in the way is never touched.
#[test]
fn stale_live_and_foreign_files() {
    let logs = ring();
    let path = scratch("stale");
    drop(UnixListener::bind(&path).unwrap()); // the file stays, nobody listens
    assert!(path.exists());
    let first = start(&path, source(1), logs.clone()).expect("stale socket replaced");

    let err = start(&path, source(1), logs.clone()).unwrap_err();
    assert!(format!("{err:#}").contains("in use"), "{err:#}");
    // The refused start did not disturb the running one.
    let mut a = BufReader::new(UnixStream::connect(&path).unwrap());
    read_until(&mut a, Duration::from_secs(2), |l| {
        matches!(l, SocketLine::Snapshot(_))
    });
    drop(first);

    std::fs::write(&path, "not a socket").unwrap();
    let err = start(&path, source(1), logs).unwrap_err();
    assert!(format!("{err:#}").contains("not a socket"), "{err:#}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "not a socket");
}

/// A watcher that never reads is dropped once its backlog passes the cap (with a log line
/// that says so), while a watcher that reads keeps getting every tick.
#[test]
fn slow_watcher_is_dropped_fast_one_is_not() {
    let logs = ring();
    let path = scratch("slow");
    // A big snapshot (~100 KiB a line) fills a silent watcher's buffers in a few ticks.
    let mut big = MetricsSnapshot::initial(1, "epoll");
    big.methods = (0..1000)
        .map(|i| MethodStats {
            method: "tools/call".into(),
            tool: Some(format!("server__tool_number_{i:05}")),
            requests: i,
            errors: 0,
            p50_ms: 1.0,
            p99_ms: 2.0,
        })
        .collect();
    let handle = start(&path, Arc::new(ArcSwap::from_pointee(big)), logs.clone()).unwrap();
    let silent = UnixStream::connect(&path).unwrap();
    let mut fast = BufReader::new(UnixStream::connect(&path).unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut snapshots = 0;
    loop {
        assert!(
            Instant::now() < deadline,
            "the silent watcher was never dropped"
        );
        read_until(&mut fast, Duration::from_secs(3), |l| {
            matches!(l, SocketLine::Snapshot(_))
        });
        snapshots += 1;
        if logs
            .since(0)
            .iter()
            .any(|l| l.message.contains("metrics watcher dropped: not reading"))
        {
            break;
        }
    }
    assert!(
        snapshots >= 2,
        "dropped only after a few ticks, not at once"
    );
    // The fast watcher is still served after the drop.
    for _ in 0..2 {
        read_until(&mut fast, Duration::from_secs(3), |l| {
            matches!(l, SocketLine::Snapshot(_))
        });
    }
    drop(silent);
    drop(handle);
}

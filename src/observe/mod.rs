//! Observability for people: the metrics socket and the log capture behind it.
//!
//! # Key components
//!
//! - [`snapshot`]: the wire types of the socket (schema v1, one JSON object per line), shared
//!   by the server and the TUI. The format is documented in `docs/metrics-socket.md`.
//! - [`logs`]: a `tracing` layer that keeps the last log lines in a [`LogRing`], so a watcher
//!   sees the same lines as stderr without tailing a file.
//! - `socket`: the Unix socket server on its own thread ([`start`] → [`ObserveHandle`]),
//!   streaming a snapshot every 500 ms plus new log lines to any number of watchers and
//!   dropping a watcher that does not keep up.
//!
//! The control thread owns the producer side: it stores a fresh [`MetricsSnapshot`] into the
//! `ArcSwap` it passes to [`start`]. The socket thread only reads it, so a slow watcher can
//! never slow the gateway.

pub mod logs;
pub mod snapshot;
mod socket;
mod watcher;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

pub use logs::{LogLayer, LogRing};
pub use snapshot::{LogLine, MetricsSnapshot, SocketLine};
pub use socket::{start, ObserveHandle};

/// The socket path when the config names none: `$XDG_RUNTIME_DIR/only1mcp-uring.sock` (a
/// per-user directory) when that is set, else `/tmp/only1mcp-uring-<uid>.sock`.
pub fn default_socket_path() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("only1mcp-uring.sock"),
        _ => {
            // SAFETY: getuid has no preconditions and cannot fail.
            let uid = unsafe { libc::getuid() };
            PathBuf::from(format!("/tmp/only1mcp-uring-{uid}.sock"))
        }
    }
}

/// The process-wide log ring: the one the installed [`LogLayer`] fills and the socket reads.
pub fn log_ring() -> &'static Arc<LogRing> {
    static RING: OnceLock<Arc<LogRing>> = OnceLock::new();
    RING.get_or_init(|| Arc::new(LogRing::new(logs::DEFAULT_CAPACITY)))
}

/// The layer to install next to the stderr formatter; it feeds [`log_ring`].
pub fn log_layer() -> LogLayer {
    LogLayer::new(log_ring().clone())
}

#[cfg(test)]
mod tests {
    #[test]
    fn default_path_is_per_user() {
        let p = super::default_socket_path();
        let s = p.display().to_string();
        match std::env::var_os("XDG_RUNTIME_DIR") {
            Some(d) if !d.is_empty() => {
                assert_eq!(p, std::path::Path::new(&d).join("only1mcp-uring.sock"))
            }
            _ => assert_eq!(
                s,
                format!("/tmp/only1mcp-uring-{}.sock", unsafe { libc::getuid() })
            ),
        }
    }
}

//! The systemd notification protocol (`sd_notify`), by hand: one unix datagram per message to
//! the socket named in `$NOTIFY_SOCKET` (a path, or an abstract-namespace name when it starts
//! with `@`). No libsystemd: the protocol is one `sendto` of `KEY=value` lines.
//!
//! Only the control thread holds a [`Notifier`] (a shard never blocks on a socket it does not
//! own). It tells systemd `READY=1` once every shard listens and backend discovery settled,
//! `RELOADING=1` + `MONOTONIC_USEC=` and then `READY=1` around a reload, `STOPPING=1` at
//! shutdown, and a `STATUS=` line whenever what it serves changes. Without `$NOTIFY_SOCKET`
//! (not under systemd, or `Type=simple`) every call does nothing.
//!
//! The variable is removed from the environment when read, before any thread or child
//! exists, so the stdio servers the gateway starts do not inherit it (as `sd_notify`'s
//! `unset_environment` does).

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Where notifications go; does nothing when systemd did not ask for them.
#[derive(Debug, Default)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
    /// `READY=1` was sent (a reload before it must not announce readiness).
    ready: bool,
    /// `STOPPING=1` was sent: no `READY=1` or `RELOADING=1` after it.
    stopping: bool,
    /// The last `STATUS=` sent, so an unchanged status is not sent again.
    status: String,
}

/// The socket address `$NOTIFY_SOCKET` names: an absolute path, or `@name` for the abstract
/// namespace. Anything else is not a notification socket.
pub fn parse_address(value: &str) -> Result<SocketAddr, String> {
    if let Some(name) = value.strip_prefix('@') {
        SocketAddr::from_abstract_name(name.as_bytes())
            .map_err(|e| format!("NOTIFY_SOCKET={value:?}: {e}"))
    } else if value.starts_with('/') {
        SocketAddr::from_pathname(value).map_err(|e| format!("NOTIFY_SOCKET={value:?}: {e}"))
    } else {
        Err(format!(
            "NOTIFY_SOCKET={value:?} is neither an absolute path nor an @abstract name"
        ))
    }
}

/// Microseconds of `CLOCK_MONOTONIC`, as `MONOTONIC_USEC=` wants them.
pub fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we own; CLOCK_MONOTONIC always exists.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    (ts.tv_sec as u64) * 1_000_000 + (ts.tv_nsec as u64) / 1_000
}

impl Notifier {
    /// Takes `$NOTIFY_SOCKET` out of the environment and opens an unbound datagram socket
    /// for it. Call before any other thread starts (it changes the environment).
    pub fn take_from_env() -> Notifier {
        let Some(value) = std::env::var_os("NOTIFY_SOCKET") else {
            return Notifier::default();
        };
        std::env::remove_var("NOTIFY_SOCKET");
        let value = value.to_string_lossy().into_owned();
        let target = parse_address(&value).and_then(|addr| {
            UnixDatagram::unbound()
                .map(|s| (s, addr))
                .map_err(|e| format!("cannot open a socket for systemd notifications: {e}"))
        });
        match target {
            Ok(t) => Notifier {
                target: Some(t),
                ..Notifier::default()
            },
            Err(why) => {
                tracing::warn!("systemd notifications off: {why}");
                Notifier::default()
            }
        }
    }

    /// Sends one message (`KEY=value` lines). A failure is logged, never fatal: the gateway
    /// serves whether or not systemd hears it.
    fn send(&self, message: &str) {
        if let Some((socket, addr)) = &self.target {
            if let Err(e) = socket.send_to_addr(message.as_bytes(), addr) {
                tracing::warn!("systemd notification not sent ({e}): {message:?}");
            }
        }
    }

    /// `READY=1` with a status, once; later calls only update the status.
    pub fn ready(&mut self, status: &str) {
        if self.ready || self.stopping {
            self.status(status);
            return;
        }
        self.ready = true;
        self.status = status.to_string();
        self.send(&format!("READY=1\nSTATUS={status}"));
    }

    /// `STATUS=` when it changed.
    pub fn status(&mut self, status: &str) {
        if self.status != status {
            self.status = status.to_string();
            self.send(&format!("STATUS={status}"));
        }
    }

    /// A reload starts: `RELOADING=1` with the monotonic time systemd requires. Returns
    /// whether it was sent (not before `READY=1`), so [`Notifier::reloaded`] answers it.
    pub fn reloading(&mut self) -> bool {
        if !self.ready || self.stopping {
            return false;
        }
        self.status = "reloading the config".to_string();
        self.send(&format!(
            "RELOADING=1\nMONOTONIC_USEC={}\nSTATUS={}",
            monotonic_usec(),
            self.status
        ));
        true
    }

    /// The reload is over (applied or rejected; the gateway serves either way).
    pub fn reloaded(&mut self, status: &str) {
        self.status = status.to_string();
        self.send(&format!("READY=1\nSTATUS={status}"));
    }

    /// Shutdown started.
    pub fn stopping(&mut self, status: &str) {
        self.stopping = true;
        self.status = status.to_string();
        self.send(&format!("STOPPING=1\nSTATUS={status}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn addresses_are_paths_or_abstract_names() {
        let p = parse_address("/run/systemd/notify").unwrap();
        assert_eq!(
            p.as_pathname(),
            Some(std::path::Path::new("/run/systemd/notify"))
        );
        let a = parse_address("@/org/freedesktop/systemd1/notify/1").unwrap();
        assert_eq!(
            a.as_abstract_name(),
            Some(&b"/org/freedesktop/systemd1/notify/1"[..])
        );
        assert!(parse_address("relative/sock").is_err());
        assert!(parse_address("").is_err());
    }

    fn received(rx: &UnixDatagram) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = [0u8; 512];
        while let Ok(n) = rx.recv(&mut buf) {
            out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        out
    }

    #[test]
    fn ready_once_reload_only_after_ready_status_only_on_change() {
        let dir = std::env::temp_dir().join(format!("o1m-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("n.sock");
        let _ = std::fs::remove_file(&path);
        let rx = UnixDatagram::bind(&path).unwrap();
        rx.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut n = Notifier {
            target: Some((
                UnixDatagram::unbound().unwrap(),
                SocketAddr::from_pathname(&path).unwrap(),
            )),
            ..Notifier::default()
        };
        assert!(!n.reloading(), "no RELOADING before READY");
        n.ready("serving 1 backend");
        n.ready("serving 1 backend");
        n.status("serving 1 backend");
        n.ready("serving 2 backends");
        assert!(n.reloading());
        n.reloaded("serving 2 backends");
        n.stopping("draining");
        assert!(!n.reloading(), "no RELOADING after STOPPING");
        let got = received(&rx);
        assert_eq!(got[0], "READY=1\nSTATUS=serving 1 backend");
        assert_eq!(got[1], "STATUS=serving 2 backends");
        let usec: u64 = got[2]
            .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
            .and_then(|r| r.split('\n').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{:?}", got[2]));
        assert!(usec > 0 && usec <= monotonic_usec());
        assert_eq!(got[3], "READY=1\nSTATUS=serving 2 backends");
        assert_eq!(got[4], "STOPPING=1\nSTATUS=draining");
        assert_eq!(got.len(), 5, "{got:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn stopping_before_ready_means_no_ready_afterwards() {
        let mut n = Notifier::default();
        n.stopping("stopping");
        n.ready("serving 1 of 1 backends");
        assert!(!n.ready, "READY=1 never follows STOPPING=1");
        assert_eq!(
            n.status, "serving 1 of 1 backends",
            "the status still follows"
        );
    }

    #[test]
    fn without_a_socket_nothing_is_sent_and_nothing_fails() {
        let mut n = Notifier::default();
        n.ready("x");
        assert!(n.reloading(), "ready was recorded, sending is a no-op");
        n.reloaded("x");
        n.stopping("y");
    }
}

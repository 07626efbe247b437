//! `validate`'s second half: what `start` would refuse (or start without) beyond the config's
//! own rules, checked on this machine as the user running `validate`.
//!
//! Each check runs the same code `start` runs where it can (backend URL resolution, the TLS
//! and token key files, the cluster key file), so the two cannot disagree; the others (the
//! audit log's directory, the metrics socket, the listen address, stdio commands) mirror what
//! `start` does and say what is missing and how to fix it. Errors are what `start` refuses;
//! warnings are what it starts without (a stdio server whose command is not installed is
//! down until it is) or what may be this gateway itself (the listen address in use).
//!
//! Not checked: whether the JWKS URL answers (start warns and retries), whether HTTP backends
//! and Redis answer (they may come up later), and `driver = "uring"` on a kernel that denies
//! io_uring (only a shard's first ring tells).

use std::io::ErrorKind;
use std::net::{TcpListener, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use only1mcp_shards::config::{Config, Transport, SELF_COMMAND};

/// What `validate` found beyond the config's own rules.
#[derive(Debug, Default)]
pub struct Findings {
    /// `start` would refuse to start.
    pub errors: Vec<String>,
    /// `start` starts, without something.
    pub warnings: Vec<String>,
    /// `start` will do something first (create a directory).
    pub notes: Vec<String>,
}

/// Runs every check on `cfg`.
pub fn check(cfg: &Config) -> Findings {
    let mut f = Findings::default();
    let err = |r: anyhow::Result<()>, f: &mut Findings| {
        if let Err(e) = r {
            f.errors.push(format!("{e:#}"));
        }
    };
    if let Err(e) = crate::control::backend_specs(cfg) {
        let e = format!("{e:#}");
        // A `unix:` URL's path is looked at (not resolved): its error says what is wrong.
        let hint = if e.contains("is not a socket") {
            "a unix: backend URL must name a socket (or a path that does not exist yet)"
        } else {
            "backend host names are resolved at start and on reload; fix the URL, make the name resolve (DNS, /etc/hosts) or set enabled = false"
        };
        f.errors.push(format!("{e}: {hint}"));
    }
    err(crate::jwks::check_static(cfg), &mut f);
    if let Some(t) = &cfg.server.tls {
        err(crate::tls::server_config(t).map(drop), &mut f);
    }
    if cfg.audit.enabled {
        match crate::audit::check_path(&cfg.audit.path) {
            Ok(Some(note)) => f.notes.push(note),
            Ok(None) => {}
            Err(e) => f.errors.push(format!("{e:#}")),
        }
    }
    if cfg.metrics.socket_enabled {
        if let Some(path) = &cfg.metrics.socket {
            metrics_socket(Path::new(path), &mut f);
        }
    }
    listen(&cfg.server.host, cfg.server.port, &mut f);
    stdio_commands(cfg, &mut f);
    f
}

/// Prints the findings after `file: ok` would be printed; exit 2 on any error.
pub fn report(file: &Path, servers: usize, f: &Findings) -> ExitCode {
    let shown = file.display();
    for w in &f.warnings {
        eprintln!("warning: {shown}: {w}");
    }
    for n in &f.notes {
        eprintln!("note: {shown}: {n}");
    }
    for e in &f.errors {
        eprintln!("{shown}: start would refuse: {e}");
    }
    if f.errors.is_empty() {
        println!("{shown}: ok ({servers} servers)");
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

/// `[metrics] socket`: its directory must exist and nothing but a stale socket may be there.
fn metrics_socket(path: &Path, f: &mut Findings) {
    let shown = path.display();
    let dir = path.parent().unwrap_or(Path::new("."));
    if !dir.as_os_str().is_empty() && !dir.is_dir() {
        f.errors.push(format!(
            "metrics.socket {shown}: directory {} does not exist: create it or set [metrics] socket",
            dir.display()
        ));
        return;
    }
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.file_type().is_socket() => f.errors.push(format!(
            "metrics socket {shown}: something that is not a socket is in the way: remove it or set [metrics] socket"
        )),
        Ok(_) if std::os::unix::net::UnixStream::connect(path).is_ok() => f.warnings.push(format!(
            "metrics socket {shown} is in use now: start fails unless that is this gateway, stopped first"
        )),
        _ => {}
    }
}

/// The listen address resolves and can be bound now (port 0 always can).
fn listen(host: &str, port: u16, f: &mut Findings) {
    let addr = match (host, port).to_socket_addrs().map(|mut a| a.next()) {
        Ok(Some(a)) => a,
        Ok(None) | Err(_) => {
            f.errors.push(format!(
                "server.host {host:?} does not resolve to an address: set server.host (or --host)"
            ));
            return;
        }
    };
    match TcpListener::bind(addr) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::AddrInUse => f.warnings.push(format!(
            "{addr} is in use now: start fails unless that is this gateway (a reload does not bind again); stop it or set server.port (or --port)"
        )),
        Err(e) => f.errors.push(format!(
            "cannot listen on {addr} ({e}): set server.host and server.port (or --host, --port){}",
            if port < 1024 { "; ports below 1024 need root or CAP_NET_BIND_SERVICE" } else { "" }
        )),
    }
}

/// Each enabled stdio server's command is installed and its `cwd` exists; else the server is
/// down until it is (start goes on without it).
fn stdio_commands(cfg: &Config, f: &mut Findings) {
    for s in cfg.servers.iter().filter(|s| s.enabled) {
        if *s.transport.get_ref() != Transport::Stdio {
            continue;
        }
        let id = s.id.get_ref();
        if let Some(cwd) = &s.cwd {
            if !Path::new(cwd).is_dir() {
                f.warnings.push(format!(
                    "server `{id}`: cwd {cwd} is not a directory: the server stays down until it exists"
                ));
            }
        }
        let Some(command) = s.command.as_ref().map(|c| c.get_ref().as_str()) else {
            continue;
        };
        if command == SELF_COMMAND {
            continue;
        }
        let path_var = s
            .env
            .get("PATH")
            .cloned()
            .or_else(|| std::env::var("PATH").ok())
            .unwrap_or_default();
        if find_command(command, &path_var).is_none() {
            let where_ = if command.contains('/') {
                "does not exist or is not executable".to_string()
            } else {
                "is not on PATH".to_string()
            };
            f.warnings.push(format!(
                "server `{id}`: command `{command}` {where_}: the server stays down until it is installed{}",
                install_hint(command)
            ));
        }
    }
}

/// Where `command` would be run from: itself if it names a path, else the first executable
/// of that name in `path_var`.
pub fn find_command(command: &str, path_var: &str) -> Option<PathBuf> {
    let executable = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if command.contains('/') {
        let p = PathBuf::from(command);
        return executable(&p).then_some(p);
    }
    path_var
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(command))
        .find(|p| executable(p))
}

fn install_hint(command: &str) -> &'static str {
    match command {
        "npx" | "node" | "npm" => " (install Node.js)",
        "uvx" | "uv" => " (install uv: https://docs.astral.sh/uv/)",
        "python" | "python3" => " (install Python 3)",
        "docker" => " (install Docker)",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_found_on_the_given_path_only() {
        assert_eq!(
            find_command("sh", "/nonexistent:/bin:/usr/bin").map(|p| p.is_absolute()),
            Some(true)
        );
        assert_eq!(find_command("sh", "/nonexistent"), None);
        assert!(find_command("/bin/sh", "").is_some());
        assert_eq!(find_command("/nonexistent/sh", "/bin"), None);
        // A directory of that name is not a command.
        assert_eq!(find_command("tmp", "/"), None);
    }

    fn cfg(text: &str) -> Config {
        only1mcp_shards::config::parse_str(text, "t.toml").unwrap()
    }

    #[test]
    fn a_missing_stdio_command_and_cwd_warn_and_self_does_not() {
        let f = check(&cfg(
            "[server]\nport = 0\n[[servers]]\nid = \"a\"\ntransport = \"stdio\"\ncommand = \"no-such-cmd-o1m\"\ncwd = \"/nonexistent-o1m\"\n\
             [[servers]]\nid = \"b\"\ntransport = \"stdio\"\ncommand = \"$self\"\n",
        ));
        assert!(f.errors.is_empty(), "{f:?}");
        assert_eq!(f.warnings.len(), 2, "{f:?}");
        assert!(f.warnings[0].contains("cwd /nonexistent-o1m"));
        assert!(f.warnings[1].contains("`no-such-cmd-o1m` is not on PATH"));
    }

    #[test]
    fn a_listen_address_in_use_warns_and_one_not_here_is_an_error() {
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let mut f = Findings::default();
        listen("127.0.0.1", port, &mut f);
        assert!(f.errors.is_empty());
        assert!(f.warnings[0].contains("is in use now"), "{f:?}");
        let mut f = Findings::default();
        // TEST-NET-1: no interface of this machine has it.
        listen("192.0.2.1", 0, &mut f);
        assert!(
            f.errors[0].contains("cannot listen on 192.0.2.1:0"),
            "{f:?}"
        );
    }
}

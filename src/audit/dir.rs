//! The audit log's directory: `start` creates it when missing, `validate` says beforehand
//! whether it can ([`check_path`]); both name the directory and the fix.

use std::io;
use std::path::Path;

/// The directory the audit log `path` goes in.
fn log_dir(path: &str) -> &Path {
    match Path::new(path).parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

fn cannot_create(dir: &Path, why: &dyn std::fmt::Display) -> anyhow::Error {
    let d = dir.display();
    anyhow::anyhow!(
        "the audit log's directory {d} does not exist and cannot be created ({why}): create it \
         (mkdir -p {d}, owned by the gateway's user) or set audit.path"
    )
}

/// `start` creates the audit log's directory when it is missing (mode 0750, as the user the
/// gateway runs as: a service started as root creating its directory under /var/log is
/// normal; under the systemd unit, `LogsDirectory=` has made it already).
pub fn create(path: &str) -> anyhow::Result<()> {
    let dir = log_dir(path);
    if path == "-" || dir.exists() {
        return Ok(());
    }
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(dir)
        .map_err(|e| cannot_create(dir, &e))?;
    tracing::info!(dir = %dir.display(), "created the audit log's directory");
    Ok(())
}

/// What `start` would refuse about `audit.path`, checked as the user running `validate`:
/// `Ok(Some(note))` when the directory is missing but `start` can create it.
pub fn check_path(path: &str) -> anyhow::Result<Option<String>> {
    if path == "-" {
        return Ok(None);
    }
    let dir = log_dir(path);
    let d = dir.display();
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => anyhow::bail!("audit.path {path}: {d} is not a directory"),
        Ok(_) => {
            let target = if Path::new(path).exists() {
                Path::new(path)
            } else {
                dir
            };
            writable(target).map_err(|e| {
                anyhow::anyhow!(
                    "the audit log {path} cannot be written ({e}): give the gateway's user \
                     write access to {} or set audit.path",
                    target.display()
                )
            })?;
            Ok(None)
        }
        // Missing, or below a file (ENOTDIR): the nearest existing ancestor decides.
        Err(e)
            if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) =>
        {
            // The nearest existing ancestor must be a directory this user may write in.
            let up = nearest_existing(dir);
            if !up.is_dir() {
                return Err(cannot_create(
                    dir,
                    &format!("{} is not a directory", up.display()),
                ));
            }
            writable(up).map_err(|e| cannot_create(dir, &format!("{}: {e}", up.display())))?;
            Ok(Some(format!(
                "the audit log's directory {d} does not exist yet: start creates it (mode 0750, owned by the user it runs as)"
            )))
        }
        Err(e) => anyhow::bail!("audit.path {path}: cannot check {d}: {e}"),
    }
}

/// The nearest ancestor of `dir` that exists (`dir` itself if it does). A relative path's
/// last ancestor is the working directory (`.`), never `/`.
fn nearest_existing(dir: &Path) -> &Path {
    let mut up = dir;
    while !up.exists() {
        up = match up.parent() {
            Some(p) if p.as_os_str().is_empty() => Path::new("."),
            Some(p) => p,
            None => Path::new("/"),
        };
    }
    up
}

/// `access(W_OK)`: this user may write `p` (a file, or in a directory).
fn writable(p: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
    // SAFETY: access reads the NUL-terminated path we own.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relative_paths_nearest_ancestor_is_the_working_directory() {
        let rel = format!("o1m-missing-{}/logs", std::process::id());
        assert_eq!(nearest_existing(Path::new(&rel)), Path::new("."));
        assert_eq!(
            nearest_existing(Path::new("/nonexistent-o1m/x")),
            Path::new("/")
        );
        let here = std::env::temp_dir();
        assert_eq!(nearest_existing(&here), here.as_path());
    }

    #[test]
    fn a_missing_directory_is_noted_then_created_and_one_below_a_file_is_refused() {
        let base = std::env::temp_dir().join(format!("o1m-auditdir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        let log = base.join("var/log/o1m/audit.jsonl");
        let log = log.to_str().unwrap();
        let note = check_path(log).unwrap().expect("a note: start creates it");
        assert!(
            note.contains("var/log/o1m does not exist yet: start creates it"),
            "{note}"
        );
        create(log).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(base.join("var/log/o1m"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o750 & !umask_bits(), "{mode:o}");
        assert_eq!(check_path(log).unwrap(), None, "exists and is writable");

        let file = base.join("plain");
        std::fs::write(&file, "x").unwrap();
        let below = format!("{}/logs/audit.jsonl", file.display());
        for e in [check_path(&below).unwrap_err(), create(&below).unwrap_err()] {
            let e = e.to_string();
            assert!(e.contains("does not exist and cannot be created"), "{e}");
            assert!(
                e.contains(&format!("mkdir -p {}/logs", file.display())),
                "{e}"
            );
            assert!(e.contains("or set audit.path"), "{e}");
        }
        assert_eq!(check_path("-").unwrap(), None, "stdout needs no directory");
        let _ = std::fs::remove_dir_all(&base);
    }

    /// The process umask, read without changing it (other tests run alongside).
    fn umask_bits() -> u32 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let v = status
            .lines()
            .find_map(|l| l.strip_prefix("Umask:"))
            .expect("Umask: in /proc/self/status");
        u32::from_str_radix(v.trim(), 8).unwrap()
    }
}

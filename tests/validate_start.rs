//! `validate` catches what `start` would refuse, and every example in `config/` starts.
//!
//! Every `config/*.toml` is validated as shipped, then validated and started on a "fresh
//! machine" copy: the file unchanged except that `/var/log/only1mcp` (the audit log's
//! directory in secure.toml) becomes a directory under this test's scratch dir that does not
//! exist yet, so `start` has to create it without the test touching the real /var/log. The
//! listen address is overridden on the command line (`--host 127.0.0.1 --port 0 --cores 1`, as
//! every integration test does). Each copy must start on both drivers and answer `/health`
//! listing every enabled server. Then each start-time refusal gets a config of its own:
//! `validate` exits 2 naming it, and `start` refuses with the same words.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{bin, scratch, Client, DRIVERS};
use sonic_rs::{JsonContainerTrait, JsonValueTrait};

fn validate(file: &Path) -> (i32, String, String) {
    let out: Output = Command::new(bin())
        .arg("validate")
        .arg(file)
        .env_remove("NOTIFY_SOCKET")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A started gateway, or why it did not start (its stderr).
enum Started {
    Up(Child, Client),
    Refused(String),
}

fn start(file: &Path, driver: &str, port_zero: bool, log: &Path) -> Started {
    let mut cmd = Command::new(bin());
    cmd.args(["start", "--config"])
        .arg(file)
        .args(["--cores", "1", "--driver", driver]);
    if port_zero {
        cmd.args(["--host", "127.0.0.1", "--port", "0"]);
    }
    let mut child = cmd
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
    match line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
    {
        Some(addr) => Started::Up(
            child,
            Client {
                addr: addr.to_string(),
            },
        ),
        None => {
            let _ = child.kill();
            let st = child.wait().unwrap();
            let log = std::fs::read_to_string(log).unwrap();
            assert!(!st.success(), "no start line, yet exit 0: {log}");
            Started::Refused(log)
        }
    }
}

/// SIGTERM twice (the second skips a drain grace), then reap; the exit must be clean.
fn stop(mut child: Child, log: &Path) {
    for _ in 0..2 {
        // SAFETY: kill on the pid of a child this test started and has not reaped.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let st = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        st.success(),
        "{st}: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    paths
}

#[test]
fn every_example_validates_then_starts_and_answers_health_on_both_drivers() {
    let examples = examples();
    assert!(examples.len() >= 5, "{examples:?}");
    let path_var = std::env::var("PATH").unwrap_or_default();
    for example in &examples {
        let name = example.file_stem().unwrap().to_string_lossy().into_owned();
        let shipped = std::fs::read_to_string(example).unwrap();
        let cfg = only1mcp_shards::config::parse_str(&shipped, &name).unwrap();
        // As shipped: ok, or refused only for the audit log's directory, with the fix.
        let (rc, out, err) = validate(example);
        match rc {
            0 => assert!(out.contains(": ok ("), "{name}: {out}"),
            2 => assert!(
                err.contains("/var/log/only1mcp does not exist and cannot be created")
                    && err.contains("mkdir -p /var/log/only1mcp")
                    && !err
                        .lines()
                        .any(|l| l.contains("refuse") && !l.contains("audit")),
                "{name}: {err}"
            ),
            _ => panic!("{name}: validate exit {rc}: {err}"),
        }
        // Each stdio command that is not installed here is named, with what happens.
        for s in cfg.servers.iter().filter(|s| s.enabled) {
            let cmd = s.command.as_ref().map(|c| c.get_ref().as_str());
            if let Some(cmd) = cmd.filter(|c| !c.starts_with('$')) {
                let here = path_var
                    .split(':')
                    .any(|d| Path::new(d).join(cmd).is_file());
                let said = err.contains(&format!("command `{cmd}` is not on PATH"));
                assert_eq!(
                    said, !here,
                    "{name}: `{cmd}` on PATH: {here}; stderr: {err}"
                );
            }
        }

        // The fresh-machine copy: validate says start creates the directory, start does.
        let dir = scratch(&format!("examples-{name}"));
        let fresh_log_dir = dir.join("fresh/var/log/only1mcp");
        let _ = std::fs::remove_dir_all(dir.join("fresh"));
        let copy = dir.join(format!("{name}.toml"));
        let text = shipped.replace("/var/log/only1mcp", &fresh_log_dir.display().to_string());
        std::fs::write(&copy, &text).unwrap();
        let audits = cfg.audit.enabled && cfg.audit.path.starts_with("/var/log/only1mcp/");
        let (rc, out, err) = validate(&copy);
        assert_eq!(rc, 0, "{name}: {out}{err}");
        assert_eq!(
            err.contains(&format!(
                "{} does not exist yet: start creates it",
                fresh_log_dir.display()
            )),
            audits,
            "{name}: {err}"
        );
        let ids: Vec<&str> = cfg
            .servers
            .iter()
            .filter(|s| s.enabled)
            .map(|s| s.id.get_ref().as_str())
            .collect();
        for driver in DRIVERS {
            let log = dir.join(format!("{driver}.log"));
            let (child, client) = match start(&copy, driver, true, &log) {
                Started::Up(c, a) => (c, a),
                Started::Refused(log) => panic!("{name} on {driver} did not start: {log}"),
            };
            let health = client.get("/health");
            assert!(
                matches!(health.status, 200 | 503),
                "{name}: {}",
                health.text()
            );
            let v = health.json();
            let listed: Vec<&str> = v["backends"]
                .as_array()
                .unwrap_or_else(|| panic!("{name}: {}", health.text()))
                .iter()
                .filter_map(|b| b["id"].as_str())
                .collect();
            assert_eq!(listed, ids, "{name} on {driver}");
            if audits {
                assert!(
                    fresh_log_dir.is_dir(),
                    "{name}: start created the directory"
                );
            }
            stop(child, &log);
        }
    }
}

/// One start-time refusal: `validate` exits 2 and says `phrase` (and `fix`); `start` refuses
/// with `phrase` too.
fn refused_alike(name: &str, config: &str, phrase: &str, fix: &str) {
    let dir = scratch("refusals");
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, config).unwrap();
    let (rc, out, err) = validate(&file);
    assert_eq!(rc, 2, "{name}: validate passed: {out}{err}");
    assert!(err.contains(phrase), "{name}: validate said: {err}");
    assert!(err.contains(fix), "{name}: no fix in: {err}");
    assert!(err.contains("start would refuse"), "{name}: {err}");
    for driver in DRIVERS {
        let log = dir.join(format!("{name}-{driver}.log"));
        match start(&file, driver, true, &log) {
            Started::Up(child, _) => {
                stop(child, &log);
                panic!("{name}: start did not refuse");
            }
            Started::Refused(log) => assert!(log.contains(phrase), "{name}: start said: {log}"),
        }
    }
}

#[test]
fn validate_names_each_start_time_refusal_and_start_refuses_alike() {
    let dir = scratch("refusals");
    let file = dir.join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let missing = dir.join("missing");
    let _ = std::fs::remove_dir_all(&missing);
    let m = missing.display();
    let jwt = "[auth]\nmode = \"jwt\"\nresource = \"https://mcp.example.com/mcp\"\n\
               authorization_servers = [\"https://issuer.example.com\"]\n[auth.jwt]\n\
               issuer = \"https://issuer.example.com\"\n";
    refused_alike(
        "audit",
        &format!(
            "[audit]\nenabled = true\npath = \"{}/logs/audit.jsonl\"\n",
            file.display()
        ),
        &format!(
            "{}/logs does not exist and cannot be created",
            file.display()
        ),
        "or set audit.path",
    );
    refused_alike(
        "tls",
        &format!("[server.tls]\ncert = \"{m}/cert.pem\"\nkey = \"{m}/key.pem\"\n"),
        &format!("server.tls.cert: cannot read {m}/cert.pem"),
        "server.tls.cert",
    );
    refused_alike(
        "pem",
        &format!("{jwt}algorithms = [\"RS256\"]\nkeys = [{{ kid = \"k1\", alg = \"RS256\", pem_file = \"{m}/k1.pem\" }}]\n"),
        &format!("auth.jwt.keys `k1`: cannot read {m}/k1.pem"),
        "auth.jwt.keys",
    );
    refused_alike(
        "secret",
        &format!("{jwt}algorithms = [\"HS256\"]\nsecret_env = \"O1M_TEST_SECRET_NEVER_SET\"\n"),
        "environment variable O1M_TEST_SECRET_NEVER_SET is not set",
        "auth.jwt.secret_env",
    );
    refused_alike(
        "dns",
        "[[servers]]\nid = \"far\"\ntransport = \"http\"\nurl = \"http://no-such-host.invalid:9/mcp\"\n",
        "cannot resolve `no-such-host.invalid:9`",
        "set enabled = false",
    );
    refused_alike(
        "metrics",
        &format!("[metrics]\nsocket = \"{m}/metrics.sock\"\n"),
        &format!("{m}/metrics.sock"),
        "create it or set [metrics] socket",
    );
}

/// The listen address in use: `validate` warns (it may be this gateway, running, before a
/// reload) and `start` refuses.
#[test]
fn a_listen_address_in_use_is_a_warning_in_validate_and_a_refusal_in_start() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let dir = scratch("in-use");
    let file = dir.join("in-use.toml");
    std::fs::write(
        &file,
        format!("[server]\nhost = \"127.0.0.1\"\nport = {port}\n"),
    )
    .unwrap();
    let (rc, _, err) = validate(&file);
    assert_eq!(rc, 0, "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{port} is in use now")),
        "{err}"
    );
    for driver in DRIVERS {
        let log = dir.join(format!("{driver}.log"));
        match start(&file, driver, false, &log) {
            Started::Up(child, _) => {
                stop(child, &log);
                panic!("start did not refuse");
            }
            Started::Refused(log) => assert!(
                log.contains(&format!("cannot listen on 127.0.0.1:{port}")),
                "{log}"
            ),
        }
    }
}

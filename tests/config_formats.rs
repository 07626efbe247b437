//! Config formats, client config shapes, `config import` and `${VAR}` substitution, through
//! the real binary: one catalog in TOML, YAML and JSON serves the same tools; the Claude
//! Desktop, Cursor (`.mcp.json`) and VS Code (`mcp.json`) fixtures start unchanged; what
//! `config import` prints starts and serves the same tools; secrets from the environment and
//! from `${file:}` reach the backends but never the logs, `/health`, `/metrics`, the metrics
//! socket, `validate` or reload errors; bad input (alias bombs, a 10 MB file, unknown keys and
//! types) fails fast with file, line and key. Gateways run on both drivers, on port 0.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{DemoHttp, Gateway, DRIVERS};
use sonic_rs::{JsonContainerTrait, JsonValueTrait};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(name)
}

/// Runs the binary; `(exit code, stdout, stderr)`.
fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(common::bin())
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every tool the gateway lists, as `name schema` lines, sorted.
fn tools(gw: &Gateway) -> Vec<String> {
    let sid = gw.initialize();
    let r = gw.post(
        &[("mcp-session-id", &sid)],
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}"#,
    );
    let v = r.answer();
    let mut out: Vec<String> = v["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools: {v:?}"))
        .iter()
        .map(|t| {
            let name = t["name"].as_str().unwrap_or_default();
            format!("{name} {}", sonic_rs::to_string(&t["inputSchema"]).unwrap())
        })
        .collect();
    out.sort();
    out
}

/// The text of a tool call's first content block.
fn call_text(gw: &Gateway, tool: &str, args: &str) -> String {
    let sid = gw.initialize();
    let v = gw.call(&sid, tool, args);
    v["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{tool}: {v:?}"))
        .to_string()
}

#[test]
fn one_catalog_in_three_formats_serves_the_same_tools() {
    for driver in DRIVERS {
        let mut seen: Vec<(String, Vec<String>)> = Vec::new();
        for file in ["catalog.toml", "catalog.yaml", "catalog.json"] {
            // `${BETA_NAME:-beta}`: the default, then a set variable.
            let env: &[(&str, &str)] = if file.ends_with("json") {
                &[("BETA_NAME", "gamma")]
            } else {
                &[]
            };
            let gw = Gateway::start_files(&[fixture(file)], env, driver, 1, &["alpha", "beta"]);
            let list = tools(&gw);
            assert!(list.iter().any(|t| t.starts_with("beta__say ")), "{list:?}");
            assert!(
                !list.iter().any(|t| t.starts_with("beta__sleep ")),
                "{list:?}"
            );
            let name = call_text(&gw, "beta__whoami", "{}");
            let want = if env.is_empty() { "beta" } else { "gamma" };
            assert!(name.contains(want), "{file}: {name}");
            seen.push((file.to_string(), list));
        }
        for (file, list) in &seen[1..] {
            assert_eq!(
                list, &seen[0].1,
                "{driver}: {file} differs from {}",
                seen[0].0
            );
        }
    }
}

/// A client fixture: its file, the env it needs and the servers that must come up.
type ClientFixture = (&'static str, Vec<(&'static str, String)>, Vec<&'static str>);

/// The three client fixtures.
fn client_fixtures(remote: &str) -> Vec<ClientFixture> {
    let url = format!("http://{remote}/mcp");
    vec![
        (
            "claude_desktop_config.json",
            vec![],
            vec!["demo_files", "github_tools"],
        ),
        (
            "cursor/.mcp.json",
            vec![
                ("REMOTE_URL", url.clone()),
                ("REMOTE_TOKEN", "cursor-fake-token-1234".into()),
                ("CURSOR_API_KEY", "cursor-fake-key".into()),
            ],
            vec!["local", "remote"],
        ),
        (
            "vscode/mcp.json",
            vec![
                ("REMOTE_URL", url),
                ("REMOTE_TOKEN", "vscode-fake-token-5678".into()),
            ],
            vec!["memory", "remote-api"],
        ),
    ]
}

#[test]
fn client_config_files_start_unchanged_and_their_import_serves_the_same_tools() {
    let remote = DemoHttp::start("127.0.0.1:0", "remote");
    let dir = common::scratch("import");
    for driver in DRIVERS {
        for (file, env, ready) in client_fixtures(&remote.addr) {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let gw = Gateway::start_files(&[fixture(file)], &env, driver, 1, &ready);
            let direct = tools(&gw);
            for id in &ready {
                let echo = format!("{id}__echo ");
                assert!(
                    direct.iter().any(|t| t.starts_with(&echo)),
                    "{file}: {direct:?}"
                );
            }
            assert!(
                !direct.iter().any(|t| t.starts_with("puppeteer__")),
                "{direct:?}"
            );
            if let Some((_, token)) = env.iter().find(|(k, _)| *k == "REMOTE_TOKEN") {
                let remote_id = ready[1];
                let headers = call_text(&gw, &format!("{remote_id}__headers"), "{}");
                assert!(
                    headers.contains(&format!("Bearer {token}")),
                    "{file}: the header did not arrive substituted: {headers}"
                );
            }
            drop(gw);
            for format in ["toml", "yaml", "json"] {
                let (code, out, err) = run(
                    &[
                        "config",
                        "import",
                        fixture(file).to_str().unwrap(),
                        "--format",
                        format,
                    ],
                    &[],
                );
                assert_eq!(code, 0, "{file} --format {format}: {err}");
                assert!(
                    !out.contains("cursor-fake") && !out.contains("vscode-fake"),
                    "{out}"
                );
                let imported = dir.join(format!("{}-{driver}.{format}", file.replace('/', "_")));
                std::fs::write(&imported, &out).unwrap();
                let gw = Gateway::start_files(&[imported], &env, driver, 1, &ready);
                assert_eq!(tools(&gw), direct, "{file} imported as {format}:\n{out}");
            }
        }
    }
}

#[test]
fn import_keeps_disabled_entries_env_and_headers_and_warns_on_renames() {
    let (code, out, err) = run(
        &[
            "config",
            "import",
            fixture("claude_desktop_config.json").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("id = \"puppeteer\"") && out.contains("enabled = false"),
        "{out}"
    );
    assert!(
        out.contains("GITHUB_PERSONAL_ACCESS_TOKEN = \"ghp_FAKE"),
        "{out}"
    );
    assert!(err.contains("claude_desktop_config.json:10:5: key `mcpServers.\"github.tools\"`: server name `github.tools` becomes id `github_tools`"), "{err}");
    let (code, out, _) = run(
        &[
            "config",
            "import",
            fixture("cursor/.mcp.json").to_str().unwrap(),
            "--format",
            "yaml",
        ],
        &[],
    );
    assert_eq!(code, 0);
    assert!(
        out.contains("Authorization: \"Bearer ${REMOTE_TOKEN}\""),
        "{out}"
    );
}

/// Reads the metrics socket for `for_ms`.
fn socket_text(path: &Path, for_ms: u64) -> String {
    use std::io::Read;
    let mut s = std::os::unix::net::UnixStream::connect(path).expect("metrics socket");
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_millis(for_ms);
    let mut buf = [0u8; 65536];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn secrets_reach_backends_but_never_logs_health_socket_validate_or_errors() {
    const TOKEN: &str = "tok-Zq8vX2-never-shown";
    const ENV_SECRET: &str = "env-Kp3wR7-never-shown";
    const FILE_SECRET: &str = "file-M9nL4-never-shown";
    const REDIS_PW: &str = "redis-Pw5T-never-shown";
    let secrets = [TOKEN, ENV_SECRET, FILE_SECRET, REDIS_PW];
    let remote = DemoHttp::start("127.0.0.1:0", "remote");
    for driver in DRIVERS {
        let dir = common::scratch(&format!("secrets-{driver}"));
        std::fs::write(dir.join("secret.txt"), format!("{FILE_SECRET}\n")).unwrap();
        let socket = dir.join("m.sock");
        let _ = std::fs::remove_file(&socket);
        let yaml = format!(
            "metrics:\n  socket: {socket}\nservers:\n  - id: remote\n    transport: http\n    url: http://{addr}/mcp\n    headers:\n      Authorization: Bearer ${{TEST_TOKEN}}\n      X-File: ${{file:secret.txt}}\n  - id: local\n    transport: stdio\n    command: $self\n    args: [demo-server, --stdio, --name, local]\n    env:\n      API_KEY: ${{TEST_ENV_SECRET}}\n",
            socket = socket.display(),
            addr = remote.addr
        );
        let cfg = dir.join("gw.yaml");
        std::fs::write(&cfg, &yaml).unwrap();
        let env = [
            ("TEST_TOKEN", TOKEN),
            ("TEST_ENV_SECRET", ENV_SECRET),
            ("TEST_REDIS_PW", REDIS_PW),
            ("ONLY1MCP_LOG", "debug"),
        ];
        let gw = Gateway::start_files(
            std::slice::from_ref(&cfg),
            &env,
            driver,
            1,
            &["remote", "local"],
        );
        let headers = call_text(&gw, "remote__headers", "{}");
        assert!(headers.contains(&format!("Bearer {TOKEN}")), "{headers}");
        assert!(headers.contains(FILE_SECRET), "{headers}");
        let mut seen = vec![
            ("/health".to_string(), gw.get("/health").text()),
            ("/metrics".to_string(), gw.get("/metrics").text()),
        ];
        // A reload that fails on a value made of a secret: the error is logged.
        std::fs::write(&cfg, format!("{yaml}    timeout_ms: ${{TEST_TOKEN}}\n")).unwrap();
        gw.signal(libc::SIGHUP);
        let deadline = Instant::now() + Duration::from_secs(15);
        while !gw.log().contains("reload rejected") {
            assert!(Instant::now() < deadline, "no reload error: {}", gw.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        seen.push(("socket".into(), socket_text(&socket, 1500)));
        seen.push(("log".into(), gw.log()));
        assert!(gw.log().contains("servers[1].timeout_ms"), "{}", gw.log());
        drop(gw);
        // validate, on a good file and on files whose errors would quote the secrets.
        let bad_redis = dir.join("redis.toml");
        std::fs::write(
            &bad_redis,
            "[rate_limit]\nrequests_per_s = 1.0\nburst = 1\nstore = \"redis\"\nredis_url = \"redis://:${TEST_REDIS_PW}@127.0.0.1:99999\"\n",
        )
        .unwrap();
        let bad_port = dir.join("port.toml");
        std::fs::write(&bad_port, "[server]\nport = \"${TEST_TOKEN}\"\n").unwrap();
        for file in [&cfg, &bad_redis, &bad_port] {
            let (_, out, err) = run(&["validate", file.to_str().unwrap()], &env);
            seen.push((
                format!("validate {}", file.display()),
                format!("{out}{err}"),
            ));
        }
        let (_, _, err) = run(&["validate", bad_port.to_str().unwrap()], &env);
        assert!(
            err.contains("port.toml:2:8: key `server.port`") && err.contains("***"),
            "{err}"
        );
        let (code, _, err) = run(&["validate", bad_redis.to_str().unwrap()], &env);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("redis_url"), "{err}");
        for (place, text) in &seen {
            assert!(!text.is_empty(), "{place} is empty");
            for s in secrets {
                assert!(
                    !text.contains(s),
                    "{driver}: secret {s} in {place}:\n{text}"
                );
            }
        }
    }
}

#[test]
fn reload_rereads_every_config_file_and_secret_files() {
    let remote = DemoHttp::start("127.0.0.1:0", "remote");
    for driver in DRIVERS {
        let dir = common::scratch(&format!("reload-files-{driver}"));
        std::fs::write(dir.join("secret.txt"), "first-value\n").unwrap();
        let a = dir.join("a.toml");
        std::fs::write(
            &a,
            format!(
                "[metrics]\nsocket_enabled = false\n{}",
                common::demo_stdio("alpha", "")
            ),
        )
        .unwrap();
        let b = dir.join("b.json");
        let client = |extra: &str| {
            format!(
                r#"{{"mcpServers": {{"remote": {{"url": "http://{}/mcp", "headers": {{"X-Secret": "${{file:secret.txt}}"}}}}{extra}}}}}"#,
                remote.addr
            )
        };
        std::fs::write(&b, client("")).unwrap();
        let gw = Gateway::start_files(
            &[a.clone(), b.clone()],
            &[],
            driver,
            1,
            &["alpha", "remote"],
        );
        assert!(call_text(&gw, "remote__headers", "{}").contains("first-value"));
        std::fs::write(dir.join("secret.txt"), "second-value\n").unwrap();
        let extra = r#", "beta": {"command": "$self", "args": ["demo-server", "--stdio", "--name", "beta"]}"#;
        std::fs::write(&b, client(extra)).unwrap();
        gw.signal(libc::SIGHUP);
        gw.wait_ready(&["beta", "remote"], Duration::from_secs(30));
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let h = call_text(&gw, "remote__headers", "{}");
            if h.contains("second-value") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "secret file not re-read: {h}\n{}",
                gw.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // An id used in both files: the reload is refused naming both, the config stays.
        std::fs::write(&b, client(r#", "alpha": {"command": "x"}"#)).unwrap();
        gw.signal(libc::SIGHUP);
        let deadline = Instant::now() + Duration::from_secs(15);
        while !gw.log().contains("is used in two files") {
            assert!(Instant::now() < deadline, "{}", gw.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            gw.log().contains("a.toml:4") && gw.log().contains("b.json:1"),
            "{}",
            gw.log()
        );
        assert!(
            gw.get("/health").json()["backends"]
                .as_array()
                .unwrap()
                .len()
                == 3
        );
    }
}

#[test]
fn bad_config_input_fails_fast_with_file_line_and_key() {
    let path = |f: &str| fixture(f).to_str().unwrap().to_string();
    let validate = |files: &[String], env: &[(&str, &str)]| {
        let mut args = vec!["validate"];
        args.extend(files.iter().map(String::as_str));
        run(&args, env)
    };
    let started = Instant::now();
    let (code, _, err) = validate(&[path("bad/lol.yaml")], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("lol.yaml:") && err.contains("alias bomb"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    let dir = common::scratch("bad-config");
    let big = dir.join("big.toml");
    let mut text = String::from("# padding\n");
    while text.len() < 10 * 1024 * 1024 {
        text.push_str(
            "# ........................................................................\n",
        );
    }
    std::fs::write(&big, text).unwrap();
    let (code, _, err) = run(
        &["start", "--config", big.to_str().unwrap(), "--port", "0"],
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("big.toml: config file is larger than 1048576 bytes"),
        "{err}"
    );

    let cases: &[(&str, &str)] = &[
        ("bad/no-command.json", "no-command.json:4:15: key `mcpServers.broken`: has neither `command`"),
        ("bad/unknown-type.json", "unknown-type.json:3:21: key `mcpServers.ws.type`: unknown type `websocket`"),
        ("bad/unknown-key.yaml", "unknown-key.yaml:6:5: key `servers[0].comand`: unknown field `comand`"),
        ("bad/bad-value.json", "bad-value.json:4:70: key `servers[0].timeout_ms`: invalid type: string \"soon\", expected u64"),
        ("bad/vscode-input.json", "vscode-input.json:10:38: key `servers.perplexity.env.PERPLEXITY_API_KEY`: `${input:perplexity-key}` is a VS Code prompt"),
        ("cursor/.mcp.json", ".mcp.json:13:14: key `mcpServers.remote.url`: environment variable `REMOTE_URL` is not set"),
    ];
    for (file, want) in cases {
        let (code, _, err) = validate(
            &[path(file)],
            &[("CURSOR_API_KEY", "k"), ("REMOTE_TOKEN", "t")],
        );
        assert_eq!(code, 2, "{file}: {err}");
        assert!(err.contains(want), "{file}: want {want:?} in:\n{err}");
    }

    // JSON with comments and trailing commas is read (VS Code writes it); a broken comment is not.
    let env = [
        ("REMOTE_URL", "http://127.0.0.1:1/mcp"),
        ("REMOTE_TOKEN", "t"),
    ];
    let (code, out, err) = validate(&[path("vscode/mcp.json")], &env);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ok (2 servers)"), "{out}");
    let open = dir.join("open.json");
    std::fs::write(&open, "{\n  \"servers\": [] /* never closed\n}\n").unwrap();
    let (code, _, err) = validate(&[open.display().to_string()], &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("open.json:2:17: unterminated /* comment"),
        "{err}"
    );

    // Two files that set one key, or one server id: both files named.
    let (code, _, err) = validate(&[path("catalog.toml"), path("catalog.json")], &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("`proxy.tool_separator` is set in two files:"),
        "{err}"
    );
    assert!(
        err.contains("server id `alpha` is used in two files:") && err.contains("catalog.toml:10"),
        "{err}"
    );
}

//! Tests for config parsing and validation: every rule, and that each error names the right
//! line and key in one line of text.

use super::*;

/// A valid stdio server entry, 4 lines long.
pub(super) const STDIO: &str = "[[servers]]\nid = \"a\"\ntransport = \"stdio\"\ncommand = \"x\"\n";

fn err(text: &str) -> ConfigError {
    match parse_str(text, "t.toml") {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => e,
    }
}

/// Assert the first error is on `line`, for `key`, and its message contains `msg`.
fn check(text: &str, line: usize, key: &str, msg: &str) {
    let e = err(text);
    let shown = e.to_string();
    assert_eq!((e.line, e.key.as_str()), (line, key), "{shown}");
    assert!(e.message.contains(msg), "{shown}");
    assert!(
        shown.starts_with(&format!("t.toml:{line}:{}: key `{key}`: ", e.column)),
        "{shown}"
    );
    assert!(!shown.contains('\n'), "{shown}");
}

/// Assert each `(text, line, key, message part)` case fails as described.
pub(super) fn check_all(cases: &[(&str, usize, &str, &str)]) {
    for (text, line, key, msg) in cases {
        check(text, *line, key, msg);
    }
}

/// Assert `text` is a valid config.
pub(super) fn ok(text: &str) {
    if let Err(e) = parse_str(text, "t.toml") {
        panic!("{e}");
    }
}

/// `STDIO` with the id `a` replaced by `id`.
fn with_id(id: &str) -> String {
    STDIO.replace("\"a\"", &format!("{id:?}"))
}

/// An http server `b` with the given extra lines (starting on line 4).
pub(super) fn http(extra: &str) -> String {
    format!("[[servers]]\nid = \"b\"\ntransport = \"http\"\n{extra}")
}

#[test]
fn line_col_counts_from_one_in_characters() {
    let text = "ab\nçd\n";
    assert_eq!(line_col(text, 0), (1, 1));
    assert_eq!(line_col(text, 3), (2, 1));
    assert_eq!(line_col(text, 5), (2, 2)); // after the two-byte `ç`
    assert_eq!(line_col(text, 4), (2, 1)); // inside `ç`
    assert_eq!(line_col(text, 999), (3, 1));
}

#[test]
fn display_is_one_line_and_drops_unknown_parts() {
    let mut e = ConfigError {
        file: "f.toml".into(),
        line: 3,
        column: 7,
        key: "servers[1].url".into(),
        message: "bad".into(),
    };
    assert_eq!(e.to_string(), "f.toml:3:7: key `servers[1].url`: bad");
    e.line = 0;
    assert_eq!(e.to_string(), "f.toml: key `servers[1].url`: bad");
    e.key.clear();
    assert_eq!(e.to_string(), "f.toml: bad");
}

#[test]
fn empty_file_is_all_defaults() {
    let c = parse_str("", "t.toml").unwrap();
    assert!(c.servers.is_empty());
    assert_eq!(
        (c.server.host.as_str(), c.server.port, c.server.cores),
        ("127.0.0.1", 8080, 0)
    );
    assert_eq!(c.server.driver, DriverChoice::Auto);
    assert_eq!(c.proxy.tool_separator, "__");
    assert_eq!(c.proxy.request_timeout_ms, 30_000);
    assert_eq!(
        c.server.drain_grace_ms, 0,
        "no drain grace unless asked for"
    );
}

#[test]
fn valid_full_config() {
    let text = r#"
[server]
host = "0.0.0.0"
port = 9090
cores = 4
driver = "epoll"
uring_entries = 4096
max_body_bytes = 1048576
max_header_bytes = 8192
idle_timeout_ms = 30000
read_timeout_ms = 5000
shutdown_grace_ms = 1000
allowed_origins = ["https://app.example.com"]
allowed_hosts = ["gw.internal:9090"]

[proxy]
tool_separator = "."
request_timeout_ms = 60000
connect_timeout_ms = 2000

[[servers]]
id = "everything"
transport = "stdio"
command = "npx"
args = ["-y", "@modelcontextprotocol/server-everything"]
env = { DEBUG = "1" }
cwd = "/tmp"
timeout_ms = 1000
prefix = false

[[servers]]
id = "search_2"
transport = "http"
url = "http://127.0.0.1:9001/mcp"
urls = ["http://search-b:9001/mcp?x=1", "http://[::1]:9002", "http://10.0.0.7/"]
headers = { Authorization = "Bearer x" }
enabled = false

[[servers]]
id = "demo"
transport = "stdio"
command = "$self"
args = ["demo-server", "--stdio"]
"#;
    let c = parse_str(text, "t.toml").unwrap();
    assert_eq!(c.server.driver, DriverChoice::Epoll);
    assert_eq!(c.servers.len(), 3);
    assert!(!c.servers[0].prefix && c.servers[0].enabled);
    assert_eq!(c.servers[0].timeout_ms(&c.proxy), 1000);
    assert_eq!(c.servers[1].replica_urls().len(), 4);
    assert!(!c.servers[1].enabled);
    assert_eq!(
        c.servers[2].command.as_ref().unwrap().get_ref(),
        SELF_COMMAND
    );
    assert_eq!(c.servers[2].timeout_ms(&c.proxy), 60_000);
}

#[test]
fn unknown_keys_name_their_full_path() {
    check_all(&[
        ("\nfoo = 1\n", 2, "foo", "unknown field `foo`"),
        (
            "[server]\nport = 1\nhostt = \"x\"\n",
            3,
            "server.hostt",
            "unknown field `hostt`",
        ),
        (
            "[proxy]\nsep = \"x\"\n",
            2,
            "proxy.sep",
            "unknown field `sep`",
        ),
    ]);
    let two = format!("{STDIO}{}", http("urll = \"http://h/\"\n"));
    check(&two, 8, "servers[1].urll", "unknown field `urll`");
    let inline = "servers = [{ id = \"a\", transport = \"stdio\", bogus = 1 }]\n";
    check(inline, 1, "servers[0].bogus", "unknown field `bogus`");
}

#[test]
fn wrong_types_and_values() {
    check_all(&[
        (
            "[server]\nport = \"abc\"\n",
            2,
            "server.port",
            "invalid type",
        ),
        ("[server]\nport = 70000\n", 2, "server.port", "70000"),
        (
            "[server]\ndriver = \"fast\"\n",
            2,
            "server.driver",
            "unknown variant `fast`",
        ),
        ("server = 5\n", 1, "server", "invalid type"),
        (
            "[[servers]]\nid = \"a\"\ntransport = \"ftp\"\n",
            3,
            "servers[0].transport",
            "ftp",
        ),
        (
            "[[servers]]\nid = \"a\"\n",
            1,
            "servers[0].transport",
            "missing field `transport`",
        ),
        (
            "[server]\nport = 1\nport = 2\n",
            3,
            "server.port",
            "duplicate key",
        ),
    ]);
}

#[test]
fn not_toml_at_all() {
    let e = err("this is not toml\n");
    assert_eq!(e.line, 1);
    let shown = e.to_string();
    assert!(shown.starts_with("t.toml:1:"), "{shown}");
    assert!(!shown.contains('\n'), "{shown}");
    let e = err("{\"json\": true}");
    assert_eq!(e.line, 1, "{e}");
}

#[test]
fn server_ids() {
    let dup = format!("{STDIO}\n{STDIO}");
    let first = "duplicate server id `a` (first used by servers[0] on line 2)";
    let sep = format!("[proxy]\ntool_separator = \"-\"\n\n{}", with_id("x-y"));
    let chars = "1 to 32 characters of A-Z a-z 0-9 _ -";
    check_all(&[
        (&dup, 7, "servers[1].id", first),
        (&with_id("a b"), 2, "servers[0].id", chars),
        (&with_id(""), 2, "servers[0].id", chars),
        (&with_id(&"x".repeat(33)), 2, "servers[0].id", chars),
        (
            &with_id("my__db"),
            2,
            "servers[0].id",
            "contains the tool separator `__`",
        ),
        (&sep, 5, "servers[0].id", "contains the tool separator `-`"),
    ]);
    ok(&with_id(&"x".repeat(32)));
    ok(&with_id("Az09_-"));
}

#[test]
fn tool_separator() {
    let key = "proxy.tool_separator";
    check(
        "[proxy]\ntool_separator = \"\"\n",
        2,
        key,
        "must not be empty",
    );
    check(
        "[proxy]\ntool_separator = \"/\"\n",
        2,
        key,
        "may only contain",
    );
    ok("[proxy]\ntool_separator = \"a.-_\"\n");
}

#[test]
fn stdio_servers() {
    let no_command = "[[servers]]\nid = \"a\"\ntransport = \"stdio\"\n";
    check(no_command, 1, "servers[0].command", "needs `command`");
    let blank = STDIO.replace("\"x\"", "\"  \"");
    check(&blank, 4, "servers[0].command", "must not be empty");
    for line in ["url = \"http://h/\"", "urls = []", "headers = {}"] {
        let key = format!("servers[0].{}", line.split(' ').next().unwrap());
        check(
            &format!("{STDIO}{line}\n"),
            5,
            &key,
            "only for http servers",
        );
    }
}

#[test]
fn http_servers_need_a_url() {
    check(&http(""), 1, "servers[0].url", "needs `url`");
    check(&http("urls = []\n"), 4, "servers[0].urls", "needs `url`");
    for line in [
        "command = \"x\"",
        "args = []",
        "env = { A = \"1\" }",
        "cwd = \"/\"",
    ] {
        let key = format!("servers[0].{}", line.split(' ').next().unwrap());
        check(
            &http(&format!("url = \"http://h/\"\n{line}\n")),
            5,
            &key,
            "only for stdio servers",
        );
    }
}

/// URLs the strict parser must refuse.
const BAD_URLS: &[&str] = &[
    "http://",
    "http://h:0/",
    "http://h:65536/",
    "http://h:/",
    "http://h:8a/",
    "http://a b/",
    "http://u@h/",
    "http://h?x",
    "http://h/#f",
    "http://[::1/",
    "http://[zz]/",
    "http://1.2.3/",
    "http://-h/",
    "http://h..x/",
    "HTTP://h/",
    "h:80/mcp",
    "http://h/ü",
    "http://[::1]x/",
];

#[test]
fn http_urls_are_strict() {
    check(
        &http("url = \"https://h/mcp\"\n"),
        4,
        "servers[0].url",
        "https backends need TLS",
    );
    let second = http("urls = [\n  \"http://ok/\",\n  \"ftp://h/\",\n]\n");
    check(&second, 6, "servers[0].urls[1]", "not an http:// URL");
    for url in BAD_URLS {
        assert!(parse_http_url(url).is_err(), "{url} should be rejected");
        let e = err(&http(&format!("url = \"{url}\"\n")));
        assert_eq!((e.line, e.key.as_str()), (4, "servers[0].url"), "{e}");
    }
    let u = parse_http_url("http://Search-1.example:65535/a/b?c=d").unwrap();
    assert_eq!(
        (u.host.as_str(), u.port, u.path.as_str()),
        ("Search-1.example", 65535, "/a/b?c=d")
    );
    let u = parse_http_url("http://[::1]").unwrap();
    assert_eq!((u.host.as_str(), u.port, u.path.as_str()), ("::1", 80, "/"));
    assert_eq!(u.authority(), "[::1]:80");
    assert_eq!(
        parse_http_url("http://10.1.2.3:9/").unwrap().authority(),
        "10.1.2.3:9"
    );
}

#[test]
fn backend_pointing_at_the_gateway() {
    let msg = "backend points at the gateway itself";
    check(
        &http("url = \"http://localhost:8080/mcp\"\n"),
        4,
        "servers[0].url",
        msg,
    );
    check(
        &http("urls = [\"http://0.0.0.0:8080\"]\n"),
        4,
        "servers[0].urls[0]",
        msg,
    );
    let own = format!(
        "[server]\nhost = \"10.0.0.5\"\nport = 80\n\n{}",
        http("url = \"http://10.0.0.5/\"\n")
    );
    check(&own, 8, "servers[0].url", msg);
    ok(&http("url = \"http://127.0.0.1:8081/\"\n"));
    let any_port = format!(
        "[server]\nport = 0\n{}",
        http("url = \"http://127.0.0.1:8080/\"\n")
    );
    ok(&any_port);
}

#[test]
fn server_section_limits() {
    check(
        "[server]\ncores = 1025\n",
        2,
        "server.cores",
        "at most 1024",
    );
    ok("[server]\ncores = 1024\n");
    check(
        "[server]\nmax_body_bytes = 1023\n",
        2,
        "server.max_body_bytes",
        "at least 1024",
    );
    check(
        "[server]\nmax_header_bytes = 10\n",
        2,
        "server.max_header_bytes",
        "at least 1024",
    );
    for bad in [0, 1, 3, 1000, 65536] {
        let text = format!("[server]\nuring_entries = {bad}\n");
        check(
            &text,
            2,
            "server.uring_entries",
            "power of two from 2 to 32768",
        );
    }
    for good in [2, 64, 32768] {
        ok(&format!("[server]\nuring_entries = {good}\n"));
    }
    for bad in [0, 10_000_001] {
        check(
            &format!("[server]\nmax_sessions = {bad}\n"),
            2,
            "server.max_sessions",
            "must be 1 to 10000000",
        );
    }
    check(
        "[server]\nmax_sessions = 10\nmax_sessions_per_principal = 11\n",
        3,
        "server.max_sessions_per_principal",
        "at most server.max_sessions (10)",
    );
    ok("[server]\nmax_sessions = 10\nmax_sessions_per_principal = 10\n");
    for bad in [0, 10_000_001] {
        check(
            &format!("[server]\nmax_listens = {bad}\n"),
            2,
            "server.max_listens",
            "must be 1 to 10000000",
        );
    }
    check(
        "[server]\nmax_listens = 10\nmax_listens_per_principal = 11\n",
        3,
        "server.max_listens_per_principal",
        "at most server.max_listens (10)",
    );
    ok("[server]\nmax_listens = 10\nmax_listens_per_principal = 10\n");
    check(
        "[server]\ndrain_grace_ms = 3600001\n",
        2,
        "server.drain_grace_ms",
        "must be from 0 to 3600000 ms",
    );
    for good in [0, 2000, 3_600_000] {
        let c = parse_str(&format!("[server]\ndrain_grace_ms = {good}\n"), "t.toml").unwrap();
        assert_eq!(c.server.drain_grace_ms, good);
    }
    check(
        "[server]\nhost = \"\"\n",
        2,
        "server.host",
        "must not be empty",
    );
}

#[test]
fn metrics_socket_path_is_checked() {
    check(
        &format!("[metrics]\nsocket = \"/tmp/{}\"\n", "x".repeat(120)),
        2,
        "metrics.socket",
        "must be a path of 1 to 107 bytes",
    );
    check(
        "[metrics]\nsockets = 1\n",
        2,
        "metrics.sockets",
        "unknown field `sockets`",
    );
    ok("[metrics]\nsocket = \"/run/o1m.sock\"\nsocket_enabled = false\n");
}

#[test]
fn spawn_cap_is_checked() {
    check(
        "[proxy]\nmax_concurrent_spawns = 0\n",
        2,
        "proxy.max_concurrent_spawns",
        "must be 1 to 1024, got 0",
    );
    ok("[proxy]\nmax_concurrent_spawns = 2\n");
}

#[test]
fn timeouts() {
    let msg = "must be from 1 to 3600000 ms";
    check(
        "[proxy]\nrequest_timeout_ms = 0\n",
        2,
        "proxy.request_timeout_ms",
        msg,
    );
    check(
        "[proxy]\nconnect_timeout_ms = 3600001\n",
        2,
        "proxy.connect_timeout_ms",
        msg,
    );
    check(
        &format!("{STDIO}timeout_ms = 0\n"),
        5,
        "servers[0].timeout_ms",
        msg,
    );
    ok(&format!("{STDIO}timeout_ms = 3600000\n"));
}

#[test]
fn all_errors_come_in_file_order() {
    let text = "[server]\ncores = 2000\n[proxy]\nrequest_timeout_ms = 0\n";
    let errors = parse_str_all(text, "t.toml").unwrap_err();
    let keys: Vec<_> = errors.iter().map(|e| (e.line, e.key.as_str())).collect();
    assert_eq!(keys, [(2, "server.cores"), (4, "proxy.request_timeout_ms")]);
}

#[test]
fn load_file_names_the_file() {
    let dir = std::env::temp_dir().join(format!("only1mcp-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("missing.toml");
    let e = load_file(&missing).unwrap_err();
    assert_eq!(
        (e.line, e.file.as_str()),
        (0, missing.display().to_string().as_str())
    );
    assert!(e.to_string().contains("cannot read config file"), "{e}");
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[server]\nport = \"x\"\n").unwrap();
    let e = load_file(&bad).unwrap_err();
    assert!(
        e.to_string().starts_with(&format!("{}:2:", bad.display())),
        "{e}"
    );
    std::fs::write(&bad, STDIO).unwrap();
    assert_eq!(load_file(&bad).unwrap().servers.len(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn breaker_balance_key_and_canary_settings_are_checked() {
    check_all(&[
        (
            &format!("{STDIO}balance_key = \"cookie:x\"\n"),
            5,
            "servers[0].balance_key",
            "is not a balance key",
        ),
        (
            &format!("{STDIO}balance_key = \"header:\"\n"),
            5,
            "servers[0].balance_key",
            "is not a balance key",
        ),
        (
            &format!("{STDIO}breaker_failure_rate = 1.5\n"),
            5,
            "servers[0].breaker_failure_rate",
            "ratio above 0",
        ),
        (
            &format!("{STDIO}breaker_window = 65\n"),
            5,
            "servers[0].breaker_window",
            "1 to 64",
        ),
        (
            &format!("{STDIO}breaker_trials = 0\n"),
            5,
            "servers[0].breaker_trials",
            "1 to 1000",
        ),
        (
            &format!("{STDIO}health_canary = {{ tool = \" \" }}\n"),
            5,
            "servers[0].health_canary.tool",
            "must name one of the server's own tools",
        ),
    ]);
    ok(&format!(
        "{STDIO}balance_key = \"claim:sub\"\nbreaker_failure_rate = 0.5\nbreaker_window = 10\nbreaker_trials = 3\nhealth_canary = {{ tool = \"echo\", arguments = {{ text = \"hi\" }} }}\n"
    ));
}

#[test]
fn auth_settings_are_checked() {
    let jwt = "[auth]\nmode = \"jwt\"\nresource = \"http://127.0.0.1:8080/mcp\"\nauthorization_servers = [\"https://idp\"]\n[auth.jwt]\nissuer = \"https://idp\"\njwks_url = \"http://127.0.0.1:9/jwks\"\n";
    check_all(&[
        (
            &format!("{jwt}algorithms = [\"none\"]\n"),
            8,
            "auth.jwt.algorithms",
            "`none` is never accepted",
        ),
        (
            &format!("{jwt}algorithms = [\"RS256\", \"HS256\"]\nsecret_env = \"S\"\n"),
            8,
            "auth.jwt.algorithms",
            "HS256 cannot be combined",
        ),
        (
            &format!("{jwt}algorithms = [\"PS512\"]\n"),
            8,
            "auth.jwt.algorithms",
            "is not one of RS256, ES256, EdDSA, HS256",
        ),
        (
            "[auth]\nmode = \"jwt\"\nauthorization_servers = [\"x\"]\n[auth.jwt]\nalgorithms = [\"RS256\"]\nissuer = \"i\"\njwks_url = \"http://h/j\"\n",
            2,
            "auth.mode",
            "needs auth.resource",
        ),
        (
            "[auth]\nmode = \"api_key\"\n[[auth.api_keys]]\nname = \"bot\"\nsha256 = \"secret-key\"\n",
            5,
            "auth.api_keys[0].sha256",
            "64 hex digits",
        ),
        (
            "[auth]\nmode = \"api_key\"\n",
            2,
            "auth.mode",
            "needs at least one [[auth.api_keys]]",
        ),
        (
            "[auth]\ndefault_roles = [\"ghost\"]\n",
            2,
            "auth.default_roles",
            "role `ghost` is not defined",
        ),
        (
            "[rate_limit]\nburst = 0\n",
            2,
            "rate_limit.burst",
            "at least 1",
        ),
        (
            "[audit]\nmax_bytes = 10\n",
            2,
            "audit.max_bytes",
            "at least 4096",
        ),
    ]);
    ok(&format!("{jwt}algorithms = [\"RS256\", \"ES256\", \"EdDSA\"]\n[[auth.roles]]\nname = \"reader\"\ntools = [\"time__*\"]\n[rate_limit]\nrequests_per_s = 5.0\n[rate_limit.tools]\n\"demo__sleep\" = {{ requests_per_s = 1.0, burst = 2 }}\n[audit]\nenabled = true\npath = \"/tmp/a.jsonl\"\n"));
}

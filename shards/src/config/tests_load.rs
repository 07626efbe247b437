//! Loading several files of several formats: merge, client shapes, substitution, masking.

use std::path::Path;

use super::load::{load_inputs, Expand, Input};
use super::{ConfigError, Format, Loaded};

fn env(name: &str) -> Option<String> {
    match name {
        "TOKEN" => Some("tok-secret-1234".into()),
        "PORT" => Some("not-a-port-secret".into()),
        _ => None,
    }
}

fn load(files: &[(&str, &str)]) -> Result<Loaded, Vec<ConfigError>> {
    let inputs: Vec<Input<'_>> = files
        .iter()
        .map(|(name, text)| Input {
            name: name.to_string(),
            text,
            format: Format::of_path(Path::new(name)),
            dir: Path::new("."),
        })
        .collect();
    load_inputs(&inputs, Expand::With(&env))
}

#[test]
fn a_yaml_client_file_and_a_toml_file_merge_into_one_config() {
    let toml = "[proxy]\ntool_separator = \"__\"\n\n[[servers]]\nid = \"a\"\ntransport = \"stdio\"\ncommand = \"x\"\n";
    let yaml = "mcpServers:\n  remote:\n    url: http://127.0.0.1:9/mcp\n    headers:\n      Authorization: Bearer ${TOKEN}\n";
    let loaded = load(&[("gw.toml", toml), ("mcp.yaml", yaml)]).unwrap();
    let ids: Vec<&str> = loaded
        .config
        .servers
        .iter()
        .map(|s| s.id.get_ref().as_str())
        .collect();
    assert_eq!(ids, ["a", "remote"]);
    let remote = &loaded.config.servers[1];
    assert_eq!(remote.headers["Authorization"], "Bearer tok-secret-1234");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn errors_point_into_their_own_file() {
    let a = "[[servers]]\nid = \"a\"\ntransport = \"stdio\"\ncommand = \"x\"\n";
    let b = "{\n  \"servers\": [\n    {\"id\": \"b\", \"transport\": \"stdio\", \"command\": \"x\", \"pool_size\": 0}\n  ]\n}\n";
    let e = load(&[("a.toml", a), ("b.json", b)]).unwrap_err();
    assert_eq!((e[0].file.as_str(), e[0].line), ("b.json", 3), "{e:?}");
    assert_eq!(e[0].key, "servers[1].pool_size");
    // The same key in two files: both named.
    let c = "[proxy]\ntool_separator = \"__\"\n";
    let d = "proxy:\n  tool_separator: \"::\"\n";
    let e = load(&[("c.toml", c), ("d.yaml", d)]).unwrap_err();
    assert_eq!(e[0].to_string(), "d.yaml:2:3: key `proxy.tool_separator`: `proxy.tool_separator` is set in two files: c.toml:2 and d.yaml:2");
}

#[test]
fn a_value_from_a_variable_is_masked_in_errors() {
    let e = load(&[("s.yaml", "server:\n  port: ${PORT}\n")]).unwrap_err();
    let line = e[0].to_string();
    assert_eq!(
        line,
        "s.yaml:2:9: key `server.port`: invalid type: string \"***\", expected u16"
    );
    let e = load(&[("s.json", "{\"server\": {\"port\": \"${NOPE}\"}}")]).unwrap_err();
    assert!(
        e[0].to_string()
            .starts_with("s.json:1:21: key `server.port`: environment variable `NOPE` is not set"),
        "{e:?}"
    );
}

#[test]
fn toml_errors_keep_their_text() {
    let e = load(&[("t.toml", "[server]\nport = \"x\"\n")]).unwrap_err();
    assert_eq!(
        e[0].to_string(),
        "t.toml:2:8: key `server.port`: invalid type: string \"x\", expected u16"
    );
    let e = load(&[("t.toml", "this is = = not toml")]).unwrap_err();
    assert!(e[0].to_string().starts_with("t.toml:1:"), "{e:?}");
}

//! Every example config in `config/` loads, and the templates `config generate` prints are
//! exactly the example files of the same name.

use std::path::{Path, PathBuf};

#[path = "../src/templates.rs"]
mod templates;

fn config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config")
}

#[test]
fn every_example_config_loads() {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(config_dir())
        .expect("config/ exists")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 4,
        "expected demo, solo, team and gateway: {paths:?}"
    );
    for path in &paths {
        if let Err(e) = only1mcp_shards::config::load_file(path) {
            panic!("{e}");
        }
    }
}

#[test]
fn templates_equal_example_files() {
    for name in templates::TEMPLATE_NAMES {
        let path = config_dir().join(format!("{name}.toml"));
        let file = std::fs::read_to_string(&path).expect("template file exists");
        assert_eq!(
            templates::template(name),
            Some(file.as_str()),
            "{}",
            path.display()
        );
    }
}

#[test]
fn demo_config_runs_the_built_in_server_twice() {
    let config = only1mcp_shards::config::load_file(&config_dir().join("demo.toml")).unwrap();
    assert_eq!(
        (config.server.host.as_str(), config.server.port),
        ("127.0.0.1", 8080)
    );
    let ids: Vec<&str> = config
        .servers
        .iter()
        .map(|s| s.id.get_ref().as_str())
        .collect();
    assert_eq!(ids, ["demo", "demo2"]);
    for server in &config.servers {
        let command = server.command.as_ref().expect("stdio command");
        assert_eq!(command.get_ref(), only1mcp_shards::config::SELF_COMMAND);
        assert_eq!(server.args[..2], ["demo-server", "--stdio"]);
    }
}

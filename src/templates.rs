//! Config templates printed by `only1mcp-uring config generate --template NAME`.
//!
//! The text of each template is the matching file in `config/` (`solo.toml`, `team.toml`,
//! `gateway.toml`), compiled in with `include_str!`, so the examples users read in the repo and
//! the templates the binary prints cannot drift apart. Each one parses with the real config
//! parser (tested here and in `tests/config_examples.rs`).

/// Template names accepted by `config generate --template`, smallest first.
pub const TEMPLATE_NAMES: &[&str] = &["solo", "team", "gateway"];

/// The TOML text of template `name`, or `None` for an unknown name.
///
/// - `solo`: one stdio backend, the built-in demo server; works with nothing installed.
/// - `team`: a few everyday stdio servers (npx, uvx) and an HTTP one.
/// - `gateway`: many servers, replicas, several cores, explicit timeouts and limits.
pub fn template(name: &str) -> Option<&'static str> {
    match name {
        "solo" => Some(include_str!("../config/solo.toml")),
        "team" => Some(include_str!("../config/team.toml")),
        "gateway" => Some(include_str!("../config/gateway.toml")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{template, TEMPLATE_NAMES};

    #[test]
    fn every_template_parses() {
        for name in TEMPLATE_NAMES {
            let text = template(name).expect("listed template exists");
            let file = format!("template {name}");
            if let Err(e) = only1mcp_shards::config::parse_str(text, &file) {
                panic!("{e}");
            }
        }
    }

    #[test]
    fn templates_have_servers_and_comments() {
        for name in TEMPLATE_NAMES {
            let text = template(name).expect("listed template exists");
            let config = only1mcp_shards::config::parse_str(text, name).expect("parses");
            assert!(!config.servers.is_empty(), "{name} has no servers");
            assert!(
                text.starts_with("# only1mcp-uring config: "),
                "{name} lacks its header"
            );
        }
    }

    #[test]
    fn unknown_template_is_none() {
        assert!(template("nope").is_none());
        assert!(template("").is_none());
    }
}

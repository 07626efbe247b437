//! The MCP client config shapes, read as gateway configs: Claude Desktop's
//! `claude_desktop_config.json` and Cursor's / a project's `.mcp.json` (`{"mcpServers": {..}}`)
//! and VS Code's `mcp.json` (`{"servers": {..}, "inputs": [..]}`), in any of the three formats.
//!
//! A file is one of these when its top level has `mcpServers`, or a `servers` that is a table
//! (the gateway's own `servers` is a list). Each entry becomes a `[[servers]]` table of the
//! gateway's tree, its spans still pointing into the client file, so the one deserializer and
//! validator check it and name the client file's lines. Ids come from the keys, sanitised to
//! the gateway's rule (1-32 of `A-Z a-z 0-9 _ -`) with a warning when changed; two keys that
//! sanitise to one id are an error. `disabled: true` becomes `enabled = false`. Keys the gateway
//! has no use for (other top-level settings of the client, per-server UI keys such as
//! `autoApprove`) are ignored with a warning; `envFile` is an error, since silently starting a
//! server without its variables would be worse.

use std::ops::Range;

use super::tree::{Entry, Kind, Located, Node};

/// Which shape a file has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// The gateway's own schema.
    Gateway,
    /// `mcpServers` (Claude Desktop, Cursor, `.mcp.json`).
    McpServers,
    /// `servers` as a table (VS Code).
    VsCode,
}

impl Shape {
    /// The shape of a parsed file.
    pub(crate) fn of(root: &Node) -> Shape {
        if root.get("mcpServers").is_some() {
            Shape::McpServers
        } else if matches!(root.get("servers").map(|n| &n.kind), Some(Kind::Map(_))) {
            Shape::VsCode
        } else {
            Shape::Gateway
        }
    }

    /// The top-level key holding the servers of a client shape.
    pub(crate) fn servers_key(self) -> Option<&'static str> {
        match self {
            Shape::Gateway => None,
            Shape::McpServers => Some("mcpServers"),
            Shape::VsCode => Some("servers"),
        }
    }
}

/// Turn a client-shape file into the gateway's tree: `Ok((tree, warnings))` or every error.
pub(crate) fn convert(root: &Node, shape: Shape) -> Result<(Node, Vec<Located>), Vec<Located>> {
    let Some(top) = shape.servers_key() else {
        return Ok((root.clone(), Vec::new()));
    };
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    if let Kind::Map(entries) = &root.kind {
        for e in entries {
            let known = e.key == top || (shape == Shape::VsCode && e.key == "inputs");
            if !known {
                warnings.push(located(
                    &e.key_span,
                    &e.key,
                    "ignored: not a server setting",
                ));
            }
        }
    }
    let servers_node = root.get(top).expect("the shape has its key");
    let Kind::Map(entries) = &servers_node.kind else {
        let msg = format!(
            "must be a table of servers, found a {}",
            servers_node.type_name()
        );
        return Err(vec![located(&servers_node.span, top, &msg)]);
    };
    let mut servers = Vec::new();
    let mut ids: Vec<(String, &Entry)> = Vec::new();
    for e in entries {
        let key = format!("{top}.{}", super::key_segment(&e.key));
        let id = sanitise(&e.key);
        if id != e.key {
            let msg = format!(
                "server name `{}` becomes id `{id}` (ids are 1 to 32 characters of A-Z a-z 0-9 _ -)",
                e.key
            );
            warnings.push(located(&e.key_span, &key, &msg));
        }
        if let Some((_, first)) = ids.iter().find(|(i, _)| *i == id) {
            let msg = format!(
                "server names `{}` and `{}` both become id `{id}`: rename one",
                first.key, e.key
            );
            errors.push(located(&e.key_span, &key, &msg));
            continue;
        }
        match server(&id, e, &key, &mut warnings) {
            Ok(node) => servers.push(node),
            Err(problem) => errors.push(problem),
        }
        ids.push((id, e));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let servers = Node::new(servers_node.span.clone(), Kind::Seq(servers));
    let entry = Entry {
        key: "servers".into(),
        key_span: root.entry(top).map_or(0..0, |e| e.key_span.clone()),
        value: servers,
    };
    Ok((
        Node::new(root.span.clone(), Kind::Map(vec![entry])),
        warnings,
    ))
}

fn located(span: &Range<usize>, key: &str, message: &str) -> Located {
    Located {
        span: span.clone(),
        key: key.to_string(),
        message: message.to_string(),
    }
}

/// A name as a gateway server id: other characters become `_`, at most 32 characters.
pub(crate) fn sanitise(name: &str) -> String {
    let id: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(32)
        .collect();
    if id.is_empty() {
        "server".into()
    } else {
        id
    }
}

/// One client entry as a `[[servers]]` table.
fn server(id: &str, e: &Entry, key: &str, warnings: &mut Vec<Located>) -> Result<Node, Located> {
    let v = &e.value;
    let Kind::Map(fields) = &v.kind else {
        let msg = format!(
            "must be a table with `command` or `url`, found a {}",
            v.type_name()
        );
        return Err(located(&v.span, key, &msg));
    };
    let str_of = |name: &str| -> Result<Option<&Entry>, Located> {
        match v.entry(name) {
            Some(f) if f.value.as_str().is_none() => Err(located(
                &f.value.span,
                &format!("{key}.{name}"),
                &format!("must be a string, found a {}", f.value.type_name()),
            )),
            other => Ok(other),
        }
    };
    let command = str_of("command")?;
    let url = str_of("url")?;
    let kind = str_of("type")?;
    let transport = match (kind.and_then(|t| t.value.as_str()), command, url) {
        (Some("stdio"), Some(_), _) | (None, Some(_), None) => "stdio",
        (Some("http" | "streamable-http" | "streamableHttp"), _, Some(_))
        | (None, None, Some(_)) => "http",
        (Some("sse"), _, Some(_)) => {
            let msg = "`sse` (the 2024-11-05 HTTP+SSE transport): the gateway speaks Streamable HTTP to this url; a server that only speaks the old transport will not answer";
            warnings.push(located(
                &kind.expect("matched").value.span,
                &format!("{key}.type"),
                msg,
            ));
            "http"
        }
        (Some(t @ ("stdio" | "http" | "streamable-http" | "streamableHttp" | "sse")), _, _) => {
            let needs = if t == "stdio" { "command" } else { "url" };
            let msg = format!("type `{t}` needs `{needs}`");
            return Err(located(&v.span, key, &msg));
        }
        (Some(t), _, _) => {
            let msg = format!("unknown type `{t}` (one of stdio, http, streamable-http, sse)");
            return Err(located(
                &kind.expect("matched").value.span,
                &format!("{key}.type"),
                &msg,
            ));
        }
        (None, Some(_), Some(_)) => {
            let msg = "has both `command` and `url`: say which with `type` (stdio or http)";
            return Err(located(&v.span, key, msg));
        }
        (None, None, None) => {
            let msg = "has neither `command` (a stdio server) nor `url` (an HTTP server)";
            return Err(located(&v.span, key, msg));
        }
    };
    let mut out = vec![Entry {
        key: "id".into(),
        key_span: e.key_span.clone(),
        value: Node::new(e.key_span.clone(), Kind::Str(id.to_string())),
    }];
    let type_span = kind.map_or(v.span.clone(), |k| k.value.span.clone());
    out.push(Entry {
        key: "transport".into(),
        key_span: type_span.clone(),
        value: Node::new(type_span, Kind::Str(transport.into())),
    });
    let wanted: &[&str] = if transport == "stdio" {
        &["command", "args", "env", "cwd"]
    } else {
        &["url", "headers"]
    };
    for f in fields {
        match f.key.as_str() {
            name if wanted.contains(&name) => out.push(f.clone()),
            "type" => {}
            "disabled" => match f.value.kind {
                Kind::Bool(d) => out.push(Entry {
                    key: "enabled".into(),
                    key_span: f.key_span.clone(),
                    value: Node::new(f.value.span.clone(), Kind::Bool(!d)),
                }),
                _ => {
                    let msg = format!("must be true or false, found a {}", f.value.type_name());
                    return Err(located(&f.value.span, &format!("{key}.disabled"), &msg));
                }
            },
            "envFile" => {
                let msg = "`envFile` is not read by the gateway: list the variables under `env`, with `${VAR}` or `${file:/path}` for secrets";
                return Err(located(&f.key_span, &format!("{key}.envFile"), msg));
            }
            other => {
                let msg = format!(
                    "ignored: `{other}` is not used by the gateway for a {transport} server"
                );
                warnings.push(located(
                    &f.key_span,
                    &format!("{key}.{}", super::key_segment(other)),
                    &msg,
                ));
            }
        }
    }
    Ok(Node::new(v.span.clone(), Kind::Map(out)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::json;

    fn conv(text: &str) -> Result<(Node, Vec<Located>), Vec<Located>> {
        let root = json::parse(text).unwrap();
        convert(&root, Shape::of(&root))
    }

    #[test]
    fn shapes_are_told_apart_by_their_top_key() {
        let shape = |t: &str| Shape::of(&json::parse(t).unwrap());
        assert_eq!(shape(r#"{"mcpServers": {}}"#), Shape::McpServers);
        assert_eq!(shape(r#"{"servers": {}, "inputs": []}"#), Shape::VsCode);
        assert_eq!(shape(r#"{"servers": [], "server": {}}"#), Shape::Gateway);
    }

    #[test]
    fn entries_become_servers_with_sanitised_ids() {
        let (tree, warnings) = conv(
            r#"{"mcpServers": {"my files": {"command": "npx", "args": ["-y", "x"], "env": {"A": "1"}, "disabled": true, "autoApprove": []},
                "remote": {"type": "http", "url": "http://127.0.0.1:1/mcp", "headers": {"Authorization": "Bearer ${T}"}}},
               "globalShortcut": "Ctrl+Space"}"#,
        )
        .unwrap();
        let servers = tree.get("servers").unwrap();
        let Kind::Seq(items) = &servers.kind else {
            panic!()
        };
        assert_eq!(items[0].get("id").unwrap().as_str(), Some("my_files"));
        assert_eq!(items[0].get("transport").unwrap().as_str(), Some("stdio"));
        assert_eq!(items[0].get("enabled").unwrap().kind, Kind::Bool(false));
        assert!(items[0].get("autoApprove").is_none());
        assert_eq!(items[1].get("transport").unwrap().as_str(), Some("http"));
        assert!(items[1].get("headers").is_some());
        let msgs: Vec<&str> = warnings.iter().map(|w| w.message.as_str()).collect();
        assert!(
            msgs.iter().any(|m| m.contains("becomes id `my_files`")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter().any(|m| m.contains("`autoApprove` is not used")),
            "{msgs:?}"
        );
        assert!(
            warnings.iter().any(|w| w.key == "globalShortcut"),
            "{warnings:?}"
        );
    }

    #[test]
    fn bad_entries_are_errors_naming_the_entry() {
        let cases = [
            (
                r#"{"mcpServers": {"a": {"args": []}}}"#,
                "mcpServers.a",
                "neither `command`",
            ),
            (
                r#"{"mcpServers": {"a": {"type": "ws", "url": "x"}}}"#,
                "mcpServers.a.type",
                "unknown type `ws`",
            ),
            (
                r#"{"mcpServers": {"a": {"type": "stdio", "url": "x"}}}"#,
                "mcpServers.a",
                "needs `command`",
            ),
            (
                r#"{"mcpServers": {"a.b": {"command": "x"}, "a_b": {"command": "y"}}}"#,
                "mcpServers.a_b",
                "both become id `a_b`",
            ),
            (
                r#"{"servers": {"a": {"command": "x", "envFile": ".env"}}}"#,
                "servers.a.envFile",
                "not read",
            ),
            (
                r#"{"mcpServers": {"a": {"command": 3}}}"#,
                "mcpServers.a.command",
                "must be a string",
            ),
        ];
        for (text, key, msg) in cases {
            let e = conv(text).unwrap_err();
            assert_eq!(e[0].key, key, "{text}: {e:?}");
            assert!(e[0].message.contains(msg), "{text}: {e:?}");
        }
        assert_eq!(
            sanitise("ümlaut.server/with-a-very-long-name-indeed"),
            "_mlaut_server_with-a-very-long-n"
        );
        assert_eq!(sanitise(""), "server");
    }
}

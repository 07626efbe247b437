//! The tree written back out as TOML, YAML or JSON: what `only1mcp-uring config import`
//! prints. It prints the tree before substitution, so `${VAR}` references stay references and
//! no secret is copied into the output; keys keep their file order.

use std::fmt::Write;

use super::tree::{Kind, Node};

/// An output format of `config import`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.toml` (and any other extension).
    Toml,
    /// `.yaml`, `.yml`.
    Yaml,
    /// `.json` (comments and trailing commas allowed).
    Json,
}

impl Format {
    /// The format of a file by its extension: `.yaml`/`.yml`, `.json`, else TOML.
    pub fn of_path(path: &std::path::Path) -> Format {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("yaml" | "yml") => Format::Yaml,
            Some("json") => Format::Json,
            _ => Format::Toml,
        }
    }
}

/// The tree as text in `format`.
pub(crate) fn emit(root: &Node, format: Format) -> String {
    let mut out = String::new();
    match format {
        Format::Toml => {
            toml_table(root, &mut Vec::new(), &mut out);
            out = out.trim_start().to_string();
        }
        Format::Json => {
            json(root, 0, &mut out);
            out.push('\n');
        }
        Format::Yaml => yaml_top(root, &mut out),
    }
    out
}

/// A quoted string, JSON-escaped (also a valid TOML basic string and YAML double-quoted scalar).
fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

fn toml_key(k: &str) -> String {
    if super::is_bare_key(k) {
        k.to_string()
    } else {
        quoted(k)
    }
}

/// Whether a value is written as `[section]` / `[[section]]` rather than inline.
fn is_section(v: &Node) -> bool {
    match &v.kind {
        Kind::Map(_) => true,
        Kind::Seq(items) => {
            !items.is_empty() && items.iter().all(|i| matches!(i.kind, Kind::Map(_)))
        }
        _ => false,
    }
}

fn toml_table(node: &Node, path: &mut Vec<String>, out: &mut String) {
    let Kind::Map(entries) = &node.kind else {
        return;
    };
    let inline_all = path.len() >= 2;
    for e in entries
        .iter()
        .filter(|e| !is_section(&e.value) || inline_all)
    {
        if e.value.kind != Kind::Null {
            let _ = writeln!(out, "{} = {}", toml_key(&e.key), toml_inline(&e.value));
        }
    }
    for e in entries
        .iter()
        .filter(|e| is_section(&e.value) && !inline_all)
    {
        path.push(toml_key(&e.key));
        match &e.value.kind {
            Kind::Seq(items) => {
                for item in items {
                    let _ = writeln!(out, "\n[[{}]]", path.join("."));
                    toml_table(item, &mut vec![String::new(); 2], out);
                }
            }
            _ => {
                let _ = writeln!(out, "\n[{}]", path.join("."));
                toml_table(&e.value, path, out);
            }
        }
        path.pop();
    }
}

fn toml_inline(v: &Node) -> String {
    match &v.kind {
        Kind::Null => "\"\"".into(),
        Kind::Bool(b) => b.to_string(),
        Kind::Num(n) => n.clone(),
        Kind::Str(s) => quoted(s),
        Kind::Datetime(d) => d.to_string(),
        Kind::Seq(items) => {
            let parts: Vec<String> = items.iter().map(toml_inline).collect();
            format!("[{}]", parts.join(", "))
        }
        Kind::Map(entries) => {
            let parts: Vec<String> = entries
                .iter()
                .filter(|e| e.value.kind != Kind::Null)
                .map(|e| format!("{} = {}", toml_key(&e.key), toml_inline(&e.value)))
                .collect();
            if parts.is_empty() {
                "{}".into()
            } else {
                format!("{{ {} }}", parts.join(", "))
            }
        }
    }
}

fn json(v: &Node, indent: usize, out: &mut String) {
    let pad = "  ".repeat(indent + 1);
    match &v.kind {
        Kind::Null => out.push_str("null"),
        Kind::Bool(b) => out.push_str(&b.to_string()),
        Kind::Num(n) => out.push_str(&json_number(n)),
        Kind::Str(s) => out.push_str(&quoted(s)),
        Kind::Datetime(d) => out.push_str(&quoted(&d.to_string())),
        Kind::Seq(items) if items.is_empty() => out.push_str("[]"),
        Kind::Map(entries) if entries.is_empty() => out.push_str("{}"),
        Kind::Seq(items) => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                out.push_str(&pad);
                json(item, indent + 1, out);
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            let _ = write!(out, "{}]", "  ".repeat(indent));
        }
        Kind::Map(entries) => {
            out.push_str("{\n");
            for (i, e) in entries.iter().enumerate() {
                let _ = write!(out, "{pad}{}: ", quoted(&e.key));
                json(&e.value, indent + 1, out);
                out.push_str(if i + 1 < entries.len() { ",\n" } else { "\n" });
            }
            let _ = write!(out, "{}}}", "  ".repeat(indent));
        }
    }
}

/// A TOML number literal as JSON (`inf`/`nan` have no JSON form: written as strings).
fn json_number(n: &str) -> String {
    let clean = n.replace('_', "");
    if clean.parse::<f64>().is_ok_and(f64::is_finite) && !clean.contains(['x', 'o', 'b']) {
        clean
    } else {
        quoted(n)
    }
}

fn yaml_top(root: &Node, out: &mut String) {
    match &root.kind {
        Kind::Map(entries) if !entries.is_empty() => yaml_map(entries, 0, out),
        _ => out.push_str("{}\n"),
    }
}

/// A YAML key: plain when it cannot be read as anything but text, else quoted.
fn yaml_key(k: &str) -> String {
    let special = ["true", "false", "null", "yes", "no", "on", "off", "y", "n"];
    let plain = super::is_bare_key(k)
        && k.starts_with(|c: char| c.is_ascii_alphabetic())
        && !special.contains(&k.to_ascii_lowercase().as_str());
    if plain {
        k.to_string()
    } else {
        quoted(k)
    }
}

fn yaml_map(entries: &[super::tree::Entry], indent: usize, out: &mut String) {
    let pad = "  ".repeat(indent);
    for e in entries {
        let _ = write!(out, "{pad}{}:", yaml_key(&e.key));
        yaml_value(&e.value, indent, out);
    }
}

fn yaml_value(v: &Node, indent: usize, out: &mut String) {
    match &v.kind {
        Kind::Map(entries) if !entries.is_empty() => {
            out.push('\n');
            yaml_map(entries, indent + 1, out);
        }
        Kind::Seq(items) if !items.is_empty() => {
            out.push('\n');
            let pad = "  ".repeat(indent + 1);
            for item in items {
                let _ = write!(out, "{pad}-");
                match &item.kind {
                    Kind::Map(entries) if !entries.is_empty() => {
                        // The first key on the dash's line, the rest under it.
                        let mut first = String::new();
                        yaml_map(&entries[..1], 0, &mut first);
                        let _ = write!(out, " {first}");
                        yaml_map(&entries[1..], indent + 2, out);
                    }
                    _ => yaml_value(item, indent + 1, out),
                }
            }
        }
        _ => {
            let mut s = String::new();
            json(v, 0, &mut s);
            let _ = writeln!(out, " {s}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{json as json_parse, yaml};

    #[test]
    fn each_format_reads_back_to_the_same_tree() {
        let text = r#"{"server": {"port": 0, "host": "127.0.0.1"}, "servers": [
            {"id": "a", "transport": "stdio", "command": "x", "args": ["--k", "${V}"], "env": {"K V": "q\"uote"}, "enabled": false},
            {"id": "b", "transport": "http", "url": "http://127.0.0.1:1/mcp", "headers": {}, "weights": [1.5, 2]}]}"#;
        let tree = json_parse::parse(text).unwrap();
        let strip = |n: &Node| emit(n, Format::Json);
        for format in [Format::Toml, Format::Yaml, Format::Json] {
            let out = emit(&tree, format);
            let back = match format {
                Format::Toml => {
                    super::super::tree::from_toml(&toml::de::DeTable::parse(&out).unwrap())
                }
                Format::Yaml => yaml::parse(&out).unwrap(),
                Format::Json => json_parse::parse(&out).unwrap(),
            };
            assert_eq!(strip(&back), strip(&tree), "{format:?}:\n{out}");
        }
    }
}

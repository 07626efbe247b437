//! `${VAR}`, `${VAR:-default}`, `${file:/path}` and `$$` in every string value of the tree.
//!
//! Runs on each file's tree at every load and reload, before the files are merged and
//! deserialized, so it works the same in TOML, YAML, JSON and the imported client shapes.
//! Rules (docs/configuration.md): `${VAR}` needs VAR set (empty counts as set); `${VAR:-d}`
//! takes `d` when VAR is unset or empty (POSIX `:-`); `${env:VAR}` is `${VAR}` (VS Code's
//! spelling); `${file:PATH}` is the file's content (at most [`MAX_SECRET_FILE`] bytes, trailing
//! newlines trimmed, PATH relative to the config file's folder); `$$` is one `$`; any other `$`
//! is kept as written (`$self`). A substituted value is never expanded again. What came from the
//! environment or a file is remembered as a secret so errors can be scrubbed of it; its value is
//! never part of an error message, only the variable's name.

use std::path::Path;

use super::tree::{Kind, Located, Node};
use super::{render_path, Seg};

/// Largest `${file:...}` content.
pub const MAX_SECRET_FILE: u64 = 64 * 1024;

/// How variables are looked up (the process environment, or a test's table).
pub(crate) type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Expand every string value under `root`; `dir` resolves relative `${file:}` paths. Returns
/// the values that came from the environment or files (secrets), or every error.
pub(crate) fn expand(
    root: &mut Node,
    prefix: &[&str],
    dir: &Path,
    env: Lookup<'_>,
) -> Result<Vec<String>, Vec<Located>> {
    let mut cx = Cx {
        dir,
        env,
        secrets: Vec::new(),
        errors: Vec::new(),
    };
    let mut path: Vec<String> = prefix.iter().map(|p| p.to_string()).collect();
    cx.walk(root, &mut path);
    if cx.errors.is_empty() {
        Ok(cx.secrets)
    } else {
        Err(cx.errors)
    }
}

struct Cx<'a> {
    dir: &'a Path,
    env: Lookup<'a>,
    secrets: Vec<String>,
    errors: Vec<Located>,
}

impl Cx<'_> {
    fn walk(&mut self, node: &mut Node, path: &mut Vec<String>) {
        match &mut node.kind {
            Kind::Str(s) if s.contains('$') => match self.string(s) {
                Ok(v) => *s = v,
                Err(message) => {
                    let segs: Vec<Seg<'_>> = path
                        .iter()
                        .map(|p| match p.strip_prefix('\0') {
                            Some(i) => Seg::Index(i.parse().unwrap_or(0)),
                            None => Seg::Key(p),
                        })
                        .collect();
                    self.errors.push(Located {
                        span: node.span.clone(),
                        key: render_path(&segs),
                        message,
                    });
                }
            },
            Kind::Seq(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    path.push(format!("\0{i}"));
                    self.walk(item, path);
                    path.pop();
                }
            }
            Kind::Map(entries) => {
                for e in entries {
                    path.push(e.key.clone());
                    self.walk(&mut e.value, path);
                    path.pop();
                }
            }
            _ => {}
        }
    }

    /// One string with its references replaced.
    fn string(&mut self, s: &str) -> Result<String, String> {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            if let Some(r) = after.strip_prefix('$') {
                out.push('$');
                rest = r;
            } else if let Some(r) = after.strip_prefix('{') {
                let Some(end) = r.find('}') else {
                    return Err("`${` without its closing `}`".into());
                };
                out.push_str(&self.reference(&r[..end])?);
                rest = &r[end + 1..];
            } else {
                out.push('$');
                rest = after;
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    /// The value of what is between `${` and `}`.
    fn reference(&mut self, inner: &str) -> Result<String, String> {
        if let Some(path) = inner.strip_prefix("file:") {
            let value = read_secret_file(&self.dir.join(path))?;
            self.secrets.push(value.clone());
            return Ok(value);
        }
        if let Some(id) = inner.strip_prefix("input:") {
            return Err(format!(
                "`${{input:{id}}}` is a VS Code prompt, which a gateway cannot show: put the value in an environment variable and write `${{VAR}}` (or `${{file:/path}}`)"
            ));
        }
        let inner = inner.strip_prefix("env:").unwrap_or(inner);
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        let valid = name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            return Err(format!(
                "`${{{inner}}}` is not a variable reference (`${{NAME}}`, `${{NAME:-default}}`, `${{file:/path}}`; `$$` for a `$`)"
            ));
        }
        match ((self.env)(name), default) {
            (Some(v), Some(d)) if v.is_empty() => Ok(d.to_string()),
            (Some(v), _) => {
                self.secrets.push(v.clone());
                Ok(v)
            }
            (None, Some(d)) => Ok(d.to_string()),
            (None, None) => Err(format!(
                "environment variable `{name}` is not set (write `${{{name}:-default}}` for a default)"
            )),
        }
    }
}

/// A secret file's content: bounded, UTF-8, trailing newlines trimmed. Errors name the path,
/// never the content.
fn read_secret_file(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read `{shown}`: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read `{shown}`: {e}"))?;
    if bytes.len() as u64 > MAX_SECRET_FILE {
        return Err(format!(
            "`{shown}` is larger than {MAX_SECRET_FILE} bytes (a secret file holds one value)"
        ));
    }
    let mut text = String::from_utf8(bytes).map_err(|_| format!("`{shown}` is not UTF-8 text"))?;
    let kept = text.trim_end_matches(['\n', '\r']).len();
    text.truncate(kept);
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tree::Entry;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cr3t-value".into()),
            "EMPTY" => Some(String::new()),
            "NESTED" => Some("${TOKEN}".into()),
            _ => None,
        }
    }

    fn one(s: &str) -> Result<(String, Vec<String>), Vec<Located>> {
        let mut node = Node::new(
            0..1,
            Kind::Map(vec![Entry {
                key: "k".into(),
                key_span: 0..1,
                value: Node::new(3..9, Kind::Str(s.into())),
            }]),
        );
        let secrets = expand(&mut node, &[], Path::new("/nonexistent"), &env)?;
        Ok((
            node.get("k").unwrap().as_str().unwrap().to_string(),
            secrets,
        ))
    }

    #[test]
    fn references_expand_by_the_posix_rules() {
        let v = |s: &str| one(s).unwrap().0;
        assert_eq!(v("Bearer ${TOKEN}"), "Bearer s3cr3t-value");
        assert_eq!(v("${env:TOKEN}"), "s3cr3t-value");
        assert_eq!(v("[${EMPTY}]"), "[]", "empty but set counts as set");
        assert_eq!(v("${EMPTY:-d}"), "d", ":- treats empty as unset");
        assert_eq!(v("${UNSET:-a default}"), "a default");
        assert_eq!(v("${TOKEN:-d}"), "s3cr3t-value");
        assert_eq!(v("$$5 and $$${TOKEN}"), "$5 and $s3cr3t-value");
        assert_eq!(v("$self $HOME"), "$self $HOME");
        assert_eq!(v("${NESTED}"), "${TOKEN}", "no recursive expansion");
        assert_eq!(one("a ${TOKEN}").unwrap().1, ["s3cr3t-value"]);
    }

    #[test]
    fn bad_references_name_key_and_variable_never_a_value() {
        let e = one("x ${MISSING} ${TOKEN}").unwrap_err();
        assert_eq!(e[0].key, "k");
        assert_eq!(e[0].span, 3..9);
        assert!(e[0].message.contains("`MISSING` is not set"), "{e:?}");
        for bad in ["${TOKEN", "${1X}", "${A-B}", "${}"] {
            let e = one(bad).unwrap_err();
            assert!(!e[0].message.contains("s3cr3t"), "{e:?}");
        }
        let e = one("${input:api-key}").unwrap_err();
        assert!(e[0].message.contains("input:api-key"), "{e:?}");
    }

    #[test]
    fn secret_files_are_bounded_and_trimmed() {
        let dir = std::env::temp_dir().join(format!("subst-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("tok"), "file-secret\r\n\n").unwrap();
        std::fs::write(dir.join("big"), vec![b'x'; MAX_SECRET_FILE as usize + 1]).unwrap();
        let mut node = Node::new(0..1, Kind::Str("${file:tok}".into()));
        let secrets = expand(&mut node, &[], &dir, &env).unwrap();
        assert_eq!(node.as_str(), Some("file-secret"));
        assert_eq!(secrets, ["file-secret"]);
        let mut node = Node::new(0..1, Kind::Str("${file:big}".into()));
        let e = expand(&mut node, &[], &dir, &env).unwrap_err();
        assert!(e[0].message.contains("larger than 65536 bytes"), "{e:?}");
        let mut node = Node::new(0..1, Kind::Str("${file:missing}".into()));
        assert!(expand(&mut node, &[], &dir, &env).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

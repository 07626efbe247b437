//! From one or more files (TOML, YAML, JSON; the gateway's schema or a client's shape) to one
//! validated [`Config`], the same way at start, in `validate` and at every reload.
//!
//! Each file is read (at most [`MAX_CONFIG_BYTES`]), parsed into the tree, converted when it is
//! a client shape, substituted (`subst.rs`), placed at its own base offset of one joined text
//! and merged: tables merge key by key, the `servers` lists are concatenated, a key set in two
//! files or a server id used in two files is an error naming both. The merged tree goes through
//! toml's deserializer and the one validator; every error is mapped back to its file, line and
//! column, and scrubbed of any substituted value.

use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::de::DeTable;

use super::emit::Format;
use super::import::{self, Shape};
use super::tree::{self, Kind, Located, Node};
use super::{json, subst, yaml, Config, ConfigError, Doc};

/// Largest config file read: real configs are a few KiB (a hundred servers is ~30 KiB), and
/// the parse keeps a tree of the whole file, so 1 MiB bounds memory with room to spare.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// A loaded config and what was worth a warning (renamed ids, ignored client keys).
#[derive(Debug)]
pub struct Loaded {
    /// The merged, validated config.
    pub config: Config,
    /// Warnings, one line each (print or log them; the config loaded anyway).
    pub warnings: Vec<ConfigError>,
}

/// The files of one load, joined into one text so every span names one place.
pub(crate) struct Sources {
    files: Vec<(String, Range<usize>)>,
    pub(crate) joined: String,
    secrets: Vec<String>,
}

impl Sources {
    fn new() -> Self {
        Self {
            files: Vec::new(),
            joined: String::new(),
            secrets: Vec::new(),
        }
    }

    /// Add a file's text; returns its base offset.
    fn add(&mut self, name: &str, text: &str) -> usize {
        let base = self.joined.len();
        self.joined.push_str(text);
        self.joined.push('\n');
        self.files
            .push((name.to_string(), base..base + text.len() + 1));
        base
    }

    /// The file holding `offset`, and the offset within it.
    fn locate(&self, offset: usize) -> (&str, Range<usize>, usize) {
        let (name, range) = self
            .files
            .iter()
            .find(|(_, r)| r.contains(&offset))
            .or(self.files.last())
            .expect("at least one file");
        (name, range.clone(), offset.saturating_sub(range.start))
    }

    /// 1-based line of a joined offset in its own file.
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        let (_, range, local) = self.locate(offset);
        super::line_col(&self.joined[range], local).0
    }

    /// `file:line` of a joined offset.
    fn place(&self, offset: usize) -> String {
        format!("{}:{}", self.locate(offset).0, self.line_of(offset))
    }

    /// An error at a joined span, its message scrubbed of secrets.
    pub(crate) fn error(
        &self,
        span: Option<Range<usize>>,
        key: String,
        message: &str,
    ) -> ConfigError {
        let (file, text, local) = match span {
            Some(s) => {
                let (name, range, local) = self.locate(s.start);
                (name.to_string(), &self.joined[range], Some(local..local))
            }
            None => {
                let names: Vec<&str> = self.files.iter().map(|(n, _)| n.as_str()).collect();
                (names.join(", "), "", None)
            }
        };
        let mut e = ConfigError::at(&file, text, local, key, message);
        e.message = self.scrub(&e.message);
        e
    }

    fn located(&self, l: Located) -> ConfigError {
        self.error(Some(l.span), l.key, &l.message)
    }

    /// `message` with every substituted value of 4 or more characters replaced by `***`.
    fn scrub(&self, message: &str) -> String {
        let mut out = message.to_string();
        for s in self.secrets.iter().filter(|s| s.len() >= 4) {
            out = out.replace(s.as_str(), "***");
        }
        out
    }
}

/// How a load treats `${...}`: expanded from the environment, or kept as written (import).
#[derive(Clone, Copy)]
pub(crate) enum Expand<'a> {
    With(subst::Lookup<'a>),
    Keep,
}

/// Load, merge and validate `paths` (the command line's `--config` files, in order).
pub fn load_files(paths: &[PathBuf]) -> Result<Loaded, Vec<ConfigError>> {
    let env = |name: &str| std::env::var(name).ok();
    let mut texts = Vec::new();
    for path in paths {
        texts.push((path.clone(), read_bounded(path).map_err(|e| vec![e])?));
    }
    let inputs: Vec<Input<'_>> = texts
        .iter()
        .map(|(p, t)| Input {
            name: p.display().to_string(),
            text: t,
            format: Format::of_path(p),
            dir: p.parent().unwrap_or(Path::new(".")),
        })
        .collect();
    load_inputs(&inputs, Expand::With(&env))
}

/// `config import`: the merged tree of `paths` as text in `format`, `${...}` kept as written,
/// after checking it loads; `Ok((text, warnings))`.
pub fn import_files(
    paths: &[PathBuf],
    format: Format,
) -> Result<(String, Vec<ConfigError>), Vec<ConfigError>> {
    let mut texts = Vec::new();
    for path in paths {
        texts.push((path.clone(), read_bounded(path).map_err(|e| vec![e])?));
    }
    let inputs: Vec<Input<'_>> = texts
        .iter()
        .map(|(p, t)| Input {
            name: p.display().to_string(),
            text: t,
            format: Format::of_path(p),
            dir: p.parent().unwrap_or(Path::new(".")),
        })
        .collect();
    let (sources, root, warnings) = merge_inputs(&inputs, Expand::Keep)?;
    // What is printed must load: check its types with the references kept (the semantic
    // checks need the values, so they run when the output is loaded).
    deserialize(&sources, &root, false)?;
    Ok((super::emit::emit(&root, format), warnings))
}

/// One file's text and how to read it.
pub(crate) struct Input<'a> {
    pub name: String,
    pub text: &'a str,
    pub format: Format,
    pub dir: &'a Path,
}

/// Read a config file, refusing one larger than [`MAX_CONFIG_BYTES`].
fn read_bounded(path: &Path) -> Result<String, ConfigError> {
    let file = path.display().to_string();
    let fail = |message: String| ConfigError {
        file: file.clone(),
        line: 0,
        column: 0,
        key: String::new(),
        message,
    };
    let f = std::fs::File::open(path).map_err(|e| fail(format!("cannot read config file: {e}")))?;
    let mut bytes = Vec::new();
    f.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(format!("cannot read config file: {e}")))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(fail(format!(
            "config file is larger than {MAX_CONFIG_BYTES} bytes (1 MiB), the most a config may have"
        )));
    }
    String::from_utf8(bytes).map_err(|_| fail("cannot read config file: not UTF-8 text".into()))
}

/// Parse, convert, substitute and merge; validate the result.
pub(crate) fn load_inputs(
    inputs: &[Input<'_>],
    expand: Expand<'_>,
) -> Result<Loaded, Vec<ConfigError>> {
    let (sources, root, warnings) = merge_inputs(inputs, expand)?;
    let config = deserialize(&sources, &root, true)?;
    Ok(Loaded { config, warnings })
}

/// The model from the merged tree: toml's deserializer, then (with `check`) the validator.
fn deserialize(sources: &Sources, root: &Node, check: bool) -> Result<Config, Vec<ConfigError>> {
    let de = tree::to_toml(root)
        .map_err(|(span, msg)| vec![sources.error(Some(span), String::new(), &msg)])?;
    let doc = Doc {
        text: &sources.joined,
        root: de.clone(),
        sources: Some(sources),
    };
    let config = Config::deserialize(toml::de::Deserializer::from(de)).map_err(|e| {
        vec![super::de_error(&doc, &e, |span, key, msg| {
            sources.error(span, key, msg)
        })]
    })?;
    let mut issues = if check {
        super::validate::validate(&config, &doc)
    } else {
        Vec::new()
    };
    if issues.is_empty() {
        return Ok(config);
    }
    issues.sort_by_key(|i| i.span.as_ref().map_or(usize::MAX, |s| s.start));
    Err(issues
        .into_iter()
        .map(|i| sources.error(i.span, i.key, &i.message))
        .collect())
}

fn merge_inputs(
    inputs: &[Input<'_>],
    expand: Expand<'_>,
) -> Result<(Sources, Node, Vec<ConfigError>), Vec<ConfigError>> {
    let mut sources = Sources::new();
    let mut warnings = Vec::new();
    let mut merged: Option<Node> = None;
    let mut errors = Vec::new();
    for input in inputs {
        let base = sources.add(&input.name, input.text);
        let mut root = match parse(input) {
            Ok(root) => root,
            Err(e) => return Err(vec![e]),
        };
        root.shift(base);
        let shape = Shape::of(&root);
        if let Expand::With(env) = expand {
            let target = match shape.servers_key() {
                Some(k) => root_value_mut(&mut root, k),
                None => Some(&mut root),
            };
            let prefix: Vec<&str> = shape.servers_key().into_iter().collect();
            if let Some(target) = target {
                match subst::expand(target, &prefix, input.dir, env) {
                    Ok(secrets) => sources.secrets.extend(secrets),
                    Err(es) => errors.extend(es),
                }
            }
        }
        let root = match import::convert(&root, shape) {
            Ok((tree, warns)) => {
                warnings.extend(warns);
                tree
            }
            Err(es) => {
                errors.extend(es);
                continue;
            }
        };
        match &mut merged {
            None => merged = Some(root),
            Some(acc) => merge(acc, root, &[], &sources, &mut errors),
        }
    }
    if !errors.is_empty() {
        return Err(errors.into_iter().map(|l| sources.located(l)).collect());
    }
    let root = merged.unwrap_or_else(|| Node::new(0..0, Kind::Map(Vec::new())));
    let warnings = warnings.into_iter().map(|l| sources.located(l)).collect();
    Ok((sources, root, warnings))
}

fn root_value_mut<'n>(root: &'n mut Node, key: &str) -> Option<&'n mut Node> {
    match &mut root.kind {
        Kind::Map(entries) => entries
            .iter_mut()
            .find(|e| e.key == key)
            .map(|e| &mut e.value),
        _ => None,
    }
}

/// One file's tree, spans relative to its own text.
fn parse(input: &Input<'_>) -> Result<Node, ConfigError> {
    let (name, text) = (input.name.as_str(), input.text);
    let syntax = |e: json::SyntaxError| {
        ConfigError::at(
            name,
            text,
            Some(e.offset..e.offset),
            String::new(),
            &e.message,
        )
    };
    match input.format {
        Format::Toml => {
            let root = DeTable::parse(text).map_err(|e| super::toml_error(text, name, &e))?;
            Ok(tree::from_toml(&root))
        }
        Format::Json => json::parse(text).map_err(syntax),
        Format::Yaml => yaml::parse(text).map_err(syntax),
    }
    .and_then(|root| match root.kind {
        Kind::Map(_) => Ok(root),
        _ => Err(ConfigError::at(
            name,
            text,
            Some(0..0),
            String::new(),
            "the config must be a table of keys",
        )),
    })
}

/// Merge `add` into `acc` (both tables); `path` is where they are.
fn merge(acc: &mut Node, add: Node, path: &[&str], sources: &Sources, errors: &mut Vec<Located>) {
    let (Kind::Map(into), Kind::Map(from)) = (&mut acc.kind, add.kind) else {
        return;
    };
    for e in from {
        let key = if path.is_empty() {
            e.key.clone()
        } else {
            format!("{}.{}", path.join("."), super::key_segment(&e.key))
        };
        let Some(existing) = into.iter_mut().find(|x| x.key == e.key) else {
            into.push(e);
            continue;
        };
        match (&mut existing.value.kind, e.value.kind) {
            (Kind::Seq(items), Kind::Seq(more)) if path.is_empty() && e.key == "servers" => {
                servers_across_files(items, &more, sources, errors);
                items.extend(more);
            }
            (Kind::Map(_), kind @ Kind::Map(_)) => {
                let add = Node::new(e.value.span, kind);
                let mut p = path.to_vec();
                p.push(&e.key);
                merge(&mut existing.value, add, &p, sources, errors);
            }
            _ => errors.push(Located {
                span: e.key_span.clone(),
                key: key.clone(),
                message: format!(
                    "`{key}` is set in two files: {} and {}",
                    sources.place(existing.key_span.start),
                    sources.place(e.key_span.start)
                ),
            }),
        }
    }
}

/// A server id of `more` that `items` (earlier files) already has is an error naming both.
fn servers_across_files(
    items: &[Node],
    more: &[Node],
    sources: &Sources,
    errors: &mut Vec<Located>,
) {
    let id = |n: &Node| n.get("id").and_then(Node::as_str).map(str::to_string);
    for (j, new) in more.iter().enumerate() {
        let Some(new_id) = id(new) else { continue };
        if let Some(old) = items
            .iter()
            .find(|o| id(o).as_deref() == Some(new_id.as_str()))
        {
            let span = new.get("id").map_or(new.span.clone(), |n| n.span.clone());
            let old_span = old.get("id").map_or(old.span.clone(), |n| n.span.clone());
            errors.push(Located {
                span: span.clone(),
                key: format!("servers[{}].id", items.len() + j),
                message: format!(
                    "server id `{new_id}` is used in two files: {} and {}",
                    sources.place(old_span.start),
                    sources.place(span.start)
                ),
            });
        }
    }
}

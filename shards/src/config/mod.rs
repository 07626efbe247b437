//! Config loading: TOML, YAML or JSON text in, a validated [`Config`] or one-line
//! [`ConfigError`]s out.
//!
//! This module owns the whole way from files to a config the gateway can trust: reading and
//! merging them (`load.rs`), parsing each format into one span-preserving tree (`tree.rs`,
//! `json.rs`, `yaml.rs`), reading the MCP clients' config shapes (`import.rs`), `${VAR}`
//! substitution (`subst.rs`), deserializing the tree into the model (`model.rs`, which denies
//! unknown keys) with toml's deserializer whatever the format, and the semantic checks
//! (`validate.rs`). Every error names the file, the 1-based line and column and the dotted key
//! path (`servers[1].url`), so `only1mcp-uring validate FILE` and a failed reload say exactly
//! what to fix. Positions come from the tree's byte spans; the key path is found by matching a
//! span against the tree.

pub mod auth;
pub mod cache;
mod emit;
mod import;
mod json;
mod load;
pub mod model;
pub mod redis_url;
mod subst;
mod tree;
mod validate;
mod yaml;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_curation;
#[cfg(test)]
mod tests_load;
#[cfg(test)]
mod tests_pool;
#[cfg(test)]
mod tests_rate_store;
#[cfg(test)]
mod tests_runtime;
#[cfg(test)]
mod tests_unix;

use std::fmt;
use std::ops::Range;
use std::path::Path;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

pub use auth::*;
pub use cache::CacheSection;
pub use emit::Format;
pub use load::{import_files, load_files, Loaded, MAX_CONFIG_BYTES};
pub use model::*;
pub use redis_url::{parse_redis_url, RedisTarget, SecretUrl};
pub use subst::MAX_SECRET_FILE;
pub use validate::{parse_http_url, HttpUrl};

/// The `command` value that means "this gateway binary": the control thread substitutes
/// `std::env::current_exe()`, so demos work without the binary on `PATH`.
pub const SELF_COMMAND: &str = "$self";

/// A config error that names the file, position and key, rendered as one line:
/// `FILE:LINE:COL: key `KEY`: MESSAGE`.
///
/// `line` and `column` are 1-based; `line == 0` means the position is unknown and the
/// `:LINE:COL` part is left out. An empty `key` (a syntax error, an unreadable file) leaves out
/// the `key `KEY`: ` part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file name as given to [`parse_str`] or [`load_file`].
    pub file: String,
    /// 1-based line, or 0 when unknown.
    pub line: usize,
    /// 1-based column in characters, or 0 when unknown.
    pub column: usize,
    /// Dotted key path such as `servers[1].url` (array indexes are 0-based); may be empty.
    pub key: String,
    /// What is wrong, on one line.
    pub message: String,
}

impl ConfigError {
    /// An error at a byte span of `text` (or at no position when `span` is `None`).
    fn at(file: &str, text: &str, span: Option<Range<usize>>, key: String, message: &str) -> Self {
        let (line, column) = span.map_or((0, 0), |s| line_col(text, s.start));
        Self {
            file: file.to_string(),
            line,
            column,
            key,
            // Keep the error on one line whatever the source message looked like.
            message: message.split_whitespace().collect::<Vec<_>>().join(" "),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.key.is_empty() {
            write!(f, ": key `{}`", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// 1-based (line, column) of `byte_offset` in `text`; the column counts characters.
///
/// Offsets past the end are clamped to the end, and an offset inside a multi-byte character
/// counts as that character.
pub fn line_col(text: &str, byte_offset: usize) -> (usize, usize) {
    let mut offset = byte_offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Parse and validate config text; `file_name` names it in errors and says its format by its
/// extension (`.yaml`/`.yml`, `.json`, else TOML); `${VAR}` references are expanded from the
/// process environment, relative `${file:}` paths from the current directory.
///
/// Returns the first error in file order; see [`parse_str_all`] for every error at once.
pub fn parse_str(text: &str, file_name: &str) -> Result<Config, ConfigError> {
    parse_str_all(text, file_name).map_err(|mut errors| errors.swap_remove(0))
}

/// Like [`parse_str`], but returns every semantic error, in file order (never an empty list).
///
/// A syntax or type error stops deserialization, so it is always reported alone.
pub fn parse_str_all(text: &str, file_name: &str) -> Result<Config, Vec<ConfigError>> {
    let env = |name: &str| std::env::var(name).ok();
    let input = load::Input {
        name: file_name.to_string(),
        text,
        format: Format::of_path(Path::new(file_name)),
        dir: Path::new("."),
    };
    load::load_inputs(&[input], load::Expand::With(&env)).map(|l| l.config)
}

/// Read `path` and [`parse_str`] it; errors name the file as `path.display()`.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    load_files(&[path.to_path_buf()])
        .map(|l| l.config)
        .map_err(|mut errors| errors.swap_remove(0))
}

/// Turn a toml syntax error into a [`ConfigError`] with a key path.
fn toml_error(text: &str, file: &str, err: &toml::de::Error) -> ConfigError {
    let (doc, _) = DeTable::parse_recoverable(text);
    let doc = Doc {
        text,
        root: doc,
        sources: None,
    };
    de_error(&doc, err, |span, key, message| {
        ConfigError::at(file, text, span, key, message)
    })
}

/// Turn a toml deserialization (type, unknown-key) error into a [`ConfigError`] with a key
/// path found in `doc`; `make` places it in its file.
fn de_error(
    doc: &Doc<'_>,
    err: &toml::de::Error,
    make: impl Fn(Option<Range<usize>>, String, &str) -> ConfigError,
) -> ConfigError {
    let message = err.message();
    let mut key = err.span().and_then(|s| doc.path_at(&s)).unwrap_or_default();
    if let Some(field) = quoted_after(message, "missing field `") {
        key = join_key(&key, field);
    } else if key.is_empty() {
        if let Some(field) = quoted_after(message, "unknown field `") {
            key = field.to_string();
        }
    }
    make(err.span(), key, message)
}

/// The text between `prefix` (which ends in a backtick) and the next backtick.
fn quoted_after<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = &message[message.find(prefix)? + prefix.len()..];
    Some(&rest[..rest.find('`')?])
}

/// `base.field`, or `field` when `base` is empty.
fn join_key(base: &str, field: &str) -> String {
    if base.is_empty() {
        field.to_string()
    } else {
        format!("{base}.{}", key_segment(field))
    }
}

/// A key as written in a dotted path: bare when it can be, quoted otherwise.
fn key_segment(key: &str) -> String {
    if is_bare_key(key) {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

/// Whether `key` can be written unquoted in TOML.
fn is_bare_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg<'a> {
    /// A key in a table.
    Key(&'a str),
    /// An index in an array.
    Index(usize),
}

/// Render a key path as `servers[1].url`.
pub(crate) fn render_path(path: &[Seg<'_>]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => out = join_key(&out, k),
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// A span-preserving parse of the config text: maps key paths to spans and back.
pub(crate) struct Doc<'i> {
    /// The text the spans index (several files: their joined text).
    text: &'i str,
    root: Spanned<DeTable<'i>>,
    /// The files of a load, to find a span's own file and line.
    sources: Option<&'i load::Sources>,
}

impl Doc<'_> {
    /// The 1-based line of a byte offset (in its own file).
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        match self.sources {
            Some(s) => s.line_of(offset),
            None => line_col(self.text, offset).0,
        }
    }

    /// The span of the value at `path` (for a `[table]` or `[[array]]` entry: its header), or
    /// `None` when the key is absent from the file.
    pub(crate) fn span_of(&self, path: &[Seg<'_>]) -> Option<Range<usize>> {
        let (Seg::Key(first), rest) = path.split_first()? else {
            return None;
        };
        let mut current = get_key(self.root.get_ref(), first)?;
        for seg in rest {
            current = match (seg, current.get_ref()) {
                (Seg::Key(k), DeValue::Table(t)) => get_key(t, k)?,
                (Seg::Index(i), DeValue::Array(a)) => a.get(*i)?,
                _ => return None,
            };
        }
        Some(current.span())
    }

    /// The dotted path of the key or value whose span best covers `span`.
    fn path_at(&self, span: &Range<usize>) -> Option<String> {
        let mut best: Option<(usize, Vec<Seg<'_>>)> = None;
        let mut header: Option<(usize, Vec<Seg<'_>>)> = None;
        let mut path = Vec::new();
        let text = self.text;
        walk_table(self.root.get_ref(), &mut path, &mut |p, node, is_table| {
            let covers = node.start <= span.start && span.end <= node.end;
            let width = node.end - node.start;
            // The narrowest covering node wins; on a tie the deeper (later visited) one.
            if covers && best.as_ref().is_none_or(|(w, _)| width <= *w) {
                best = Some((width, p.to_vec()));
            }
            // A `[header]` table's span is its header; inline and dotted tables are not headers.
            let is_header = is_table && text.get(node.clone()).is_some_and(|t| t.starts_with('['));
            let later = header.as_ref().is_none_or(|(s, _)| node.start >= *s);
            if is_header && node.start <= span.start && later {
                header = Some((node.start, p.to_vec()));
            }
        });
        if let Some((_, p)) = best {
            return Some(render_path(&p));
        }
        // Nothing covers the span (a duplicate key): the key text under the last header.
        let base = header.map(|(_, p)| render_path(&p)).unwrap_or_default();
        let raw = text.get(span.clone()).unwrap_or("").trim();
        let key = if is_bare_key(raw) {
            join_key(&base, raw)
        } else {
            base
        };
        Some(key).filter(|k| !k.is_empty())
    }
}

/// The value under `key` in `table`.
fn get_key<'d, 'i>(table: &'d DeTable<'i>, key: &str) -> Option<&'d Spanned<DeValue<'i>>> {
    table
        .iter()
        .find(|(k, _)| k.get_ref() == key)
        .map(|(_, v)| v)
}

/// A visitor over the document: `(path, span, is_table)`.
type Visit<'v, 'd> = dyn FnMut(&[Seg<'d>], Range<usize>, bool) + 'v;

/// Visit every key and value under `table`, in source-map order.
fn walk_table<'d>(table: &'d DeTable<'_>, path: &mut Vec<Seg<'d>>, visit: &mut Visit<'_, 'd>) {
    for (key, value) in table.iter() {
        path.push(Seg::Key(key.get_ref()));
        visit(path, key.span(), false);
        walk_value(value, path, visit);
        path.pop();
    }
}

/// Visit `value` and everything inside it.
fn walk_value<'d>(
    value: &'d Spanned<DeValue<'_>>,
    path: &mut Vec<Seg<'d>>,
    visit: &mut Visit<'_, 'd>,
) {
    match value.get_ref() {
        DeValue::Table(t) => {
            visit(path, value.span(), true);
            walk_table(t, path, visit);
        }
        DeValue::Array(a) => {
            visit(path, value.span(), false);
            for (i, item) in a.iter().enumerate() {
                path.push(Seg::Index(i));
                walk_value(item, path, visit);
                path.pop();
            }
        }
        _ => visit(path, value.span(), false),
    }
}

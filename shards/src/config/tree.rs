//! The format-neutral config tree: what TOML, YAML and JSON files all become before the one
//! deserializer and the one validator see them.
//!
//! Every node keeps its byte span in the source text (shifted by the file's base offset when
//! several files are merged, see `sources.rs`), so substitution, import and the model's errors
//! can all name file, line and column whatever the format. The tree is turned into toml's
//! span-preserving `DeTable` for deserialization: the model, its serde error texts and the
//! validator's key-path lookups are the TOML path's, unchanged.

use std::borrow::Cow;
use std::ops::Range;

use toml::de::{DeArray, DeTable, DeValue};
use toml::Spanned;

/// Most values (after YAML alias expansion) one config may have.
pub const MAX_NODES: usize = 200_000;
/// Deepest nesting of tables and arrays a config may have.
pub const MAX_DEPTH: usize = 64;

/// One value with its span.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub span: Range<usize>,
    pub kind: Kind,
}

/// What a value is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    /// JSON `null`, YAML `~`: the key is left out (its default applies).
    Null,
    Bool(bool),
    /// A number as a TOML literal (`42`, `-1.5`, `1e+20`, `inf`, `nan`).
    Num(String),
    Str(String),
    /// TOML only.
    Datetime(toml::value::Datetime),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// A problem found in the tree: where, which key (dotted path), what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Located {
    pub span: Range<usize>,
    pub key: String,
    pub message: String,
}

/// One key of a table, in source order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub key: String,
    pub key_span: Range<usize>,
    pub value: Node,
}

impl Node {
    pub fn new(span: Range<usize>, kind: Kind) -> Self {
        Self { span, kind }
    }

    /// The value under `key` of a table.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|e| &e.value)
    }

    /// The entry `key` of a table.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        match &self.kind {
            Kind::Map(entries) => entries.iter().find(|e| e.key == key),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The name of this value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "boolean",
            Kind::Num(_) => "number",
            Kind::Str(_) => "string",
            Kind::Datetime(_) => "datetime",
            Kind::Seq(_) => "array",
            Kind::Map(_) => "table",
        }
    }

    /// Add `base` to every span (a file's place in the merged text).
    pub fn shift(&mut self, base: usize) {
        self.span = self.span.start + base..self.span.end + base;
        match &mut self.kind {
            Kind::Seq(items) => items.iter_mut().for_each(|n| n.shift(base)),
            Kind::Map(entries) => {
                for e in entries {
                    e.key_span = e.key_span.start + base..e.key_span.end + base;
                    e.value.shift(base);
                }
            }
            _ => {}
        }
    }
}

/// A TOML literal for an integer.
pub(crate) fn int_literal(v: i64) -> String {
    v.to_string()
}

/// A TOML literal for a float (`{:?}` keeps a `.0` or an exponent, so it stays a float).
pub(crate) fn float_literal(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{v:?}")
    }
}

/// A toml document (from `DeTable::parse`) as a tree.
pub(crate) fn from_toml(root: &Spanned<DeTable<'_>>) -> Node {
    Node::new(root.span(), map_from_toml(root.get_ref()))
}

fn map_from_toml(table: &DeTable<'_>) -> Kind {
    let mut entries: Vec<Entry> = table
        .iter()
        .map(|(k, v)| Entry {
            key: k.get_ref().to_string(),
            key_span: k.span(),
            value: value_from_toml(v),
        })
        .collect();
    // toml's table is sorted by key; the file's order is the order of the spans.
    entries.sort_by_key(|e| e.key_span.start);
    Kind::Map(entries)
}

fn value_from_toml(v: &Spanned<DeValue<'_>>) -> Node {
    let kind = match v.get_ref() {
        DeValue::String(s) => Kind::Str(s.to_string()),
        DeValue::Integer(i) => Kind::Num(i.to_string()),
        DeValue::Float(f) => Kind::Num(f.to_string()),
        DeValue::Boolean(b) => Kind::Bool(*b),
        DeValue::Datetime(d) => Kind::Datetime(*d),
        DeValue::Array(a) => Kind::Seq(a.iter().map(value_from_toml).collect()),
        DeValue::Table(t) => map_from_toml(t),
    };
    Node::new(v.span(), kind)
}

/// The tree as toml's span-preserving document, borrowing its strings. `Null` entries of a
/// table are left out (so the key's default applies); a `null` in an array is an error, as is a
/// number toml cannot hold: `Err((span, message))`.
pub(crate) fn to_toml(root: &Node) -> Result<Spanned<DeTable<'_>>, (Range<usize>, String)> {
    match to_value(root)? {
        Some(v) => match v.into_inner() {
            DeValue::Table(t) => Ok(Spanned::new(root.span.clone(), t)),
            _ => Err((root.span.clone(), "the config must be a table".into())),
        },
        None => Ok(Spanned::new(root.span.clone(), DeTable::new())),
    }
}

fn to_value(node: &Node) -> Result<Option<Spanned<DeValue<'_>>>, (Range<usize>, String)> {
    let value = match &node.kind {
        Kind::Null => return Ok(None),
        Kind::Bool(b) => DeValue::Boolean(*b),
        Kind::Num(lit) => {
            let parsed = DeValue::parse(lit).ok().map(Spanned::into_inner);
            match parsed {
                Some(v @ (DeValue::Integer(_) | DeValue::Float(_))) => v,
                _ => return Err((node.span.clone(), format!("number `{lit}` is out of range"))),
            }
        }
        Kind::Str(s) => DeValue::String(Cow::Borrowed(s)),
        Kind::Datetime(d) => DeValue::Datetime(*d),
        Kind::Seq(items) => {
            let mut a = DeArray::new();
            for item in items {
                match to_value(item)? {
                    Some(v) => a.push(v),
                    None => {
                        return Err((item.span.clone(), "null is not allowed in a list".into()))
                    }
                }
            }
            DeValue::Array(a)
        }
        Kind::Map(entries) => {
            let mut t = DeTable::new();
            for e in entries {
                if let Some(v) = to_value(&e.value)? {
                    t.insert(Spanned::new(e.key_span.clone(), Cow::Borrowed(&e.key)), v);
                }
            }
            DeValue::Table(t)
        }
    };
    Ok(Some(Spanned::new(node.span.clone(), value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_round_trips_through_the_tree() {
        let text = "a = 0x1f\nb = 1_000.5\n[t]\nc = [\"x\", true]\nd = 1979-05-27\n";
        let root = DeTable::parse(text).unwrap();
        let tree = from_toml(&root);
        let back = to_toml(&tree).unwrap();
        assert_eq!(from_toml(&back), tree);
        assert_eq!(tree.get("a").unwrap().kind, Kind::Num("0x1f".into()));
        let Kind::Map(top) = &tree.kind else { panic!() };
        assert_eq!(
            top.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(),
            ["a", "b", "t"]
        );
    }

    #[test]
    fn nulls_in_tables_are_left_out_and_refused_in_lists() {
        let n = |kind| Node::new(0..1, kind);
        let entry = |key: &str, value| Entry {
            key: key.into(),
            key_span: 0..1,
            value,
        };
        let tree = n(Kind::Map(vec![entry("a", n(Kind::Null))]));
        assert!(to_toml(&tree).unwrap().get_ref().is_empty());
        let tree = n(Kind::Map(vec![entry(
            "a",
            n(Kind::Seq(vec![n(Kind::Null)])),
        )]));
        assert!(to_toml(&tree).unwrap_err().1.contains("null"));
        let tree = n(Kind::Map(vec![entry("a", n(Kind::Num("1x".into())))]));
        assert!(to_toml(&tree).unwrap_err().1.contains("out of range"));
    }
}

//! YAML config text to the span-preserving tree (`tree.rs`), with saphyr-parser's event API
//! (docs/decisions/0008-yaml-crate.md says why that crate).
//!
//! Scalars are resolved with the YAML 1.2 core schema (`true`, `42`, `1.5`, `~`), quoted ones
//! stay strings. Anchors and aliases work, but an alias copies its anchor's whole subtree, so
//! every copy is counted against `tree::MAX_NODES`: a "billion laughs" file fails after a
//! bounded amount of work and memory instead of expanding. One document per file; a duplicate
//! key is an error; tags other than `!!str` are refused (the model has no use for them).

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span, StrInput, Tag};

use super::json::SyntaxError;
use super::tree::{float_literal, int_literal, Entry, Kind, Node, MAX_DEPTH, MAX_NODES};

/// Parse a YAML document (an empty file is an empty table).
pub(crate) fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut b = Builder {
        parser: Parser::new_from_str(text),
        offsets: char_offsets(text),
        anchors: HashMap::new(),
        nodes: 0,
        len: text.len(),
    };
    let mut root = None;
    loop {
        let (event, span) = b.next()?;
        match event {
            Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
            Event::DocumentStart(_) => {
                if root.is_some() {
                    return Err(b.err(span, "only one YAML document per config file"));
                }
                let (event, span) = b.next()?;
                root = Some(b.node(event, span, 0)?);
            }
            Event::StreamEnd => break,
            _ => return Err(b.err(span, "unexpected YAML event")),
        }
    }
    Ok(root.unwrap_or_else(|| Node::new(0..text.len(), Kind::Map(Vec::new()))))
}

/// Byte offset of every char index (saphyr's markers count characters); `None` for ASCII.
fn char_offsets(text: &str) -> Option<Vec<usize>> {
    if text.is_ascii() {
        return None;
    }
    let mut v: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    v.push(text.len());
    Some(v)
}

struct Builder<'t> {
    parser: Parser<'t, StrInput<'t>>,
    offsets: Option<Vec<usize>>,
    /// Anchored nodes and their size in values.
    /// Anchored values: the value, its size in values and its height in levels.
    anchors: HashMap<usize, (Node, usize, usize)>,
    /// Values built so far, alias copies included.
    nodes: usize,
    len: usize,
}

impl<'t> Builder<'t> {
    fn byte(&self, char_index: usize) -> usize {
        match &self.offsets {
            None => char_index.min(self.len),
            Some(v) => v.get(char_index).copied().unwrap_or(self.len),
        }
    }

    fn range(&self, span: Span) -> std::ops::Range<usize> {
        self.byte(span.start.index())..self.byte(span.end.index())
    }

    fn err(&self, span: Span, message: &str) -> SyntaxError {
        SyntaxError {
            offset: self.byte(span.start.index()),
            message: message.to_string(),
        }
    }

    fn scan_err(&self, e: &ScanError) -> SyntaxError {
        SyntaxError {
            offset: self.byte(e.marker().index()),
            message: e.info().to_string(),
        }
    }

    fn next(&mut self) -> Result<(Event<'t>, Span), SyntaxError> {
        match self.parser.next_event() {
            Some(Ok(ev)) => Ok(ev),
            Some(Err(e)) => Err(self.scan_err(&e)),
            None => Ok((Event::StreamEnd, Span::default())),
        }
    }

    fn count(&mut self, n: usize, span: Span) -> Result<(), SyntaxError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            let msg = format!(
                "more than {MAX_NODES} values (YAML aliases count every copy): refusing what looks like an alias bomb"
            );
            return Err(self.err(span, &msg));
        }
        Ok(())
    }

    fn node(&mut self, event: Event<'t>, span: Span, depth: usize) -> Result<Node, SyntaxError> {
        if depth > MAX_DEPTH {
            return Err(self.err(span, &format!("nested deeper than {MAX_DEPTH} levels")));
        }
        self.count(1, span)?;
        let before = self.nodes;
        let (node, anchor) = match event {
            Event::Scalar(value, style, anchor, tag) => {
                let kind = scalar(&value, style, tag.as_deref()).map_err(|m| self.err(span, &m))?;
                (Node::new(self.range(span), kind), anchor)
            }
            Event::SequenceStart(anchor, tag) => {
                no_tag(tag.as_deref()).map_err(|m| self.err(span, &m))?;
                let mut items = Vec::new();
                let end = loop {
                    let (ev, sp) = self.next()?;
                    if ev == Event::SequenceEnd {
                        break sp;
                    }
                    items.push(self.node(ev, sp, depth + 1)?);
                };
                let range = self.byte(span.start.index())..self.byte(end.end.index());
                (Node::new(range, Kind::Seq(items)), anchor)
            }
            Event::MappingStart(anchor, tag) => {
                no_tag(tag.as_deref()).map_err(|m| self.err(span, &m))?;
                let mut entries: Vec<Entry> = Vec::new();
                let end = loop {
                    let (ev, sp) = self.next()?;
                    let key = match ev {
                        Event::MappingEnd => break sp,
                        Event::Scalar(k, ..) => k.into_owned(),
                        _ => return Err(self.err(sp, "keys must be plain text")),
                    };
                    if entries.iter().any(|e| e.key == key) {
                        return Err(self.err(sp, &format!("duplicate key `{key}`")));
                    }
                    let (ev, vsp) = self.next()?;
                    let value = self.node(ev, vsp, depth + 1)?;
                    entries.push(Entry {
                        key,
                        key_span: self.range(sp),
                        value,
                    });
                };
                let range = self.byte(span.start.index())..self.byte(end.end.index());
                (Node::new(range, Kind::Map(entries)), anchor)
            }
            Event::Alias(id) => {
                let Some((size, height)) = self.anchors.get(&id).map(|(_, s, h)| (*s, *h)) else {
                    return Err(self.err(span, "alias to an unknown anchor"));
                };
                // A copy nests the anchored value here: the depth bound holds for it too (a
                // chain of aliases would otherwise build a tree far deeper than the text).
                if depth + height > MAX_DEPTH {
                    return Err(self.err(
                        span,
                        &format!("nested deeper than {MAX_DEPTH} levels (through an alias)"),
                    ));
                }
                // Counted before the copy is made: the budget bounds memory too.
                self.count(size, span)?;
                let mut copy = self.anchors[&id].0.clone();
                copy.span = self.range(span);
                return Ok(copy);
            }
            _ => return Err(self.err(span, "unexpected YAML event")),
        };
        if anchor > 0 {
            let size = self.nodes - before + 1;
            self.anchors
                .insert(anchor, (node.clone(), size, height(&node)));
        }
        Ok(node)
    }
}

/// Levels in `node` (a scalar: 1). Bounded by `MAX_DEPTH`: every node was built within it.
fn height(node: &Node) -> usize {
    1 + match &node.kind {
        Kind::Seq(items) => items.iter().map(height).max().unwrap_or(0),
        Kind::Map(entries) => entries.iter().map(|e| height(&e.value)).max().unwrap_or(0),
        _ => 0,
    }
}

fn no_tag(tag: Option<&Tag>) -> Result<(), String> {
    match tag {
        None => Ok(()),
        Some(t) => Err(format!("YAML tag `{t}` is not supported here")),
    }
}

/// A scalar resolved with the YAML 1.2 core schema.
fn scalar(value: &str, style: ScalarStyle, tag: Option<&Tag>) -> Result<Kind, String> {
    if let Some(t) = tag {
        if t.is_yaml_core_schema() && t.suffix == "str" {
            return Ok(Kind::Str(value.to_string()));
        }
        return Err(format!("YAML tag `{t}` is not supported here"));
    }
    if style != ScalarStyle::Plain {
        return Ok(Kind::Str(value.to_string()));
    }
    let v = value;
    Ok(match v {
        "" | "~" | "null" | "Null" | "NULL" => Kind::Null,
        "true" | "True" | "TRUE" => Kind::Bool(true),
        "false" | "False" | "FALSE" => Kind::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Kind::Num("inf".into()),
        "-.inf" | "-.Inf" | "-.INF" => Kind::Num("-inf".into()),
        ".nan" | ".NaN" | ".NAN" => Kind::Num("nan".into()),
        _ => number(v).unwrap_or_else(|| Kind::Str(v.to_string())),
    })
}

/// A core-schema number: `[-+]?[0-9]+`, `0o[0-7]+`, `0x[0-9a-fA-F]+` or a decimal float.
fn number(v: &str) -> Option<Kind> {
    let radix = |p: &str, r| {
        let digits = v.strip_prefix(p)?;
        let ok = !digits.is_empty() && digits.bytes().all(|b| (b as char).is_digit(r));
        ok.then(|| i64::from_str_radix(digits, r).map_or(v.to_string(), int_literal))
    };
    if let Some(lit) = radix("0x", 16).or_else(|| radix("0o", 8)) {
        return Some(Kind::Num(lit));
    }
    let body = v.strip_prefix(['-', '+']).unwrap_or(v);
    if !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Kind::Num(
            v.parse::<i64>().map_or(v.to_string(), int_literal),
        ));
    }
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = (!int.is_empty() || !frac.is_empty()) && digits(int) && digits(frac);
    let exp_ok = exp.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    let is_float = mantissa.contains('.') || exp.is_some();
    (mantissa_ok && exp_ok && is_float)
        .then(|| v.parse::<f64>().ok().map(|f| Kind::Num(float_literal(f))))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_schema_scalars_and_spans() {
        let text = "a: 1\nb: '1'\nc: 0x10\nd: 1.5e2\ne: ~\nf: yes\ng: é-x\nh: [true, .inf]\n";
        let node = parse(text).unwrap();
        let get = |k| node.get(k).unwrap().kind.clone();
        assert_eq!(get("a"), Kind::Num("1".into()));
        assert_eq!(get("b"), Kind::Str("1".into()));
        assert_eq!(get("c"), Kind::Num("16".into()));
        assert_eq!(get("d"), Kind::Num("150.0".into()));
        assert_eq!(get("e"), Kind::Null);
        assert_eq!(get("f"), Kind::Str("yes".into()), "YAML 1.2: yes is text");
        let h = node.entry("h").unwrap();
        assert_eq!(&text[h.key_span.clone()], "h");
        let g = node.get("g").unwrap();
        assert_eq!(&text[g.span.clone()], "é-x");
    }

    #[test]
    fn aliases_cannot_nest_deeper_than_the_bound() {
        // Each anchor nests the one before 40 levels deeper: a handful of lines, a tree
        // hundreds of levels deep if aliases were copied unchecked.
        let open = "[".repeat(40);
        let close = "]".repeat(40);
        let mut text = format!("a0: &a0 {open}1{close}\n");
        for i in 1..6 {
            text.push_str(&format!("a{i}: &a{i} {open}*a{}{close}\n", i - 1));
        }
        let e = parse(&text).unwrap_err();
        assert!(e.message.contains("deeper than"), "{e:?}");
        // Within the bound, an alias is copied as usual.
        assert!(parse("a: &a [[1]]\nb: [*a]\n").is_ok());
    }

    #[test]
    fn anchors_copy_and_bombs_are_bounded() {
        let node = parse("base: &b {x: 1}\nother: *b\n").unwrap();
        assert_eq!(
            node.get("other").unwrap().get("x").unwrap().kind,
            Kind::Num("1".into())
        );
        let mut bomb = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        for (i, c) in ('b'..='i').enumerate() {
            let prev = (b'a' + i as u8) as char;
            bomb.push_str(&format!("{c}: &{c} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"));
        }
        let started = std::time::Instant::now();
        let e = parse(&bomb).unwrap_err();
        assert!(e.message.contains("alias bomb"), "{e:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn bad_yaml_is_an_error_at_its_offset() {
        let e = parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!((e.offset, e.message.as_str()), (5, "duplicate key `a`"));
        let e = parse("a: [1, 2\n").unwrap_err();
        assert!(e.offset > 0, "{e:?}");
        assert!(parse("a: 1\n---\nb: 2\n")
            .unwrap_err()
            .message
            .contains("one YAML document"));
        assert!(parse("a: !!binary aGk=\n")
            .unwrap_err()
            .message
            .contains("tag"));
        assert!(parse("").unwrap().get("a").is_none());
    }
}

//! JSON config text to the span-preserving tree (`tree.rs`).
//!
//! A small parser of its own because the tree needs every key's and value's byte span, which
//! serde_json does not give. It reads JSON with comments (JSONC: `//` and `/* */` comments,
//! trailing commas), because VS Code's `mcp.json` allows them and users should start the
//! gateway on their file unchanged. It is strict otherwise: a duplicate key is an error (JSON
//! parsers disagree on which one wins), nesting is bounded by `tree::MAX_DEPTH`, and every
//! error carries the byte offset it happened at.

use super::tree::{float_literal, int_literal, Entry, Kind, Node, MAX_DEPTH};

/// A syntax error at a byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub offset: usize,
    pub message: String,
}

/// Parse a whole JSON (JSONC) document.
pub(crate) fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut p = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
    };
    p.skip_ws()?;
    let node = p.value(0)?;
    p.skip_ws()?;
    if p.pos < p.bytes.len() {
        return Err(p.err("unexpected text after the JSON value"));
    }
    Ok(node)
}

struct Parser<'t> {
    text: &'t str,
    bytes: &'t [u8],
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, message: &str) -> SyntaxError {
        SyntaxError {
            offset: self.pos,
            message: message.to_string(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Skip whitespace and comments.
    fn skip_ws(&mut self) -> Result<(), SyntaxError> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\n' | b'\r') => self.pos += 1,
                Some(b'/') if self.bytes.get(self.pos + 1) == Some(&b'/') => {
                    while self.peek().is_some_and(|b| b != b'\n') {
                        self.pos += 1;
                    }
                }
                Some(b'/') if self.bytes.get(self.pos + 1) == Some(&b'*') => {
                    let start = self.pos;
                    match self.text[self.pos + 2..].find("*/") {
                        Some(end) => self.pos += 2 + end + 2,
                        None => {
                            self.pos = start;
                            return Err(self.err("unterminated /* comment"));
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node, SyntaxError> {
        let start = self.pos;
        let kind = match self.peek() {
            Some(b'{') => self.object(depth)?,
            Some(b'[') => self.array(depth)?,
            Some(b'"') => Kind::Str(self.string()?),
            Some(b'-' | b'0'..=b'9') => self.number()?,
            Some(b't') => self.word("true", Kind::Bool(true))?,
            Some(b'f') => self.word("false", Kind::Bool(false))?,
            Some(b'n') => self.word("null", Kind::Null)?,
            Some(b'\'') => return Err(self.err("strings take double quotes in JSON")),
            Some(_) => return Err(self.err("expected a JSON value")),
            None => return Err(self.err("unexpected end of the file, expected a JSON value")),
        };
        Ok(Node::new(start..self.pos, kind))
    }

    fn word(&mut self, word: &str, kind: Kind) -> Result<Kind, SyntaxError> {
        if self.text[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(kind)
        } else {
            Err(self.err("expected a JSON value"))
        }
    }

    fn nest(&self, depth: usize) -> Result<(), SyntaxError> {
        if depth >= MAX_DEPTH {
            return Err(self.err(&format!("nested deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn object(&mut self, depth: usize) -> Result<Kind, SyntaxError> {
        self.nest(depth)?;
        self.pos += 1;
        let mut entries: Vec<Entry> = Vec::new();
        loop {
            self.skip_ws()?;
            match self.peek() {
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Kind::Map(entries));
                }
                Some(b'"') => {}
                _ => return Err(self.err("expected a \"key\" or `}`")),
            }
            let key_start = self.pos;
            let key = self.string()?;
            let key_span = key_start..self.pos;
            if entries.iter().any(|e| e.key == key) {
                self.pos = key_start;
                return Err(self.err(&format!("duplicate key `{key}`")));
            }
            self.skip_ws()?;
            if self.peek() != Some(b':') {
                return Err(self.err("expected `:` after the key"));
            }
            self.pos += 1;
            self.skip_ws()?;
            let value = self.value(depth + 1)?;
            entries.push(Entry {
                key,
                key_span,
                value,
            });
            self.skip_ws()?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {}
                _ => return Err(self.err("expected `,` or `}`")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Kind, SyntaxError> {
        self.nest(depth)?;
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.skip_ws()?;
            if self.peek() == Some(b']') {
                self.pos += 1;
                return Ok(Kind::Seq(items));
            }
            items.push(self.value(depth + 1)?);
            self.skip_ws()?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {}
                _ => return Err(self.err("expected `,` or `]`")),
            }
        }
    }

    fn number(&mut self) -> Result<Kind, SyntaxError> {
        let start = self.pos;
        let digits = |p: &mut Self| {
            let s = p.pos;
            while p.peek().is_some_and(|b| b.is_ascii_digit()) {
                p.pos += 1;
            }
            p.pos > s
        };
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        if !digits(self) {
            return Err(self.err("expected digits"));
        }
        if self.bytes[int_start] == b'0' && self.pos - int_start > 1 {
            self.pos = int_start;
            return Err(self.err("numbers do not start with 0 in JSON"));
        }
        let mut float = false;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            float = true;
            if !digits(self) {
                return Err(self.err("expected digits after `.`"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            float = true;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if !digits(self) {
                return Err(self.err("expected digits in the exponent"));
            }
        }
        let lit = &self.text[start..self.pos];
        Ok(Kind::Num(if float {
            lit.parse::<f64>().map_or(lit.to_string(), float_literal)
        } else {
            lit.parse::<i64>().map_or(lit.to_string(), int_literal)
        }))
    }

    fn string(&mut self) -> Result<String, SyntaxError> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let rest = &self.text[self.pos..];
            let Some(i) = rest.find(|c: char| c == '"' || c == '\\' || c < ' ') else {
                self.pos = open;
                return Err(self.err("unterminated string"));
            };
            out.push_str(&rest[..i]);
            self.pos += i;
            match self.bytes[self.pos] {
                b'"' => {
                    self.pos += 1;
                    return Ok(out);
                }
                b'\\' => self.escape(&mut out)?,
                _ => {
                    return Err(
                        self.err("control character in a string (write it as \\n, \\t, ...)")
                    )
                }
            }
        }
    }

    fn escape(&mut self, out: &mut String) -> Result<(), SyntaxError> {
        let c = match self.bytes.get(self.pos + 1) {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                let hi = self.hex4(self.pos + 2)?;
                self.pos += 6;
                let code = if (0xD800..0xDC00).contains(&hi) {
                    if !self.text[self.pos..].starts_with("\\u") {
                        return Err(self.err("unpaired surrogate in \\u escape"));
                    }
                    let lo = self.hex4(self.pos + 2)?;
                    if !(0xDC00..0xE000).contains(&lo) {
                        return Err(self.err("unpaired surrogate in \\u escape"));
                    }
                    self.pos += 6;
                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                } else {
                    hi
                };
                let c = char::from_u32(code).ok_or_else(|| self.err("invalid \\u escape"))?;
                out.push(c);
                return Ok(());
            }
            _ => return Err(self.err("invalid escape in a string")),
        };
        out.push(c);
        self.pos += 2;
        Ok(())
    }

    fn hex4(&self, at: usize) -> Result<u32, SyntaxError> {
        self.text
            .get(at..at + 4)
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| self.err("\\u takes four hex digits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_their_spans() {
        let text = r#"{"a": [1, -2.5e3, "x\u00e9\"", true, null], "b": {}}"#;
        let node = parse(text).unwrap();
        let a = node.entry("a").unwrap();
        assert_eq!(&text[a.key_span.clone()], "\"a\"");
        let Kind::Seq(items) = &a.value.kind else {
            panic!()
        };
        assert_eq!(items[0].kind, Kind::Num("1".into()));
        assert_eq!(items[1].kind, Kind::Num("-2500.0".into()));
        assert_eq!(items[2].kind, Kind::Str("xé\"".into()));
        assert_eq!(&text[items[2].span.clone()], r#""x\u00e9\"""#);
        assert_eq!(items[4].kind, Kind::Null);
    }

    #[test]
    fn comments_and_trailing_commas_are_read() {
        let text = "// VS Code\n{\n  /* servers */ \"a\": [1, 2,], // end\n}\n";
        let node = parse(text).unwrap();
        assert!(node.get("a").is_some());
    }

    #[test]
    fn bad_input_is_an_error_at_its_offset() {
        let cases = [
            ("{\"a\": 1, \"a\": 2}", 9, "duplicate key `a`"),
            ("{\"a\": 01}", 6, "start with 0"),
            ("{\"a\": 'x'}", 6, "double quotes"),
            ("{\"a\": 1} x", 9, "after the JSON value"),
            ("/* open", 0, "unterminated /* comment"),
            ("{\"a\": \"x", 6, "unterminated string"),
            ("{\"a\" 1}", 5, "expected `:`"),
        ];
        for (text, offset, msg) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.offset, offset, "{text}: {e:?}");
            assert!(e.message.contains(msg), "{text}: {e:?}");
        }
        let deep = "[".repeat(MAX_DEPTH + 1);
        assert!(parse(&deep).unwrap_err().message.contains("nested deeper"));
    }
}

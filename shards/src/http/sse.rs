//! Incremental Server-Sent Events decoding (backend responses that arrive as `text/event-stream`).
//!
//! Bytes are pushed as they arrive; complete events are popped. Only `data` (joined with `\n`)
//! and `id` are kept: MCP puts one JSON-RPC message in each event's data. Comment lines and
//! unknown fields are ignored, as the SSE spec requires.

/// One decoded event.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `id` field, if any.
    pub id: Option<String>,
    /// The `event` field, if any (`message` when absent).
    pub event: Option<String>,
    /// Data lines joined with `\n`.
    pub data: Vec<u8>,
}

/// Decoder state: unconsumed bytes.
#[derive(Debug, Default)]
pub struct SseDecoder {
    buf: Vec<u8>,
    at: usize,
}

impl SseDecoder {
    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.at > 0 {
            // Drop the events already popped (at most one partial event stays): a long-lived
            // stream whose reads end inside an event would otherwise keep every byte.
            self.buf.drain(..self.at);
            self.at = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Pops the next complete event, if one is buffered.
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            let rest = &self.buf[self.at..];
            // An event ends at a blank line (\n\n, \r\n\r\n or mixed).
            let end = find_blank_line(rest)?;
            let (block, skip) = end;
            let block = rest[..block].to_vec();
            self.at += skip;
            let mut ev = Event::default();
            let mut has_data = false;
            for line in block.split(|&b| b == b'\n') {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.is_empty() || line[0] == b':' {
                    continue;
                }
                let (field, value) = match line.iter().position(|&b| b == b':') {
                    Some(i) => {
                        let v = &line[i + 1..];
                        (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
                    }
                    None => (line, &b""[..]),
                };
                match field {
                    b"data" => {
                        if has_data {
                            ev.data.push(b'\n');
                        }
                        ev.data.extend_from_slice(value);
                        has_data = true;
                    }
                    b"id" => ev.id = Some(String::from_utf8_lossy(value).into_owned()),
                    b"event" => ev.event = Some(String::from_utf8_lossy(value).into_owned()),
                    _ => {}
                }
            }
            if has_data {
                return Some(ev);
            }
        }
    }
}

/// Finds the end of the first event block: (block length, bytes to skip incl. blank line).
fn find_blank_line(b: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\n' {
            let mut j = i + 1;
            if j < b.len() && b[j] == b'\r' {
                j += 1;
            }
            if j < b.len() && b[j] == b'\n' {
                return Some((i, j + 1));
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_events_split_across_pushes() {
        let mut d = SseDecoder::default();
        d.push(b": priming\n\nid: 1\nevent: message\ndata: {\"a\"");
        assert_eq!(d.next_event(), None);
        d.push(b":1}\n\r\ndata: x\ndata: y\n\n");
        let e = d.next_event().unwrap();
        assert_eq!(e.id.as_deref(), Some("1"));
        assert_eq!(e.data, b"{\"a\":1}");
        assert_eq!(d.next_event().unwrap().data, b"x\ny");
        assert_eq!(d.next_event(), None);
    }

    #[test]
    fn consumed_events_are_dropped_even_when_no_read_ends_on_an_event() {
        // A long-lived stream whose reads always end inside the next event.
        let mut d = SseDecoder::default();
        d.push(b"data: 0");
        for i in 1..5000 {
            d.push(format!("\n\ndata: {i}").as_bytes());
            assert!(d.next_event().is_some());
            assert!(d.next_event().is_none());
        }
        assert!(
            d.buf.len() < 64,
            "kept {} bytes of consumed events",
            d.buf.len()
        );
    }
}

//! Incremental Server-Sent Events decoding (backend responses that arrive as `text/event-stream`).
//!
//! Bytes are pushed as they arrive; complete events are popped. Only `data` (joined with `\n`)
//! and `id` are kept: MCP puts one JSON-RPC message in each event's data. Comment lines and
//! unknown fields are ignored, as the SSE spec requires.
//!
//! What a backend streams is bounded: an event that grows past [`MAX_EVENT`] without ending
//! is dropped (up to its blank line) and reported, so a backend cannot grow a shard's memory
//! without end; and each byte is scanned for the end of its event once, not once per read.

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

/// The largest event accepted from a backend (the same bound as a stdio line).
pub const MAX_EVENT: usize = 64 * 1024 * 1024;

/// Decoder state: unconsumed bytes.
#[derive(Debug)]
pub struct SseDecoder {
    buf: Vec<u8>,
    at: usize,
    /// Bytes after `at` already searched for a blank line without finding one.
    scanned: usize,
    /// Dropping the rest of an oversized event, up to its blank line.
    skipping: bool,
    /// Oversized events dropped since the last [`SseDecoder::take_dropped`].
    dropped: u64,
    max: usize,
}

impl Default for SseDecoder {
    fn default() -> Self {
        Self::with_max(MAX_EVENT)
    }
}

impl SseDecoder {
    /// A decoder that drops events larger than `max` bytes.
    pub fn with_max(max: usize) -> Self {
        SseDecoder {
            buf: Vec::new(),
            at: 0,
            scanned: 0,
            skipping: false,
            dropped: 0,
            max,
        }
    }

    /// How many oversized events were dropped since the last call (for the log).
    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }

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
            // An event ends at a blank line (\n\n, \r\n\r\n or mixed); a blank line may
            // have started in the last two bytes already searched.
            let from = self.scanned.saturating_sub(2);
            let Some((block, skip)) =
                find_blank_line(&rest[from..]).map(|(b, s)| (b + from, s + from))
            else {
                self.scanned = rest.len();
                if rest.len() > self.max {
                    // Oversized and unfinished: keep only what may start its blank line.
                    if !self.skipping {
                        self.dropped += 1;
                    }
                    self.skipping = true;
                    let keep = self.buf.len().saturating_sub(2);
                    self.buf.drain(..keep);
                    self.at = 0;
                    self.scanned = self.buf.len();
                }
                return None;
            };
            self.scanned = 0;
            if std::mem::take(&mut self.skipping) {
                // The end of an event that was dropped.
                self.at += skip;
                continue;
            }
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
    fn an_endless_event_is_dropped_and_the_stream_goes_on() {
        let mut d = SseDecoder::with_max(1024);
        d.push(b"data: first\n\n");
        assert_eq!(d.next_event().unwrap().data, b"first");
        for _ in 0..1000 {
            d.push(&[b'x'; 100]);
            assert_eq!(d.next_event(), None);
            assert!(d.buf.len() <= 1024 + 100, "kept {} bytes", d.buf.len());
        }
        assert_eq!(d.take_dropped(), 1);
        // Its blank line split across two reads, then the next event arrives whole.
        d.push(b"xx\r\n");
        assert_eq!(d.next_event(), None);
        d.push(b"\r\ndata: after\n\n");
        assert_eq!(d.next_event().unwrap().data, b"after");
        assert_eq!(d.take_dropped(), 0);
    }

    #[test]
    fn a_large_event_in_small_reads_is_scanned_once() {
        let mut d = SseDecoder::default();
        d.push(b"data: ");
        for _ in 0..20_000 {
            d.push(b"abcdefgh");
            assert_eq!(d.next_event(), None);
            assert!(d.scanned >= d.buf.len() - d.at - 2);
        }
        d.push(b"\n\n");
        assert_eq!(d.next_event().unwrap().data.len(), 160_000);
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

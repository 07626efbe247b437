//! Body framing and request-target rules of HTTP/1.1 (RFC 9112), as pure functions over
//! bytes: no socket, no allocation, so the front's reader and the fuzz targets run the same
//! code. Every size here comes from the wire and is checked before any arithmetic.

use std::ops::Range;

use crate::http::request::ReadError;

/// How a request's body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    None,
    /// `Content-Length`.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// Splits an absolute-form request target into its authority and the origin-form rest;
/// an origin-form target (`/mcp`) has no authority. Only `http` and `https` are accepted.
pub fn split_absolute(target: &str) -> Result<(Option<&str>, &str), ReadError> {
    if target.starts_with('/') || target == "*" {
        return Ok((None, target));
    }
    let bad = ReadError::Status(400, "invalid request target");
    let (scheme, rest) = target.split_once("://").ok_or(bad)?;
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return Err(ReadError::Status(400, "invalid request target"));
    }
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.is_empty() || authority.contains('@') {
        return Err(ReadError::Status(400, "invalid request target"));
    }
    Ok((Some(authority), if path.is_empty() { "/" } else { path }))
}

/// A `Content-Length` value: ASCII digits only (no sign, no list, no spaces inside); a
/// number too large for this machine is a body too large.
pub fn content_length(v: &[u8]) -> Result<usize, ReadError> {
    let v = v.trim_ascii();
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return Err(ReadError::Status(400, "invalid Content-Length"));
    }
    v.iter().try_fold(0usize, |n, d| {
        n.checked_mul(10)
            .and_then(|n| n.checked_add(usize::from(d - b'0')))
            .ok_or(ReadError::Status(413, "request body too large"))
    })
}

/// The codings of every `Transfer-Encoding` line, in order (RFC 9112 6.1).
#[derive(Default)]
pub struct TeState {
    /// A `Transfer-Encoding` line was present.
    pub present: bool,
    codings: usize,
    /// `chunked` seen, and whether it was the last coding so far.
    chunked: usize,
    last_chunked: bool,
}

impl TeState {
    /// Adds the codings of one `Transfer-Encoding` line.
    pub fn add(&mut self, v: &[u8]) -> Result<(), ReadError> {
        self.present = true;
        let v = std::str::from_utf8(v)
            .map_err(|_| ReadError::Status(400, "invalid Transfer-Encoding"))?;
        for coding in v.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            // Parameters (`;q=...`) do not make a coding chunked.
            let name = coding.split(';').next().unwrap_or("").trim();
            self.codings += 1;
            self.last_chunked = name.eq_ignore_ascii_case("chunked");
            self.chunked += usize::from(self.last_chunked);
        }
        Ok(())
    }

    /// 400 unless `chunked` is the final coding and applied once; 501 for other codings
    /// before it (the gateway decodes none of them).
    pub fn framing(&self) -> Result<Framing, ReadError> {
        if !self.last_chunked || self.chunked != 1 {
            return Err(ReadError::Status(
                400,
                "Transfer-Encoding must end with a single chunked",
            ));
        }
        if self.codings > 1 {
            return Err(ReadError::Status(501, "unsupported Transfer-Encoding"));
        }
        Ok(Framing::Chunked)
    }
}

/// The most raw bytes (chunk lines, extensions, data) a chunked body of at most `max_body`
/// bytes may take: twice the body and 64 KiB of framing. Beyond it: 413.
pub fn max_chunked_raw(max_body: usize) -> usize {
    max_body.saturating_mul(2).saturating_add(64 * 1024)
}

/// What the next step of reading a chunked body is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkStep {
    /// More bytes are needed before the next chunk can be decoded.
    Need,
    /// A data chunk at this range of the buffer; the next chunk starts 2 bytes after it.
    Data(Range<usize>),
    /// The last chunk: the body ends, the next request starts at this index.
    End(usize),
}

/// Decodes the chunk starting at `buf[at..]`, given `body_len` bytes of body so far and the
/// `max_body` limit (413 beyond). Trailers are refused (400).
pub fn chunk_step(
    buf: &[u8],
    at: usize,
    body_len: usize,
    max_body: usize,
) -> Result<ChunkStep, ReadError> {
    let rest = buf.get(at..).unwrap_or_default();
    let (hdr, size) = match httparse::parse_chunk_size(rest) {
        Ok(httparse::Status::Complete(v)) => v,
        Ok(httparse::Status::Partial) => {
            // A chunk-size line with extensions may be long, but not this long.
            if rest.len() > 1024 {
                return Err(ReadError::Status(400, "malformed chunk size"));
            }
            return Ok(ChunkStep::Need);
        }
        Err(_) => return Err(ReadError::Status(400, "malformed chunk size")),
    };
    // A size near 2^64 used to wrap `len + size` and panic the shard.
    let size = usize::try_from(size)
        .ok()
        .filter(|s| body_len.checked_add(*s).is_some_and(|t| t <= max_body))
        .ok_or(ReadError::Status(413, "request body too large"))?;
    // Cannot overflow: `size <= max_body` and `rest` is in memory.
    let data = at + hdr..at + hdr + size;
    let Some(crlf) = buf.get(data.end..data.end + 2) else {
        return Ok(ChunkStep::Need);
    };
    if crlf != b"\r\n" {
        return Err(ReadError::Status(
            400,
            if size == 0 {
                "chunked trailers are not supported"
            } else {
                "malformed chunk"
            },
        ));
    }
    Ok(if size == 0 {
        ChunkStep::End(data.end + 2)
    } else {
        ChunkStep::Data(data)
    })
}

#[cfg(test)]
#[path = "framing_tests.rs"]
mod tests;

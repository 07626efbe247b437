//! gzip bodies assembled from a run of bytes compressed once and a small per-request head
//! and tail.
//!
//! A large list answer is `head ++ run ++ tail`, where the run is shared by every request for
//! that page and only the head (it carries the request's JSON-RPC id) and the tail differ.
//! The body cannot be compressed once as a whole, but DEFLATE is a sequence of blocks: the
//! run is compressed once as raw DEFLATE ending with a full flush (so it ends on a byte
//! boundary, in a non-final block, and refers to nothing outside itself), and each answer
//! is then
//!
//! `gzip header | head as a stored block | the run's blocks | tail as a final stored block |
//! CRC-32 | length`
//!
//! with the CRC-32 combined from the head's, the run's (computed once) and the tail's. Per
//! request this costs two CRCs over a few dozen bytes and no copy of the run: the front
//! writes the cached blocks from the shared [`GzRun::deflate`] itself. RFC 1951 (stored
//! blocks, section 3.2.4) and RFC 1952 (the member format). The per-page slot that holds a
//! run and the steps that turn a reply into its gzip form are in [`crate::http::gzip_slot`].

use bytes::Bytes;
use flate2::{Compress, Compression, FlushCompress, Status};

/// The gzip member header: magic, CM = deflate, no flags, no mtime, XFL 0, OS unknown.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// Largest stored block (its LEN field is 16 bits).
const STORED_MAX: usize = u16::MAX as usize;

/// Compression level for runs: compressed once per catalog version, so the better ratio of
/// a high level is paid once (6 is zlib's default; 9 buys a few percent more for much longer).
const LEVEL: u32 = 6;

/// A run compressed once: its raw DEFLATE blocks (byte-aligned, none final), and the CRC-32
/// and length of the uncompressed run.
#[derive(Debug, Clone)]
pub struct GzRun {
    /// Raw DEFLATE, ending with a full flush (a byte boundary, no final block).
    pub deflate: Bytes,
    /// CRC-32 of the uncompressed run.
    pub crc: u32,
    /// Length of the uncompressed run.
    pub len: u64,
}

impl GzRun {
    /// Compresses `run` (once per page; not on a per-request path).
    pub fn compress(run: &[u8]) -> GzRun {
        let mut c = Compress::new(Compression::new(LEVEL), false);
        let mut out: Vec<u8> = Vec::with_capacity(run.len() / 4 + 64);
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(4096));
            }
            let done = c.total_in() as usize;
            let status = c.compress_vec(&run[done..], &mut out, FlushCompress::Full);
            // A full flush is finished when all input is taken and the output was not filled
            // (zlib's convention: room left over means nothing is pending).
            let finished = c.total_in() as usize == run.len() && out.len() < out.capacity();
            match status {
                Ok(Status::Ok) | Ok(Status::BufError) if !finished => continue,
                // Compressing from memory into memory cannot fail; a failure would be a bug
                // in the deflate backend, not the caller's.
                Ok(_) | Err(_) => break,
            }
        }
        let mut h = crc32fast::Hasher::new();
        h.update(run);
        GzRun {
            deflate: Bytes::from(out),
            crc: h.finalize(),
            len: run.len() as u64,
        }
    }
}

/// Appends `data` as stored DEFLATE blocks (the last one final when `last`). Empty `data`
/// gives one empty block (a final member still needs its final block).
fn stored(out: &mut Vec<u8>, data: &[u8], last: bool) {
    let mut chunks = data.chunks(STORED_MAX).peekable();
    if data.is_empty() {
        out.extend_from_slice(&[u8::from(last), 0, 0, 0xff, 0xff]);
        return;
    }
    while let Some(chunk) = chunks.next() {
        let fin = last && chunks.peek().is_none();
        let n = chunk.len() as u16;
        out.push(u8::from(fin));
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&(!n).to_le_bytes());
        out.extend_from_slice(chunk);
    }
}

/// Turns `head` and `tail` of the body `head ++ run ++ tail` into the parts of its gzip
/// form: `head` becomes what goes before the run's cached blocks (gzip header and the head
/// as a stored block), `tail` what goes after them (the tail as a final stored block, CRC-32
/// and length); between them the front writes [`GzRun::deflate`] itself (shared, not
/// copied). In place: no allocation unless a part outgrows its buffer.
pub fn assemble(head: &mut Vec<u8>, run: &GzRun, tail: &mut Vec<u8>) {
    let mut crc = crc32fast::Hasher::new();
    crc.update(head);
    crc.combine(&crc32fast::Hasher::new_with_initial_len(run.crc, run.len));
    let mut t = crc32fast::Hasher::new();
    t.update(tail);
    crc.combine(&t);
    let total = head.len() as u64 + run.len + tail.len() as u64;
    if head.is_empty() {
        head.extend_from_slice(&HEADER);
    } else {
        frame(head, &HEADER, false);
    }
    frame(tail, &[], true);
    tail.extend_from_slice(&crc.finalize().to_le_bytes());
    // ISIZE: the length modulo 2^32 (RFC 1952).
    tail.extend_from_slice(&(total as u32).to_le_bytes());
}

/// Rewrites `data` as `before` followed by `data` in stored blocks (see [`stored`]).
fn frame(data: &mut Vec<u8>, before: &[u8], last: bool) {
    if data.len() <= STORED_MAX {
        let n = data.len() as u16;
        let mut lead = [0u8; HEADER.len() + 5];
        let k = before.len();
        lead[..k].copy_from_slice(before);
        lead[k] = u8::from(last);
        lead[k + 1..k + 3].copy_from_slice(&n.to_le_bytes());
        lead[k + 3..k + 5].copy_from_slice(&(!n).to_le_bytes());
        data.splice(0..0, lead[..k + 5].iter().copied());
    } else {
        // Only a huge JSON-RPC id makes a head this long: rare enough for a new buffer.
        let mut out =
            Vec::with_capacity(before.len() + data.len() + 5 * (data.len() / STORED_MAX + 1));
        out.extend_from_slice(before);
        stored(&mut out, data, last);
        *data = out;
    }
}

#[cfg(test)]
#[path = "gzip_tests.rs"]
mod tests;

//! The part of RESP2 (the Redis protocol) the store thread speaks: commands out as arrays of
//! bulk strings, replies in as simple strings, errors, integers, bulk strings and arrays.
//!
//! Replies come from a server the operator named, but they are still input: every length is
//! checked before it is used, a line is at most [`MAX_LINE`] bytes, a bulk string at most
//! [`MAX_BULK`], an array at most [`MAX_ARRAY`] items and arrays nest at most two deep (the
//! store's commands never get more back). Anything beyond is an `InvalidData` error, and the
//! caller drops the connection.

use std::io::{self, BufRead, Write};

/// Longest reply line (a simple string, an error, a length).
pub const MAX_LINE: usize = 4096;
/// Longest bulk string accepted.
pub const MAX_BULK: usize = 64 * 1024;
/// Most items of an array reply.
pub const MAX_ARRAY: usize = 64;
/// Deepest nesting of arrays.
const MAX_DEPTH: usize = 2;

/// One reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `+OK`.
    Simple(String),
    /// `-ERR ...`: the server refused the command.
    Error(String),
    /// `:42`.
    Int(i64),
    /// `$3\r\nabc` (`None`: the null bulk string).
    Bulk(Option<Vec<u8>>),
    /// `*2 ...` (`None`: the null array).
    Array(Option<Vec<Value>>),
}

/// Appends one command (an array of bulk strings) to `out`.
pub fn command(out: &mut Vec<u8>, args: &[&[u8]]) {
    header(out, b'*', args.len());
    for a in args {
        header(out, b'$', a.len());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

fn header(out: &mut Vec<u8>, kind: u8, n: usize) {
    out.push(kind);
    let _ = write!(out, "{n}");
    out.extend_from_slice(b"\r\n");
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("bad reply from Redis: {what}"),
    )
}

/// Reads one reply.
pub fn read<R: BufRead>(r: &mut R) -> io::Result<Value> {
    read_at(r, 0)
}

fn read_at<R: BufRead>(r: &mut R, depth: usize) -> io::Result<Value> {
    let line = read_line(r)?;
    let (&kind, rest) = line.split_first().ok_or_else(|| invalid("an empty line"))?;
    let text = || String::from_utf8_lossy(rest).into_owned();
    match kind {
        b'+' => Ok(Value::Simple(text())),
        b'-' => Ok(Value::Error(text())),
        b':' => Ok(Value::Int(number(rest)?)),
        b'$' => {
            let n = number(rest)?;
            if n == -1 {
                return Ok(Value::Bulk(None));
            }
            let n = usize::try_from(n)
                .ok()
                .filter(|n| *n <= MAX_BULK)
                .ok_or_else(|| invalid("a bulk string length out of bounds"))?;
            let mut data = vec![0u8; n + 2];
            r.read_exact(&mut data)?;
            if !data.ends_with(b"\r\n") {
                return Err(invalid("a bulk string not ended by CRLF"));
            }
            data.truncate(n);
            Ok(Value::Bulk(Some(data)))
        }
        b'*' => {
            let n = number(rest)?;
            if n == -1 {
                return Ok(Value::Array(None));
            }
            let n = usize::try_from(n)
                .ok()
                .filter(|n| *n <= MAX_ARRAY)
                .ok_or_else(|| invalid("an array length out of bounds"))?;
            if depth >= MAX_DEPTH {
                return Err(invalid("arrays nested too deep"));
            }
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(read_at(r, depth + 1)?);
            }
            Ok(Value::Array(Some(items)))
        }
        _ => Err(invalid("an unknown reply type")),
    }
}

fn number(digits: &[u8]) -> io::Result<i64> {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| invalid("a malformed number"))
}

/// One CRLF-ended line without its CRLF, at most [`MAX_LINE`] bytes.
fn read_line<R: BufRead>(r: &mut R) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "Redis closed the connection",
            ));
        }
        let (take, done) = match memchr_nl(buf) {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if line.len() + take > MAX_LINE + 2 {
            return Err(invalid("a line too long"));
        }
        line.extend_from_slice(&buf[..take]);
        r.consume(take);
        if done {
            break;
        }
    }
    if !line.ends_with(b"\r\n") {
        return Err(invalid("a line not ended by CRLF"));
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

fn memchr_nl(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> io::Result<Value> {
        read(&mut io::Cursor::new(bytes))
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        command(&mut out, &[b"EVALSHA", b"abc", b"1", b""]);
        assert_eq!(
            out,
            b"*4\r\n$7\r\nEVALSHA\r\n$3\r\nabc\r\n$1\r\n1\r\n$0\r\n\r\n".to_vec()
        );
    }

    #[test]
    fn every_reply_type() {
        assert_eq!(parse(b"+OK\r\n").unwrap(), Value::Simple("OK".into()));
        assert_eq!(
            parse(b"-NOSCRIPT No matching script\r\n").unwrap(),
            Value::Error("NOSCRIPT No matching script".into())
        );
        assert_eq!(parse(b":-12\r\n").unwrap(), Value::Int(-12));
        assert_eq!(
            parse(b"$5\r\nab\r\nc\r\n").unwrap(),
            Value::Bulk(Some(b"ab\r\nc".to_vec()))
        );
        assert_eq!(parse(b"$-1\r\n").unwrap(), Value::Bulk(None));
        assert_eq!(parse(b"*-1\r\n").unwrap(), Value::Array(None));
        assert_eq!(
            parse(b"*2\r\n:1\r\n$1\r\nx\r\n").unwrap(),
            Value::Array(Some(vec![Value::Int(1), Value::Bulk(Some(b"x".to_vec()))]))
        );
    }

    #[test]
    fn replies_in_pieces_and_back_to_back() {
        // A reader that hands out one byte at a time, as a slow socket may.
        struct Trickle<'a>(&'a [u8]);
        impl io::Read for Trickle<'_> {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(out.len()).min(1);
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut r = io::BufReader::with_capacity(1, Trickle(b":0\r\n:1500\r\n$2\r\nok\r\n"));
        assert_eq!(read(&mut r).unwrap(), Value::Int(0));
        assert_eq!(read(&mut r).unwrap(), Value::Int(1500));
        assert_eq!(read(&mut r).unwrap(), Value::Bulk(Some(b"ok".to_vec())));
        assert_eq!(
            read(&mut r).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }

    #[test]
    fn hostile_replies_are_refused_before_allocating() {
        let long_line = [b"+".as_slice(), &vec![b'a'; MAX_LINE + 10], b"\r\n"].concat();
        let deep = b"*1\r\n*1\r\n*1\r\n:1\r\n".to_vec();
        for bad in [
            b"$99999999999\r\n".to_vec(),
            b"$-2\r\n".to_vec(),
            format!("${}\r\n", MAX_BULK + 1).into_bytes(),
            format!("*{}\r\n", MAX_ARRAY + 1).into_bytes(),
            b"*-5\r\n".to_vec(),
            b":12a\r\n".to_vec(),
            b"?what\r\n".to_vec(),
            b"\r\n".to_vec(),
            b"+OK\n".to_vec(),
            b"$2\r\nabcd".to_vec(),
            long_line,
            deep,
        ] {
            let e = parse(&bad).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{bad:?}: {e}");
        }
        assert_eq!(
            parse(b"$10\r\nabc").unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }
}

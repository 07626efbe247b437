//! The stdio front's two blocking ends, each on its own thread: the writer of the client's
//! stdout and the reader of its stdin (EOF there shuts the gateway down).

use std::io::Write;

use anyhow::Context;
use crossbeam_channel::unbounded;
use only1mcp_shards::shard::ShardMsg;

/// The one thread that writes the stdio client's stdout: a line per message.
pub fn spawn_stdout_writer() -> anyhow::Result<crossbeam_channel::Sender<Vec<u8>>> {
    let (tx, rx) = unbounded::<Vec<u8>>();
    std::thread::Builder::new()
        .name("o1m-stdout".into())
        .spawn(move || {
            let mut out = std::io::stdout().lock();
            for mut msg in rx {
                msg.push(b'\n');
                if out.write_all(&msg).and_then(|_| out.flush()).is_err() {
                    return;
                }
            }
        })
        .context("cannot start the stdout writer")?;
    Ok(tx)
}

/// The longest message a stdio client may send (the same bound as a stdio backend's line).
pub const MAX_STDIN_LINE: usize = 64 * 1024 * 1024;

/// What [`read_line_bounded`] read.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A whole line (its newline included, if the input had one) is in the buffer.
    Whole,
    /// A line longer than the bound was read to its end and dropped.
    TooLong,
    /// End of input.
    End,
}

/// Reads one line into `line` (cleared first) without ever holding more than `max` bytes
/// of it: a longer line is consumed to its newline and dropped.
pub fn read_line_bounded(
    r: &mut impl std::io::BufRead,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Line> {
    line.clear();
    let mut too_long = false;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(match (too_long, line.is_empty()) {
                (true, _) => Line::TooLong,
                (false, true) => Line::End,
                (false, false) => Line::Whole,
            });
        }
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if !too_long && line.len() + take <= max {
            line.extend_from_slice(&buf[..take]);
        } else {
            too_long = true;
            line.clear();
        }
        r.consume(take);
        if done {
            return Ok(if too_long { Line::TooLong } else { Line::Whole });
        }
    }
}

/// Reads the stdio client's lines (blocking, so on its own thread) into shard 0's mailbox;
/// stdin EOF means the client is gone: shut down like on SIGTERM.
pub fn spawn_stdin_reader(
    shard0: only1mcp_shards::rt::mailbox::SharedMailboxSender<ShardMsg>,
    stop: crossbeam_channel::Sender<i32>,
) -> anyhow::Result<()> {
    std::thread::Builder::new()
        .name("o1m-stdin".into())
        .spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut line = Vec::new();
            loop {
                match read_line_bounded(&mut stdin, &mut line, MAX_STDIN_LINE) {
                    Ok(Line::End) | Err(_) => break,
                    Ok(Line::TooLong) => {
                        tracing::warn!(
                            "stdin: a message longer than {MAX_STDIN_LINE} bytes was dropped"
                        );
                    }
                    Ok(Line::Whole) => {
                        if shard0
                            .send(ShardMsg::StdioLine(std::mem::take(&mut line)))
                            .is_err()
                        {
                            break;
                        }
                    }
                }
            }
            tracing::info!("stdin closed: shutting down");
            let _ = stop.send(0);
        })
        .context("cannot start the stdin reader")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_bounded_and_a_long_one_is_skipped_whole() {
        let input = format!("short\n{}\nnext\ntail", "x".repeat(100));
        let mut r = std::io::BufReader::with_capacity(7, input.as_bytes());
        let mut line = Vec::new();
        let mut got = Vec::new();
        loop {
            match read_line_bounded(&mut r, &mut line, 16).unwrap() {
                Line::End => break,
                Line::TooLong => got.push("<dropped>".to_string()),
                Line::Whole => got.push(String::from_utf8(line.clone()).unwrap()),
            }
            assert!(line.capacity() <= 64, "{}", line.capacity());
        }
        assert_eq!(got, ["short\n", "<dropped>", "next\n", "tail"]);
    }
}

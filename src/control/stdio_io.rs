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

/// Reads the stdio client's lines (blocking, so on its own thread) into shard 0's mailbox;
/// stdin EOF means the client is gone: shut down like on SIGTERM.
pub fn spawn_stdin_reader(
    shard0: only1mcp_shards::rt::mailbox::SharedMailboxSender<ShardMsg>,
    stop: crossbeam_channel::Sender<i32>,
) -> anyhow::Result<()> {
    std::thread::Builder::new()
        .name("o1m-stdin".into())
        .spawn(move || {
            use std::io::BufRead;
            let mut stdin = std::io::stdin().lock();
            let mut line = Vec::new();
            loop {
                line.clear();
                match stdin.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if shard0.send(ShardMsg::StdioLine(line.clone())).is_err() {
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

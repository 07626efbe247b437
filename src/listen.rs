//! Binding one SO_REUSEPORT listener per shard on the same address.
//!
//! Done on the main thread before the shards start so a bind error is one clear startup
//! error, and so port 0 works: the first socket picks the port, the others join it. The
//! kernel then spreads incoming connections over the shards' sockets.

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};

use anyhow::Context;
use socket2::{Domain, Protocol, Socket, Type};

fn bind_one(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// Binds `count` listeners on `host:port`; returns them and the actual address.
pub fn bind_shards(
    host: &str,
    port: u16,
    count: usize,
) -> anyhow::Result<(Vec<TcpListener>, SocketAddr)> {
    let addr = (host, port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve listen host `{host}`"))?
        .next()
        .with_context(|| format!("listen host `{host}` resolved to no address"))?;
    let first = bind_one(addr).with_context(|| format!("cannot listen on {addr}"))?;
    let actual = first.local_addr()?;
    let mut all = vec![first];
    for _ in 1..count {
        all.push(
            bind_one(actual).with_context(|| format!("cannot add a shard listener on {actual}"))?,
        );
    }
    Ok((all, actual))
}

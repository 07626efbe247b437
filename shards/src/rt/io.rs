//! Rent-style I/O helpers shared by the HTTP front, the backend client and stdio pipes.
//!
//! monoio reads into an owned buffer and hands it back. Reading into a `Vec` directly would
//! overwrite from offset 0, so [`read_more`] reads into the spare capacity through a
//! `SliceMut` and keeps what was already buffered.
//!
//! Writes to a client go through [`write_all_within`] / [`write_gather_within`], bounded by a
//! *stall* timeout: each write call must get some bytes accepted by the kernel within it,
//! else the write fails with `TimedOut` and the caller closes the connection. A write call
//! (a `send`/`writev`, or its io_uring op) completes as soon as the socket takes any bytes,
//! so a slow reader that keeps reading is never cut, however large the answer; a reader that
//! stops reading cannot pin the connection, its buffers or its shard slot past the timeout.
//! Bounding the whole write instead would cut a large answer to a slow but honest reader.

use std::io;
use std::time::Duration;

use monoio::buf::SliceMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};

/// Reads once into `buf`'s spare capacity (growing it by at least `min_spare` first).
/// Returns the bytes read (0 = EOF) and the buffer.
pub async fn read_more<S: AsyncReadRent>(
    stream: &mut S,
    mut buf: Vec<u8>,
    min_spare: usize,
) -> (io::Result<usize>, Vec<u8>) {
    if buf.capacity() - buf.len() < min_spare {
        buf.reserve(min_spare);
    }
    let len = buf.len();
    let cap = buf.capacity();
    let slice = SliceMut::new(buf, len, cap);
    let (res, slice) = stream.read(slice).await;
    (res, slice.into_inner())
}

/// Writes every byte of `data`, returning the buffer for reuse.
pub async fn write_all<S: AsyncWriteRent, B: monoio::buf::IoBuf>(
    stream: &mut S,
    data: B,
) -> (io::Result<()>, B) {
    let (res, data) = stream.write_all(data).await;
    (res.map(|_| ()), data)
}

/// Writes every byte of `data` to a client, failing with `TimedOut` when one write call gets
/// no byte accepted for `stall`. The buffer comes back on success (on failure the connection
/// is done with and so is the buffer, which a timed-out write may still own).
pub async fn write_all_within<S: AsyncWriteRent, B: monoio::buf::IoBuf>(
    stream: &mut S,
    data: B,
    stall: Duration,
) -> io::Result<B> {
    write_all_from(stream, data, stall, crate::rt::clock::now()).await
}

/// [`write_all_within`] with the first write's stall counted from `now`, a clock reading
/// the caller just took (`rt/clock.rs`): a reply written in one call reads no clock here.
/// Each further write call reads the clock for its own stall, so after a reply that took
/// several calls the shard's latest reading is the start of the last one.
pub async fn write_all_from<S: AsyncWriteRent, B: monoio::buf::IoBuf>(
    stream: &mut S,
    data: B,
    stall: Duration,
    now: std::time::Instant,
) -> io::Result<B> {
    let len = data.bytes_init();
    let mut data = data;
    let mut at = 0;
    let mut started = now;
    while at < len {
        if at > 0 {
            started = crate::rt::clock::now();
        }
        let part = data.slice(at..len);
        let until = monoio::time::Instant::from_std(started + stall);
        let (res, part) = match monoio::time::timeout_at(until, stream.write(part)).await {
            Ok(r) => r,
            Err(_) => return Err(stalled(stall)),
        };
        data = part.into_inner();
        match res {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => at += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(data)
}

fn stalled(stall: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("client read nothing for {} ms", stall.as_millis()),
    )
}

/// Buffers written together with one `writev` (a reply head, shared bytes, a tail), so a
/// pre-rendered list leaves in one system call instead of three, without copying the
/// shared part. The iovecs live on the heap: their address stays put while the runtime
/// owns the value, as [`monoio::buf::IoVecBuf`] requires.
pub struct Gather {
    iov: Box<[libc::iovec; 3]>,
    /// The first iovec not yet fully written.
    at: usize,
    head: Vec<u8>,
    _shared: bytes::Bytes,
    _tail: Vec<u8>,
}

impl Gather {
    /// `head`, then `shared`, then `tail`.
    pub fn new(head: Vec<u8>, shared: bytes::Bytes, tail: Vec<u8>) -> Self {
        let iov = |s: &[u8]| libc::iovec {
            iov_base: s.as_ptr() as *mut libc::c_void,
            iov_len: s.len(),
        };
        // The pointers are into the heap buffers moved into `Self` below, which keep them.
        let iov = Box::new([iov(&head), iov(&shared), iov(&tail)]);
        let mut g = Self {
            iov,
            at: 0,
            head,
            _shared: shared,
            _tail: tail,
        };
        g.skip_empty();
        g
    }

    /// Never hands an empty iovec first: a `writev` that only looks at the first one (as
    /// monoio-rustls' does) would report 0 bytes written, read as a closed socket.
    fn skip_empty(&mut self) {
        while self.at < 3 && self.iov[self.at].iov_len == 0 {
            self.at += 1;
        }
    }

    /// The head buffer back, for reuse.
    pub fn into_head(self) -> Vec<u8> {
        self.head
    }

    fn remaining(&self) -> usize {
        self.iov[self.at..].iter().map(|v| v.iov_len).sum()
    }

    /// Marks `n` more bytes written: skips whole iovecs and advances into a partial one.
    fn advance(&mut self, mut n: usize) {
        while n > 0 {
            let v = &mut self.iov[self.at];
            if n < v.iov_len {
                // SAFETY: n < iov_len, so the pointer stays inside the same buffer.
                v.iov_base = unsafe { (v.iov_base as *mut u8).add(n) } as *mut libc::c_void;
                v.iov_len -= n;
                return;
            }
            n -= v.iov_len;
            v.iov_len = 0;
            self.at += 1;
        }
        self.skip_empty();
    }
}

// SAFETY: `iov` is a heap array of three iovecs that point into `head`, `_shared` and `_tail`,
// whose heap storage is owned by `self` and never touched while it is alive; `advance`
// keeps every pointer inside its buffer.
unsafe impl monoio::buf::IoVecBuf for Gather {
    fn read_iovec_ptr(&self) -> *const libc::iovec {
        self.iov[self.at..].as_ptr()
    }

    fn read_iovec_len(&self) -> usize {
        3 - self.at
    }
}

/// Writes every byte of `parts`, resuming after short writes, and returns them for reuse.
/// (monoio 0.2.4's `write_vectored_all` does not advance the base of a partly written
/// iovec, so it would resend bytes after a short write: this loop does its own accounting.)
pub async fn write_gather<S: AsyncWriteRent>(
    stream: &mut S,
    mut parts: Gather,
) -> (io::Result<()>, Gather) {
    while parts.remaining() > 0 {
        let (res, back) = stream.writev(parts).await;
        parts = back;
        match res {
            Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), parts),
            Ok(n) => parts.advance(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (Err(e), parts),
        }
    }
    (Ok(()), parts)
}

/// [`write_gather`] to a client, failing with `TimedOut` when one `writev` gets no byte
/// accepted for `stall` (see [`write_all_within`]).
pub async fn write_gather_within<S: AsyncWriteRent>(
    stream: &mut S,
    mut parts: Gather,
    stall: Duration,
) -> io::Result<Gather> {
    while parts.remaining() > 0 {
        let (res, back) = match monoio::time::timeout(stall, stream.writev(parts)).await {
            Ok(r) => r,
            Err(_) => return Err(stalled(stall)),
        };
        parts = back;
        match res {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => parts.advance(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(parts)
}

/// A client connection whose closing can be noticed while the gateway is busy with its
/// request (no read is pending on it then): the peer's FIN or RST, never its pipelined data.
pub trait WatchClose {
    /// Completes when the peer has closed or reset the connection; never on data.
    fn closed(&self) -> impl std::future::Future<Output = ()>;

    /// Cuts the connection after a failed or stalled write. A timed-out write's io_uring op
    /// may not be cancellable once the kernel runs it, and it keeps the socket (and its
    /// buffer) until it completes: shutting the socket down fails it at once.
    fn abort(&self) {}
}

impl WatchClose for monoio::net::TcpStream {
    fn abort(&self) {
        use std::os::fd::AsRawFd;
        // SAFETY: a valid fd owned by this stream; shutdown only changes the socket's state.
        unsafe { libc::shutdown(self.as_raw_fd(), libc::SHUT_RDWR) };
    }

    async fn closed(&self) {
        use std::os::fd::AsRawFd;
        loop {
            // A poll for readability (io_uring PollAdd, or epoll), then a peek that consumes
            // nothing: 0 bytes is the peer's FIN, an error its RST, data is the next request.
            if self.readable(false).await.is_err() {
                return;
            }
            let mut b = [0u8; 1];
            // SAFETY: a valid fd and a 1-byte buffer we own; MSG_PEEK consumes nothing and
            // MSG_DONTWAIT never blocks the shard.
            let n = unsafe {
                libc::recv(
                    self.as_raw_fd(),
                    b.as_mut_ptr().cast(),
                    1,
                    libc::MSG_PEEK | libc::MSG_DONTWAIT,
                )
            };
            match n {
                0 => return,
                n if n > 0 => return std::future::pending().await,
                _ => match io::Error::last_os_error().kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => continue,
                    _ => return,
                },
            }
        }
    }
}

impl WatchClose for monoio_rustls::ServerTlsStream<monoio::net::TcpStream> {
    /// TLS records cannot be peeked without decrypting them: a TLS client's departure is
    /// noticed when the reply is written. (The TLS stream does not lend its socket, so a
    /// stalled TLS write is not aborted but dropped: its connection closes when it ends.)
    async fn closed(&self) {
        std::future::pending::<()>().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn a_gather_never_starts_with_an_empty_iovec() {
        use monoio::buf::IoVecBuf;
        let mut g = Gather::new(Vec::new(), bytes::Bytes::from_static(b"abc"), Vec::new());
        assert_eq!((g.at, g.read_iovec_len(), g.remaining()), (1, 2, 3));
        g.advance(2);
        assert_eq!((g.at, g.remaining()), (1, 1));
        g.advance(1);
        assert_eq!(
            (g.at, g.read_iovec_len(), g.remaining()),
            (3, 0, 0),
            "the empty tail is skipped"
        );
    }

    #[test]
    fn a_gather_write_sends_all_three_parts_in_order_across_short_writes() {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .build()
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // 16 MiB of shared bytes and a reader that starts late: more than the socket buffers
        // take at once, so the loop must resume in the middle of the second part.
        let shared: Vec<u8> = (0..16 << 20).map(|i| (i % 251) as u8).collect();
        let mut want = b"HEAD\r\n".to_vec();
        want.extend_from_slice(&shared);
        want.extend_from_slice(b"tail");
        let reader = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(100));
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap();
            got
        });
        let head = rt.block_on(async move {
            let mut stream = monoio::net::TcpStream::connect(addr).await.unwrap();
            let parts = Gather::new(b"HEAD\r\n".to_vec(), shared.into(), b"tail".to_vec());
            let (res, parts) = write_gather(&mut stream, parts).await;
            res.unwrap();
            parts.into_head()
        });
        assert_eq!(head, b"HEAD\r\n", "the head buffer comes back for reuse");
        let got = reader.join().unwrap();
        assert_eq!(got.len(), want.len());
        assert!(got == want, "bytes differ");
    }
}

//! Rent-style I/O helpers shared by the HTTP front, the backend client and stdio pipes.
//!
//! monoio reads into an owned buffer and hands it back. Reading into a `Vec` directly would
//! overwrite from offset 0, so [`read_more`] reads into the spare capacity through a
//! `SliceMut` and keeps what was already buffered.

use std::io;

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

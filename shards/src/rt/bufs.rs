//! The shard's free list of byte buffers: the buffers a proxied call fills and empties once
//! each (the request as the backend gets it, the backend's answer, the answer as the client
//! gets it) are taken from here and given back once written or read, so a shard in steady
//! state allocates none of them per call.
//!
//! Thread-local, as everything of a shard: a shard is one thread (thread-per-core), so the
//! list needs no lock, and a buffer given back on another thread (a control thread, a test)
//! simply joins that thread's list. Bounded twice: at most [`KEEP`] buffers are kept, and a
//! buffer whose capacity grew past [`MAX_CAPACITY`] (one large answer) is freed rather than
//! kept, so the list holds at most `KEEP × MAX_CAPACITY` bytes per shard.

use std::cell::RefCell;

/// Buffers kept per shard: more than one call's worth, for the calls in flight at once.
pub const KEEP: usize = 64;
/// A buffer larger than this goes back to the allocator.
pub const MAX_CAPACITY: usize = 64 << 10;

/// A bounded free list of empty byte buffers.
#[derive(Default)]
pub struct LocalBufs {
    free: RefCell<Vec<Vec<u8>>>,
}

impl LocalBufs {
    /// An empty buffer: a kept one (with its capacity) when there is one, else a new one
    /// (which allocates on its first write, as `Vec::new` does).
    pub fn take(&self) -> Vec<u8> {
        self.free.borrow_mut().pop().unwrap_or_default()
    }

    /// Keeps `buf` (emptied) for a later [`take`](Self::take), unless it never allocated,
    /// grew past [`MAX_CAPACITY`] or the list is full.
    pub fn give(&self, mut buf: Vec<u8>) {
        if buf.capacity() == 0 || buf.capacity() > MAX_CAPACITY {
            return;
        }
        let mut free = self.free.borrow_mut();
        if free.len() < KEEP {
            buf.clear();
            if free.capacity() == 0 {
                free.reserve_exact(KEEP);
            }
            free.push(buf);
        }
    }

    /// Buffers kept now.
    pub fn kept(&self) -> usize {
        self.free.borrow().len()
    }
}

thread_local! {
    static BUFS: LocalBufs = LocalBufs::default();
}

/// An empty buffer from this thread's list ([`LocalBufs::take`]).
pub fn take() -> Vec<u8> {
    BUFS.try_with(LocalBufs::take).unwrap_or_default()
}

/// Gives `buf` back to this thread's list ([`LocalBufs::give`]); dropped when the thread is
/// ending.
pub fn give(buf: Vec<u8>) {
    let mut buf = Some(buf);
    let _ = BUFS.try_with(|b| {
        if let Some(buf) = buf.take() {
            b.give(buf);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_given_back_is_taken_again_empty_with_its_capacity() {
        let bufs = LocalBufs::default();
        let mut b = bufs.take();
        assert_eq!(
            b.capacity(),
            0,
            "an empty list hands out a buffer that has not allocated"
        );
        b.extend_from_slice(b"{\"jsonrpc\":\"2.0\"}");
        let (ptr, cap) = (b.as_ptr(), b.capacity());
        bufs.give(b);
        assert_eq!(bufs.kept(), 1);
        let again = bufs.take();
        assert!(again.is_empty());
        assert_eq!((again.as_ptr(), again.capacity()), (ptr, cap));
        assert_eq!(bufs.kept(), 0);
    }

    #[test]
    fn the_list_is_bounded_in_count_and_in_buffer_size() {
        let bufs = LocalBufs::default();
        for _ in 0..KEEP + 10 {
            bufs.give(Vec::with_capacity(16));
        }
        assert_eq!(bufs.kept(), KEEP);
        let bufs = LocalBufs::default();
        bufs.give(Vec::with_capacity(MAX_CAPACITY + 1));
        bufs.give(Vec::new());
        assert_eq!(
            bufs.kept(),
            0,
            "a large or never-allocated buffer is not kept"
        );
        bufs.give(Vec::with_capacity(MAX_CAPACITY));
        assert_eq!(bufs.kept(), 1);
    }

    #[test]
    fn the_thread_list_reuses_across_take_and_give() {
        let mut b = take();
        b.extend_from_slice(&[7; 100]);
        let ptr = b.as_ptr();
        give(b);
        let b = take();
        assert_eq!(b.as_ptr(), ptr);
        assert!(b.is_empty());
        std::thread::spawn(|| assert_eq!(take().capacity(), 0, "another thread's list is its own"))
            .join()
            .unwrap();
    }
}

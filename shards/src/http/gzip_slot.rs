//! A list page's slot for its gzip copy, the helper thread that fills it, and the two steps
//! that turn a reply into its gzip form ([`slot_for`], then [`apply`]).
//!
//! Compressing a page is CPU work proportional to its size (tens of milliseconds for a few
//! megabytes of JSON), done once per page and catalog version, but still too long to run on
//! a shard, where it would stall every other connection of that core. So the first request
//! that wants a page gzip starts a short-lived helper thread for it ([`GzSlot::build`]) and
//! waits for it asynchronously, the shard serving on meanwhile; requests for the same page
//! that arrive during the build are answered uncompressed rather than queued; and at most
//! [`MAX_BUILDERS`] builds run at once in the process (beyond, identity until one ends).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use futures_channel::oneshot;

use crate::http::gzip::{assemble, GzRun};
use crate::http::response::{Coding, Reply};

/// Most gzip copies compressed at once in the process (each on its own helper thread).
pub const MAX_BUILDERS: usize = 2;

static BUILDERS: AtomicUsize = AtomicUsize::new(0);

/// A page's compressed run, made on first use and shared by every answer for that page
/// until its catalog version ends. The table that holds it is per shard; it is an `Arc`
/// because its helper thread fills it (and a [`Reply`] may cross threads).
#[derive(Debug, Default)]
pub struct GzSlot {
    run: OnceLock<GzRun>,
    building: AtomicBool,
}

/// A shared [`GzSlot`].
pub type LazyGz = Arc<GzSlot>;

/// Releases a builder's place (and the slot's claim, when it was not filled) however the
/// helper thread ends.
struct Builder(LazyGz);

impl Drop for Builder {
    fn drop(&mut self) {
        if self.0.run.get().is_none() {
            self.0.building.store(false, Ordering::Release);
        }
        BUILDERS.fetch_sub(1, Ordering::AcqRel);
    }
}

impl GzSlot {
    /// The copy, once made.
    pub fn get(&self) -> Option<&GzRun> {
        self.run.get()
    }

    /// Starts compressing `run` (the page's shared bytes) on a helper thread; the receiver
    /// answers once the copy is in the slot. `None` when there is nothing to start: the copy
    /// is made or being made, [`MAX_BUILDERS`] builds are running, or no thread could start.
    pub fn build(self: &Arc<Self>, run: Bytes) -> Option<oneshot::Receiver<()>> {
        if self.run.get().is_some() || self.building.swap(true, Ordering::AcqRel) {
            return None;
        }
        if BUILDERS.fetch_add(1, Ordering::AcqRel) >= MAX_BUILDERS {
            BUILDERS.fetch_sub(1, Ordering::AcqRel);
            self.building.store(false, Ordering::Release);
            return None;
        }
        let (tx, rx) = oneshot::channel();
        let guard = Builder(self.clone());
        let spawned = std::thread::Builder::new()
            .name("o1m-gzip".into())
            .spawn(move || {
                let _ = guard.0.run.set(GzRun::compress(&run));
                drop(guard);
                let _ = tx.send(());
            });
        // On a failed spawn the closure, and with it the guard, is dropped: the claim and the
        // builder's place are released.
        spawned.ok().map(|_| rx)
    }

    /// Fills the slot on this thread (tests).
    #[cfg(test)]
    pub fn fill(&self, run: &[u8]) {
        let _ = self.run.set(GzRun::compress(run));
    }
}

/// First step: a reply that could go gzip (a list page written from shared bytes, with a
/// slot) gets `Vary: Accept-Encoding`, since its encoding depends on that header; its slot
/// is returned when the client `accepts` gzip. `None`, and the reply as it was, otherwise.
pub fn slot_for(reply: &mut Reply, accepts: bool) -> Option<(LazyGz, Bytes)> {
    let slot = reply.gz.take()?;
    let (shared, _) = reply.shared.as_ref()?;
    if reply.status != 200 || reply.stream.is_some() {
        return None;
    }
    reply.coding = Coding::IdentityVaries;
    accepts.then(|| (slot, shared.clone()))
}

/// Last step: `reply` (given its slot by [`slot_for`]) as gzip, from the page's copy `run`.
/// False, and the reply unchanged, when the copy is not of these bytes (a bug in the key of
/// the table that handed the slot out: then the answer goes out right, uncompressed).
pub fn apply(reply: &mut Reply, run: &GzRun) -> bool {
    let Some((shared, tail)) = reply.shared.as_mut() else {
        return false;
    };
    if run.len != shared.len() as u64 {
        return false;
    }
    assemble(&mut reply.body, run, tail);
    *shared = run.deflate.clone();
    reply.coding = Coding::Gzip;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> Bytes {
        let mut v = Vec::new();
        for i in 0..2000 {
            v.extend_from_slice(format!(r#"{{"name":"t{i}","inputSchema":{{}}}},"#).as_bytes());
        }
        Bytes::from(v)
    }

    fn reply(shared: &Bytes, slot: &LazyGz) -> Reply {
        let mut r = Reply::json_parts(
            200,
            b"{\"id\":1,\"r\":[".to_vec(),
            shared.clone(),
            b"]}".to_vec(),
        );
        r.gz = Some(slot.clone());
        r
    }

    #[test]
    fn one_build_fills_the_slot_and_later_ones_start_nothing() {
        let slot = LazyGz::default();
        let bytes = page();
        let rx = slot.build(bytes.clone()).expect("the first build starts");
        assert!(
            slot.build(bytes.clone()).is_none(),
            "no second build while one runs"
        );
        futures_executor_block_on(rx);
        assert_eq!(slot.get().unwrap().len, bytes.len() as u64);
        assert!(slot.build(bytes).is_none(), "nothing to do once filled");
    }

    #[test]
    fn a_reply_goes_gzip_only_when_accepted_and_says_it_varies_either_way() {
        let bytes = page();
        let slot = LazyGz::default();
        slot.fill(&bytes);
        let mut r = reply(&bytes, &slot);
        assert!(slot_for(&mut r, false).is_none());
        assert_eq!(r.coding, Coding::IdentityVaries);
        let identity = r.body_bytes().into_owned();
        let mut r = reply(&bytes, &slot);
        let (s, _) = slot_for(&mut r, true).unwrap();
        assert!(apply(&mut r, s.get().unwrap()));
        assert_eq!(r.coding, Coding::Gzip);
        let mut out = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(&r.body_bytes()[..]),
            &mut out,
        )
        .unwrap();
        assert_eq!(out, identity);
        // A copy of other bytes is not used.
        let mut r = reply(&bytes, &slot);
        let other = GzRun::compress(b"other");
        assert!(!apply(&mut r, &other));
        assert_eq!(r.coding, Coding::Identity);
        // Replies without a slot, or not 200, are left alone.
        let mut plain = Reply::json(200, b"{}".to_vec());
        assert!(slot_for(&mut plain, true).is_none());
        assert_eq!(plain.coding, Coding::Identity);
        let mut r = reply(&bytes, &slot);
        r.status = 503;
        assert!(slot_for(&mut r, true).is_none());
        assert_eq!(r.coding, Coding::Identity);
    }

    /// Waits for a oneshot on this thread (the tests have no runtime).
    fn futures_executor_block_on(rx: oneshot::Receiver<()>) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut rx = rx;
        loop {
            match rx.try_recv() {
                Ok(Some(())) => return,
                Ok(None) => {}
                Err(_) => panic!("the builder dropped its sender"),
            }
            assert!(std::time::Instant::now() < deadline, "build never ended");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

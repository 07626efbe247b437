//! A shard's gzip copies of large list pages: one per catalog version, era, list, RBAC view
//! and page, made on the first request that asks for gzip and dropped with that version.
//!
//! [`crate::route::lists`] hands each large page out with its slot here
//! ([`crate::http::gzip_slot::LazyGz`]); the HTTP front has the slot filled on first use
//! (the page's shared run compressed once, off the shard) and reuses it for every later answer of that page on this
//! shard. Like the RBAC views the pages come from (`auth/local.rs`), the copies are this
//! shard's own (no lock, no cross-thread state) and live exactly as long as the snapshot
//! version that rendered them: the first lookup under a new version empties the table.
//!
//! Bounded: only the pages the gateway itself hands out (offsets that are multiples of
//! the page size) get a slot, so a client forging cursors cannot make one per offset; and
//! the table holds at most [`MAX_PAGES`] slots (beyond, answers go uncompressed). A copy is
//! a fraction of the rendering it compresses, which the shard already holds.

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use hashbrown::HashMap;

use crate::catalog::ListKind;
use crate::http::gzip_slot::LazyGz;

/// Most page slots one shard holds for one snapshot version.
pub const MAX_PAGES: usize = 4096;

/// (era is 2026, list kind, RBAC view (`None`: the catalog's own rendering), byte range).
type Key = (bool, u8, Option<Arc<str>>, u32, u32);

/// One shard's compressed list pages (see the module doc).
#[derive(Default)]
pub struct GzPages {
    version: Cell<u64>,
    slots: RefCell<HashMap<Key, LazyGz, ahash::RandomState>>,
    /// Copies compressed on this shard (a slot filled), over its life.
    pub built: Cell<u64>,
    /// List answers sent gzip by this shard.
    pub served: Cell<u64>,
}

/// Which page of which rendering: the slot's key, less the version.
pub struct PageOf<'a> {
    /// The 2026-07-28 rendering (else the 2025-11-25 one).
    pub modern: bool,
    /// Which list.
    pub kind: ListKind,
    /// The RBAC view's key, when the list is a view.
    pub view: Option<&'a Arc<str>>,
    /// The page's first item and the page size (0: one page).
    pub offset: usize,
    /// Items per page.
    pub page_size: usize,
    /// The page's bytes in the rendering.
    pub range: std::ops::Range<usize>,
}

impl GzPages {
    /// The slot of `page` under snapshot `version`, or `None` when the page gets none (an
    /// offset the gateway never hands out, or the table is full).
    pub fn slot(&self, version: u64, page: PageOf<'_>) -> Option<LazyGz> {
        let canonical =
            page.offset == 0 || (page.page_size > 0 && page.offset % page.page_size == 0);
        let (Ok(start), Ok(end)) = (
            u32::try_from(page.range.start),
            u32::try_from(page.range.end),
        ) else {
            return None;
        };
        if !canonical {
            return None;
        }
        let mut slots = self.slots.borrow_mut();
        if self.version.get() != version {
            self.version.set(version);
            slots.clear();
        }
        let key = (page.modern, page.kind as u8, page.view.cloned(), start, end);
        if let Some(s) = slots.get(&key) {
            return Some(s.clone());
        }
        if slots.len() >= MAX_PAGES {
            return None;
        }
        let slot = LazyGz::default();
        slots.insert(key, slot.clone());
        Some(slot)
    }

    /// Slots held now (for tests and the memory bound).
    pub fn len(&self) -> usize {
        self.slots.borrow().len()
    }

    /// True when no slot is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(offset: usize, range: std::ops::Range<usize>) -> PageOf<'static> {
        PageOf {
            modern: false,
            kind: ListKind::Tools,
            view: None,
            offset,
            page_size: 100,
            range,
        }
    }

    #[test]
    fn one_copy_per_page_and_version_and_a_new_one_after_a_change() {
        let pages = GzPages::default();
        let a = pages.slot(1, page(0, 1..5000)).unwrap();
        a.fill(b"page one");
        let again = pages.slot(1, page(0, 1..5000)).unwrap();
        assert!(Arc::ptr_eq(&a, &again), "the same slot, already filled");
        assert_eq!(again.get().unwrap().len, 8);
        let other = pages.slot(1, page(100, 5001..9000)).unwrap();
        assert!(other.get().is_none(), "another page has its own copy");
        assert_eq!(pages.len(), 2);
        // A new catalog version: every copy of the old one is dropped.
        let fresh = pages.slot(2, page(0, 1..5000)).unwrap();
        assert!(fresh.get().is_none(), "rebuilt for the new version");
        assert_eq!(pages.len(), 1);
        assert!(!Arc::ptr_eq(&a, &fresh));
    }

    #[test]
    fn eras_kinds_and_views_do_not_share_copies() {
        let pages = GzPages::default();
        let admin: Arc<str> = "admin".into();
        let base = pages.slot(1, page(0, 1..100)).unwrap();
        let modern = pages
            .slot(
                1,
                PageOf {
                    modern: true,
                    ..page(0, 1..100)
                },
            )
            .unwrap();
        let prompts = pages
            .slot(
                1,
                PageOf {
                    kind: ListKind::Prompts,
                    ..page(0, 1..100)
                },
            )
            .unwrap();
        let view = pages
            .slot(
                1,
                PageOf {
                    view: Some(&admin),
                    ..page(0, 1..100)
                },
            )
            .unwrap();
        for (i, a) in [&base, &modern, &prompts, &view].iter().enumerate() {
            for b in [&base, &modern, &prompts, &view].iter().skip(i + 1) {
                assert!(!Arc::ptr_eq(a, b));
            }
        }
    }

    #[test]
    fn forged_offsets_get_no_slot_and_the_table_is_bounded() {
        let pages = GzPages::default();
        assert!(pages.slot(1, page(37, 1..100)).is_none());
        assert!(pages
            .slot(
                1,
                PageOf {
                    page_size: 0,
                    ..page(5, 1..100)
                }
            )
            .is_none());
        for i in 0..MAX_PAGES {
            assert!(pages.slot(1, page(i * 100, i..i + 1)).is_some());
        }
        assert!(pages.slot(1, page(0, 0..MAX_PAGES + 7)).is_none(), "full");
        assert_eq!(pages.len(), MAX_PAGES);
        // An existing page still finds its slot when the table is full.
        assert!(pages.slot(1, page(0, 0..1)).is_some());
    }
}

//! The search index of the `search` discovery mode, one per era, rebuilt when the snapshot
//! changes; and how often each tool was called on this shard (hybrid mode's "most used").

use std::rc::Rc;

use crate::catalog::search::SearchIndex;
use crate::catalog::ListKind;
use crate::snapshot::SharedSnapshot;

/// The shard's search indexes (one per era) and per-tool call counts.
#[derive(Default)]
pub struct LocalSearch {
    /// (snapshot version, index) per era.
    pub(in crate::route) cached: std::cell::RefCell<[(u64, Option<Rc<SearchIndex>>); 2]>,
    /// Calls per exposed tool name on this shard (hybrid mode's "most used").
    pub(in crate::route) usage:
        std::cell::RefCell<hashbrown::HashMap<String, u64, ahash::RandomState>>,
}

impl LocalSearch {
    pub(in crate::route) fn index(&self, snap: &SharedSnapshot, modern: bool) -> Rc<SearchIndex> {
        let mut c = self.cached.borrow_mut();
        let slot = &mut c[modern as usize];
        if slot.0 != snap.version || slot.1.is_none() {
            let (json, items, _) = snap.catalog_for(modern).list(ListKind::Tools);
            let idx =
                SearchIndex::build(items.iter().map(|(s, e)| &json[*s as usize..*e as usize]));
            *slot = (snap.version, Some(Rc::new(idx)));
        }
        slot.1.clone().unwrap_or_default()
    }
}

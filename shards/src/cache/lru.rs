//! A bounded least-recently-used map with byte accounting, for one shard's response cache.
//!
//! Entries live in a slab (`Vec`) linked into a recency list by index; a `hashbrown`
//! `HashTable` of slab indices finds them by key. Each entry's key is stored once (in its
//! node), a lookup borrows the caller's key bytes, and get, insert, remove and evict are
//! O(1). A hit allocates nothing. Bounds are passed on every insert, so a reload that lowers
//! them takes effect at the next insert.

use hashbrown::HashTable;

const NIL: u32 = u32::MAX;

struct Node<V> {
    key: Box<[u8]>,
    value: Option<V>,
    size: usize,
    prev: u32,
    next: u32,
}

/// The map. `V` is the cached value; each entry also carries its size in bytes.
pub struct LocalLru<V> {
    table: HashTable<u32>,
    nodes: Vec<Node<V>>,
    free: Vec<u32>,
    /// Most recently used.
    head: u32,
    /// Least recently used: evicted first.
    tail: u32,
    bytes: usize,
    hasher: ahash::RandomState,
}

impl<V> Default for LocalLru<V> {
    fn default() -> Self {
        LocalLru {
            table: HashTable::new(),
            nodes: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            bytes: 0,
            hasher: ahash::RandomState::new(),
        }
    }
}

impl<V> LocalLru<V> {
    /// Entries held.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Bytes held (the sizes given to [`LocalLru::insert`] plus the keys).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn find(&self, key: &[u8]) -> Option<u32> {
        let h = self.hasher.hash_one(key);
        self.table
            .find(h, |&i| *self.nodes[i as usize].key == *key)
            .copied()
    }

    /// The value for `key`, which becomes the most recently used.
    pub fn get(&mut self, key: &[u8]) -> Option<&V> {
        let i = self.find(key)?;
        self.unlink(i);
        self.push_front(i);
        self.nodes[i as usize].value.as_ref()
    }

    /// Inserts (or replaces) `key`, then evicts least recently used entries until at most
    /// `max_entries` entries and `max_bytes` bytes remain. An entry larger than `max_bytes`
    /// on its own is not kept. Returns how many other entries were evicted.
    pub fn insert(
        &mut self,
        key: &[u8],
        value: V,
        size: usize,
        max_entries: usize,
        max_bytes: usize,
    ) -> u64 {
        self.remove(key);
        let size = size + key.len();
        if size > max_bytes || max_entries == 0 {
            return 0;
        }
        let mut evicted = 0;
        while self.len() >= max_entries || self.bytes + size > max_bytes {
            if self.evict_one().is_none() {
                break;
            }
            evicted += 1;
        }
        let node = Node {
            key: key.into(),
            value: Some(value),
            size,
            prev: NIL,
            next: NIL,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        let h = self.hasher.hash_one(key);
        let (nodes, hasher) = (&self.nodes, &self.hasher);
        self.table
            .insert_unique(h, i, |&j| hasher.hash_one(&*nodes[j as usize].key));
        self.bytes += size;
        self.push_front(i);
        evicted
    }

    /// Removes `key`; its value if it was there.
    pub fn remove(&mut self, key: &[u8]) -> Option<V> {
        let i = self.find(key)?;
        self.remove_at(i)
    }

    /// Evicts the least recently used entry; its value.
    pub fn evict_one(&mut self) -> Option<V> {
        (self.tail != NIL).then_some(self.tail)?;
        self.remove_at(self.tail)
    }

    /// Drops every entry.
    pub fn clear(&mut self) {
        self.table.clear();
        self.nodes.clear();
        self.free.clear();
        self.head = NIL;
        self.tail = NIL;
        self.bytes = 0;
    }

    fn remove_at(&mut self, i: u32) -> Option<V> {
        let h = self.hasher.hash_one(&*self.nodes[i as usize].key);
        if let Ok(e) = self.table.find_entry(h, |&j| j == i) {
            e.remove();
        }
        self.unlink(i);
        let node = &mut self.nodes[i as usize];
        self.bytes -= node.size;
        node.key = Box::default();
        self.free.push(i);
        node.value.take()
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = {
            let n = &self.nodes[i as usize];
            (n.prev, n.next)
        };
        match prev {
            NIL => self.head = next,
            p => self.nodes[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.nodes[n as usize].prev = prev,
        }
        let n = &mut self.nodes[i as usize];
        n.prev = NIL;
        n.next = NIL;
    }

    fn push_front(&mut self, i: u32) {
        let old = self.head;
        {
            let n = &mut self.nodes[i as usize];
            n.prev = NIL;
            n.next = old;
        }
        if old != NIL {
            self.nodes[old as usize].prev = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_goes_first() {
        let mut l = LocalLru::default();
        for k in [b"a", b"b", b"c"] {
            assert_eq!(l.insert(k, k[0], 1, 3, 1 << 20), 0);
        }
        assert_eq!(l.get(b"a"), Some(&b'a')); // a is now the most recent: b is the oldest
        assert_eq!(l.insert(b"d", b'd', 1, 3, 1 << 20), 1);
        assert_eq!(l.get(b"b"), None);
        assert_eq!(l.len(), 3);
        for k in [b"a", b"c", b"d"] {
            assert_eq!(l.get(k), Some(&k[0]));
        }
    }

    #[test]
    fn bytes_bound_evicts_and_an_oversized_entry_is_not_kept() {
        let mut l = LocalLru::default();
        l.insert(b"a", 1, 9, 100, 30); // 10 bytes with the key
        l.insert(b"b", 2, 9, 100, 30);
        l.insert(b"c", 3, 9, 100, 30);
        assert_eq!(l.bytes(), 30);
        assert_eq!(
            l.insert(b"d", 4, 19, 100, 30),
            2,
            "a and b make room for 20 bytes"
        );
        assert_eq!((l.len(), l.bytes()), (2, 30));
        assert_eq!(l.insert(b"e", 5, 30, 100, 30), 0);
        assert_eq!(l.get(b"e"), None, "31 bytes never fit in 30");
        assert_eq!(l.len(), 2);
    }

    #[test]
    fn replace_remove_clear_and_slot_reuse_keep_the_books_straight() {
        let mut l = LocalLru::default();
        l.insert(b"k", 1, 5, 10, 100);
        l.insert(b"k", 2, 7, 10, 100);
        assert_eq!((l.len(), l.bytes(), l.get(b"k")), (1, 8, Some(&2)));
        assert_eq!(l.remove(b"k"), Some(2));
        assert!(l.is_empty() && l.bytes() == 0);
        for i in 0..1000u32 {
            l.insert(&i.to_le_bytes(), i, 1, 10, 1 << 20);
        }
        assert_eq!(l.len(), 10);
        assert!(l.nodes.len() <= 11, "slots are reused: {}", l.nodes.len());
        for i in 990..1000u32 {
            assert_eq!(l.get(&i.to_le_bytes()), Some(&i));
        }
        l.clear();
        assert_eq!((l.len(), l.bytes(), l.evict_one()), (0, 0, None));
    }
}

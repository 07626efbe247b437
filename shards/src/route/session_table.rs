//! The 2025-era sessions one shard owns, and their caps (`server.max_sessions`,
//! `server.max_sessions_per_principal`).
//!
//! A session costs memory until it ends (DELETE, or `session_idle_timeout_ms` without a
//! request), so an unbounded table lets anyone who can send `initialize` grow the gateway
//! without limit. Each shard holds its share of the caps (the gateway-wide value divided by
//! the shard count, rounded up), checked without asking other shards. At a cap, room is made
//! by evicting the oldest session that was never used after its handshake (no request, no
//! GET stream after `initialize`/`notifications/initialized`); sessions in use are never
//! evicted. When nothing can be evicted the new `initialize` is refused.
//!
//! Never-used sessions are kept in creation order in a queue of their ids, cleaned lazily: an
//! entry whose session ended or got used is skipped when met, and the queue is compacted
//! when it holds more than twice the sessions.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use ahash::RandomState;
use hashbrown::HashMap;

use crate::route::session::LocalSession;

/// A session id as stored in the queue (ids are 32 ASCII hex bytes).
type IdBytes = [u8; 32];

/// Which cap refused a new session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapHit {
    /// The shard's share of `server.max_sessions`, all in use.
    Global,
    /// The shard's share of `server.max_sessions_per_principal`, all in use by this caller.
    Principal,
}

/// The sessions this shard owns.
#[derive(Debug, Default)]
pub struct LocalSessionTable {
    map: HashMap<Box<str>, LocalSession, RandomState>,
    /// Sessions per principal (absent: none).
    per_principal: HashMap<Arc<str>, usize, RandomState>,
    /// Ids of sessions created and not yet seen used, oldest first (lazily cleaned).
    unused: VecDeque<IdBytes>,
    /// Sessions evicted to make room, since the shard started.
    pub evicted: u64,
    /// `initialize` requests refused at a cap, since the shard started.
    pub refused: u64,
}

fn id_bytes(id: &str) -> Option<IdBytes> {
    id.as_bytes().try_into().ok()
}

impl LocalSessionTable {
    /// Adds a session.
    pub fn insert(&mut self, id: &str, s: LocalSession) {
        if let Some(p) = &s.principal {
            *self.per_principal.entry(p.clone()).or_insert(0) += 1;
        }
        if let (false, Some(b)) = (s.used, id_bytes(id)) {
            self.unused.push_back(b);
        }
        if let Some(old) = self.map.insert(id.into(), s) {
            self.uncount(&old);
        }
        if self.unused.len() > 2 * self.map.len() + 64 {
            let map = &self.map;
            self.unused.retain(|b| {
                std::str::from_utf8(b)
                    .ok()
                    .and_then(|k| map.get(k))
                    .is_some_and(|s| !s.used)
            });
        }
    }

    fn uncount(&mut self, s: &LocalSession) {
        if let Some(p) = &s.principal {
            if let Some(n) = self.per_principal.get_mut(&**p) {
                *n -= 1;
                if *n == 0 {
                    self.per_principal.remove(&**p);
                }
            }
        }
    }

    /// Makes room for one more session of `principal` under the shard's caps (`cap` sessions,
    /// `cap_principal` per principal), evicting never-used sessions oldest first. Returns the
    /// evicted ids (their other state is the caller's to drop), and which cap refused when
    /// room could not be made.
    pub fn make_room(
        &mut self,
        principal: &str,
        cap: usize,
        cap_principal: usize,
    ) -> (Vec<String>, Result<(), CapHit>) {
        let mut evicted = Vec::new();
        while self.per_principal.get(principal).copied().unwrap_or(0) >= cap_principal {
            match self.evict_unused(Some(principal)) {
                Some(id) => evicted.push(id),
                None => {
                    self.refused += 1;
                    return (evicted, Err(CapHit::Principal));
                }
            }
        }
        while self.map.len() >= cap {
            match self.evict_unused(None) {
                Some(id) => evicted.push(id),
                None => {
                    self.refused += 1;
                    return (evicted, Err(CapHit::Global));
                }
            }
        }
        (evicted, Ok(()))
    }

    /// Removes the oldest never-used session (of `principal`, if given).
    fn evict_unused(&mut self, principal: Option<&str>) -> Option<String> {
        let mut i = 0;
        while i < self.unused.len() {
            let b = self.unused[i];
            let id = std::str::from_utf8(&b).ok();
            let live = id.and_then(|k| self.map.get(k)).filter(|s| !s.used);
            let Some(s) = live else {
                // Ended or used since: drop the stale entry.
                self.unused.remove(i);
                continue;
            };
            if principal.is_some_and(|p| s.principal.as_deref() != Some(p)) {
                i += 1;
                continue;
            }
            self.unused.remove(i);
            let id = id?.to_string();
            self.remove(&id);
            self.evicted += 1;
            return Some(id);
        }
        None
    }

    /// Looks a session up.
    pub fn get(&self, id: &str) -> Option<&LocalSession> {
        self.map.get(id)
    }

    /// A request arrived on session `id` from `principal`: records when, and whether it puts
    /// the session in use (then it is never evicted for room). False when there is no such
    /// session for that caller: a session belongs to the principal that opened it, and
    /// another caller must not learn it exists. Touches in place, copying nothing.
    pub fn touch(&mut self, id: &str, principal: &str, uses: bool, now: Instant) -> bool {
        match self.map.get_mut(id) {
            Some(s) if s.owned_by(principal) => {
                s.last_seen = now;
                s.used |= uses;
                true
            }
            _ => false,
        }
    }

    /// Looks a session up for change.
    pub fn get_mut(&mut self, id: &str) -> Option<&mut LocalSession> {
        self.map.get_mut(id)
    }

    /// Every session, for broadcasts.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&str, &mut LocalSession)> {
        self.map.iter_mut().map(|(k, v)| (&**k, v))
    }

    /// Ends a session; false if it did not exist.
    pub fn remove(&mut self, id: &str) -> bool {
        match self.map.remove(id) {
            Some(s) => {
                self.uncount(&s);
                true
            }
            None => false,
        }
    }

    /// Removes sessions idle for longer than `idle`; returns their ids.
    /// Sessions for which `listening` says a client is attached are kept.
    pub fn expire(
        &mut self,
        idle: std::time::Duration,
        listening: impl Fn(&str, &LocalSession) -> bool,
    ) -> Vec<String> {
        let now = Instant::now();
        let gone: Vec<String> = self
            .map
            .iter()
            .filter(|(k, s)| now.duration_since(s.last_seen) > idle && !listening(k, s))
            .map(|(k, _)| k.to_string())
            .collect();
        for k in &gone {
            self.remove(k);
        }
        gone
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// This shard's share of a gateway-wide cap: `ceil(total / shards)`, at least 1.
pub fn share(total: usize, shards: usize) -> usize {
    total.div_ceil(shards.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::session::ClientCaps;

    fn session(principal: &str) -> LocalSession {
        let mut s = LocalSession::new("2025-11-25", ClientCaps::default(), b"{}".to_vec());
        s.principal = Some(principal.into());
        s
    }

    fn id(n: usize) -> String {
        format!("{n:032x}")
    }

    #[test]
    fn the_oldest_unused_session_makes_room_and_used_ones_never_do() {
        let mut t = LocalSessionTable::default();
        for n in 0..3 {
            t.insert(&id(n), session("a"));
        }
        t.get_mut(&id(0)).unwrap().used = true;
        let (gone, ok) = t.make_room("a", 3, 3);
        assert_eq!((gone, ok), (vec![id(1)], Ok(())));
        t.insert(&id(3), session("a"));
        t.get_mut(&id(2)).unwrap().used = true;
        t.get_mut(&id(3)).unwrap().used = true;
        let (gone, hit) = t.make_room("a", 3, 3);
        assert_eq!((gone, hit), (vec![], Err(CapHit::Principal)));
        assert_eq!((t.len(), t.evicted, t.refused), (3, 1, 1));
        // A session that ends frees its place.
        assert!(t.remove(&id(0)));
        assert_eq!(t.make_room("a", 3, 3), (vec![], Ok(())));
    }

    #[test]
    fn a_principal_at_its_cap_evicts_its_own_sessions_only() {
        let mut t = LocalSessionTable::default();
        t.insert(&id(0), session("bob"));
        t.insert(&id(1), session("alice"));
        t.insert(&id(2), session("alice"));
        let (gone, ok) = t.make_room("alice", 100, 2);
        assert_eq!((gone, ok), (vec![id(1)], Ok(())));
        assert!(t.get(&id(0)).is_some(), "bob's session stays");
        t.get_mut(&id(2)).unwrap().used = true;
        t.insert(&id(3), session("alice"));
        t.get_mut(&id(3)).unwrap().used = true;
        assert_eq!(
            t.make_room("alice", 100, 2),
            (vec![], Err(CapHit::Principal))
        );
        assert_eq!(t.make_room("bob", 100, 2), (vec![], Ok(())));
        // The global cap counts everyone; only never-used sessions go (bob's here).
        assert_eq!(t.make_room("carol", 3, 3), (vec![id(0)], Ok(())));
        assert_eq!(t.make_room("carol", 2, 3), (vec![], Err(CapHit::Global)));
    }

    #[test]
    fn the_queue_of_unused_ids_stays_bounded_under_churn() {
        let mut t = LocalSessionTable::default();
        for n in 0..10_000 {
            t.insert(&id(n), session("a"));
            t.get_mut(&id(n)).unwrap().used = n % 2 == 0;
            if n >= 10 {
                t.remove(&id(n - 10));
            }
        }
        assert!(t.unused.len() <= 2 * t.len() + 64, "{}", t.unused.len());
        assert_eq!(t.per_principal.get("a"), Some(&10));
    }

    #[test]
    fn a_touch_marks_use_and_time_for_the_owner_only() {
        let mut t = LocalSessionTable::default();
        t.insert(&id(0), session("alice"));
        let later = Instant::now() + std::time::Duration::from_secs(5);
        // Another caller, or an unknown id: nothing found, nothing changed.
        assert!(!t.touch(&id(0), "bob", true, later));
        assert!(!t.touch(&id(9), "alice", true, later));
        assert!(!t.get(&id(0)).unwrap().used);
        // The handshake's own notification does not put the session in use; a request does.
        assert!(t.touch(&id(0), "alice", false, later));
        assert!(!t.get(&id(0)).unwrap().used);
        assert_eq!(t.get(&id(0)).unwrap().last_seen, later);
        assert!(t.touch(&id(0), "alice", true, later));
        assert!(t.get(&id(0)).unwrap().used);
        assert!(
            t.touch(&id(0), "alice", false, later),
            "use is never taken back"
        );
        assert!(t.get(&id(0)).unwrap().used);
        // A session opened without a principal (auth off) is anyone's.
        let mut open = session("x");
        open.principal = None;
        t.insert(&id(1), open);
        assert!(t.touch(&id(1), "anyone", true, later));
    }

    #[test]
    fn shares_round_up() {
        assert_eq!(share(10_000, 3), 3334);
        assert_eq!(share(1, 4), 1);
        assert_eq!(share(7, 0), 7);
    }
}

//! The shard's open `subscriptions/listen` streams, their caps, and what is sent on them once
//! open: list changes and resource updates, each tagged with the listen's `subscriptionId`
//! (opening one is `route/listen.rs`, its resource subscriptions `route/listen_resources.rs`).
//! Kept here, below the modules that route messages, so that `route/streams.rs` can feed
//! listens without importing the modules that open them.

use std::sync::Arc;

use ahash::RandomState;
use hashbrown::HashMap;

use crate::rt::feed::FeedTx;
use crate::wire::jsonrpc::push_json_str;

/// Longest request id (as JSON text) a listen may carry: it is kept for the stream's life.
pub const MAX_LISTEN_ID: usize = 256;

/// One open listen stream on this shard.
pub struct LocalListener {
    pub(in crate::route) id: Vec<u8>,
    pub(in crate::route) principal: Arc<str>,
    pub(in crate::route) tools: bool,
    pub(in crate::route) prompts: bool,
    pub(in crate::route) resources: bool,
    pub(in crate::route) tx: FeedTx,
    /// False until the acknowledgment is sent (resource subscriptions are acknowledged once
    /// the backends took them): nothing else goes out before it.
    pub(in crate::route) ready: bool,
    /// The resources it subscribed to, acknowledged (`route/listen_resources.rs`).
    pub(in crate::route) subs: Vec<ListenSub>,
}

/// One resource a listen subscribed to, and where its updates come from.
#[derive(Clone)]
pub struct ListenSub {
    /// The URI as the gateway lists it (what the client asked for and hears).
    pub(in crate::route) uri: String,
    /// The backend's id and its own URI.
    pub(in crate::route) server: String,
    pub(in crate::route) original: String,
    /// Snapshot index of the backend (to forward `resources/subscribe` to it).
    pub(in crate::route) backend: usize,
    /// The backend speaks 2026-07-28 only (the shard's resource listen carries the URI).
    pub(in crate::route) modern_only: bool,
    pub(in crate::route) timeout: std::time::Duration,
}

/// The shard's open listens, by a key local to the shard.
#[derive(Default)]
pub struct Listeners {
    pub(in crate::route) map: HashMap<u64, LocalListener, RandomState>,
    pub(in crate::route) next: u64,
}

impl Listeners {
    /// Open listens.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Forgets listens whose stream has ended; returns how many of `principal`'s remain.
    pub(in crate::route) fn prune_count(&mut self, principal: &str) -> usize {
        let mut mine = 0;
        self.map.retain(|_, l| {
            let open = !l.tx.is_closed();
            mine += usize::from(open && &*l.principal == principal);
            open
        });
        mine
    }

    /// Checks the caps (`cap` listens, `cap_principal` for `l.principal`), then adds `l`.
    pub(in crate::route) fn admit(
        &mut self,
        l: LocalListener,
        cap: usize,
        cap_principal: usize,
    ) -> Result<u64, (CapHit, LocalListener)> {
        let mine = self.prune_count(&l.principal);
        if mine >= cap_principal {
            return Err((CapHit::Principal, l));
        }
        if self.map.len() >= cap {
            return Err((CapHit::Global, l));
        }
        let key = self.next;
        self.next += 1;
        self.map.insert(key, l);
        Ok(key)
    }
}

/// The prefix of the key a listen's URIs hold in the shard's resource listens
/// (`route/resource_listen.rs`; a session id never starts with a control character).
const HOLDER_PREFIX: &str = "\u{1}listen ";

/// The key listen `key`'s URIs hold in the shard's resource listens.
pub(in crate::route) fn holder_key(key: u64) -> String {
    format!("{HOLDER_PREFIX}{key}")
}

impl Listeners {
    /// True when `holder` (a key of the shard's resource listens) is a listen of this shard
    /// that is still open.
    pub(in crate::route) fn holds(&self, holder: &str) -> bool {
        holder
            .strip_prefix(HOLDER_PREFIX)
            .and_then(|k| k.parse::<u64>().ok())
            .and_then(|k| self.map.get(&k))
            .is_some_and(|l| !l.tx.is_closed())
    }

    /// `exposed` (the gateway's URI) was updated: each acknowledged listen subscribed to it
    /// hears it once (listens whose client is gone are forgotten).
    pub(in crate::route) fn resource_updated(&mut self, exposed: &str) {
        let mut uri = Vec::with_capacity(exposed.len() + 10);
        uri.extend_from_slice(br#""uri":"#);
        push_json_str(&mut uri, exposed);
        uri.push(b',');
        let uri = String::from_utf8_lossy(&uri);
        self.map.retain(|_, l| {
            if l.ready && l.subs.iter().any(|s| s.uri == exposed) {
                let m = tagged("notifications/resources/updated", &l.id, &uri);
                return l.tx.send(m).is_ok() && !l.tx.is_closed();
            }
            true
        });
    }
}

/// A notification `method` on the listen of request id `id` (JSON text), its params `params`
/// (each member followed by a comma) and the `subscriptionId`.
pub(in crate::route) fn tagged(method: &str, id: &[u8], params: &str) -> Vec<u8> {
    let mut m = format!(r#"{{"jsonrpc":"2.0","method":"{method}","params":{{{params}"_meta":{{"io.modelcontextprotocol/subscriptionId":"#).into_bytes();
    m.extend_from_slice(id);
    m.extend_from_slice(b"}}}");
    m
}

impl Listeners {
    /// The catalog changed: tell each listener that opted in to that kind (and forget those
    /// whose client is gone).
    pub(in crate::route) fn list_changed(&mut self, tools: bool, prompts: bool, resources: bool) {
        self.map.retain(|_, l| {
            let kinds = [
                (tools && l.tools, "notifications/tools/list_changed"),
                (prompts && l.prompts, "notifications/prompts/list_changed"),
                (
                    resources && l.resources,
                    "notifications/resources/list_changed",
                ),
            ];
            if !l.ready {
                return !l.tx.is_closed();
            }
            kinds
                .iter()
                .filter(|(on, _)| *on)
                .all(|(_, m)| l.tx.send(tagged(m, &l.id, "")).is_ok())
                && !l.tx.is_closed()
        });
    }
}

/// Which cap refused a listen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::route) enum CapHit {
    Global,
    Principal,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(id: &str, uri: &str) -> (LocalListener, crate::rt::feed::FeedRx) {
        let (tx, rx) = crate::rt::feed::feed(1 << 10);
        let sub = ListenSub {
            uri: uri.into(),
            server: "s".into(),
            original: "test://w".into(),
            backend: 0,
            modern_only: true,
            timeout: std::time::Duration::from_secs(1),
        };
        let l = LocalListener {
            id: id.as_bytes().to_vec(),
            principal: "p".into(),
            tools: false,
            prompts: false,
            resources: false,
            tx,
            ready: true,
            subs: vec![sub],
        };
        (l, rx)
    }

    #[test]
    fn a_listen_holds_its_resource_subscriptions_while_open_and_hears_only_its_uris() {
        let mut t = Listeners::default();
        let (a, mut rx_a) = listener("\"a\"", "o1m://s/test://w");
        let (b, rx_b) = listener("\"b\"", "o1m://s/test://other");
        let ka = t.admit(a, 8, 8).ok().unwrap();
        let kb = t.admit(b, 8, 8).ok().unwrap();
        assert!(t.holds(&holder_key(ka)) && t.holds(&holder_key(kb)));
        assert!(!t.holds(&format!("{ka}")), "a session id is never a listen");
        t.resource_updated("o1m://s/test://w");
        let m = poll_once(&mut rx_a).expect("a hears its URI");
        let v: sonic_rs::Value = sonic_rs::from_slice(&m).unwrap();
        use sonic_rs::JsonValueTrait;
        assert_eq!(v["params"]["uri"].as_str(), Some("o1m://s/test://w"));
        assert_eq!(
            v["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"].as_str(),
            Some("a")
        );
        assert_eq!(rx_b.queued(), 0, "b did not ask for that URI");
        assert!(poll_once(&mut rx_a).is_none(), "heard once");
        drop(rx_b);
        assert!(!t.holds(&holder_key(kb)), "a closed listen holds nothing");
    }

    /// The next queued message, without waiting.
    fn poll_once(rx: &mut crate::rt::feed::FeedRx) -> Option<Vec<u8>> {
        use futures_core::Stream;
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        match std::pin::Pin::new(rx).poll_next(&mut cx) {
            std::task::Poll::Ready(m) => m,
            std::task::Poll::Pending => None,
        }
    }
}

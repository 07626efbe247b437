//! One shard's auth state and the checks the HTTP front and the dispatcher call: who is
//! calling (with the shard's token cache), whether its rate allows one more request (this
//! shard's buckets, or the cluster's in a shared store, `limit_store.rs`), which items its roles
//! let it see (list views cached per catalog version and role set), and the 401/403/429/503
//! replies. Nothing here locks: keys and config come from `ArcSwap` snapshots, everything
//! else is this shard's own.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hashbrown::HashMap;

use super::keys::SharedKeysSlot;
use super::limit::{BucketSpec, LocalRateLimiter, RateLimitSpec};
use super::limit_store::{
    await_answer, SharedRateStore, StoreAnswer, StoreAsk, StoreRates, STORE_FAILURES,
};
use super::names::{LocalRoleNames, RoleNames};
use super::policy::ItemKind;
use super::verify::{Denied, LocalVerifier, Principal, SharedAuth};
use crate::audit::SharedAuditSink;
use crate::catalog::ListKind;
use crate::config::{Config, OnStoreError};
use crate::http::response::Reply;
use crate::snapshot::SharedSnapshot;

/// A rendered list as one role set sees it: JSON array and item ranges.
pub type LocalView = Rc<(bytes::Bytes, Vec<(u32, u32)>)>;

/// Views of one snapshot version: (role set, modern, kind) → list, and (role set, modern)
/// → the role set's tool names.
#[derive(Default)]
struct LocalViews {
    version: u64,
    map: HashMap<(Arc<str>, bool, u8), LocalView, ahash::RandomState>,
    names: HashMap<(Arc<str>, bool), Option<LocalRoleNames>, ahash::RandomState>,
}

/// A shard's auth state.
pub struct LocalAuth {
    /// Verification keys (published by the control thread).
    pub keys: SharedKeysSlot,
    /// The audit log's sending end.
    pub audit: SharedAuditSink,
    verifier: LocalVerifier,
    /// The limiter and the snapshot version it was checked against.
    limiter: RefCell<(u64, Option<Limiter>)>,
    /// The shared rate-limit store (`SharedRateStore::local()` without one).
    store: SharedRateStore,
    /// Requests the store could not decide, in `STORE_FAILURES` order (cumulative).
    store_failures: [Cell<u64>; STORE_FAILURES.len()],
    views: RefCell<LocalViews>,
    shards: usize,
    kid_hint: std::cell::Cell<Option<Instant>>,
}

/// Where a shard's rate decisions are made.
enum Limiter {
    /// Its own buckets (`store = "local"`).
    Local(LocalRateLimiter),
    /// The shared store (`store = "redis"`).
    Store(StoreRates),
}

impl Limiter {
    fn spec(&self) -> &RateLimitSpec {
        match self {
            Limiter::Local(l) => l.spec(),
            Limiter::Store(s) => s.spec(),
        }
    }
}

/// Why a request is refused by the rate limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateRefusal {
    /// Over its rate: a token is there again after this long (429).
    OverLimit(Duration),
    /// The shared store could not decide and `on_store_error = "deny"` (503).
    StoreDown,
}

/// The rate limits of a config.
pub fn rate_spec(cfg: &Config) -> RateLimitSpec {
    let r = &cfg.rate_limit;
    RateLimitSpec {
        per_principal: (r.requests_per_s > 0.0).then_some(BucketSpec {
            per_s: r.requests_per_s,
            burst: r.burst,
        }),
        per_tool: r
            .tools
            .iter()
            .map(|(t, l)| {
                let b = BucketSpec {
                    per_s: l.requests_per_s,
                    burst: l.burst,
                };
                (t.clone(), b)
            })
            .collect(),
    }
}

impl LocalAuth {
    /// The state of one of `shards` shards; rate decisions go to `store` when it is shared.
    pub fn new(
        keys: SharedKeysSlot,
        audit: SharedAuditSink,
        store: SharedRateStore,
        shards: usize,
    ) -> LocalAuth {
        LocalAuth {
            keys,
            audit,
            verifier: LocalVerifier::default(),
            limiter: RefCell::new((0, None)),
            store,
            store_failures: Default::default(),
            views: RefCell::new(LocalViews::default()),
            shards,
            kid_hint: std::cell::Cell::new(None),
        }
    }

    /// Who sent this request (the front calls it before anything else reads the request);
    /// a token naming an unknown key also calls `unknown_kid` (the shard asks the control
    /// thread for a JWKS refetch), at most once a second from this shard.
    pub fn principal_of(
        &self,
        auth: &SharedAuth,
        authorization: Option<&[u8]>,
        query: Option<&[u8]>,
        unknown_kid: impl FnOnce(&str),
    ) -> Result<Principal, Denied> {
        let r = self.authenticate(auth, authorization, query);
        if let Err(Denied::UnknownKid(kid)) = &r {
            let now = Instant::now();
            if self
                .kid_hint
                .get()
                .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
            {
                self.kid_hint.set(Some(now));
                unknown_kid(kid);
            }
        }
        r
    }

    /// Who sent a request with this `Authorization` value and query string.
    pub fn authenticate(
        &self,
        auth: &SharedAuth,
        authorization: Option<&[u8]>,
        query: Option<&[u8]>,
    ) -> Result<Principal, Denied> {
        let keys = self.keys.load();
        self.verifier
            .authenticate(auth, &keys, authorization, query)
    }

    /// Takes one request of `principal` (and `tool`) from its buckets, this shard's or the
    /// shared store's; refused when over the limit, or when the store cannot decide and
    /// `on_store_error = "deny"`. Only a shared store is awaited (at most
    /// `redis_timeout_ms`); local buckets answer at once. The limiter follows config reloads:
    /// the spec is compared once per snapshot version, and the buckets are kept when it did
    /// not change.
    pub async fn rate(
        &self,
        snap: &SharedSnapshot,
        principal: &str,
        tool: Option<&str>,
    ) -> Result<(), RateRefusal> {
        let r = &snap.config.rate_limit;
        if r.requests_per_s <= 0.0 && r.tools.is_empty() {
            return Ok(());
        }
        let buckets = {
            let mut slot = self.limiter.borrow_mut();
            if slot.0 != snap.version {
                let spec = rate_spec(&snap.config);
                if slot.1.as_ref().is_none_or(|l| *l.spec() != spec) {
                    slot.1 = Some(if self.store.is_shared() {
                        Limiter::Store(StoreRates::new(spec))
                    } else {
                        Limiter::Local(LocalRateLimiter::new(spec, self.shards))
                    });
                }
                slot.0 = snap.version;
            }
            match slot.1.as_ref() {
                Some(Limiter::Local(l)) if !l.is_off() => {
                    return l
                        .check(principal, tool, Instant::now())
                        .map_err(RateRefusal::OverLimit);
                }
                Some(Limiter::Store(s)) => match s.buckets(principal, tool) {
                    Some(b) => b,
                    None => return Ok(()),
                },
                _ => return Ok(()),
            }
        };
        let timeout = Duration::from_millis(r.redis_timeout_ms);
        let (reply, answer) = futures_channel::oneshot::channel();
        let ask = StoreAsk {
            principal: buckets.0,
            principal_rate: buckets.1,
            tool: buckets.2,
            deadline: Instant::now() + timeout,
            reply,
        };
        let answer = match self.store.ask(ask) {
            Ok(()) => await_answer(answer, timeout).await,
            Err(failure) => StoreAnswer::Failed(failure),
        };
        match answer {
            StoreAnswer::Admit => Ok(()),
            StoreAnswer::Wait(wait) => Err(RateRefusal::OverLimit(wait)),
            StoreAnswer::Failed(failure) => {
                let n = &self.store_failures[failure.index()];
                n.set(n.get() + 1);
                // The config of this request's snapshot decides (it reloads).
                match snap.config.rate_limit.on_store_error {
                    OnStoreError::Allow => Ok(()),
                    OnStoreError::Deny => Err(RateRefusal::StoreDown),
                }
            }
        }
    }

    /// Requests the shared store could not decide, by cause ([`STORE_FAILURES`] order).
    pub fn store_failures(&self) -> [u64; STORE_FAILURES.len()] {
        std::array::from_fn(|i| self.store_failures[i].get())
    }

    /// The shared store's handle (local without one).
    pub fn store(&self) -> &SharedRateStore {
        &self.store
    }

    /// The list of `kind` as `p` sees it, or `None` when the policy shows everyone
    /// everything (then the catalog's own rendering is served).
    pub fn view(
        &self,
        snap: &SharedSnapshot,
        modern: bool,
        kind: ListKind,
        p: &Principal,
    ) -> Option<LocalView> {
        let policy = &snap.auth.policy;
        if policy.is_open() {
            return None;
        }
        let key = (p.view.clone(), modern, kind as u8);
        if let Some(v) = self.fresh(snap).map.get(&key) {
            return Some(v.clone());
        }
        let names = match kind {
            ListKind::Tools => self.names(snap, modern, p),
            _ => None,
        };
        let item = item_kind(kind);
        let keep = |b: usize, name: &str| {
            snap.backends
                .get(b)
                .is_some_and(|spec| policy.allows(&p.roles, item, &spec.id, name))
        };
        let rewrite = |name: &str, json: &[u8]| names.as_ref().and_then(|n| n.rewrite(name, json));
        let catalog = snap.catalog_for(modern);
        let (json, items) = catalog.filtered(kind, &keep, &rewrite);
        let view: LocalView = Rc::new((json.into(), items));
        self.views.borrow_mut().map.insert(key, view.clone());
        Some(view)
    }

    /// The tool names and descriptions `p`'s roles see, when one of them overrides any
    /// (`[[auth.roles]] rename` / `descriptions`); cached per catalog version and role set.
    pub fn names(
        &self,
        snap: &SharedSnapshot,
        modern: bool,
        p: &Principal,
    ) -> Option<LocalRoleNames> {
        let policy = &snap.auth.policy;
        if !policy.has_overrides {
            return None;
        }
        let key = (p.view.clone(), modern);
        if let Some(n) = self.fresh(snap).names.get(&key) {
            return n.clone();
        }
        let (renames, descriptions) = policy.overrides(&p.roles);
        let catalog = snap.catalog_for(modern);
        let exists = |name: &str| catalog.route(name).is_some();
        let names = RoleNames::build(&renames, &descriptions, &exists).map(Rc::new);
        self.views.borrow_mut().names.insert(key, names.clone());
        names
    }

    /// The caches, emptied first when the snapshot changed.
    fn fresh(&self, snap: &SharedSnapshot) -> std::cell::RefMut<'_, LocalViews> {
        let mut views = self.views.borrow_mut();
        if views.version != snap.version {
            views.version = snap.version;
            views.map.clear();
            views.names.clear();
        }
        views
    }
}

/// What RBAC calls a list's items.
pub fn item_kind(kind: ListKind) -> ItemKind {
    match kind {
        ListKind::Tools => ItemKind::Tool,
        ListKind::Prompts => ItemKind::Prompt,
        ListKind::Resources | ListKind::Templates => ItemKind::Resource,
    }
}

/// May `p` use item `name` of backend `backend` (snapshot index)?
pub fn allows(
    snap: &SharedSnapshot,
    p: &Principal,
    kind: ItemKind,
    backend: usize,
    name: &str,
) -> bool {
    let policy = &snap.auth.policy;
    policy.is_open()
        || snap
            .backends
            .get(backend)
            .is_some_and(|spec| policy.allows(&p.roles, kind, &spec.id, name))
}

/// The 401 or 403 for a refusal: a JSON-RPC error body (no id: the request was not read)
/// and the `WWW-Authenticate` challenge.
pub fn refusal(auth: &SharedAuth, d: &Denied) -> Reply {
    let (status, challenge, msg) = match d {
        Denied::Unauthenticated { why, presented } => {
            let mut c = auth.challenge.clone();
            if *presented && c.starts_with("Bearer resource_metadata") {
                c.push_str(", error=\"invalid_token\"");
            }
            (401, c, format!("unauthorized: {why}"))
        }
        Denied::UnknownKid(_) => {
            let mut c = auth.challenge.clone();
            if c.starts_with("Bearer resource_metadata") {
                c.push_str(", error=\"invalid_token\"");
            }
            (
                401,
                c,
                "unauthorized: token signed with an unknown key".to_string(),
            )
        }
        Denied::InsufficientScope(_) => (
            403,
            auth.scope_challenge.clone(),
            "forbidden: the token lacks a required scope".to_string(),
        ),
    };
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":null,"error":{{"code":-32001,"message":{},"data":{{"blame":"client"}}}}}}"#,
        sonic_rs::to_string(&msg).unwrap_or_default()
    );
    let mut r = Reply::json(status, body.into_bytes());
    r.www_authenticate = Some(challenge);
    r
}

/// The 503 for a request the shared rate-limit store could not decide on, with
/// `on_store_error = "deny"`: the gateway's fault, not the client's; retry in a second.
pub fn store_down(id: &[u8]) -> Reply {
    let id = if id.is_empty() {
        b"null".as_slice()
    } else {
        id
    };
    let mut body = Vec::with_capacity(200);
    body.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    body.extend_from_slice(id);
    body.extend_from_slice(
        br#","error":{"code":-32000,"message":"rate limit store unreachable (rate_limit.on_store_error = deny); retry in 1 s","data":{"blame":"gateway"}}}"#,
    );
    let mut r = Reply::json(503, body);
    r.retry_after = Some(1);
    r
}

/// The 429 for a request over its rate.
pub fn too_many(wait: Duration, id: &[u8]) -> Reply {
    let secs = super::limit::retry_after_secs(wait);
    let id = if id.is_empty() {
        b"null".as_slice()
    } else {
        id
    };
    let mut body = Vec::with_capacity(160);
    body.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    body.extend_from_slice(id);
    body.extend_from_slice(
        format!(
            r#","error":{{"code":-32000,"message":"rate limit exceeded; retry in {secs} s","data":{{"blame":"client"}}}}}}"#
        )
        .as_bytes(),
    );
    let mut r = Reply::json(429, body);
    r.retry_after = Some(secs.min(u32::MAX as u64) as u32);
    r
}

#[cfg(test)]
#[path = "local_limit_store_tests.rs"]
mod limit_store_tests;

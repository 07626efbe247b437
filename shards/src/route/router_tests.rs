//! The router built from a snapshot, without a running shard: no listener, no mailbox, no
//! backend process. Requests go in as the fronts hand them over ([`McpHttpRequest`]), and
//! the other shards are a recording [`Peers`] (a test double for the shard's mailboxes, the
//! one seam a router has toward them).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use arc_swap::ArcSwap;
use futures_channel::oneshot;

use super::dispatch::handle;
use super::request::McpHttpRequest;
use super::router::{PeerStopped, Peers, Router, RouterParts};
use crate::auth::verify::Principal;
use crate::catalog::build::BackendInput;
use crate::catalog::page::parse_page;
use crate::catalog::{BackendState, Catalog, Discovery};
use crate::http::request::Method;
use crate::http::response::Reply;
use crate::ring::Ring;
use crate::snapshot::{BackendSpec, SharedSnapshot};
use crate::upstream::registry::Upstreams;

/// Other shards as a list of what was handed to them; each answers 299 at once.
#[derive(Default)]
struct RecordingPeers {
    handed: RefCell<Vec<(usize, Option<String>)>>,
}

impl Peers for RecordingPeers {
    fn hand_off(
        &self,
        owner: usize,
        req: McpHttpRequest,
        reply: oneshot::Sender<Reply>,
    ) -> Result<(), PeerStopped> {
        self.handed
            .borrow_mut()
            .push((owner, req.session_id.as_ref().map(|s| s.to_string())));
        let _ = reply.send(Reply::json(299, b"{}".to_vec()));
        Ok(())
    }
}

fn spec(id: &str) -> BackendSpec {
    BackendSpec {
        id: id.into(),
        transport: crate::config::Transport::Stdio,
        timeout: std::time::Duration::from_secs(5),
        urls: Vec::new(),
        headers: Vec::new(),
        command: "true".into(),
        args: Vec::new(),
        env: Vec::new(),
        cwd: None,
        prefix: true,
        per_client: false,
        max_inflight: 8,
        bridge_replay: true,
        pool_size: 1,
        instances: 1,
        tool_timeouts: Vec::new(),
        max_timeout: std::time::Duration::from_secs(60),
        balance: Default::default(),
        weights: vec![1],
        balance_key: Default::default(),
        curation: Default::default(),
        breaker: Default::default(),
        health: Default::default(),
    }
}

/// A router for shard `id` of `shards`, over `config` and backends that list `tools`.
fn router(config: &str, backends: &[(&str, &[&str])], shards: usize, id: usize) -> Rc<Router> {
    router_with(
        config,
        backends,
        shards,
        id,
        Rc::new(RecordingPeers::default()),
    )
}

fn router_with(
    config: &str,
    backends: &[(&str, &[&str])],
    shards: usize,
    id: usize,
    peers: Rc<RecordingPeers>,
) -> Rc<Router> {
    let cfg = crate::config::parse_str(config, "test.toml").expect("test config");
    let found: Vec<Discovery> = backends
        .iter()
        .map(|(_, tools)| {
            let list: Vec<String> = tools
                .iter()
                .map(|t| format!(r#"{{"name":"{t}","inputSchema":{{"type":"object"}}}}"#))
                .collect();
            let page = format!(r#"{{"tools":[{}]}}"#, list.join(","));
            let (items, _) = parse_page(page.as_bytes(), "tools", "name").unwrap();
            Discovery {
                tools: Arc::new(items),
                ..Default::default()
            }
        })
        .collect();
    let inputs: Vec<BackendInput<'_>> = backends
        .iter()
        .zip(&found)
        .map(|((id, _), d)| BackendInput {
            id,
            prefix: true,
            state: BackendState::Ready,
            discovery: Some(d),
            curation: None,
            tasks: false,
        })
        .collect();
    let specs = backends.iter().map(|(id, _)| spec(id)).collect();
    let snap = SharedSnapshot::new(
        1,
        Arc::new(cfg),
        specs,
        Catalog::build(&inputs, "__"),
        Catalog::build(&inputs, "__"),
    );
    Rc::new(Router::new(RouterParts {
        id,
        shards,
        ring: Ring::new(shards),
        snapshot: Arc::new(ArcSwap::from_pointee(snap)),
        peers,
        draining: Default::default(),
        readiness: Default::default(),
        keys: Default::default(),
        audit: crate::audit::SharedAuditSink::disabled(),
        rate_store: crate::auth::limit_store::SharedRateStore::local(),
        tokens: crate::route::tokens::SharedTokenSink::disabled(),
        trace: crate::trace::SharedTraceSink::disabled(),
        upstreams: Upstreams::new(crate::upstream::stdio::gate::SharedSpawnGate::new(1)),
    }))
}

fn post(principal: &Principal, sid: Option<&str>, body: &str) -> McpHttpRequest {
    McpHttpRequest {
        method: Method::Post,
        session_id: sid.map(Into::into),
        protocol_version: sid.map(|_| "2025-11-25".into()),
        accepts_sse: true,
        last_event_id: None,
        mcp_method: None,
        mcp_name: None,
        mcp_params: None,
        affinity: Default::default(),
        principal: principal.clone(),
        discovery: crate::config::Discovery::Full,
        trace: Default::default(),
        body: body.as_bytes().to_vec(),
    }
}

fn delete(principal: &Principal, sid: &str) -> McpHttpRequest {
    let mut req = post(principal, Some(sid), "");
    req.method = Method::Delete;
    req.trace = Default::default();
    req.body = Vec::new();
    req
}

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
const PING: &str = r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#;
const LIST: &str = r#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#;

fn run<F: std::future::Future>(f: F) -> F::Output {
    monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .unwrap()
        .block_on(f)
}

/// Starts a session on `r` for `who`; its id.
async fn initialize(r: &Rc<Router>, who: &Principal) -> String {
    let reply = handle(r, post(who, None, INIT), true).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.session_id.expect("initialize mints a session")
}

#[test]
fn a_session_lives_from_initialize_to_delete_and_belongs_to_its_principal() {
    let r = router("", &[("a", &["read"])], 4, 2);
    let alice = Principal::new("alice", Vec::new());
    let bob = Principal::new("bob", Vec::new());
    run(async {
        let sid = initialize(&r, &alice).await;
        assert_eq!(
            r.ring.owner(sid.as_bytes()),
            2,
            "minted to land on this shard"
        );
        assert_eq!(r.sessions.borrow().len(), 1);
        let pong = handle(&r, post(&alice, Some(&sid), PING), true).await;
        assert_eq!(pong.status, 200);
        // Another principal cannot use or end it, nor learn that it exists.
        let theirs = handle(&r, post(&bob, Some(&sid), PING), true).await;
        assert_eq!(theirs.status, 404);
        assert_eq!(handle(&r, delete(&bob, &sid), true).await.status, 404);
        assert_eq!(handle(&r, delete(&alice, &sid), true).await.status, 200);
        assert!(r.sessions.borrow().is_empty());
        let after = handle(&r, post(&alice, Some(&sid), PING), true).await;
        assert_eq!(after.status, 404, "an ended session is unknown");
    });
}

#[test]
fn a_request_for_another_shards_session_is_handed_to_that_shard_once() {
    let peers = Rc::new(RecordingPeers::default());
    let r = router_with("", &[("a", &["read"])], 4, 0, peers.clone());
    let alice = Principal::new("alice", Vec::new());
    let theirs =
        crate::cluster::session_id::mint(&crate::cluster::SharedCluster::solo(), &r.ring, 3);
    run(async {
        let reply = handle(&r, post(&alice, Some(&theirs), PING), true).await;
        assert_eq!(reply.status, 299, "the owner's answer comes back");
        assert_eq!(*peers.handed.borrow(), vec![(3, Some(theirs.clone()))]);
        // A request that was already handed over is served here, never handed on again.
        let here = handle(&r, post(&alice, Some(&theirs), PING), false).await;
        assert_eq!(here.status, 404);
        assert_eq!(peers.handed.borrow().len(), 1);
        // A new session never leaves: initialize is served where it lands.
        let mine = initialize(&r, &alice).await;
        assert_eq!(r.ring.owner(mine.as_bytes()), 0);
        assert_eq!(peers.handed.borrow().len(), 1);
    });
}

#[test]
fn tokens_are_minted_in_one_place_and_never_repeat() {
    let r = router("", &[], 1, 0);
    let mut seen: Vec<u64> = (0..1000).map(|_| r.calls.mint()).collect();
    let n = seen.len();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), n, "a token handed to two calls");
    // A second router (another shard) counts on its own; the shard id in
    // `o1m.<shard>.<n>` keeps the two apart.
    let other = router("", &[], 2, 1);
    assert_eq!(other.calls.mint(), 1);
}

#[test]
fn a_cancellation_reaches_its_own_sessions_call_only() {
    let r = router("", &[], 1, 0);
    let (a_tx, a_rx) = crate::upstream::Deadline::none().cancel_pair();
    let (b_tx, b_rx) = crate::upstream::Deadline::none().cancel_pair();
    let key = crate::route::tables::calls::inflight_key_rc;
    // Two sessions, each with a call whose client id is 7.
    r.calls
        .inflight
        .borrow_mut()
        .insert(key("sess-a", b"7"), a_tx);
    r.calls
        .inflight
        .borrow_mut()
        .insert(key("sess-b", b"7"), b_tx);
    crate::route::client_msgs::cancel(&r, "sess-a", b"7");
    assert!(a_rx.is_cancelled(), "session a's call is cancelled");
    assert!(
        !b_rx.is_cancelled(),
        "session b's call with the same id runs on"
    );
    // An id no call of the session has (late, or someone else's) cancels nothing.
    crate::route::client_msgs::cancel(&r, "sess-b", b"8");
    crate::route::client_msgs::cancel(&r, "sess-c", b"7");
    assert!(!b_rx.is_cancelled());
    assert_eq!(r.calls.inflight.borrow().len(), 1);
}

#[test]
fn a_calls_inflight_entry_goes_with_it_however_it_ends() {
    use crate::route::forward::InflightEntry;
    let r = router("", &[], 1, 0);
    let key = crate::route::tables::calls::inflight_key_rc;
    let (a_tx, _a_rx) = crate::upstream::Deadline::none().cancel_pair();
    let (b_tx, _b_rx) = crate::upstream::Deadline::none().cancel_pair();
    r.calls.inflight.borrow_mut().insert(key("s", b"1"), a_tx);
    r.calls.inflight.borrow_mut().insert(key("s", b"2"), b_tx);
    // Dropped without an answer (its caller stopped waiting): its entry goes, not another's.
    drop(InflightEntry {
        router: r.clone(),
        key: Some(key("s", b"1")),
    });
    assert!(!r.calls.inflight.borrow().contains_key(&key("s", b"1")));
    assert!(r.calls.inflight.borrow().contains_key(&key("s", b"2")));
    // Answered: released once; a stateless call's entry (no key) touches nothing.
    let mut e = InflightEntry {
        router: r.clone(),
        key: Some(key("s", b"2")),
    };
    e.release();
    e.release();
    drop(e);
    drop(InflightEntry {
        router: r.clone(),
        key: None,
    });
    assert!(r.calls.inflight.borrow().is_empty());
}

#[test]
fn a_principal_lists_only_what_its_roles_allow() {
    let cfg = r#"
[auth]
mode = "api_key"
default_roles = ["guest"]

[[auth.api_keys]]
name = "ops-bot"
sha256 = "3f1e2d4c5b6a79880123456789abcdef0123456789abcdef0123456789abcdef"
roles = ["ops"]

[[auth.roles]]
name = "ops"
tools = ["a__*"]
deny_tools = ["a__drop"]

[[auth.roles]]
name = "guest"
tools = ["b__*"]
"#;
    let r = router(cfg, &[("a", &["read", "drop"]), ("b", &["echo"])], 1, 0);
    let names = |reply: &Reply| -> Vec<String> {
        let body = reply.body_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let mut out: Vec<String> = v["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect();
        out.sort();
        out
    };
    run(async {
        let ops = Principal::new("ops-bot", vec!["ops".into()]);
        let sid = initialize(&r, &ops).await;
        let list = handle(&r, post(&ops, Some(&sid), LIST), true).await;
        assert_eq!(names(&list), ["a__read"]);
        let guest = Principal::new("someone", vec!["guest".into()]);
        let sid = initialize(&r, &guest).await;
        let list = handle(&r, post(&guest, Some(&sid), LIST), true).await;
        assert_eq!(names(&list), ["b__echo"]);
        // A denied tool is not callable either, whatever its name's spelling in the list.
        let call = r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"a__drop","arguments":{}}}"#;
        let sid = initialize(&r, &ops).await;
        let refused = handle(&r, post(&ops, Some(&sid), call), true).await;
        let allowed = handle(
            &r,
            post(&ops, Some(&sid), &call.replace("drop", "read")),
            true,
        )
        .await;
        let error = |reply: &Reply| -> (i64, String) {
            let v: serde_json::Value = serde_json::from_slice(&reply.body_bytes()).unwrap();
            let e = &v["error"];
            (
                e["code"].as_i64().unwrap(),
                e["data"]["blame"].as_str().unwrap().into(),
            )
        };
        // Denied: as unknown as a tool that does not exist, the client's fault.
        assert_eq!(error(&refused), (-32602, "client".into()));
        // Allowed: it gets as far as its backend (none runs here, so that fails).
        assert_eq!(error(&allowed), (-32000, "backend".into()));
    });
}

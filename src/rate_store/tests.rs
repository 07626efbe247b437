//! The store thread's logic without a socket: the handshake, the commands a decision becomes,
//! how replies (including `NOSCRIPT` and refusals) become answers, and that nothing it says
//! carries the password. The script itself runs against a real Redis in
//! `tests/rate_limit_redis.rs`.

use std::io::{self, Cursor};
use std::time::{Duration, Instant};

use futures_channel::oneshot;
use only1mcp_shards::auth::limit_store::{
    principal_hash, principal_key, tool_hash, tool_key, SharedRateStore, StoreAnswer, StoreAsk,
    StoreFailure, StoreRate,
};
use only1mcp_shards::config::parse_redis_url;

use super::resp::{self, Value};
use super::script::{encode, Script, GCRA};
use super::{decide, handshake, Worker};

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

fn ask(principal: &str, per_principal: bool, tool: Option<&str>) -> StoreAsk {
    let (reply, _) = oneshot::channel();
    StoreAsk {
        principal: principal_hash(principal),
        principal_rate: per_principal.then_some(StoreRate {
            interval_us: 200_000,
            limit_us: 1_000_000,
        }),
        tool: tool.map(|t| {
            let r = StoreRate {
                interval_us: 2_000_000,
                limit_us: 4_000_000,
            };
            (tool_hash(t), r)
        }),
        deadline: Instant::now() + Duration::from_secs(1),
        reply,
    }
}

/// The commands in `bytes`, each as its arguments.
fn commands(bytes: &[u8]) -> Vec<Vec<Vec<u8>>> {
    let mut r = Cursor::new(bytes);
    let mut out = Vec::new();
    while (r.position() as usize) < bytes.len() {
        match resp::read(&mut r).unwrap() {
            Value::Array(Some(items)) => out.push(
                items
                    .into_iter()
                    .map(|v| match v {
                        Value::Bulk(Some(b)) => b,
                        other => panic!("not a bulk string: {other:?}"),
                    })
                    .collect(),
            ),
            other => panic!("not a command: {other:?}"),
        }
    }
    out
}

#[test]
fn a_decision_is_one_evalsha_with_both_buckets() {
    let a = ask("alice", true, Some("demo__slow"));
    let mut out = Vec::new();
    encode(&mut out, &Script::Sha(SHA), &a);
    let cmds = commands(&out);
    let p = principal_key(&a.principal);
    let t = tool_key(&a.principal, &tool_hash("demo__slow"));
    let want: Vec<&[u8]> = vec![
        b"EVALSHA",
        SHA.as_bytes(),
        b"2",
        &p,
        &t,
        b"200000",
        b"1000000",
        b"2000000",
        b"4000000",
    ];
    assert_eq!(
        cmds,
        vec![want.iter().map(|s| s.to_vec()).collect::<Vec<_>>()]
    );
    // Only the tool's bucket; the script's text instead of its hash.
    let mut out = Vec::new();
    encode(
        &mut out,
        &Script::Text,
        &ask("bob", false, Some("demo__slow")),
    );
    let cmds = commands(&out);
    assert_eq!(cmds[0][0], b"EVAL");
    assert_eq!(cmds[0][1], GCRA.as_bytes());
    assert_eq!(cmds[0][2], b"1");
    assert_eq!(cmds[0].len(), 6);
    assert!(
        !String::from_utf8_lossy(&out).contains("bob"),
        "the principal is hashed"
    );
}

#[test]
fn replies_become_answers_and_noscript_is_sent_again_with_eval() {
    let asks = [
        ask("a", true, None),
        ask("b", true, None),
        ask("c", true, None),
        ask("d", true, None),
    ];
    // First pipeline: admit, wait 1.5 s, NOSCRIPT, a refusal; then the EVAL of the third.
    let replies = b":0\r\n:1500000\r\n-NOSCRIPT No matching script. Please use EVAL.\r\n-OOM command not allowed when used memory > 'maxmemory'.\r\n:0\r\n";
    let mut r = Cursor::new(&replies[..]);
    let mut w = Vec::new();
    let mut refusal = None;
    let answers = decide(&mut r, &mut w, SHA, &asks, &mut Vec::new(), &mut refusal).unwrap();
    assert_eq!(
        answers,
        vec![
            StoreAnswer::Admit,
            StoreAnswer::Wait(Duration::from_millis(1500)),
            StoreAnswer::Admit,
            StoreAnswer::Failed(StoreFailure::Error),
        ]
    );
    assert!(refusal.unwrap().starts_with("OOM"));
    let cmds = commands(&w);
    let verbs: Vec<&[u8]> = cmds.iter().map(|c| c[0].as_slice()).collect();
    assert_eq!(
        verbs,
        [&b"EVALSHA"[..], b"EVALSHA", b"EVALSHA", b"EVALSHA", b"EVAL"]
    );
    assert_eq!(cmds[4][3], principal_key(&asks[2].principal));
}

#[test]
fn a_cut_connection_is_an_error_not_an_answer() {
    let asks = [ask("a", true, None), ask("b", true, None)];
    let mut r = Cursor::new(&b":0\r\n"[..]);
    let e = decide(
        &mut r,
        &mut Vec::new(),
        SHA,
        &asks,
        &mut Vec::new(),
        &mut None,
    )
    .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
}

#[test]
fn the_handshake_logs_in_selects_and_loads_the_script() {
    let t = parse_redis_url("redis://gw:pa%24%24word@127.0.0.1:6390/3").unwrap();
    let replies = format!("+OK\r\n+OK\r\n$40\r\n{SHA}\r\n");
    let mut w = Vec::new();
    let sha = handshake(&mut Cursor::new(replies.as_bytes()), &mut w, &t).unwrap();
    assert_eq!(sha, SHA);
    let cmds = commands(&w);
    assert_eq!(
        cmds[0],
        vec![b"AUTH".to_vec(), b"gw".to_vec(), b"pa$$word".to_vec()]
    );
    assert_eq!(cmds[1], vec![b"SELECT".to_vec(), b"3".to_vec()]);
    assert_eq!(cmds[2][..2], [b"SCRIPT".to_vec(), b"LOAD".to_vec()]);
    // No password, database 0: only the script.
    let t = parse_redis_url("redis://127.0.0.1").unwrap();
    let replies = format!("${}\r\n{SHA}\r\n", SHA.len());
    let mut w = Vec::new();
    handshake(&mut Cursor::new(replies.as_bytes()), &mut w, &t).unwrap();
    assert_eq!(commands(&w).len(), 1);
}

#[test]
fn a_refused_login_says_why_without_the_password() {
    let t = parse_redis_url("redis://:hunter2-secret@127.0.0.1:6390").unwrap();
    let replies = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n";
    let e = handshake(&mut Cursor::new(&replies[..]), &mut Vec::new(), &t).unwrap_err();
    let shown = e.to_string();
    assert!(shown.starts_with("AUTH refused: WRONGPASS"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(!format!("{t}").contains("hunter2"));
    assert!(!format!("{t:?}").contains("hunter2"));
    let bad_sha = b"$3\r\nabc\r\n";
    let t = parse_redis_url("redis://127.0.0.1").unwrap();
    let e = handshake(&mut Cursor::new(&bad_sha[..]), &mut Vec::new(), &t).unwrap_err();
    assert!(e.to_string().contains("SCRIPT LOAD refused"), "{e}");
}

/// The answer on `rx`, waited for at most 5 s.
fn answer_of(mut rx: oneshot::Receiver<StoreAnswer>) -> StoreAnswer {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(Some(a)) = rx.try_recv() {
            return a;
        }
        assert!(Instant::now() < deadline, "no answer in 5 s");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn while_redis_is_down_every_decision_is_answered_at_once() {
    // A port nothing listens on: connections are refused at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let target = parse_redis_url(&format!("redis://127.0.0.1:{port}")).unwrap();
    let (store, inbox) = SharedRateStore::channel(16);
    let worker = std::thread::spawn(move || Worker::new(target, inbox).run());
    for _ in 0..3 {
        let mut a = ask("a", true, None);
        let (reply, rx) = oneshot::channel();
        a.reply = reply;
        let started = Instant::now();
        store.ask(a).unwrap();
        assert_eq!(
            answer_of(rx),
            StoreAnswer::Failed(StoreFailure::Unreachable)
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "waited for Redis"
        );
    }
    assert!(!store.is_up());
    // A decision whose shard has stopped waiting is not sent: it is answered `timeout`.
    let mut late = ask("a", true, None);
    let (reply, rx) = oneshot::channel();
    late.reply = reply;
    late.deadline = Instant::now() - Duration::from_millis(1);
    store.ask(late).unwrap();
    assert_eq!(answer_of(rx), StoreAnswer::Failed(StoreFailure::Timeout));
    // The thread ends once the shards' handles are gone.
    drop(store);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !worker.is_finished() {
        assert!(
            Instant::now() < deadline,
            "the store thread outlived its shards"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    worker.join().unwrap();
}

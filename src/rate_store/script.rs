//! The decision itself: GCRA (the generic cell rate algorithm) in one Lua script, so a
//! decision is one command and one round trip, atomic on the Redis server.
//!
//! A bucket is one string key holding its "theoretical arrival time" (TAT): the unix time, in
//! microseconds of the Redis server's clock, when the bucket will be full again. This is the
//! same algorithm as the shard-local limiter (`shards/src/auth/limit.rs`), with the cluster's
//! rate instead of a shard's share. For each of the request's buckets (the principal's, the
//! tool's), with `interval` = 1 / rate and `limit` = interval × burst:
//!
//! ```text
//! tat   = max(stored TAT or now, now)
//! after = tat + interval            -- the TAT once this request took its token
//! wait  = after - (now + limit)     -- > 0: the bucket is empty for that long
//! ```
//!
//! If any bucket would wait, nothing is written and the longest wait (µs) is returned; else
//! every bucket's TAT becomes `after`, with an expiry at the moment it is full again (a full
//! bucket and a missing key mean the same, so Redis memory holds only busy buckets), and 0 is
//! returned. The clock is Redis's `TIME`, one clock for every node, so nodes need no clock
//! agreement. Scripts run atomically, so two nodes never both take the last token. Numbers
//! are Lua doubles: microsecond unix times (about 2^51) and limits up to 2^53 (the shard side
//! caps them) are exact; values are written with `%.0f` so they never turn into exponent
//! notation.
//!
//! The script is loaded (`SCRIPT LOAD`) on every connect and run with `EVALSHA`; a server that
//! lost it (`SCRIPT FLUSH`, a restart behind a proxy) answers `NOSCRIPT`, and that decision is
//! sent again with `EVAL`, which also caches it.

use std::io::Write;
use std::time::Duration;

use only1mcp_shards::auth::limit_store::{
    principal_key, tool_key, StoreAnswer, StoreAsk, StoreFailure,
};

use super::resp::{self, Value};

/// The GCRA script. KEYS: the request's buckets. ARGV: `interval_us limit_us` per key, in
/// the same order. Returns 0 (admitted, tokens taken) or the wait in µs (nothing taken).
pub const GCRA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local wait = 0
local after = {}
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i - 1])
  local limit = tonumber(ARGV[2 * i])
  local stored = redis.call('GET', KEYS[i])
  local tat = now
  if stored then
    tat = math.max(tonumber(stored) or now, now)
  end
  after[i] = tat + interval
  local w = after[i] - (now + limit)
  if w > wait then
    wait = w
  end
end
if wait > 0 then
  return math.ceil(wait)
end
for i = 1, #KEYS do
  local ttl_ms = math.ceil((after[i] - now) / 1000) + 1
  redis.call('SET', KEYS[i], string.format('%.0f', after[i]), 'PX', string.format('%.0f', ttl_ms))
end
return 0
"#;

/// How the script is named in a command.
pub enum Script<'a> {
    /// `EVALSHA <sha>`: the server has it cached.
    Sha(&'a str),
    /// `EVAL <text>`: after a `NOSCRIPT`.
    Text,
}

/// Appends the command deciding `ask` to `out`.
pub fn encode(out: &mut Vec<u8>, script: &Script<'_>, ask: &StoreAsk) {
    let pk = principal_key(&ask.principal);
    let tk = ask.tool.map(|(t, _)| tool_key(&ask.principal, &t));
    let mut keys: [&[u8]; 2] = [b"", b""];
    let mut rates = [(0u64, 0u64); 2];
    let mut n = 0;
    if let Some(r) = ask.principal_rate {
        keys[n] = &pk;
        rates[n] = (r.interval_us, r.limit_us);
        n += 1;
    }
    if let (Some(k), Some((_, r))) = (&tk, ask.tool) {
        keys[n] = k;
        rates[n] = (r.interval_us, r.limit_us);
        n += 1;
    }
    // Numbers as decimal text, in a small buffer reused for this command.
    let mut nums = [[0u8; 20]; 5];
    let mut lens = [0usize; 5];
    let mut put = |i: usize, v: u64| {
        let mut cur = std::io::Cursor::new(&mut nums[i][..]);
        let _ = write!(cur, "{v}");
        lens[i] = cur.position() as usize;
    };
    put(0, n as u64);
    for (i, (interval, limit)) in rates.iter().take(n).enumerate() {
        put(1 + 2 * i, *interval);
        put(2 + 2 * i, *limit);
    }
    let mut args: [&[u8]; 9] = [b""; 9];
    let (verb, name): (&[u8], &[u8]) = match script {
        Script::Sha(sha) => (b"EVALSHA", sha.as_bytes()),
        Script::Text => (b"EVAL", GCRA.as_bytes()),
    };
    args[0] = verb;
    args[1] = name;
    args[2] = &nums[0][..lens[0]];
    let mut at = 3;
    for k in keys.iter().take(n) {
        args[at] = k;
        at += 1;
    }
    for i in 0..2 * n {
        args[at] = &nums[1 + i][..lens[1 + i]];
        at += 1;
    }
    resp::command(out, &args[..at]);
}

/// What a reply to a decision's command means.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The decision.
    Answer(StoreAnswer),
    /// The server does not have the script: send it again with `EVAL`.
    NoScript,
    /// The server refused the command (the message, for a log line).
    Refused(String),
}

/// Reads the script's reply.
pub fn outcome(v: Value) -> Outcome {
    match v {
        Value::Int(0) => Outcome::Answer(StoreAnswer::Admit),
        Value::Int(us) if us > 0 => {
            Outcome::Answer(StoreAnswer::Wait(Duration::from_micros(us as u64)))
        }
        Value::Error(e) if e.starts_with("NOSCRIPT") => Outcome::NoScript,
        Value::Error(e) => Outcome::Refused(e),
        other => Outcome::Refused(format!("unexpected reply {other:?}")),
    }
}

/// An answer for a refused command.
pub fn refused() -> StoreAnswer {
    StoreAnswer::Failed(StoreFailure::Error)
}

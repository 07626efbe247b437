//! The gateway's own `subscriptions/listen` toward backends that speak 2026-07-28.
//!
//! A 2026 server announces list changes only on a client's listen stream, so the gateway,
//! as a client, holds one per such backend: on the shard that discovers the backend (an HTTP
//! backend's reporting shard, a stdio child's owner), since one stream per backend per
//! gateway is all re-discovery needs, and that shard already runs the re-listing. What it
//! hears pokes the backend's [`RelistTx`]; the re-list goes to the control thread, which
//! publishes the new catalog and tells both eras' clients (2025 GET streams, 2026 listens).
//!
//! It asks only for the three list kinds: the gateway does not relay resource subscriptions
//! of 2026 clients, so `resources/updated` is never asked for (and ignored if sent anyway).
//! When the stream ends (the backend closed it, restarted, or the connection dropped) it is
//! opened again after a [`Backoff`] (exponential, bounded, jittered); once it is back, the
//! backend is re-listed, since announcements made meanwhile were lost. The transports'
//! loops are `http/subscribe.rs` and `stdio/subscribe.rs`; this module holds what they share.

use std::time::Duration;

use sonic_rs::JsonValueTrait;

use crate::catalog::ListsChanged;
use crate::upstream::relist::RelistTx;
use crate::wire::jsonrpc::{Envelope, Kind};

/// The request id of the gateway's listen (a string: never confused with a call's numeric
/// id on a stdio channel).
pub const LISTEN_ID: &str = "\"o1m-listen\"";

/// The `subscriptions/listen` request (2026 `_meta` included), with its id in place.
pub fn listen_body() -> Vec<u8> {
    format!(
        r#"{{"jsonrpc":"2.0","id":{LISTEN_ID},"method":"subscriptions/listen","params":{{"notifications":{{"toolsListChanged":true,"promptsListChanged":true,"resourcesListChanged":true}},"_meta":{{{}}}}}}}"#,
        crate::upstream::modern::meta_keys()
    )
    .into_bytes()
}

/// What one message on a listen stream means to the gateway.
#[derive(Debug, PartialEq, Eq)]
pub enum Heard {
    /// The backend accepted the listen.
    Acknowledged,
    /// A list changed (poked into the re-list signal).
    Changed(ListsChanged),
    /// The answer to the listen: it ended gracefully (a result) or was refused (an error,
    /// with the backend's message).
    Ended(Result<(), String>),
    /// Anything else (not asked for, or not for the gateway): ignored.
    Other,
}

/// Reads one message of the gateway's listen stream; a list change pokes `relist`.
pub fn hear(msg: &[u8], relist: &RelistTx) -> Heard {
    let Ok(env) = Envelope::parse(msg) else {
        return Heard::Other;
    };
    match env.kind {
        Kind::Notification => {
            let method = env.method.as_deref().unwrap_or("");
            if method == "notifications/subscriptions/acknowledged" {
                return Heard::Acknowledged;
            }
            match ListsChanged::from_method(method) {
                Some(k) => {
                    relist.poke(k);
                    Heard::Changed(k)
                }
                None => Heard::Other,
            }
        }
        Kind::Response if env.id_bytes(msg) == LISTEN_ID.as_bytes() => {
            Heard::Ended(match sonic_rs::get(msg, ["error", "message"]) {
                Ok(m) => Err(m.as_str().unwrap_or("an error").chars().take(200).collect()),
                Err(_) => Ok(()),
            })
        }
        _ => Heard::Other,
    }
}

/// A listen open this long before it ended counts as a good one: its end is routine (logged
/// at debug) and the next reconnect starts from the shortest delay.
pub const HEALTHY: Duration = Duration::from_secs(60);

/// Delays between reconnects: doubling from `base` up to `max`, each drawn from its upper
/// half (jitter, so the shards of many gateways do not reconnect to a restarted backend in
/// lockstep). [`Backoff::reset`] after a stream that was accepted.
pub struct Backoff {
    base: Duration,
    max: Duration,
    next: Duration,
    rng: u64,
}

impl Backoff {
    /// A backoff from `base` to `max`.
    pub fn new(base: Duration, max: Duration) -> Backoff {
        let seed = std::hash::BuildHasher::hash_one(
            &std::hash::RandomState::new(),
            std::time::Instant::now(),
        );
        Backoff {
            base,
            max,
            next: base,
            rng: seed | 1,
        }
    }

    /// Back to `base`.
    pub fn reset(&mut self) {
        self.next = self.base;
    }

    /// The next delay, in `[d/2, d]` for the current step `d`; the step doubles (to `max`).
    pub fn delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (d * 2).min(self.max);
        // xorshift64: plenty for spreading reconnects.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let half = d / 2;
        let spread = half.as_micros() as u64 + 1;
        half + Duration::from_micros(self.rng % spread)
    }
}

/// The log of a listen's failures: the first of a streak is a warning, the rest debug, and
/// the first acknowledgment after it one info line; the streak ends only with a stream that
/// served [`HEALTHY`] long. A backend down for an hour, or one that accepts listens and drops
/// them at once, is two lines, not hundreds.
#[derive(Default)]
pub struct Streak {
    failures: u32,
    told: bool,
}

impl Streak {
    /// One failure (`what` says which).
    pub fn failed(&mut self, server: &str, what: &str, retry_in: Duration) {
        self.failures = self.failures.saturating_add(1);
        if self.failures == 1 {
            tracing::warn!(server = %server, "upstream subscriptions/listen: {what}; reconnecting with backoff (next in {retry_in:?}; further failures are logged at debug)");
        } else {
            tracing::debug!(server = %server, failures = self.failures, "upstream subscriptions/listen: {what}; next try in {retry_in:?}");
        }
    }

    /// The backend acknowledged a listen.
    pub fn acknowledged(&mut self, server: &str) {
        if self.failures == 0 {
            tracing::debug!(server = %server, "upstream subscriptions/listen acknowledged");
        } else if !std::mem::replace(&mut self.told, true) {
            tracing::info!(server = %server, failures = self.failures, "upstream subscriptions/listen re-established");
        }
    }

    /// A stream served long enough: the streak is over.
    pub fn healthy(&mut self) {
        *self = Streak::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listen_asks_for_list_changes_only_in_the_modern_shape() {
        let body = listen_body();
        let env = Envelope::parse(&body).unwrap();
        assert_eq!(env.method.as_deref(), Some("subscriptions/listen"));
        assert_eq!(env.id_bytes(&body), LISTEN_ID.as_bytes());
        assert_eq!(
            env.meta.version.as_deref(),
            Some(crate::upstream::modern::MODERN)
        );
        let n = sonic_rs::get(&body[..], ["params", "notifications"]).unwrap();
        let text = n.as_raw_str();
        assert!(!text.contains("resourceSubscriptions"), "{text}");
        for k in [
            "toolsListChanged",
            "promptsListChanged",
            "resourcesListChanged",
        ] {
            assert!(text.contains(&format!("\"{k}\":true")), "{text}");
        }
    }

    #[test]
    fn messages_on_the_stream_are_read_for_what_they_mean() {
        let (tx, mut rx) = crate::upstream::relist::channel();
        let tag = r#""_meta":{"io.modelcontextprotocol/subscriptionId":"o1m-listen"}"#;
        let ack = format!(
            r#"{{"jsonrpc":"2.0","method":"notifications/subscriptions/acknowledged","params":{{"notifications":{{"toolsListChanged":true}},{tag}}}}}"#
        );
        assert_eq!(hear(ack.as_bytes(), &tx), Heard::Acknowledged);
        assert!(rx.wake_pending().is_none(), "an ack is not a change");
        let changed = format!(
            r#"{{"jsonrpc":"2.0","method":"notifications/prompts/list_changed","params":{{{tag}}}}}"#
        );
        let k = ListsChanged::from_method("notifications/prompts/list_changed").unwrap();
        assert_eq!(hear(changed.as_bytes(), &tx), Heard::Changed(k));
        assert_eq!(rx.wake_pending(), Some(k));
        let updated = r#"{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"a://b"}}"#;
        assert_eq!(hear(updated.as_bytes(), &tx), Heard::Other);
        let done = r#"{"jsonrpc":"2.0","id":"o1m-listen","result":{"resultType":"complete"}}"#;
        assert_eq!(hear(done.as_bytes(), &tx), Heard::Ended(Ok(())));
        let refused = r#"{"jsonrpc":"2.0","id":"o1m-listen","error":{"code":-32601,"message":"Method not found"}}"#;
        assert!(
            matches!(hear(refused.as_bytes(), &tx), Heard::Ended(Err(m)) if m.contains("Method not found"))
        );
        let other = r#"{"jsonrpc":"2.0","id":7,"result":{}}"#;
        assert_eq!(hear(other.as_bytes(), &tx), Heard::Other);
        assert_eq!(hear(b"not json", &tx), Heard::Other);
    }

    #[test]
    fn reconnect_delays_double_to_their_bound_with_jitter_and_reset() {
        let (base, max) = (Duration::from_millis(500), Duration::from_secs(30));
        let mut b = Backoff::new(base, max);
        let mut step = base;
        let mut seen = Vec::new();
        for _ in 0..12 {
            let d = b.delay();
            assert!(
                d >= step / 2 && d <= step,
                "{d:?} outside [{:?}, {step:?}]",
                step / 2
            );
            seen.push(d);
            step = (step * 2).min(max);
        }
        assert!(seen[11] >= max / 2, "reaches the bound: {seen:?}");
        assert!(seen.windows(2).any(|w| w[0] != w[1]), "jittered: {seen:?}");
        b.reset();
        assert!(b.delay() <= base);
    }
}

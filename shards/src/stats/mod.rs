//! Shard-local statistics: what this shard served, counted without atomics or locks.
//!
//! Every counter here belongs to one shard and is bumped with plain integer adds on the
//! shard's own thread. Every 500 ms the shard sends a copy of its cumulative figures
//! ([`report::ShardStats`], built by the composition root in `shard/report.rs`) to the control thread, which keeps the latest copy
//! per shard and sums them for `/metrics` and the metrics socket. Cumulative copies (not
//! deltas) mean a lost or late report never skews a counter.
//!
//! Label values are bounded: methods are mapped onto a fixed list (anything else is
//! `other`), servers and tools come from the config and the catalog, never from raw input.

pub mod hist;
pub mod report;

use std::cell::{Cell, RefCell};
use std::hash::{Hash, Hasher};
use std::rc::Rc;
use std::time::Duration;

use hashbrown::{Equivalent, HashMap};

use crate::error::McpError;
pub use hist::Hist;

/// How a request or backend call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered (a tool's own `isError` result is still a served call).
    Ok,
    /// The client's request was wrong (bad params, unknown tool or method).
    ClientError,
    /// The backend answered something that is not a valid response.
    BackendError,
    /// The backend did not answer in time.
    BackendTimeout,
    /// No replica could take it (down, breaker open, overloaded).
    BackendUnavailable,
    /// The client cancelled it.
    Cancelled,
    /// The gateway itself failed.
    GatewayError,
}

/// Every outcome, in export order.
pub const OUTCOMES: [Outcome; 7] = [
    Outcome::Ok,
    Outcome::ClientError,
    Outcome::BackendError,
    Outcome::BackendTimeout,
    Outcome::BackendUnavailable,
    Outcome::Cancelled,
    Outcome::GatewayError,
];

impl Outcome {
    /// The `outcome` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ClientError => "client_error",
            Outcome::BackendError => "backend_error",
            Outcome::BackendTimeout => "backend_timeout",
            Outcome::BackendUnavailable => "backend_unavailable",
            Outcome::Cancelled => "cancelled",
            Outcome::GatewayError => "gateway_error",
        }
    }

    /// The outcome of a failed request.
    pub fn of_error(e: &McpError) -> Outcome {
        match e {
            McpError::BackendUnavailable { .. } => Outcome::BackendUnavailable,
            McpError::BackendTimeout { .. } => Outcome::BackendTimeout,
            McpError::BackendProtocol { .. } => Outcome::BackendError,
            McpError::Cancelled => Outcome::Cancelled,
            McpError::Gateway(_) => Outcome::GatewayError,
            _ => Outcome::ClientError,
        }
    }

    /// The outcome of `r`.
    pub fn of<T>(r: &Result<T, McpError>) -> Outcome {
        r.as_ref().err().map_or(Outcome::Ok, Outcome::of_error)
    }
}

/// The methods counted by name; anything else is `other` (clients choose method strings,
/// and a label must not be theirs to invent).
const METHODS: [&str; 17] = [
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "prompts/list",
    "prompts/get",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "completion/complete",
    "logging/setLevel",
    "server/discover",
    "subscriptions/listen",
    "notifications",
    "other",
];

/// `method` as a bounded label value.
pub fn method_label(method: &str) -> &'static str {
    if method.starts_with("notifications/") {
        return "notifications";
    }
    METHODS
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("other")
}

/// Counts per outcome plus a latency histogram.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Indexed like [`OUTCOMES`].
    pub by_outcome: [u64; OUTCOMES.len()],
    /// Latency of all of them.
    pub latency: Hist,
}

impl Counts {
    /// Counts one.
    pub fn add(&mut self, outcome: Outcome, took: Duration) {
        self.by_outcome[outcome as usize] += 1;
        self.latency.observe(took);
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Counts) {
        for (a, b) in self.by_outcome.iter_mut().zip(&other.by_outcome) {
            *a += b;
        }
        self.latency.merge(&other.latency);
    }

    /// All of them.
    pub fn total(&self) -> u64 {
        self.by_outcome.iter().sum()
    }

    /// All but `ok`.
    pub fn errors(&self) -> u64 {
        self.total() - self.by_outcome[Outcome::Ok as usize]
    }
}

/// A backend call's series: server, method and (for `tools/call`) the backend's tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallKey {
    /// Server id.
    pub server: Box<str>,
    /// Method label.
    pub method: &'static str,
    /// The backend's own tool name for `tools/call`, else empty.
    pub tool: Box<str>,
}

impl Hash for CallKey {
    fn hash<H: Hasher>(&self, h: &mut H) {
        CallKeyRef {
            server: &self.server,
            method: self.method,
            tool: &self.tool,
        }
        .hash(h)
    }
}

/// A borrowed [`CallKey`], so counting an existing series allocates nothing.
#[derive(Hash)]
struct CallKeyRef<'a> {
    server: &'a str,
    method: &'a str,
    tool: &'a str,
}

impl Equivalent<CallKey> for CallKeyRef<'_> {
    fn equivalent(&self, k: &CallKey) -> bool {
        *k.server == *self.server && k.method == self.method && *k.tool == *self.tool
    }
}

/// One shard's counters.
#[derive(Debug, Default)]
pub struct LocalStats {
    /// Client requests by method label (served here or handed off, counted once where the
    /// client's connection is).
    requests: RefCell<HashMap<&'static str, Counts, ahash::RandomState>>,
    /// Backend calls by server, method and tool.
    calls: RefCell<HashMap<CallKey, LocalSeries, ahash::RandomState>>,
    /// `initialize` requests that arrived while the node was draining or stopping.
    initialize_while_draining: Cell<u64>,
}

/// One backend-call series' counts, held by a call while it runs so that counting its end
/// needs no lookup and no copy of its labels.
pub type LocalSeries = Rc<RefCell<Counts>>;

impl LocalStats {
    /// Counts one client request.
    pub fn request(&self, method: &str, outcome: Outcome, took: Duration) {
        self.requests
            .borrow_mut()
            .entry(method_label(method))
            .or_default()
            .add(outcome, took);
    }

    /// The series of backend calls to `server` for `method` (and `tool`); allocates only the
    /// first time a series is seen.
    pub fn series(&self, server: &str, method: &str, tool: &str) -> LocalSeries {
        let method = method_label(method);
        let key = CallKeyRef {
            server,
            method,
            tool,
        };
        let mut calls = self.calls.borrow_mut();
        if let Some(s) = calls.get(&key) {
            return s.clone();
        }
        let s = LocalSeries::default();
        calls.insert(
            CallKey {
                server: server.into(),
                method,
                tool: tool.into(),
            },
            s.clone(),
        );
        s
    }

    /// Counts one backend call.
    pub fn call(&self, server: &str, method: &str, tool: &str, outcome: Outcome, took: Duration) {
        self.series(server, method, tool)
            .borrow_mut()
            .add(outcome, took);
    }

    /// Counts an `initialize` that arrived while the node was draining or stopping (it is
    /// still served: a load balancer may not have seen `/ready` change yet).
    pub fn initialize_while_draining(&self) {
        self.initialize_while_draining
            .set(self.initialize_while_draining.get() + 1);
    }

    /// `initialize` requests that arrived while draining or stopping, since start.
    pub fn initialize_while_draining_count(&self) -> u64 {
        self.initialize_while_draining.get()
    }

    /// A copy of the request counters.
    pub fn requests_copy(&self) -> Vec<(&'static str, Counts)> {
        self.requests
            .borrow()
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect()
    }

    /// A copy of the backend call counters.
    pub fn calls_copy(&self) -> Vec<(CallKey, Counts)> {
        self.calls
            .borrow()
            .iter()
            .map(|(k, v)| (k.clone(), v.borrow().clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_bounded_labels() {
        assert_eq!(method_label("tools/call"), "tools/call");
        assert_eq!(method_label("notifications/cancelled"), "notifications");
        assert_eq!(method_label("x/../../etc"), "other");
    }

    #[test]
    fn calls_are_counted_per_series() {
        let s = LocalStats::default();
        let ms = Duration::from_millis(1);
        s.call("a", "tools/call", "echo", Outcome::Ok, ms);
        s.call("a", "tools/call", "echo", Outcome::BackendTimeout, ms);
        s.call("a", "tools/call", "add", Outcome::Ok, ms);
        s.call("b", "weird/method", "", Outcome::Ok, ms);
        let mut calls = s.calls_copy();
        calls.sort_by(|x, y| (&x.0.server, &x.0.tool).cmp(&(&y.0.server, &y.0.tool)));
        assert_eq!(calls.len(), 3);
        assert_eq!(&*calls[1].0.tool, "echo");
        assert_eq!(calls[1].1.total(), 2);
        assert_eq!(calls[1].1.errors(), 1);
        assert_eq!(calls[2].0.method, "other");
        s.request("tools/call", Outcome::Ok, ms);
        s.request("tools/call", Outcome::ClientError, ms);
        assert_eq!(s.requests_copy()[0].1.errors(), 1);
    }

    #[test]
    fn errors_map_to_who_failed() {
        let e = McpError::BackendTimeout {
            server: "x".into(),
            ms: 1000,
        };
        assert_eq!(Outcome::of::<()>(&Err(e)), Outcome::BackendTimeout);
        let e = McpError::UnknownTool("t".into());
        assert_eq!(Outcome::of::<()>(&Err(e)), Outcome::ClientError);
        assert_eq!(Outcome::of::<()>(&Ok(())), Outcome::Ok);
    }
}

//! Messages that carry backend work between shards.

use std::ops::Range;

use futures_channel::oneshot;

use crate::error::McpError;
use crate::upstream::{BackendReply, CallOpts};

/// A call for a stdio backend owned by another shard.
pub struct StdioCall {
    /// Backend id.
    pub server: String,
    /// Request body with a placeholder id.
    pub body: Vec<u8>,
    /// The placeholder id's range.
    pub id: Range<usize>,
    /// Call options (timeout, events, progress token, cancel signal).
    pub opts: CallOpts,
    /// Where the reply goes.
    pub reply: oneshot::Sender<Result<BackendReply, McpError>>,
}

/// Where this shard's upstream layer posts work for a stdio child another shard owns: the
/// owner's mailbox, as the composition root wires it (`shard/mod.rs`). The upstream layer never
/// names the shard or its message type; this is a dynamic call only on messages that cross
/// shards anyway.
pub trait StdioOwner {
    /// Posts a call to the owner (when it has stopped, the call is dropped with its reply
    /// sender).
    fn post_call(&self, call: StdioCall) -> Result<(), OwnerStopped>;
    /// Posts a client's answer to one of the backend's own requests.
    fn post_respond(&self, server: String, msg: Vec<u8>);
}

/// The shard that owns a stdio child has stopped taking work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnerStopped;

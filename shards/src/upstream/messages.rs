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

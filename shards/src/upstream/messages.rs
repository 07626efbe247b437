//! Messages that carry backend work between shards.

use std::ops::Range;
use std::time::Duration;

use futures_channel::oneshot;

use crate::error::McpError;
use crate::upstream::BackendReply;

/// A call for a stdio backend owned by another shard.
pub struct StdioCall {
    /// Backend id.
    pub server: String,
    /// Request body with a placeholder id.
    pub body: Vec<u8>,
    /// The placeholder id's range.
    pub id: Range<usize>,
    /// Timeout for the backend call.
    pub timeout: Duration,
    /// Where the reply goes.
    pub reply: oneshot::Sender<Result<BackendReply, McpError>>,
}

//! A 2025 backend call parked on a 2026 client's input, waiting for the retry that brings
//! it (`route/bridge.rs` parks and resumes).

use futures_channel::oneshot;

/// What the client's retry brings to a parked call.
pub struct Retry {
    pub(in crate::route) client_id: Vec<u8>,
    pub(in crate::route) input: Option<Vec<u8>>,
    pub(in crate::route) reply: oneshot::Sender<Vec<u8>>,
}

/// A parked call's mailbox slot.
pub struct LocalParked {
    pub(in crate::route) tx: oneshot::Sender<Retry>,
}

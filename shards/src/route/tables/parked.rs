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

/// The client's answers to one call's bridged input requests, in the order the backend
/// asked for them.
#[derive(Debug, Default, Clone)]
pub struct InputLog {
    /// Answers handed to the backend so far; the next `requestState` carries them, so the
    /// call can be replayed on any node.
    pub given: Vec<Vec<u8>>,
    /// Answers not yet handed over: a replay answers the backend's requests from these, in
    /// order, before it asks the client again.
    pub pending: std::collections::VecDeque<Vec<u8>>,
}

impl InputLog {
    /// A replay of a call that was parked elsewhere: the answers it carried, then the
    /// retry's own.
    pub fn replay(carried: Vec<Vec<u8>>, input: Option<Vec<u8>>) -> InputLog {
        InputLog {
            given: Vec::new(),
            pending: carried.into_iter().chain(input).collect(),
        }
    }

    /// Is this call a replay (answers still to hand over)?
    pub fn replaying(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The next answer for the backend, if the replay has one; it becomes given.
    pub fn next_answer(&mut self) -> Option<Vec<u8>> {
        let a = self.pending.pop_front()?;
        self.given.push(a.clone());
        Some(a)
    }
}

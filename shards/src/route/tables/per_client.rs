//! One client session's own upstream of one backend (`session = "per_client"`); created,
//! found and released by `route/per_client.rs`.

use std::rc::Rc;

use crate::upstream::stdio::LocalStdioSlot;
use crate::upstream::LocalBackend;

/// One client's upstream of one backend.
pub struct LocalPerClient {
    pub(in crate::route) handle: Rc<LocalBackend>,
    pub(in crate::route) stdio:
        Option<(Rc<LocalStdioSlot>, futures_channel::oneshot::Receiver<()>)>,
}

//! Rules of `[cluster]` (see `crate::cluster`).

use super::{Checker, Seg};
use crate::config::Config;

impl Checker<'_, '_> {
    /// `[cluster]`: the node id's shape and a key file named. (The file itself is read where
    /// the config is loaded for use, `cluster::KeyRing::load`: its errors name its own lines.)
    pub(super) fn cluster(&mut self, config: &Config) {
        let Some(c) = &config.cluster else {
            return;
        };
        let node = c.node_id.get_ref();
        if !crate::cluster::valid_node_id(node) {
            let msg = format!(
                "`{node}` is not a node id: 1-16 characters of lowercase letters, digits and `-`"
            );
            let path = [Seg::Key("cluster"), Seg::Key("node_id")];
            self.push(&path, Some(c.node_id.span()), msg);
        }
        if c.key_file.get_ref().trim().is_empty() {
            let path = [Seg::Key("cluster"), Seg::Key("key_file")];
            self.push(&path, Some(c.key_file.span()), "must name a file".into());
        }
    }
}

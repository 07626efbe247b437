//! Loading `[cluster]`: the node id from the config and the keys from the key file, on
//! start, on every reload (a rotated file takes effect with the next snapshot) and in
//! `validate`. Key-file errors name the file and line and never the key; key ids are logged,
//! keys never; a file other users can read is accepted with a warning.

use std::sync::Arc;

use only1mcp_shards::cluster::{KeyRing, SharedCluster};
use only1mcp_shards::config::{Config, ConfigError};

/// The node's cluster identity for `cfg` (the process's own key outside a cluster), and the
/// permission warning, if any.
pub fn load(cfg: &Config) -> Result<(Arc<SharedCluster>, Option<String>), ConfigError> {
    let Some(c) = &cfg.cluster else {
        return Ok((SharedCluster::solo(), None));
    };
    let path = c.key_file.get_ref();
    let (keys, warning) = KeyRing::load(std::path::Path::new(path)).map_err(|e| ConfigError {
        file: path.clone(),
        line: e.line,
        column: usize::from(e.line > 0),
        key: String::new(),
        message: format!("cluster key file (cluster.key_file): {}", e.message),
    })?;
    let warning = warning.map(|w| format!("cluster.key_file {path}: {w}"));
    Ok((
        Arc::new(SharedCluster::node(c.node_id.get_ref(), keys)),
        warning,
    ))
}

/// [`load`], logging the outcome (node id, key ids, the warning).
pub fn load_logged(cfg: &Config) -> Result<Arc<SharedCluster>, ConfigError> {
    let (cluster, warning) = load(cfg)?;
    if let Some(w) = warning {
        tracing::warn!("{w}");
    }
    if let Some(node) = cluster.node.as_deref() {
        tracing::info!(node, keys = ?cluster.keys.ids(), "cluster keys loaded (the first signs)");
    }
    Ok(cluster)
}

/// Joining, leaving or renaming a node needs a restart: its sessions' ids name it.
pub fn node_change(old: &Config, new: &Config) -> Option<String> {
    let id = |c: &Config| c.cluster.as_ref().map(|c| c.node_id.get_ref().clone());
    let (a, b) = (id(old), id(new));
    (a != b).then(|| format!("cluster.node_id ({a:?} → {b:?})"))
}

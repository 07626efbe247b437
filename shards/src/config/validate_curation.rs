//! Checks of tool curation (a child of `validate.rs`, sharing its `Checker`): per server
//! (`[[servers]]` renames and description budget), gateway-wide (`[proxy]
//! description_budget`) and per role (`[[auth.roles]]` renames and descriptions). A rename
//! must give a valid tool name that cannot be mistaken for another one the same client sees.

use super::{Checker, Seg};
use crate::config::Config;

/// Longest per-role description override, in bytes.
const MAX_DESCRIPTION: usize = 4096;

impl Checker<'_, '_> {
    /// A server's tool curation: renames must give valid tool names, budgets be sane.
    pub(super) fn curation(&mut self, i: usize, s: &crate::config::BackendConfig) {
        let at = |name| [Seg::Key("servers"), Seg::Index(i), Seg::Key(name)];
        for (from, to) in &s.rename {
            if !crate::catalog::valid_tool_name(to) {
                let msg = format!("`{from}` → `{to}`: a tool name is 1 to 64 of A-Z a-z 0-9 _ -");
                self.push(&at("rename"), None, msg);
            }
        }
        if let Some(b) = s.description_budget {
            if !(16..=10_000).contains(&b) {
                let msg = format!("must be 16 to 10000 characters, got {b}");
                self.push(&at("description_budget"), None, msg);
            }
        }
    }

    /// `[proxy] description_budget` and every role's renames and descriptions.
    pub(super) fn role_curation(&mut self, config: &Config) {
        let b = config.proxy.description_budget;
        if !(16..=10_000).contains(&b) {
            let msg = format!("must be 16 to 10000 characters, got {b}");
            let path = [Seg::Key("proxy"), Seg::Key("description_budget")];
            self.push(&path, None, msg);
        }
        for (i, r) in config.auth.roles.iter().enumerate() {
            let at = |name| {
                [
                    Seg::Key("auth"),
                    Seg::Key("roles"),
                    Seg::Index(i),
                    Seg::Key(name),
                ]
            };
            let mut targets: Vec<&str> = Vec::with_capacity(r.rename.len());
            for (from, to) in &r.rename {
                let msg = if !crate::catalog::valid_tool_name(to) {
                    format!("`{from}` → `{to}`: a tool name is 1 to 64 of A-Z a-z 0-9 _ -")
                } else if crate::catalog::search::is_meta(to) {
                    format!("`{from}` → `{to}`: `{to}` is a search meta tool's name")
                } else if targets.contains(&to.as_str()) {
                    format!(
                        "`{from}` → `{to}`: another tool of this role is already renamed to `{to}`"
                    )
                } else if r.rename.contains_key(to) {
                    format!("`{from}` → `{to}`: `{to}` is itself renamed by this role; rename chains are refused")
                } else if from.contains(['*', '?']) {
                    format!("`{from}`: renames take exact tool names, not patterns")
                } else {
                    targets.push(to);
                    continue;
                };
                self.push(&at("rename"), None, msg);
            }
            for (tool, text) in &r.descriptions {
                if text.trim().is_empty() || text.len() > MAX_DESCRIPTION {
                    let msg = format!(
                        "`{tool}`: a description is 1 to {MAX_DESCRIPTION} bytes, got {}",
                        text.len()
                    );
                    self.push(&at("descriptions"), None, msg);
                }
            }
        }
    }
}

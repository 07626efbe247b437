//! Per-role tool names and descriptions (`[[auth.roles]] rename` and `descriptions`): one
//! role set's map between the gateway's tool names and the ones its principals see.
//!
//! A role may show a tool under another name or with another description (a support team
//! sees `open_ticket` where the catalog has `tickets__create_ticket`). Lists, the search
//! meta tools and `get_tool_schema` show the role's name and description; a call by the
//! role's name reaches the tool, and the gateway's name of a renamed tool is unknown to that
//! role, so each tool has exactly one name per client. Audit lines, metrics and RBAC keep the
//! gateway's name. A rename onto a name the catalog already has is not applied (it would
//! hide that tool); the map is built once per catalog version and role set.

use std::rc::Rc;

use hashbrown::HashMap;
use sonic_rs::JsonContainerTrait;

/// One role set's renames and descriptions.
#[derive(Debug, Default)]
pub struct RoleNames {
    /// Gateway name → the role's name.
    shown: HashMap<Box<str>, Box<str>, ahash::RandomState>,
    /// The role's name → gateway name.
    by_shown: HashMap<Box<str>, Box<str>, ahash::RandomState>,
    /// Gateway name → the role's description.
    descriptions: HashMap<Box<str>, Box<str>, ahash::RandomState>,
}

/// A role set's names, shared by the shard's tasks.
pub type LocalRoleNames = Rc<RoleNames>;

impl RoleNames {
    /// The map for `renames` and `descriptions` (roles in config order: the first entry for a
    /// tool wins). `exists` says whether the catalog has a tool of that name; a rename onto
    /// one is skipped with a warning. `None` when nothing applies.
    pub fn build(
        renames: &[(&str, &str)],
        descriptions: &[(&str, &str)],
        exists: &dyn Fn(&str) -> bool,
    ) -> Option<RoleNames> {
        let mut n = RoleNames::default();
        for &(gateway, shown) in renames {
            if n.shown.contains_key(gateway) || n.by_shown.contains_key(shown) {
                continue;
            }
            if exists(shown) {
                tracing::warn!(
                    tool = gateway,
                    rename = shown,
                    "a role's rename is not applied: the catalog already has a tool named `{shown}`"
                );
                continue;
            }
            n.shown.insert(gateway.into(), shown.into());
            n.by_shown.insert(shown.into(), gateway.into());
        }
        for &(gateway, text) in descriptions {
            n.descriptions
                .entry(gateway.into())
                .or_insert_with(|| text.into());
        }
        (!n.shown.is_empty() || !n.descriptions.is_empty()).then_some(n)
    }

    /// The name this role set sees for gateway tool `gateway`.
    pub fn shown<'a>(&'a self, gateway: &'a str) -> &'a str {
        self.shown.get(gateway).map_or(gateway, |s| s)
    }

    /// The gateway name of the tool this role set calls `called`; `None` when `called` is
    /// the gateway name of a tool it sees under another name.
    pub fn to_gateway<'a>(&'a self, called: &'a str) -> Option<&'a str> {
        match self.by_shown.get(called) {
            Some(g) => Some(g),
            None if self.shown.contains_key(called) => None,
            None => Some(called),
        }
    }

    /// This role set's description of gateway tool `gateway`, if it overrides it.
    pub fn description(&self, gateway: &str) -> Option<&str> {
        self.descriptions.get(gateway).map(|d| &**d)
    }

    /// Tool object `item` (of gateway tool `gateway`) as this role set sees it; `None` when
    /// nothing changes.
    pub fn rewrite(&self, gateway: &str, item: &[u8]) -> Option<Vec<u8>> {
        let name = self.shown.get(gateway);
        let description = self.descriptions.get(gateway);
        if name.is_none() && description.is_none() {
            return None;
        }
        // Written key by key, so the tool keeps its key order (and its bytes stay stable).
        let v: sonic_rs::Value = sonic_rs::from_slice(item).ok()?;
        let obj = v.as_object()?;
        let mut out = Vec::with_capacity(item.len() + 64);
        out.push(b'{');
        let mut has_description = false;
        for (k, v) in obj.iter() {
            if out.len() > 1 {
                out.push(b',');
            }
            out.extend_from_slice(&sonic_rs::to_vec(k).ok()?);
            out.push(b':');
            let replaced = match k {
                "name" => name,
                "description" => {
                    has_description = true;
                    description
                }
                _ => None,
            };
            match replaced {
                Some(text) => out.extend_from_slice(&sonic_rs::to_vec(&**text).ok()?),
                None => out.extend_from_slice(&sonic_rs::to_vec(v).ok()?),
            }
        }
        if let (Some(d), false) = (description, has_description) {
            out.extend_from_slice(b",\"description\":");
            out.extend_from_slice(&sonic_rs::to_vec(&**d).ok()?);
        }
        out.push(b'}');
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(exists: &[&str]) -> RoleNames {
        RoleNames::build(
            &[
                ("tickets__create", "open_ticket"),
                ("tickets__create", "second_wins_not"),
                ("demo__echo", "demo__add"),
                ("demo__other", "open_ticket"),
            ],
            &[
                ("tickets__create", "Open a ticket."),
                ("tickets__create", "No."),
            ],
            &|n| exists.contains(&n),
        )
        .unwrap()
    }

    #[test]
    fn the_first_rename_wins_and_one_onto_an_existing_tool_is_skipped() {
        let n = names(&["demo__add", "demo__echo", "tickets__create"]);
        assert_eq!(n.shown("tickets__create"), "open_ticket");
        assert_eq!(n.shown("demo__echo"), "demo__echo", "demo__add exists");
        assert_eq!(
            n.shown("demo__other"),
            "demo__other",
            "open_ticket is taken"
        );
        assert_eq!(n.description("tickets__create"), Some("Open a ticket."));
    }

    #[test]
    fn calls_by_the_roles_name_map_back_and_the_old_name_is_unknown() {
        let n = names(&[]);
        assert_eq!(n.to_gateway("open_ticket"), Some("tickets__create"));
        assert_eq!(n.to_gateway("tickets__create"), None);
        assert_eq!(n.to_gateway("demo__add"), Some("demo__echo"));
        assert_eq!(n.to_gateway("time__now"), Some("time__now"));
    }

    #[test]
    fn items_are_rewritten_in_place() {
        let n = names(&[]);
        let item =
            br#"{"name":"tickets__create","description":"x","inputSchema":{"type":"object"}}"#;
        let out = n.rewrite("tickets__create", item).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"name":"open_ticket","description":"Open a ticket.","inputSchema":{"type":"object"}}"#
        );
        assert!(n.rewrite("time__now", br#"{"name":"time__now"}"#).is_none());
        // A tool without a description gets the role's at the end.
        let bare = n
            .rewrite("tickets__create", br#"{"name":"tickets__create"}"#)
            .unwrap();
        assert_eq!(
            bare,
            br#"{"name":"open_ticket","description":"Open a ticket."}"#
        );
        assert!(RoleNames::build(&[], &[], &|_| false).is_none());
    }
}

//! Which of a backend's lists it said changed (`notifications/*/list_changed`).
//!
//! A backend's announcement travels with the re-discovery it causes, up to the control
//! thread, which tells the clients of those kinds even when the merged lists come out
//! byte-identical: a server sends `list_changed` when its list *may* have changed, the
//! backend's list can differ by caller (the spec lets a server answer by authorization)
//! where the gateway's own listing cannot see it, and a client answers a spurious one with
//! one cheap re-list, while a missed one leaves it with a stale list.

use super::BackendCaps;

/// List kinds: tools, prompts, resources (templates count as resources, as in the
/// protocol's one `resources/list_changed`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListsChanged {
    /// `notifications/tools/list_changed`
    pub tools: bool,
    /// `notifications/prompts/list_changed`
    pub prompts: bool,
    /// `notifications/resources/list_changed`
    pub resources: bool,
}

impl ListsChanged {
    /// Nothing announced.
    pub const NONE: ListsChanged = ListsChanged {
        tools: false,
        prompts: false,
        resources: false,
    };

    /// The kind a `notifications/<kind>/list_changed` method names; `None` for any other
    /// method.
    pub fn from_method(method: &str) -> Option<ListsChanged> {
        let kind = method
            .strip_prefix("notifications/")?
            .strip_suffix("/list_changed")?;
        let mut k = ListsChanged::NONE;
        match kind {
            "tools" => k.tools = true,
            "prompts" => k.prompts = true,
            "resources" => k.resources = true,
            _ => return None,
        }
        Some(k)
    }

    /// Both sets together.
    pub fn union(self, other: ListsChanged) -> ListsChanged {
        ListsChanged {
            tools: self.tools || other.tools,
            prompts: self.prompts || other.prompts,
            resources: self.resources || other.resources,
        }
    }

    /// Any kind at all.
    pub fn any(self) -> bool {
        self.tools || self.prompts || self.resources
    }

    /// Only the kinds the backend declared (an announcement of a list it does not offer
    /// tells no client anything).
    pub fn declared_by(self, caps: &BackendCaps) -> ListsChanged {
        ListsChanged {
            tools: self.tools && caps.tools,
            prompts: self.prompts && caps.prompts,
            resources: self.resources && caps.resources,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_name_their_kind_and_nothing_else_does() {
        let t = ListsChanged::from_method("notifications/tools/list_changed").unwrap();
        assert_eq!((t.tools, t.prompts, t.resources), (true, false, false));
        let p = ListsChanged::from_method("notifications/prompts/list_changed").unwrap();
        let r = ListsChanged::from_method("notifications/resources/list_changed").unwrap();
        assert_eq!(
            t.union(p).union(r),
            ListsChanged {
                tools: true,
                prompts: true,
                resources: true
            }
        );
        for other in [
            "notifications/roots/list_changed",
            "notifications/resources/updated",
            "notifications/tools/list_changed/x",
            "tools/list_changed",
            "",
        ] {
            assert_eq!(ListsChanged::from_method(other), None, "{other}");
        }
        assert!(!ListsChanged::NONE.any());
        let caps = BackendCaps {
            tools: true,
            ..Default::default()
        };
        assert_eq!(t.union(p).declared_by(&caps), t);
    }
}

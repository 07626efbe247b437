//! Sharing the lists two catalogs show alike.
//!
//! The control thread builds one catalog per client era (see `SharedSnapshot`). A dual-era
//! backend usually lists the same items in both, and every list of the two catalogs is then
//! equal: routes, rendered JSON, item ranges and keys. [`Catalog::share_lists`] makes the
//! second catalog point at the first one's copy of each list they have equal, so a big
//! catalog is held once, not twice.

use std::sync::Arc;

use crate::catalog::Catalog;

impl Catalog {
    /// Shares `other`'s lists (routes, rendered JSON, item ranges and keys) wherever this
    /// catalog's are equal to them. Nothing observable changes: only equal values are
    /// replaced.
    pub fn share_lists(&mut self, other: &Catalog) {
        share(&mut self.tools, &other.tools);
        share(&mut self.prompts, &other.prompts);
        share(&mut self.resources, &other.resources);
        for (mine, theirs) in [
            (&mut self.tools_json, &other.tools_json),
            (&mut self.prompts_json, &other.prompts_json),
            (&mut self.resources_json, &other.resources_json),
            (&mut self.templates_json, &other.templates_json),
        ] {
            share(mine, theirs);
        }
        for (mine, theirs) in [
            (&mut self.tools_items, &other.tools_items),
            (&mut self.prompts_items, &other.prompts_items),
            (&mut self.resources_items, &other.resources_items),
            (&mut self.templates_items, &other.templates_items),
        ] {
            share(mine, theirs);
        }
        for (mine, theirs) in [
            (&mut self.tools_keys, &other.tools_keys),
            (&mut self.prompts_keys, &other.prompts_keys),
            (&mut self.resources_keys, &other.resources_keys),
            (&mut self.templates_keys, &other.templates_keys),
        ] {
            share(mine, theirs);
        }
    }
}

/// Replaces `mine` by `theirs` when the two are equal.
fn share<T: PartialEq>(mine: &mut Arc<T>, theirs: &Arc<T>) {
    if *mine == *theirs {
        *mine = theirs.clone();
    }
}

#[cfg(test)]
mod tests {
    use crate::catalog::build::BackendInput;
    use crate::catalog::{BackendState, Catalog, Discovery, RawItem};
    use std::sync::Arc;

    fn catalog(tools: &[&str], prompts: &[&str]) -> Catalog {
        let items = |names: &[&str]| {
            let v: Vec<RawItem> = names
                .iter()
                .map(|n| RawItem {
                    key: n.to_string(),
                    json: format!(r#"{{"name":"{n}"}}"#).into_bytes(),
                })
                .collect();
            Arc::new(v)
        };
        let d = Discovery {
            tools: items(tools),
            prompts: items(prompts),
            ..Default::default()
        };
        let input = BackendInput {
            id: "a",
            prefix: true,
            state: BackendState::Ready,
            discovery: Some(&d),
            curation: None,
            tasks: false,
        };
        Catalog::build(&[input], "__")
    }

    #[test]
    fn equal_lists_are_shared_and_different_ones_kept() {
        let legacy = catalog(&["x", "y"], &["p"]);
        let mut modern = catalog(&["x", "y"], &["q"]);
        modern.share_lists(&legacy);
        assert!(Arc::ptr_eq(&modern.tools, &legacy.tools));
        assert!(Arc::ptr_eq(&modern.tools_json, &legacy.tools_json));
        assert!(Arc::ptr_eq(&modern.tools_items, &legacy.tools_items));
        assert!(Arc::ptr_eq(&modern.tools_keys, &legacy.tools_keys));
        assert!(!Arc::ptr_eq(&modern.prompts_json, &legacy.prompts_json));
        assert!(!Arc::ptr_eq(&modern.prompts, &legacy.prompts));
        assert!(modern.route_prompt("a__q").is_some());
        assert!(modern.route_prompt("a__p").is_none());
        assert_eq!(modern.route("a__y").unwrap().original, "y".into());
    }
}

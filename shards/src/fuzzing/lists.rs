//! A backend's list results (`tools/list` and the other three lists) as discovery reads them
//! and the catalog merges them: every rendered list is one valid JSON array whose item
//! ranges hold one object each, and every page a client can ask for is valid too.

use std::sync::Arc;

use super::{in_bounds, valid_json};
use crate::catalog::build::BackendInput;
use crate::catalog::page::parse_page;
use crate::catalog::{page_of, BackendState, Catalog, Discovery, ListKind};

/// `data` is one list result, read as all four lists; two backends (one namespaced, one
/// not) list it, so names collide and URIs are both wrapped and kept.
pub fn backend_lists(data: &[u8]) {
    let read = |key: &str, field: &str| {
        parse_page(data, key, field)
            .map(|(items, _cursor)| {
                for i in &items {
                    assert!(valid_json(&i.json), "an item that is not JSON");
                }
                items
            })
            .unwrap_or_default()
    };
    let d = Discovery {
        tools: Arc::new(read("tools", "name")),
        prompts: Arc::new(read("prompts", "name")),
        resources: Arc::new(read("resources", "uri")),
        templates: Arc::new(read("resourceTemplates", "uriTemplate")),
        ..Default::default()
    };
    let input = |id: &'static str, prefix: bool| BackendInput {
        id,
        prefix,
        state: BackendState::Ready,
        discovery: Some(&d),
        curation: None,
    };
    let cat = Catalog::build(&[input("a", true), input("b", false)], "__");
    // Each listed tool's `x-mcp-header` map: only tokens, unique, on a non-empty path, and
    // bounded; a tool with an invalid one is not in the catalog.
    for t in d.tools.iter() {
        match crate::catalog::params::of_tool(&t.json) {
            Ok(Some(h)) => {
                assert!(
                    !h.mirrored.is_empty()
                        && h.mirrored.len() <= crate::catalog::params::MAX_MIRRORED
                );
                for (i, m) in h.mirrored.iter().enumerate() {
                    assert!(!m.path.is_empty() && !m.name.is_empty());
                    assert_eq!(*m.lower, m.name.to_ascii_lowercase());
                    assert!(h.mirrored[..i].iter().all(|o| o.lower != m.lower));
                }
            }
            Ok(None) => {}
            // (Unless another tool of that name took the name.)
            Err(_) if d.tools.iter().filter(|o| o.key == t.key).count() == 1 => {
                assert!(cat.route(&format!("a__{}", t.key)).is_none())
            }
            Err(_) => {}
        }
    }
    for kind in [
        ListKind::Tools,
        ListKind::Prompts,
        ListKind::Resources,
        ListKind::Templates,
    ] {
        let (json, items, _) = cat.list(kind);
        assert!(valid_json(json), "{kind:?} list is not JSON");
        for &(s, e) in items.iter() {
            let r = s as usize..e as usize;
            assert!(
                in_bounds(&r, json.len()) && valid_json(&json[r]),
                "{kind:?} item range"
            );
        }
        for page_size in [0, 1, 3] {
            let mut offset = 0;
            let mut seen = 0;
            loop {
                let (page, next) = page_of(json, items, offset, page_size)
                    .unwrap_or_else(|| panic!("offset {offset} of {} refused", items.len()));
                // Counted without building values: a number outside f64 (`2e659`) is valid
                // JSON that serde_json's `Value` refuses (the fuzzer found one).
                let page: Vec<serde::de::IgnoredAny> =
                    serde_json::from_slice(&page).expect("a page is a JSON array");
                seen += page.len();
                match next {
                    Some(n) => {
                        assert!(n > offset, "a page that does not advance");
                        offset = n;
                    }
                    None => break,
                }
            }
            assert_eq!(seen, items.len(), "pages lost or repeated items");
        }
    }
}

//! The merged catalog: tools, prompts, resources and resource templates of every backend,
//! namespaced, with routes back to their owners and the list results rendered once.
//!
//! Built on the control thread ([`build`]) from each backend's [`Discovery`] (every page already
//! followed by the discovering shard) and published inside the snapshot. Tool and prompt names
//! become `<server_id><sep><name>` unless the server has `prefix = false`; resource URIs become
//! `o1m://<server_id>/<uri>` ([`uri`]). Names that break the rule LLM APIs enforce (1-64 chars
//! of `[A-Za-z0-9_-]`) or collide with an earlier server's are dropped and reported with the
//! reason, never silently. Serving a list is a copy of pre-rendered bytes.
//!
//! # Key Components
//! - [`Catalog`]: lookups for the hot path and the rendered lists.
//! - [`Discovery`], [`BackendCaps`]: what one backend offered.
//! - [`page`]: splitting one backend list page into items.
//! - [`ListsChanged`]: which lists a backend announced changed.
//! - [`Catalog::share_lists`]: the two eras' catalogs hold the lists they show alike once.
//! - [`uri`]: URI namespacing and template matching.
//! - [`params`]: a tool's `x-mcp-header` arguments (its `Mcp-Param-*` headers).

pub mod build;
mod changed;
pub mod curate;
pub mod page;
pub mod params;
pub mod search;
mod share;
pub mod uri;

use std::sync::Arc;

use ahash::RandomState;
use hashbrown::HashMap;
use sonic_rs::JsonValueTrait;

pub use changed::ListsChanged;
pub use page::{parse_page, parse_tools_page};

/// One listed item (tool, prompt, resource or template) exactly as the backend sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawItem {
    /// Its key: `name` for tools and prompts, `uri` for resources, `uriTemplate` for templates.
    pub key: String,
    /// The item's JSON object, verbatim.
    pub json: Vec<u8>,
}

/// Older name of [`RawItem`], kept for tools.
pub type RawTool = RawItem;

/// The 2026 tasks extension's identifier.
pub const TASKS_EXTENSION: &str = "io.modelcontextprotocol/tasks";

/// What a backend declared in its `initialize` result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendCaps {
    /// `tools`
    pub tools: bool,
    /// `prompts`
    pub prompts: bool,
    /// `resources`
    pub resources: bool,
    /// `resources.subscribe`
    pub subscribe: bool,
    /// `logging`
    pub logging: bool,
    /// `completions`
    pub completions: bool,
    /// Any `listChanged: true`.
    pub list_changed: bool,
    /// 2025-11-25 experimental tasks: `tasks.requests.tools.call` (task-augmented calls).
    pub tasks_legacy: bool,
    /// The 2026 tasks extension: `extensions["io.modelcontextprotocol/tasks"]`.
    pub tasks_ext: bool,
    /// It speaks 2026-07-28 only (no 2025 session): a 2025 client's resource subscriptions
    /// reach it as `resourceSubscriptions` of a `subscriptions/listen`
    /// (`route/resource_listen.rs`), not as `resources/subscribe`. Set by the era probe.
    pub modern_only: bool,
}

impl BackendCaps {
    /// Reads `capabilities` from an `initialize` result.
    pub fn from_initialize_result(result: &[u8]) -> BackendCaps {
        let has = |path: &[&str]| sonic_rs::get(result, path).is_ok_and(|v| !v.is_null());
        let flag = |path: &[&str]| {
            sonic_rs::get(result, path)
                .ok()
                .and_then(|v| v.as_bool())
                .unwrap_or(false)
        };
        BackendCaps {
            tools: has(&["capabilities", "tools"]),
            prompts: has(&["capabilities", "prompts"]),
            resources: has(&["capabilities", "resources"]),
            subscribe: flag(&["capabilities", "resources", "subscribe"]),
            logging: has(&["capabilities", "logging"]),
            completions: has(&["capabilities", "completions"]),
            list_changed: flag(&["capabilities", "tools", "listChanged"])
                || flag(&["capabilities", "prompts", "listChanged"])
                || flag(&["capabilities", "resources", "listChanged"]),
            tasks_legacy: has(&["capabilities", "tasks", "requests", "tools", "call"]),
            tasks_ext: has(&["capabilities", "extensions", TASKS_EXTENSION]),
            modern_only: false,
        }
    }
}

/// Everything one backend offered at discovery. The lists are shared: a dual-era backend
/// whose two eras list the same items holds them once.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    /// Its capabilities.
    pub caps: BackendCaps,
    /// `tools/list`, all pages.
    pub tools: Arc<Vec<RawItem>>,
    /// `prompts/list`, all pages.
    pub prompts: Arc<Vec<RawItem>>,
    /// `resources/list`, all pages.
    pub resources: Arc<Vec<RawItem>>,
    /// `resources/templates/list`, all pages.
    pub templates: Arc<Vec<RawItem>>,
    /// A dual-era backend's 2026 lists, when they differ in kind from its 2025 session's
    /// (2026 clients see these; the fields above are what 2025 clients see).
    pub modern: Option<Box<Discovery>>,
    /// The smallest `ttlMs` a 2026 backend put on its lists, if any.
    pub ttl_ms: Option<u64>,
    /// A 2026 backend said `cacheScope: "private"` on one of its lists.
    pub private: bool,
}

/// Cache hints read from one 2026 list result: (`ttlMs`, `cacheScope` is private).
pub fn cache_hints(result: &[u8]) -> (Option<u64>, bool) {
    let ttl = sonic_rs::get(result, ["ttlMs"])
        .ok()
        .and_then(|v| v.as_u64());
    let private = sonic_rs::get(result, ["cacheScope"])
        .ok()
        .is_some_and(|v| v.as_str() == Some("private"));
    (ttl, private)
}

/// Where a catalog name routes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameRoute {
    /// Backend index in the snapshot.
    pub backend: usize,
    /// The backend's own name (shared: a call keeps it for its stats and timeouts without
    /// copying it).
    pub original: Arc<str>,
    /// `original` as a JSON string literal, ready to splice into a request (shared, as
    /// `original`).
    pub original_json: Arc<[u8]>,
    /// The tool is annotated `idempotentHint: true` (a failed call may be retried).
    pub idempotent: bool,
    /// The tool is annotated `readOnlyHint: true` (with `idempotent`: cacheable on opt-in).
    pub read_only: bool,
    /// The tool's arguments mirrored into `Mcp-Param-*` headers (`x-mcp-header`); `None`
    /// for most tools, and for prompts and resources.
    pub headers: Option<Arc<params::ToolHeaders>>,
    /// The tool's `execution.taskSupport` as this catalog shows it (only where the
    /// gateway carries the backend's tasks in the catalog's era).
    pub task_support: TaskSupport,
}

/// A tool's `execution.taskSupport` (`None`: absent or `forbidden`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TaskSupport {
    /// No task: absent, or `forbidden`.
    #[default]
    None,
    /// `optional`
    Optional,
    /// `required`
    Required,
}

impl TaskSupport {
    /// Of a tool's JSON (a byte search first: almost no tool declares it).
    pub fn of(tool: &[u8]) -> TaskSupport {
        if memchr::memmem::find(tool, b"taskSupport").is_none() {
            return TaskSupport::None;
        }
        match sonic_rs::get(tool, ["execution", "taskSupport"])
            .ok()
            .as_ref()
            .and_then(sonic_rs::JsonValueTrait::as_str)
        {
            Some("optional") => TaskSupport::Optional,
            Some("required") => TaskSupport::Required,
            _ => TaskSupport::None,
        }
    }
}

/// Older name of [`NameRoute`].
pub type ToolRoute = NameRoute;

/// A backend's discovery state as the catalog sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendState {
    /// Not discovered yet.
    Starting,
    /// Discovered; its items are in the catalog.
    Ready,
    /// Discovery failed or the backend died; the message says why.
    Down(String),
}

/// Per-backend report: state, items exposed, items dropped and why.
#[derive(Debug, Clone)]
pub struct BackendReport {
    /// Backend id.
    pub id: String,
    /// State.
    pub state: BackendState,
    /// Tools exposed.
    pub tools: usize,
    /// Prompts exposed.
    pub prompts: usize,
    /// Resources plus templates exposed.
    pub resources: usize,
    /// Items dropped: (backend name, reason).
    pub dropped: Vec<(String, String)>,
}

/// What the gateway can honestly advertise: a capability some ready backend has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergedCaps {
    /// Any backend has prompts.
    pub prompts: bool,
    /// Any backend has resources.
    pub resources: bool,
    /// Any backend supports resource subscriptions.
    pub subscribe: bool,
    /// Any backend has logging.
    pub logging: bool,
    /// Any backend has completions.
    pub completions: bool,
    /// Some backend's tasks are carried in this catalog's era (see `BackendInput::tasks`;
    /// a backend that went down counts: its tasks end failed rather than unknown).
    pub tasks: bool,
}

/// Routes by exposed name (or URI).
pub(crate) type RouteMap = HashMap<String, NameRoute, RandomState>;

/// A [`RouteMap`], shared between catalogs that list the same items.
pub(crate) type Routes = Arc<RouteMap>;

/// The merged catalog.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub(crate) tools: Routes,
    pub(crate) prompts: Routes,
    pub(crate) resources: Routes,
    /// Backends exposed without a prefix that have templates: (backend, template).
    pub(crate) bare_templates: Vec<(usize, String)>,
    /// Backend ids (lower-cased) that are URI-namespaced, with their index.
    pub(crate) uri_prefixed: HashMap<String, usize, RandomState>,
    /// Per backend: capabilities (default when not discovered).
    pub backend_caps: Vec<BackendCaps>,
    /// `[tool, ...]` rendered once.
    pub tools_json: Arc<Vec<u8>>,
    /// `[prompt, ...]` rendered once.
    pub prompts_json: Arc<Vec<u8>>,
    /// `[resource, ...]` rendered once.
    pub resources_json: Arc<Vec<u8>>,
    /// `[template, ...]` rendered once.
    pub templates_json: Arc<Vec<u8>>,
    /// Byte ranges of each item in `tools_json` (for client pages).
    pub tools_items: Arc<Vec<(u32, u32)>>,
    /// Byte ranges of each item in `prompts_json`.
    pub prompts_items: Arc<Vec<(u32, u32)>>,
    /// Byte ranges of each item in `resources_json`.
    pub resources_items: Arc<Vec<(u32, u32)>>,
    /// Byte ranges of each item in `templates_json`.
    pub templates_items: Arc<Vec<(u32, u32)>>,
    /// Backend and exposed name of each item in `tools_json` (RBAC views).
    pub tools_keys: Arc<Vec<build::ItemKey>>,
    /// Same for prompts.
    pub prompts_keys: Arc<Vec<build::ItemKey>>,
    /// Same for resources (exposed URI).
    pub resources_keys: Arc<Vec<build::ItemKey>>,
    /// Same for templates (exposed URI template).
    pub templates_keys: Arc<Vec<build::ItemKey>>,
    /// Capabilities to advertise.
    pub caps: MergedCaps,
    /// Merged cache hints for 2026 clients: the minimum `ttlMs` any backend asked for, and
    /// `private` if any backend's list was private.
    pub min_ttl_ms: Option<u64>,
    /// See `min_ttl_ms`.
    pub private: bool,
    /// One report per backend, by index.
    pub reports: Vec<BackendReport>,
}

/// Is `name` acceptable to LLM tool APIs (1-64 of `[A-Za-z0-9_-]`)?
pub fn valid_tool_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Which merged list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// `tools/list`
    Tools,
    /// `prompts/list`
    Prompts,
    /// `resources/list`
    Resources,
    /// `resources/templates/list`
    Templates,
}

impl ListKind {
    /// The result key of this list.
    pub fn key(self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Prompts => "prompts",
            ListKind::Resources => "resources",
            ListKind::Templates => "resourceTemplates",
        }
    }
}

/// Client-side cursors: opaque to clients, `o1m-<offset>` to the gateway.
pub fn parse_cursor(c: &str) -> Option<usize> {
    c.strip_prefix("o1m-")?.parse().ok()
}

/// A resolved resource URI: the owner and the backend's own URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriRoute<'a> {
    /// Backend index.
    pub backend: usize,
    /// The URI as the backend knows it.
    pub original: &'a str,
}

impl Catalog {
    /// Looks a tool up.
    pub fn route(&self, name: &str) -> Option<&NameRoute> {
        self.tools.get(name)
    }

    /// Looks a prompt up.
    pub fn route_prompt(&self, name: &str) -> Option<&NameRoute> {
        self.prompts.get(name)
    }

    /// Finds the backend for a client-visible resource URI: a namespaced URI names it; else a
    /// listed resource of an unprefixed backend; else an unprefixed backend's template.
    pub fn route_uri<'a>(&self, uri: &'a str) -> Option<UriRoute<'a>> {
        if let Some((id, original)) = uri::unwrap(uri) {
            let backend = *self.uri_prefixed.get(&id.to_ascii_lowercase())?;
            return Some(UriRoute { backend, original });
        }
        if let Some(r) = self.resources.get(uri) {
            return Some(UriRoute {
                backend: r.backend,
                original: uri,
            });
        }
        self.bare_templates
            .iter()
            .find(|(_, t)| uri::template_matches(t, uri))
            .map(|(b, _)| UriRoute {
                backend: *b,
                original: uri,
            })
    }

    /// Is backend `i` URI-namespaced?
    pub fn uri_prefix_of(&self, i: usize) -> bool {
        self.uri_prefixed.values().any(|b| *b == i)
    }

    /// Number of exposed tools.
    pub fn len(&self) -> usize {
        self.tools.len()
    }

    /// True when no tool is exposed.
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    /// One page of a merged list: `page_size` items from item `offset` (0 = every item),
    /// as the JSON array bytes, and the next offset when more remain. `None` when `offset`
    /// is past the end (an invalid cursor).
    pub fn page(
        &self,
        kind: ListKind,
        offset: usize,
        page_size: usize,
    ) -> Option<(std::borrow::Cow<'_, [u8]>, Option<usize>)> {
        let (json, items, _) = self.list(kind);
        page_of(json, items, offset, page_size)
    }

    /// The rendered list of `kind`: JSON array, item ranges, item keys.
    pub fn list(&self, kind: ListKind) -> ListParts<'_> {
        match kind {
            ListKind::Tools => (&self.tools_json, &self.tools_items, &self.tools_keys),
            ListKind::Prompts => (&self.prompts_json, &self.prompts_items, &self.prompts_keys),
            ListKind::Resources => (
                &self.resources_json,
                &self.resources_items,
                &self.resources_keys,
            ),
            ListKind::Templates => (
                &self.templates_json,
                &self.templates_items,
                &self.templates_keys,
            ),
        }
    }

    /// The list of `kind` with only the items `keep(backend, exposed name)` accepts, each
    /// as `rewrite(exposed name, item)` gives it (`None`: unchanged), rendered anew (one RBAC
    /// view; callers cache it per catalog version and view).
    pub fn filtered(
        &self,
        kind: ListKind,
        keep: &dyn Fn(usize, &str) -> bool,
        rewrite: &ItemRewrite<'_>,
    ) -> (Vec<u8>, Vec<(u32, u32)>) {
        let (json, items, keys) = self.list(kind);
        let mut out = vec![b'['];
        let mut ranges = Vec::new();
        for ((s, e), (b, k)) in items.iter().zip(keys.iter()) {
            if !keep(*b as usize, k) {
                continue;
            }
            if out.len() > 1 {
                out.push(b',');
            }
            let start = out.len() as u32;
            let item = &json[*s as usize..*e as usize];
            match rewrite(k, item) {
                Some(new) => out.extend_from_slice(&new),
                None => out.extend_from_slice(item),
            }
            ranges.push((start, out.len() as u32));
        }
        out.push(b']');
        (out, ranges)
    }
}

/// How a view shows one item: `(exposed name, item JSON)` → new JSON, `None` to keep it.
pub type ItemRewrite<'a> = dyn Fn(&str, &[u8]) -> Option<Vec<u8>> + 'a;

/// A rendered list's JSON array, item ranges and item keys.
pub type ListParts<'a> = (
    &'a Arc<Vec<u8>>,
    &'a Arc<Vec<(u32, u32)>>,
    &'a Arc<Vec<build::ItemKey>>,
);

/// Where one client page of a rendered list sits in its JSON array: the byte range, whether
/// that range is the whole array (brackets included) or only items (the caller adds the
/// brackets), and the offset of the next page. `None`: a bad offset. See [`page_of`].
pub fn page_range(
    json_len: usize,
    items: &[(u32, u32)],
    offset: usize,
    page_size: usize,
) -> Option<(std::ops::Range<usize>, bool, Option<usize>)> {
    if offset > items.len() || (offset == items.len() && offset > 0) {
        return None;
    }
    let whole = match (items.first(), items.last()) {
        (Some(f), Some(l)) => f.0 == 1 && l.1 as usize + 1 == json_len,
        _ => json_len == 2,
    };
    if whole && offset == 0 && (page_size == 0 || items.len() <= page_size) {
        return Some((0..json_len, true, None));
    }
    let end = if page_size == 0 {
        items.len()
    } else {
        (offset + page_size).min(items.len())
    };
    let next = (end < items.len()).then_some(end);
    if end == offset {
        return Some((0..0, false, next));
    }
    // Items are rendered back to back with one comma between them, so a run of them is one
    // contiguous slice.
    let range = items[offset].0 as usize..items[end - 1].1 as usize;
    Some((range, false, next))
}

/// The shared bytes of a rendered list (`Bytes` over the catalog's `Arc`, no copy).
pub fn shared_bytes(json: &Arc<Vec<u8>>) -> bytes::Bytes {
    struct Owner(Arc<Vec<u8>>);
    impl AsRef<[u8]> for Owner {
        fn as_ref(&self) -> &[u8] {
            &self.0
        }
    }
    bytes::Bytes::from_owner(Owner(json.clone()))
}

/// One client page of a rendered list: the items from `offset`, at most `page_size` of them
/// (0 = all), and the offset of the next page if there is one. `None`: a bad offset.
pub fn page_of<'a>(
    json: &'a [u8],
    items: &[(u32, u32)],
    offset: usize,
    page_size: usize,
) -> Option<(std::borrow::Cow<'a, [u8]>, Option<usize>)> {
    let (range, whole, next) = page_range(json.len(), items, offset, page_size)?;
    if whole {
        return Some((std::borrow::Cow::Borrowed(json), next));
    }
    let mut out = Vec::with_capacity(range.len() + 2);
    out.push(b'[');
    out.extend_from_slice(&json[range]);
    out.push(b']');
    Some((std::borrow::Cow::Owned(out), next))
}

impl Catalog {
    /// Number of exposed prompts.
    pub fn prompt_count(&self) -> usize {
        self.prompts.len()
    }
}

//! Serving the merged lists (`tools/list`, `prompts/list`, `resources/list`,
//! `resources/templates/list`) in both eras, from what the catalog snapshot rendered once.
//!
//! A list is rendered once per catalog version (and per RBAC role set and era, in the auth
//! views) into one JSON array. A page of it is a contiguous run of that array, so a response
//! is a small head (`{"jsonrpc":"2.0","id":…,"result":{"tools":`), that run, and a small tail
//! (`],"nextCursor":…}}`). From [`SHARED_MIN`] bytes on, the run is written to the socket from
//! the shared rendering itself ([`Answer::Parts`]): no per-request copy of a large list.
//! Smaller ones are copied into one buffer, which is cheaper than a second write.
//!
//! A page written from the shared rendering also carries its slot in the shard's gzip
//! copies ([`crate::route::lists_gz`]), which the HTTP front fills and uses for a client
//! that accepts gzip (`server.compress_lists`).

use std::rc::Rc;

use crate::auth::verify::Principal;
use crate::catalog::ListKind;
use crate::error::McpError;
use crate::route::forward::Answer;
use crate::route::router::Router;
use crate::wire::jsonrpc::Envelope;

/// Pages at least this large are written from the shared rendering.
pub const SHARED_MIN: usize = 16 * 1024;

/// The 2025-era answer: `{"jsonrpc":"2.0","id":<id>,"result":{"<key>":[…],"nextCursor":…}}`.
pub(crate) fn legacy(
    router: &Rc<Router>,
    body: &[u8],
    env: &Envelope<'_>,
    kind: ListKind,
    principal: &Principal,
) -> Result<Answer, McpError> {
    page(router, body, env, kind, false, principal, b"}}")
}

/// The 2026-07-28 answer: the same page with `resultType`, `ttlMs` and `cacheScope`.
pub(crate) fn modern(
    router: &Rc<Router>,
    body: &[u8],
    env: &Envelope<'_>,
    kind: ListKind,
    principal: &Principal,
    ttl_ms: u64,
) -> Result<Answer, McpError> {
    let tail = format!(r#","ttlMs":{ttl_ms},"cacheScope":"public"}}}}"#);
    page(router, body, env, kind, true, principal, tail.as_bytes())
}

/// One page of the list as `principal` sees it, as a whole response ending with `tail`
/// (which closes `result` and the message). The cursor is the gateway's own; anything else
/// is -32602.
fn page(
    router: &Rc<Router>,
    body: &[u8],
    env: &Envelope<'_>,
    kind: ListKind,
    modern: bool,
    principal: &Principal,
    tail: &[u8],
) -> Result<Answer, McpError> {
    let offset = match env.cursor.clone() {
        None => 0,
        Some(r) => sonic_rs::from_slice::<String>(&body[r])
            .ok()
            .and_then(|c| crate::catalog::parse_cursor(&c))
            .ok_or_else(|| McpError::InvalidParams("invalid cursor".into()))?,
    };
    let snap = router.snapshot.load();
    let p = &snap.config.proxy;
    // RBAC: the principal's view of the list, rendered once per catalog version and role set.
    let view = router.auth.view(&snap, modern, kind, principal);
    let catalog = snap.catalog_for(modern);
    let (json, items): (&[u8], &[(u32, u32)]) = match &view {
        Some(v) => (&v.0, &v.1),
        None => {
            let (j, i, _) = catalog.list(kind);
            (j, i)
        }
    };
    // The tool ceiling, truncate policy: only the first `max_tools` are listed.
    let items = if kind == ListKind::Tools
        && p.max_tools > 0
        && p.tools_overflow == crate::config::ToolsOverflow::Truncate
    {
        &items[..items.len().min(p.max_tools)]
    } else {
        items
    };
    let (range, whole, next) =
        crate::catalog::page_range(json.len(), items, offset, p.list_page_size)
            .ok_or_else(|| McpError::InvalidParams("invalid cursor".into()))?;
    let id = env.id_bytes(body);
    let mut head = Vec::with_capacity(
        96 + if range.len() < SHARED_MIN {
            range.len()
        } else {
            0
        },
    );
    head.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    head.extend_from_slice(id);
    head.extend_from_slice(b",\"result\":{");
    if modern {
        head.extend_from_slice(br#""resultType":"complete","#);
    }
    head.push(b'"');
    head.extend_from_slice(kind.key().as_bytes());
    head.extend_from_slice(b"\":");
    if !whole {
        head.push(b'[');
    }
    let mut end = Vec::with_capacity(32 + tail.len());
    if !whole {
        end.push(b']');
    }
    if let Some(n) = next {
        end.extend_from_slice(format!(r#","nextCursor":"o1m-{n}""#).as_bytes());
    }
    end.extend_from_slice(tail);
    if range.len() < SHARED_MIN {
        head.extend_from_slice(&json[range]);
        head.extend_from_slice(&end);
        return Ok(Answer::Json(head));
    }
    let gz = snap.config.server.compress_lists.then(|| {
        let page = crate::route::lists_gz::PageOf {
            modern,
            kind,
            view: view.as_ref().map(|_| &principal.view),
            offset,
            page_size: p.list_page_size,
            range: range.clone(),
        };
        router.gz_pages.slot(snap.version, page)
    });
    let shared = match &view {
        Some(v) => v.0.slice(range),
        None => crate::catalog::shared_bytes(catalog.list(kind).0).slice(range),
    };
    Ok(Answer::Parts(head, shared, end, gz.flatten()))
}

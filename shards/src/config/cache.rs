//! The `[cache]` section: the per-shard response cache and the single-flight batcher
//! (`shards/src/cache/`). Shapes only; the checks are in `validate.rs` (`cache`).

use serde::Deserialize;

/// `[cache]`: what each shard keeps and coalesces. Hot-reloadable: a shard reads it on every
/// use, and a smaller bound takes effect at the next insert.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSection {
    /// Cache and coalesce at all.
    pub enabled: bool,
    /// Entries per shard.
    pub max_entries: usize,
    /// Bytes of cached results per shard.
    pub max_bytes: usize,
    /// How long an entry lives; a 2026 backend's smaller `ttlMs` wins, and `ttlMs: 0` is
    /// never cached.
    pub ttl_ms: u64,
    /// Cache `resources/read`.
    pub resources: bool,
    /// Cache `tools/call` of tools annotated both `readOnlyHint` and `idempotentHint` (the
    /// operator opts in: annotations are the backend's claim).
    pub tools: bool,
    /// Coalesce identical in-flight cacheable requests into one backend call.
    pub coalesce: bool,
    /// Hold the first of such requests this long so more can join (0: no wait).
    pub coalesce_window_ms: u64,
}

impl Default for CacheSection {
    fn default() -> Self {
        CacheSection {
            enabled: false,
            max_entries: 10_000,
            max_bytes: 64 << 20,
            ttl_ms: 60_000,
            resources: true,
            tools: false,
            coalesce: true,
            coalesce_window_ms: 0,
        }
    }
}

//! Helpers shared by the benches.

pub mod context_fixtures;
pub mod hot_fixtures;

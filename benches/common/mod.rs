//! Helpers shared by the benches.

pub mod context_fixtures;

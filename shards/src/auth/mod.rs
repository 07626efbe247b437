//! Inbound authentication and authorization on the data plane.
//!
//! - [`verify`]: who is calling (API key or JWT), with a per-shard cache of verified tokens;
//!   the config compiled into a [`verify::SharedAuth`] per snapshot.
//! - [`keys`]: the verification keys (static, JWKS, HS256 secret) published by the control
//!   thread as one immutable [`keys::KeySet`] per change.
//! - [`policy`]: RBAC, what a principal's roles let it see and call.
//! - [`limit`]: per-principal and per-tool token buckets, per shard.
//! - [`limit_store`]: the same limits cluster-wide in a shared store (Redis), asked without
//!   blocking the shard.

pub mod keys;
pub mod limit;
pub mod limit_store;
pub mod local;
pub mod names;
pub mod policy;
pub mod verify;

//! The state the [`crate::route::router::Router`] holds, one type per concern, below the
//! functions that use it: they take a `Router`, these types never do, so the route layer's
//! modules do not import each other in a circle.

pub mod calls;
pub mod listeners;
pub mod parked;
pub mod per_client;
pub mod resource_listens;
pub mod search;
pub mod stream_log;
pub mod task_inputs;
pub mod tasks;

//! berth: a compose-style container orchestrator with its own runtime.

pub mod graph;
pub mod spec;

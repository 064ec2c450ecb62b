//! berth: a compose-style container orchestrator with its own runtime.

pub mod cli;
pub mod graph;
pub mod image;
pub mod runtime;
pub mod spec;
pub mod store;

//! berth: a compose-style container orchestrator with its own runtime.

pub mod build;
pub mod cli;
pub mod devices;
pub mod engine;
pub mod graph;
pub mod image;
pub mod network;
pub mod rfc3339;
pub mod runtime;
pub mod spec;
pub mod store;
pub mod volume;
pub mod watch;

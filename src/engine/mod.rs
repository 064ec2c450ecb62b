//! The engine: per-project reconcile (plan + apply).
//!
//! [`plan`] is the pure half: it compares what the project asks for with
//! what exists and returns ordered actions, without touching the kernel.

pub mod api;
pub mod apply;
pub mod daemon;
pub mod dns;
pub mod events;
pub mod health;
pub mod labels;
pub mod observe;
pub mod oneoff;
pub mod plan;
pub mod project;
pub mod recovery;
pub mod restart;
pub mod routes;
pub mod server;
pub mod stats;
pub mod supervisor;
pub mod system;
pub mod translate;
pub mod volumes_from;
pub mod waits;

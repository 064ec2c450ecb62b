//! The engine: per-project reconcile (plan + apply).
//!
//! [`plan`] is the pure half: it compares what the project asks for with
//! what exists and returns ordered actions, without touching the kernel.

pub mod plan;

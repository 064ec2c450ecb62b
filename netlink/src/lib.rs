//! Kernel networking primitives for berth: links, bridges, veths, addresses,
//! routes and namespace handles. Nothing in this crate knows about compose.
//!
//! It starts with interface naming, the one rule every other piece relies on:
//! the kernel limits interface names to `IFNAMSIZ - 1` = 15 bytes, so berth's
//! long network names are mapped to short, stable kernel names.

pub mod ifname;

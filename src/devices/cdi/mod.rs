//! The Container Device Interface (cncf-tags/container-device-interface
//! `SPEC.md`): vendor-written JSON/YAML specs that say which device nodes,
//! mounts, env and hooks expose a named device (`nvidia.com/gpu=0`).
//!
//! [`spec`] parses and validates one file, [`registry`] loads the spec
//! directories and resolves names, [`edits`] merges the edits of the
//! requested devices into one [`edits::Applied`].

pub mod edits;
pub mod name;
pub mod registry;
pub mod spec;

pub use name::QualifiedName;
pub use registry::{Registry, DEFAULT_SPEC_DIRS};
pub use spec::Spec;

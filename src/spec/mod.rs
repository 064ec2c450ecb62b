//! The stack file: model, loading, merging, interpolation, normalization,
//! validation and the config hash.
//!
//! Loading is a pipeline of named stages, as in compose-go:
//! read (`source`) → interpolate (`interpolate`) → split extensions
//! (`extensions`) → extends/include → merge (`merge`) → typed model
//! (`model`) → resolve (`resolve`) → validate (`validate`).

pub mod dotenv;
pub mod interpolate;
pub mod model;
pub mod path;
pub mod source;
pub mod syntax;

//! The stack file: model, loading, merging, interpolation, normalization,
//! validation and the config hash.
//!
//! Loading is a pipeline of named stages, as in compose-go:
//! read (`source`) → interpolate (`interpolate`) → include/extends and
//! absolute paths (`loader`) → merge (`merge`) → split extensions
//! (`extensions`) → typed model (`model`) → resolve (`resolve`) → validate
//! (`validate`). `hash` derives the config hash the engine compares.

pub mod dotenv;
pub mod environment;
pub mod error;
pub mod extensions;
pub mod hash;
pub mod interpolate;
pub mod loader;
pub mod merge;
pub mod model;
pub mod path;
pub mod resolve;
pub mod schema;
pub mod source;
pub mod suggest;
pub mod support;
pub mod syntax;
pub mod validate;

use std::path::PathBuf;

pub use error::LoadError;
pub use loader::{load, LoadOptions, LoadedProject};

use path::YamlPath;
use source::SourceMap;

/// Turns YAML paths into "file:line:col" for messages.
#[derive(Debug, Clone, Default)]
pub struct Locator {
    pub map: SourceMap,
    /// Named when a path has no recorded position.
    pub primary_file: PathBuf,
}

impl Locator {
    /// An error about the value at `path`.
    pub fn invalid(&self, path: &YamlPath, message: &str) -> LoadError {
        let location = self.map.locate(path).cloned();
        let file = location
            .as_ref()
            .map(|l| l.file.as_ref().clone())
            .unwrap_or_else(|| self.primary_file.clone());
        LoadError::Invalid {
            file,
            location,
            path: path.clone(),
            message: message.to_string(),
        }
    }

    /// "file:line:col: path" for warnings.
    pub fn describe(&self, path: &YamlPath) -> String {
        match self.map.locate(path) {
            Some(location) => format!("{location}: {path}"),
            None => format!("{}: {path}", self.primary_file.display()),
        }
    }
}

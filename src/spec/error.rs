//! Errors of loading a stack file. Each names what to fix: the file, line
//! and column, the YAML path, the service or the resource.

use std::path::PathBuf;

use thiserror::Error;

use super::path::YamlPath;
use super::source::Location;

#[derive(Debug, Error)]
pub enum LoadError {
    #[error("no configuration file provided: not found (looked for compose.yaml, compose.yml, docker-compose.yml, docker-compose.yaml in {dir} and its parents)")]
    NoConfigFile { dir: PathBuf },

    /// The reason is part of the message, not a source: printed with its
    /// chain, it would appear twice.
    #[error("{path}: {reason}")]
    Read { path: PathBuf, reason: std::io::Error },

    #[error("{}: {message}", location_or_file(.location, .file))]
    Syntax {
        file: PathBuf,
        location: Option<Location>,
        message: String,
    },

    /// A value is wrong: unknown key, wrong type, bad short syntax, failed
    /// `${VAR:?message}`, reference to something undefined.
    #[error("{}{}: {message}", location_or_file(.location, .file), path_suffix(.path))]
    Invalid {
        file: PathBuf,
        location: Option<Location>,
        path: YamlPath,
        message: String,
    },

    #[error("{file}: line {line}: {message}")]
    EnvFile {
        file: PathBuf,
        line: usize,
        message: String,
    },

    #[error("invalid project name {name:?}: must consist only of lowercase alphanumeric characters, hyphens, and underscores as well as start with a letter or number")]
    ProjectName { name: String },

    #[error("{0}")]
    Project(String),
}

fn location_or_file(location: &Option<Location>, file: &std::path::Path) -> String {
    match location {
        Some(l) => l.to_string(),
        None => file.display().to_string(),
    }
}

fn path_suffix(path: &YamlPath) -> String {
    if path.is_root() {
        String::new()
    } else {
        format!(": {path}")
    }
}

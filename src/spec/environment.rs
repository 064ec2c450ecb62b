//! The environment a project is loaded in: variables for interpolation
//! (OS environment over `.env`/`--env-file`), the compose files to read, the
//! project name and the active profiles.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::dotenv;
use super::error::LoadError;

/// The default file names, in compose's order of preference.
pub const DEFAULT_FILES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];

/// Variables for interpolation. The OS environment always wins over files.
#[derive(Debug, Clone, Default)]
pub struct Variables {
    values: BTreeMap<String, String>,
}

impl Variables {
    pub fn from_os(os: BTreeMap<String, String>) -> Self {
        Variables { values: os }
    }

    pub fn get(&self, name: &str) -> Option<String> {
        self.values.get(name).cloned()
    }

    /// Adds variables that do not override what is already set (compose:
    /// the first source to define a variable wins).
    pub fn add_defaults(&mut self, pairs: impl IntoIterator<Item = (String, String)>) {
        for (k, v) in pairs {
            self.values.entry(k).or_insert(v);
        }
    }

    pub fn set(&mut self, name: &str, value: String) {
        self.values.insert(name.to_string(), value);
    }

    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.values
    }
}

/// Reads a dotenv file, interpolating with `variables`.
pub fn read_env_file(path: &Path, variables: &Variables, raw: bool) -> Result<Vec<(String, String)>, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        reason: source,
    })?;
    let lookup = |name: &str| variables.get(name);
    let parsed = if raw {
        dotenv::parse_raw(&text)
    } else {
        dotenv::parse(&text, &lookup)
    };
    parsed.map_err(|e| LoadError::EnvFile {
        file: path.to_path_buf(),
        line: e.line,
        message: e.message,
    })
}

/// Finds the compose file in `dir` or its parents, as compose-go does.
pub fn discover_file(dir: &Path) -> Result<PathBuf, LoadError> {
    let mut current = Some(dir);
    while let Some(d) = current {
        if let Some(found) = DEFAULT_FILES.iter().map(|name| d.join(name)).find(|p| p.is_file()) {
            return Ok(found);
        }
        current = d.parent();
    }
    Err(LoadError::NoConfigFile { dir: dir.to_path_buf() })
}

/// The override file merged automatically next to a discovered file.
pub fn override_file(base: &Path) -> Option<PathBuf> {
    let dir = base.parent()?;
    let stem = base.file_name()?.to_str()?;
    let candidates: &[&str] = if stem.starts_with("docker-compose") {
        &["docker-compose.override.yml", "docker-compose.override.yaml"]
    } else {
        &["compose.override.yaml", "compose.override.yml"]
    };
    candidates.iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

/// compose-go's `NormalizeProjectName`: lowercase, keep `[a-z0-9_-]`,
/// trim leading `_` and `-`.
pub fn normalize_project_name(name: &str) -> String {
    let lowered: String = name
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    lowered.trim_start_matches(['_', '-']).to_string()
}

/// A name given explicitly (`-p`, `COMPOSE_PROJECT_NAME`) must already be
/// normal: compose refuses it rather than silently renaming the project.
pub fn check_explicit_project_name(name: &str) -> Result<(), LoadError> {
    if name.is_empty() || normalize_project_name(name) != name {
        return Err(LoadError::ProjectName { name: name.to_string() });
    }
    Ok(())
}

/// Splits a `COMPOSE_FILE`/`COMPOSE_PROFILES`-style list.
pub fn split_list(value: &str, separator: char) -> Vec<String> {
    value
        .split(separator)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_project_names_like_compose() {
        assert_eq!(normalize_project_name("My App.v2"), "myappv2");
        assert_eq!(normalize_project_name("__-web_1"), "web_1");
        assert!(check_explicit_project_name("web-1").is_ok());
        assert!(check_explicit_project_name("Web").is_err());
        assert!(check_explicit_project_name("").is_err());
    }

    #[test]
    fn os_environment_wins_over_files() {
        let mut v = Variables::from_os(BTreeMap::from([("A".into(), "os".into())]));
        v.add_defaults([("A".into(), "file".into()), ("B".into(), "file".into())]);
        v.add_defaults([("B".into(), "second".into())]);
        assert_eq!(v.get("A").as_deref(), Some("os"));
        assert_eq!(v.get("B").as_deref(), Some("file"));
    }

    #[test]
    fn discovers_files_upwards_with_override() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("docker-compose.yml"), "services: {}").unwrap();
        std::fs::write(dir.path().join("compose.yaml"), "services: {}").unwrap();
        std::fs::write(dir.path().join("compose.override.yaml"), "services: {}").unwrap();
        let sub = dir.path().join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        let found = discover_file(&sub).unwrap();
        assert_eq!(found, dir.path().join("compose.yaml"));
        assert_eq!(override_file(&found), Some(dir.path().join("compose.override.yaml")));
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            discover_file(empty.path()),
            Err(LoadError::NoConfigFile { .. })
        ));
    }
}

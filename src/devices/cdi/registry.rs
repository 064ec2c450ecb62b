//! The CDI specs of a host: every `*.json`/`*.yaml`/`*.yml` in the spec
//! directories (`pkg/cdi/spec-dirs.go`), and name resolution over them.
//!
//! Later directories have higher priority, so a generated spec in
//! `/var/run/cdi` overrides a static one in `/etc/cdi` that defines the same
//! device (`pkg/cdi/doc.go`); two files in one directory defining the same
//! device make it ambiguous. A file that fails to load is kept aside with
//! its error instead of failing the whole registry; a request that only
//! that file could have answered fails with the file's error.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::edits::{convert, Applied, Merger};
use super::name::QualifiedName;
use super::spec::{Device, Spec, SpecFile};
use crate::devices::{under_root, CdiError, NodeStat};

/// Scan order: static specs first, generated ones (higher priority) last.
pub const DEFAULT_SPEC_DIRS: [&str; 2] = ["/etc/cdi", "/var/run/cdi"];

/// A spec file that failed to load.
#[derive(Debug)]
pub struct BrokenSpec {
    pub path: PathBuf,
    /// Its `kind`, when the file was readable enough to tell.
    pub kind: Option<String>,
    pub error: Arc<CdiError>,
}

#[derive(Debug, Clone)]
enum Entry {
    /// Index into `specs` and of the device in it.
    Defined(usize, usize),
    Ambiguous(PathBuf, PathBuf),
}

/// The loaded specs of one host root.
#[derive(Debug, Default)]
pub struct Registry {
    root: PathBuf,
    dirs: Vec<String>,
    specs: Vec<SpecFile>,
    /// Fully-qualified name → its definition and the priority it came with.
    devices: BTreeMap<String, (usize, Entry)>,
    broken: Vec<BrokenSpec>,
}

/// A resolved device: its name, the spec defining it and the definition.
#[derive(Debug, Clone, Copy)]
pub struct ResolvedDevice<'a> {
    pub spec: &'a SpecFile,
    pub device: &'a Device,
}

impl Registry {
    /// Loads the default directories under `root` (`/` on a real host).
    pub fn load_default(root: &Path) -> Registry {
        Registry::load(root, &DEFAULT_SPEC_DIRS)
    }

    /// Loads `dirs` (absolute host paths, read under `root`), in priority
    /// order, lowest first. Missing directories are skipped.
    pub fn load(root: &Path, dirs: &[&str]) -> Registry {
        let mut registry = Registry {
            root: root.to_owned(),
            dirs: dirs.iter().map(|d| (*d).to_owned()).collect(),
            ..Registry::default()
        };
        for (priority, dir) in dirs.iter().enumerate() {
            let dir = under_root(root, dir);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut files: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "json" || e == "yaml" || e == "yml"))
                .collect();
            // Deterministic within a directory, as the Go cache's walk is.
            files.sort();
            for path in files {
                registry.add_file(priority, path);
            }
        }
        registry
    }

    fn add_file(&mut self, priority: usize, path: PathBuf) {
        let spec = match Spec::load(&path) {
            Ok(spec) => spec,
            Err(error) => {
                let kind = std::fs::read_to_string(&path).ok().and_then(|text| sniff_kind(&text));
                self.broken.push(BrokenSpec {
                    path,
                    kind,
                    error: Arc::new(error),
                });
                return;
            }
        };
        let index = self.specs.len();
        for (d, device) in spec.devices.iter().enumerate() {
            let name = format!("{}={}", spec.kind, device.name);
            let entry = match self.devices.get(&name) {
                Some((p, _)) if *p < priority => Entry::Defined(index, d),
                Some((_, Entry::Defined(other, _))) => Entry::Ambiguous(self.specs[*other].path.clone(), path.clone()),
                Some((_, Entry::Ambiguous(first, _))) => Entry::Ambiguous(first.clone(), path.clone()),
                None => Entry::Defined(index, d),
            };
            self.devices.insert(name, (priority, entry));
        }
        self.specs.push(SpecFile { path, priority, spec });
    }

    /// Spec files that failed to load, with why.
    pub fn errors(&self) -> &[BrokenSpec] {
        &self.broken
    }

    /// The loaded specs, in scan order.
    pub fn specs(&self) -> &[SpecFile] {
        &self.specs
    }

    /// Whether some loaded spec defines devices of `kind`.
    pub fn has_kind(&self, kind: &str) -> bool {
        self.specs.iter().any(|s| s.spec.kind == kind)
    }

    /// The device names (after `=`) defined for `kind`, sorted.
    pub fn device_names(&self, kind: &str) -> Vec<String> {
        let prefix = format!("{kind}=");
        self.devices
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .map(str::to_owned)
            .collect()
    }

    /// Resolves one fully-qualified name.
    pub fn resolve(&self, name: &str) -> Result<ResolvedDevice<'_>, CdiError> {
        let qualified = QualifiedName::parse(name)?;
        let key = qualified.to_string();
        match self.devices.get(&key) {
            Some((_, Entry::Defined(spec, device))) => {
                let spec = &self.specs[*spec];
                return Ok(ResolvedDevice {
                    spec,
                    device: &spec.spec.devices[*device],
                });
            }
            Some((_, Entry::Ambiguous(first, second))) => {
                return Err(CdiError::Ambiguous {
                    name: key,
                    first: first.clone(),
                    second: second.clone(),
                });
            }
            None => {}
        }
        let kind = qualified.kind();
        // A broken file of the same kind is the likeliest home of the
        // device; one whose kind could not be read is the next.
        let blame = self
            .broken
            .iter()
            .find(|b| b.kind.as_deref() == Some(kind.as_str()))
            .or_else(|| self.broken.iter().find(|b| b.kind.is_none()));
        if let Some(broken) = blame {
            return Err(CdiError::BrokenSpec {
                name: key,
                path: broken.path.clone(),
                source: broken.error.clone(),
            });
        }
        let known = self.device_names(&kind);
        if known.is_empty() {
            return Err(CdiError::UnknownKind {
                name: key,
                kind,
                dirs: self.dirs.join(" and "),
            });
        }
        Err(CdiError::UnknownDevice {
            name: key,
            kind,
            known: known.join(", "),
        })
    }

    /// The merged edits for `names`: each spec's own edits once if any of
    /// its devices is requested, then each device's.
    pub fn apply(&self, names: &[String], stat: NodeStat) -> Result<Applied, CdiError> {
        let mut merger = Merger::new();
        let mut seen_specs = BTreeSet::new();
        let mut seen_devices = BTreeSet::new();
        for name in names {
            let resolved = self.resolve(name)?;
            let label = format!("CDI device {}={}", resolved.spec.spec.kind, resolved.device.name);
            if !seen_devices.insert(label.clone()) {
                continue;
            }
            if seen_specs.insert(resolved.spec.path.clone()) {
                let spec_label = format!("CDI spec {}", resolved.spec.path.display());
                let edits = convert(&spec_label, &resolved.spec.spec.container_edits, &self.root, stat)?;
                merger.add(&spec_label, edits)?;
            }
            let edits = convert(&label, &resolved.device.container_edits, &self.root, stat)?;
            merger.add(&label, edits)?;
        }
        Ok(merger.finish())
    }
}

/// The `kind:` of a spec that failed validation or parsing, if the text is
/// at least YAML (JSON is).
fn sniff_kind(text: &str) -> Option<String> {
    let value: serde_yaml::Value = serde_yaml::from_str(text).ok()?;
    value.get("kind")?.as_str().map(str::to_owned)
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;

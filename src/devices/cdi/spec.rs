//! One CDI spec file (cncf-tags/container-device-interface `SPEC.md` and
//! `specs-go/config.go`): parsed strictly (unknown fields fail, as the Go
//! loader does) and validated: a released `cdiVersion` at least as new as
//! the fields used, a valid `kind`, unique valid device names and
//! well-formed edits.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::name::{parse_kind, validate_device_name};
use crate::devices::CdiError;

/// Every released spec version (`specs-go/version.go` and the SPEC.md
/// release table). `0.1.0`/`0.2.0` are still accepted by the Go loader.
pub const RELEASED_VERSIONS: &[&str] = &[
    "0.1.0", "0.2.0", "0.3.0", "0.4.0", "0.5.0", "0.6.0", "0.7.0", "0.8.0", "1.0.0", "1.1.0",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Spec {
    pub cdi_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    pub devices: Vec<Device>,
    #[serde(default)]
    pub container_edits: ContainerEdits,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Device {
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub container_edits: ContainerEdits,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContainerEdits {
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub device_nodes: Vec<DeviceNode>,
    #[serde(default)]
    pub hooks: Vec<Hook>,
    #[serde(default)]
    pub mounts: Vec<Mount>,
    #[serde(default)]
    pub intel_rdt: Option<IntelRdt>,
    /// The Go field is `additionalGids`; SPEC.md's example spells it
    /// `additionalGIDs`, so both are read.
    #[serde(default, rename = "additionalGids", alias = "additionalGIDs")]
    pub additional_gids: Vec<u32>,
    /// cdiVersion 1.1.0: host interfaces moved into the container.
    #[serde(default)]
    pub net_devices: Vec<NetDevice>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeviceNode {
    /// Path in the container.
    pub path: String,
    /// Path on the host; `path` when absent.
    #[serde(default)]
    pub host_path: Option<String>,
    /// `c`, `b`, `u` or `p`; filled from the host node when absent.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub major: Option<i64>,
    #[serde(default)]
    pub minor: Option<i64>,
    #[serde(default)]
    pub file_mode: Option<u32>,
    /// cgroup access, a subset of `rwm`; empty means `rwm`.
    #[serde(default)]
    pub permissions: Option<String>,
    #[serde(default)]
    pub uid: Option<u32>,
    #[serde(default)]
    pub gid: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Hook {
    pub hook_name: String,
    pub path: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub timeout: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Mount {
    pub host_path: String,
    pub container_path: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub options: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntelRdt {
    #[serde(default, rename = "closID")]
    pub clos_id: Option<String>,
    #[serde(default, rename = "l3CacheSchema")]
    pub l3_cache_schema: Option<String>,
    #[serde(default, rename = "memBwSchema")]
    pub mem_bw_schema: Option<String>,
    #[serde(default, rename = "enableCMT")]
    pub enable_cmt: bool,
    #[serde(default, rename = "enableMBM")]
    pub enable_mbm: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetDevice {
    pub host_interface_name: String,
    pub name: String,
}

/// The hook names CDI accepts (`pkg/cdi/container-edits.go`).
pub const HOOK_NAMES: &[&str] = &[
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

impl Spec {
    /// Reads and validates one spec; `.json` files are JSON, anything else
    /// YAML (which is also how the Go loader treats `.yaml`/`.yml`).
    pub fn load(path: &Path) -> Result<Spec, CdiError> {
        let text = std::fs::read_to_string(path).map_err(|source| CdiError::Read {
            path: path.to_owned(),
            source,
        })?;
        Spec::parse(path, &text)
    }

    /// Parses and validates spec text; `path` is for messages and picks
    /// the format by extension.
    pub fn parse(path: &Path, text: &str) -> Result<Spec, CdiError> {
        let spec: Spec = if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(text).map_err(|source| CdiError::Json {
                path: path.to_owned(),
                source,
            })?
        } else {
            serde_yaml::from_str(text).map_err(|source| CdiError::Yaml {
                path: path.to_owned(),
                source,
            })?
        };
        spec.validate(path)?;
        Ok(spec)
    }

    fn validate(&self, path: &Path) -> Result<(), CdiError> {
        let invalid = |reason: String| CdiError::Invalid {
            path: path.to_owned(),
            reason,
        };
        let declared = parse_version(&self.cdi_version).ok_or_else(|| CdiError::UnknownVersion {
            path: path.to_owned(),
            version: self.cdi_version.clone(),
            known: RELEASED_VERSIONS.join(", "),
        })?;
        let (_, class) = parse_kind(&self.kind).map_err(invalid)?;
        if self.devices.is_empty() {
            return Err(invalid("no devices; a spec must define at least one".into()));
        }
        let mut names = BTreeSet::new();
        for device in &self.devices {
            validate_device_name(&device.name).map_err(invalid)?;
            if !names.insert(device.name.as_str()) {
                return Err(invalid(format!("device {:?} is defined twice", device.name)));
            }
            validate_edits(&device.container_edits)
                .map_err(|why| invalid(format!("device {:?}: {why}", device.name)))?;
        }
        validate_edits(&self.container_edits).map_err(|why| invalid(format!("containerEdits: {why}")))?;
        if let Some((required, feature)) = self.minimum_version(&class) {
            if declared < parse_version(required).unwrap_or_default() {
                return Err(CdiError::VersionTooLow {
                    path: path.to_owned(),
                    version: self.cdi_version.clone(),
                    required,
                    feature,
                });
            }
        }
        Ok(())
    }

    /// The newest feature the spec uses and the version that introduced it
    /// (`specs-go/version.go`'s `requiresV0x0` checks).
    fn minimum_version(&self, class: &str) -> Option<(&'static str, String)> {
        let all_edits =
            || std::iter::once(&self.container_edits).chain(self.devices.iter().map(|d| &d.container_edits));
        if all_edits().any(|e| !e.net_devices.is_empty()) {
            return Some(("1.1.0", "netDevices".into()));
        }
        if all_edits().any(|e| e.intel_rdt.is_some()) {
            return Some(("0.7.0", "intelRdt".into()));
        }
        if all_edits().any(|e| !e.additional_gids.is_empty()) {
            return Some(("0.7.0", "additionalGids".into()));
        }
        if !self.annotations.is_empty() || self.devices.iter().any(|d| !d.annotations.is_empty()) {
            return Some(("0.6.0", "annotations".into()));
        }
        if class.contains('.') {
            return Some(("0.6.0", format!("a dot in the class of kind {:?}", self.kind)));
        }
        if let Some(d) = self
            .devices
            .iter()
            .find(|d| !d.name.starts_with(|c: char| c.is_ascii_alphabetic()))
        {
            return Some(("0.5.0", format!("device name {:?} not starting with a letter", d.name)));
        }
        if all_edits().any(|e| e.device_nodes.iter().any(|n| n.host_path.is_some())) {
            return Some(("0.5.0", "deviceNodes hostPath".into()));
        }
        if all_edits().any(|e| e.mounts.iter().any(|m| m.kind.is_some())) {
            return Some(("0.4.0", "mount type".into()));
        }
        None
    }
}

/// `1.0.0` or `v1.0.0` as a comparable triple, if it is a released version.
fn parse_version(v: &str) -> Option<(u32, u32, u32)> {
    let v = v.strip_prefix('v').unwrap_or(v);
    if !RELEASED_VERSIONS.contains(&v) {
        return None;
    }
    let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
    Some((parts.next()??, parts.next()??, parts.next()??))
}

/// The checks of `ContainerEdits.Validate` in `pkg/cdi/container-edits.go`.
fn validate_edits(edits: &ContainerEdits) -> Result<(), String> {
    for env in &edits.env {
        if !env.contains('=') || env.starts_with('=') {
            return Err(format!("env {env:?} is not NAME=VALUE"));
        }
    }
    for node in &edits.device_nodes {
        if node.path.is_empty() {
            return Err("a device node has an empty path".into());
        }
        if let Some(kind) = &node.kind {
            if !matches!(kind.as_str(), "b" | "c" | "u" | "p") {
                return Err(format!("device node {}: type {kind:?} is not b, c, u or p", node.path));
            }
        }
        if let Some(perms) = &node.permissions {
            if perms.chars().any(|c| !"rwm".contains(c)) {
                return Err(format!(
                    "device node {}: permissions {perms:?} are not a subset of rwm",
                    node.path
                ));
            }
        }
    }
    for hook in &edits.hooks {
        if !HOOK_NAMES.contains(&hook.hook_name.as_str()) {
            return Err(format!(
                "unknown hook name {:?} (known: {})",
                hook.hook_name,
                HOOK_NAMES.join(", ")
            ));
        }
        if !hook.path.starts_with('/') {
            return Err(format!("hook path {:?} is not absolute", hook.path));
        }
        if hook.timeout.is_some_and(|t| t <= 0) {
            return Err(format!("hook {}: timeout must be greater than zero", hook.path));
        }
    }
    for mount in &edits.mounts {
        if mount.host_path.is_empty() || mount.container_path.is_empty() {
            return Err("a mount needs hostPath and containerPath".into());
        }
    }
    for net in &edits.net_devices {
        if net.host_interface_name.is_empty() || net.name.is_empty() {
            return Err("a netDevice needs hostInterfaceName and name".into());
        }
    }
    Ok(())
}

/// Where a spec came from, for messages and priorities.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecFile {
    pub path: PathBuf,
    /// Index of its directory in the scan order: higher wins.
    pub priority: usize,
    pub spec: Spec,
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;

//! Container edits in the runtime's terms, and their merge.
//!
//! CDI's own `ContainerEdits::Apply` appends blindly and lets the last
//! device node or mount at a path win; berth instead refuses two requested
//! devices that disagree (a GPU node with two different minors, one env var
//! with two values, one mount point with two sources), naming both, and
//! quietly collapses exact duplicates (two GPUs of one spec both adding the
//! same control node).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::spec::{self, ContainerEdits, IntelRdt, NetDevice};
use crate::devices::{under_root, CdiError, NodeStat};
use crate::runtime::config::DeviceNode;
pub use crate::runtime::config::{Hook, HookStage};

/// Everything the runtime must add to one container for its devices.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    /// `NAME=VALUE`, appended to the container's environment.
    pub env: Vec<String>,
    /// Nodes to create in the container's /dev and admit in its device
    /// cgroup.
    pub devices: Vec<DeviceNode>,
    /// Sorted by container path depth, so parents mount before children.
    pub mounts: Vec<AppliedMount>,
    pub hooks: Vec<Hook>,
    /// Supplementary groups for the container process (0 dropped).
    pub additional_gids: Vec<u32>,
    pub intel_rdt: Option<IntelRdt>,
    /// Host interfaces to move into the container's network namespace.
    pub net_devices: Vec<NetDevice>,
}

impl Applied {
    pub fn is_empty(&self) -> bool {
        *self == Applied::default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedMount {
    /// Host path, as the host sees it (not under the discovery root).
    pub host_path: String,
    pub container_path: String,
    /// Filesystem type; `None` for plain binds.
    pub fs_type: Option<String>,
    /// OCI mount options (`ro`, `nosuid`, `bind`, …).
    pub options: Vec<String>,
}

/// Device files get `rw-rw-rw-` unless the spec says otherwise (runc's
/// default when the OCI `fileMode` is unset).
const DEFAULT_NODE_MODE: u32 = 0o666;

/// Converts one spec's (or one device's) edits, filling missing device node
/// type and numbers from the host node under `root` as CDI's
/// `fillMissingInfo` does. `source` names the device or spec in errors.
pub fn convert(source: &str, edits: &ContainerEdits, root: &Path, stat: NodeStat) -> Result<Applied, CdiError> {
    let mut devices = Vec::new();
    for node in &edits.device_nodes {
        devices.push(device_node(source, node, root, stat)?);
    }
    let mut hooks = Vec::new();
    for hook in &edits.hooks {
        // Validated at load, so an unknown name here is a spec built in code.
        let stage = HookStage::from_name(&hook.hook_name).ok_or_else(|| CdiError::UnknownHook {
            device: source.to_owned(),
            path: hook.path.clone(),
            name: hook.hook_name.clone(),
        })?;
        hooks.push(Hook {
            stage,
            path: hook.path.clone(),
            args: hook.args.clone(),
            env: hook.env.clone(),
            timeout: hook.timeout.and_then(|t| u32::try_from(t).ok()),
        });
    }
    Ok(Applied {
        env: edits.env.clone(),
        devices,
        mounts: edits
            .mounts
            .iter()
            .map(|m| AppliedMount {
                host_path: m.host_path.clone(),
                container_path: m.container_path.clone(),
                fs_type: m.kind.clone(),
                options: m.options.clone(),
            })
            .collect(),
        hooks,
        additional_gids: edits.additional_gids.iter().copied().filter(|&g| g != 0).collect(),
        intel_rdt: edits.intel_rdt.clone(),
        net_devices: edits.net_devices.clone(),
    })
}

fn device_node(source: &str, node: &spec::DeviceNode, root: &Path, stat: NodeStat) -> Result<DeviceNode, CdiError> {
    let host_path = node.host_path.as_deref().unwrap_or(&node.path);
    let fail = |reason: String| CdiError::NodeInfo {
        device: source.to_owned(),
        path: host_path.to_owned(),
        reason,
    };
    // The Go `omitempty` makes major 0 and "unset" the same thing.
    let major = node.major.filter(|&m| m != 0);
    let mut kind = node.kind.as_deref().and_then(|k| k.chars().next());
    let (mut major, mut minor) = (major, node.minor);
    if kind.is_none() || (major.is_none() && kind != Some('p')) {
        let info = stat(&under_root(root, host_path))
            .ok_or_else(|| fail("not found on the host, or not a device node".into()))?;
        match kind {
            None => kind = Some(info.kind),
            // `u` is an unbuffered character device: the same node type.
            Some(k) if k == info.kind || (k == 'u' && info.kind == 'c') => {}
            Some(k) => {
                return Err(fail(format!(
                    "the spec says type {k} but the host node is type {}",
                    info.kind
                )))
            }
        }
        if major.is_none() && kind != Some('p') {
            major = i64::try_from(info.major).ok();
            minor = i64::try_from(info.minor).ok();
        }
    }
    let number =
        |n: Option<i64>, what: &str| u64::try_from(n.unwrap_or(0)).map_err(|_| fail(format!("negative {what} number")));
    let access = node
        .permissions
        .clone()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "rwm".into());
    Ok(DeviceNode {
        path: node.path.clone(),
        kind: match kind {
            Some('u') | None => 'c',
            Some(k) => k,
        },
        major: number(major, "major")?,
        minor: number(minor, "minor")?,
        mode: node.file_mode.map_or(DEFAULT_NODE_MODE, |m| m & 0o7777),
        uid: node.uid.unwrap_or(0),
        gid: node.gid.unwrap_or(0),
        access,
    })
}

/// Accumulates edits from several sources, refusing disagreements.
#[derive(Debug, Default)]
pub struct Merger {
    applied: Applied,
    env_from: BTreeMap<String, (String, String)>,
    node_from: BTreeMap<String, String>,
    mount_from: BTreeMap<String, String>,
    rdt_from: Option<String>,
}

impl Merger {
    pub fn new() -> Self {
        Merger::default()
    }

    /// Adds the edits of `source` (a device or spec label used in errors).
    pub fn add(&mut self, source: &str, edits: Applied) -> Result<(), CdiError> {
        let conflict = |what: String, first: &str, detail: String| CdiError::Conflict {
            what,
            first: first.to_owned(),
            second: source.to_owned(),
            detail,
        };
        for env in edits.env {
            let (name, value) = env.split_once('=').unwrap_or((&env, ""));
            match self.env_from.get(name) {
                Some((old, _)) if old == value => {}
                Some((old, first)) => {
                    return Err(conflict(format!("env {name}"), first, format!("{old:?} vs {value:?}")));
                }
                None => {
                    self.env_from
                        .insert(name.to_owned(), (value.to_owned(), source.to_owned()));
                    self.applied.env.push(env.clone());
                }
            }
        }
        for node in edits.devices {
            match self.applied.devices.iter_mut().find(|d| d.path == node.path) {
                Some(old) if (old.kind, old.major, old.minor) == (node.kind, node.major, node.minor) => {
                    // The same node twice: admit the union of the accesses.
                    for c in node.access.chars() {
                        if !old.access.contains(c) {
                            old.access.push(c);
                        }
                    }
                }
                Some(old) => {
                    let first = self.node_from.get(&node.path).map_or("", String::as_str);
                    return Err(conflict(
                        format!("device node {}", node.path),
                        first,
                        format!(
                            "{} {}:{} vs {} {}:{}",
                            old.kind, old.major, old.minor, node.kind, node.major, node.minor
                        ),
                    ));
                }
                None => {
                    self.node_from.insert(node.path.clone(), source.to_owned());
                    self.applied.devices.push(node);
                }
            }
        }
        for mount in edits.mounts {
            match self
                .applied
                .mounts
                .iter()
                .find(|m| m.container_path == mount.container_path)
            {
                Some(old) if old.host_path == mount.host_path => {}
                Some(old) => {
                    let first = self.mount_from.get(&mount.container_path).map_or("", String::as_str);
                    return Err(conflict(
                        format!("mount {}", mount.container_path),
                        first,
                        format!("from {} vs from {}", old.host_path, mount.host_path),
                    ));
                }
                None => {
                    self.mount_from.insert(mount.container_path.clone(), source.to_owned());
                    self.applied.mounts.push(mount);
                }
            }
        }
        for hook in edits.hooks {
            if !self.applied.hooks.contains(&hook) {
                self.applied.hooks.push(hook);
            }
        }
        for gid in edits.additional_gids {
            if gid != 0 && !self.applied.additional_gids.contains(&gid) {
                self.applied.additional_gids.push(gid);
            }
        }
        if let Some(rdt) = edits.intel_rdt {
            match (&self.applied.intel_rdt, &self.rdt_from) {
                (Some(old), _) if *old == rdt => {}
                (Some(old), first) => {
                    let first = first.clone().unwrap_or_default();
                    return Err(conflict("intelRdt".into(), &first, format!("{old:?} vs {rdt:?}")));
                }
                (None, _) => {
                    self.applied.intel_rdt = Some(rdt);
                    self.rdt_from = Some(source.to_owned());
                }
            }
        }
        for net in edits.net_devices {
            if !self.applied.net_devices.contains(&net) {
                self.applied.net_devices.push(net);
            }
        }
        Ok(())
    }

    /// The merged edits, mounts sorted by container path depth (stable, as
    /// CDI's `Apply` re-sorts them) so `/a` mounts before `/a/b`.
    pub fn finish(mut self) -> Applied {
        self.applied
            .mounts
            .sort_by_key(|m| Path::new(&m.container_path).components().count());
        self.applied
    }
}

#[cfg(test)]
#[path = "edits_tests.rs"]
mod tests;

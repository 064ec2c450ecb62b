//! NVIDIA GPUs on a host without a CDI spec: the nodes, libraries and
//! binaries `nvidia-ctk cdi generate` would have put in one, discovered
//! under a root and turned into the same [`Applied`] edits.
//!
//! Device nodes (`nvc_internal.h`): `/dev/nvidia<N>` per GPU (195:N),
//! `/dev/nvidiactl` (195:255), `/dev/nvidia-modeset` (195:254) and
//! `/dev/nvidia-uvm`, `/dev/nvidia-uvm-tools` (dynamic major, which is why
//! every number comes from the [`NodeStat`] seam and never a constant).

mod driver;
mod gpus;

use std::path::{Path, PathBuf};

use crate::devices::cdi::edits::{Applied, AppliedMount, Hook, HookStage};
use crate::devices::{NodeStat, NvidiaError};
use crate::runtime::config::DeviceNode;
use crate::spec::model::DeviceCount;

pub use driver::Capability;
pub use gpus::Gpu;

/// Which GPUs a request wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpuSelection {
    All,
    Count(u64),
    /// Indices (`0`), UUIDs (`GPU-…`) or PCI bus ids.
    Ids(Vec<String>),
}

impl GpuSelection {
    /// From a compose request's `count`/`device_ids`; neither means all
    /// (compose-go `transform/devices.go`), both is an error (moby).
    pub fn from_request(count: Option<DeviceCount>, device_ids: &[String]) -> Result<Self, NvidiaError> {
        match (count, device_ids.is_empty()) {
            (Some(_), false) => Err(NvidiaError::CountAndIds),
            (None, false) => Ok(GpuSelection::Ids(device_ids.to_vec())),
            (Some(DeviceCount::Count(n)), true) => Ok(GpuSelection::Count(n)),
            (Some(DeviceCount::All) | None, true) => Ok(GpuSelection::All),
        }
    }
}

/// Non-GPU nodes every GPU container gets, when the host has them.
const CONTROL_NODES: [&str; 4] = [
    "/dev/nvidiactl",
    "/dev/nvidia-uvm",
    "/dev/nvidia-uvm-tools",
    "/dev/nvidia-modeset",
];

/// Bind options `nvidia-ctk` writes for driver files.
const MOUNT_OPTIONS: [&str; 5] = ["ro", "nosuid", "nodev", "rbind", "rprivate"];

/// What the host's NVIDIA driver offers.
#[derive(Debug, Clone)]
pub struct NvidiaHost {
    root: PathBuf,
    pub gpus: Vec<Gpu>,
    /// nvidiactl, nvidia-uvm, nvidia-uvm-tools, nvidia-modeset: those present.
    pub control_nodes: Vec<DeviceNode>,
    /// `/dev/nvidia-caps/*`: MIG capability nodes. Discovered but not
    /// injected: like libnvidia-container, which adds them only on an
    /// explicit `NVIDIA_MIG_CONFIG_DEVICES`/`…_MONITOR_DEVICES`, because
    /// the config capability lets a container repartition the GPU.
    pub mig_caps: Vec<DeviceNode>,
    pub driver_version: Option<String>,
    library_dirs: Vec<String>,
}

impl NvidiaHost {
    /// Looks for the driver under `root`; `None` when there is neither a
    /// GPU node nor `/dev/nvidiactl` (no driver loaded).
    pub fn discover(root: &Path, stat: NodeStat) -> Result<Option<NvidiaHost>, NvidiaError> {
        let gpus = gpus::discover(root, stat)?;
        let control_nodes: Vec<DeviceNode> = CONTROL_NODES
            .iter()
            .filter_map(|p| gpus::char_node(root, p, stat))
            .collect();
        if gpus.is_empty() && !control_nodes.iter().any(|n| n.path == "/dev/nvidiactl") {
            return Ok(None);
        }
        let mig_caps = gpus::list_dir(root, "/dev/nvidia-caps")?
            .iter()
            .filter_map(|name| gpus::char_node(root, &format!("/dev/nvidia-caps/{name}"), stat))
            .collect();
        let library_dirs = driver::library_dirs(root)?;
        let driver_version = driver::driver_version(root, &library_dirs)?;
        Ok(Some(NvidiaHost {
            root: root.to_owned(),
            gpus,
            control_nodes,
            mig_caps,
            driver_version,
            library_dirs,
        }))
    }

    /// The GPUs `selection` names, in request order, without repeats.
    pub fn select(&self, selection: &GpuSelection) -> Result<Vec<&Gpu>, NvidiaError> {
        match selection {
            GpuSelection::All => Ok(self.gpus.iter().collect()),
            GpuSelection::Count(n) => {
                let wanted = usize::try_from(*n).unwrap_or(usize::MAX);
                if wanted > self.gpus.len() {
                    return Err(NvidiaError::NotEnoughGpus {
                        wanted: *n,
                        found: self.gpus.len(),
                    });
                }
                Ok(self.gpus.iter().take(wanted).collect())
            }
            GpuSelection::Ids(ids) => {
                let mut selected: Vec<&Gpu> = Vec::new();
                for id in ids {
                    let gpu = self.find(id)?;
                    if !selected.iter().any(|g| g.index == gpu.index) {
                        selected.push(gpu);
                    }
                }
                Ok(selected)
            }
        }
    }

    fn find(&self, id: &str) -> Result<&Gpu, NvidiaError> {
        let id = id.trim();
        if id.contains(':') && id.split(':').all(|p| p.bytes().all(|b| b.is_ascii_digit())) {
            return Err(NvidiaError::Mig { id: id.to_owned() });
        }
        let hit = self.gpus.iter().find(|g| match id.parse::<usize>() {
            Ok(index) => g.index == index,
            Err(_) => [&g.uuid, &g.bus_id]
                .iter()
                .any(|v| v.as_deref().is_some_and(|v| v.eq_ignore_ascii_case(id))),
        });
        hit.ok_or_else(|| NvidiaError::UnknownGpu {
            id: id.to_owned(),
            known: self.describe_gpus(),
        })
    }

    fn describe_gpus(&self) -> String {
        if self.gpus.is_empty() {
            return "none".into();
        }
        let names: Vec<String> = self
            .gpus
            .iter()
            .map(|g| match &g.uuid {
                Some(uuid) => format!("{} ({uuid})", g.index),
                None => g.index.to_string(),
            })
            .collect();
        names.join(", ")
    }

    /// The edits that expose the selected GPUs with `capabilities` (the
    /// request's, generic `gpu` included).
    pub fn edits(&self, selection: &GpuSelection, capabilities: &[String]) -> Result<Applied, NvidiaError> {
        let selected = self.select(selection)?;
        let (caps, caps_env) = parse_capabilities(capabilities)?;
        let mut devices: Vec<DeviceNode> = selected.iter().map(|g| g.node.clone()).collect();
        if !selected.is_empty() {
            devices.extend(self.control_nodes.iter().cloned());
        }
        let visible = match selection {
            _ if selected.is_empty() => "void".to_owned(),
            GpuSelection::All => "all".to_owned(),
            GpuSelection::Count(_) => join(selected.iter().map(|g| g.index.to_string())),
            GpuSelection::Ids(ids) => join(ids.iter().map(|id| id.trim().to_owned())),
        };
        let mut applied = Applied {
            env: vec![
                format!("NVIDIA_VISIBLE_DEVICES={visible}"),
                format!("NVIDIA_DRIVER_CAPABILITIES={caps_env}"),
            ],
            devices,
            ..Applied::default()
        };
        if selected.is_empty() {
            return Ok(applied);
        }
        let version = self.driver_version.as_deref();
        let libraries = driver::libraries(&self.root, &self.library_dirs, version, &caps)?;
        let mut paths = libraries.clone();
        paths.extend(driver::binaries(&self.root, &caps));
        paths.extend(driver::extras(&self.root, version));
        applied.mounts = paths
            .into_iter()
            .map(|path| AppliedMount {
                host_path: path.clone(),
                container_path: path,
                fs_type: None,
                options: MOUNT_OPTIONS.iter().map(|o| (*o).to_owned()).collect(),
            })
            .collect();
        // With NVIDIA's hook binary present, refresh the container's ld
        // cache for the mounted directories as a generated spec would; the
        // soname links mounted above make this an optimisation, not a need.
        let hook = "/usr/bin/nvidia-cdi-hook";
        if !libraries.is_empty() && crate::devices::under_root(&self.root, hook).is_file() {
            let mut args = vec!["nvidia-cdi-hook".to_owned(), "update-ldcache".to_owned()];
            let mut folders: Vec<&str> = libraries
                .iter()
                .filter_map(|l| l.rsplit_once('/').map(|(d, _)| d))
                .collect();
            folders.dedup();
            for folder in folders {
                args.extend(["--folder".to_owned(), folder.to_owned()]);
            }
            applied.hooks.push(Hook {
                stage: HookStage::CreateContainer,
                path: hook.to_owned(),
                args,
                env: Vec::new(),
                timeout: None,
            });
        }
        Ok(applied)
    }
}

fn join(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(",")
}

/// The driver capabilities a request's list stands for, and the
/// `NVIDIA_DRIVER_CAPABILITIES` value: the generic `gpu`/`nvidia` alone
/// mean the toolkit default `compute,utility`; `all` means every one.
pub fn parse_capabilities(requested: &[String]) -> Result<(Vec<Capability>, String), NvidiaError> {
    let mut caps: Vec<Capability> = Vec::new();
    let mut all = false;
    for name in requested {
        match name.trim() {
            "gpu" | "nvidia" => {}
            "all" => all = true,
            other => {
                let cap = Capability::ALL.into_iter().find(|c| c.name() == other).ok_or_else(|| {
                    NvidiaError::UnknownCapability {
                        capability: other.to_owned(),
                    }
                })?;
                if !caps.contains(&cap) {
                    caps.push(cap);
                }
            }
        }
    }
    if all {
        return Ok((Capability::ALL.to_vec(), "all".into()));
    }
    if caps.is_empty() {
        caps = vec![Capability::Compute, Capability::Utility];
    }
    let env = join(caps.iter().map(|c| c.name().to_owned()));
    Ok((caps, env))
}

#[cfg(test)]
mod tests;

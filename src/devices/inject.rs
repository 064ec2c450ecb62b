//! Device edits into a container: the one path compose services (the
//! engine) and `container create/run --gpus/--device` both take.
//!
//! [`edits_for_service`] decides (host discovery, plan, merged edits);
//! [`apply_to_config`] is the pure merge of those edits into a
//! [`ContainerConfig`]: device nodes and their cgroup rules, bind mounts
//! with the spec's options, env overriding by key, hooks and groups.

use std::path::{Path, PathBuf};

use super::request::{self, HostDevices};
use super::{host_stat, Applied, AppliedMount, DeviceError, NodeStat};
use crate::runtime::cgroups::DeviceRule;
use crate::runtime::config::{ContainerConfig, DeviceNode, MountKind, MountSpec};
use crate::spec::model::{DeviceRequest, Service};

/// Relocates device discovery (`/etc/cdi`, `/var/run/cdi`, `/dev`,
/// `/proc/driver/nvidia`, the driver's files) under another root, so tests
/// can offer fake GPUs and CDI vendors. Mount sources in specs stay host
/// paths.
pub const DEVICE_ROOT_ENV: &str = "BERTH_DEVICE_ROOT";

/// Where devices are discovered: `$BERTH_DEVICE_ROOT`, else `/`.
pub fn device_root() -> PathBuf {
    match std::env::var_os(DEVICE_ROOT_ENV) {
        Some(root) if !root.is_empty() => PathBuf::from(root),
        _ => PathBuf::from("/"),
    }
}

/// The edits a compose service's `gpus:`, device reservations and CDI
/// `devices:` entries need on the host under `host_root`; `None` when it
/// requests none. Errors name the service.
pub fn edits_for_service(
    service_name: &str,
    service: &Service,
    host_root: &Path,
) -> Result<Option<Applied>, DeviceError> {
    let (requests, cdi_names) = request::service_requests(service);
    edits_for_requests(service_name, &requests, &cdi_names, host_root, &host_stat)
}

/// [`edits_for_service`] over requests already extracted (the CLI's
/// `--gpus` and CDI `--device` names), with the node lookup injected.
pub fn edits_for_requests(
    name: &str,
    requests: &[DeviceRequest],
    cdi_names: &[String],
    host_root: &Path,
    stat: NodeStat,
) -> Result<Option<Applied>, DeviceError> {
    if requests.is_empty() && cdi_names.is_empty() {
        return Ok(None);
    }
    let host = HostDevices::discover(host_root, stat).map_err(|source| DeviceError::Nvidia {
        service: name.to_owned(),
        source,
    })?;
    let plan = request::plan(name, requests, cdi_names, &host)?;
    let applied = request::apply(name, &plan, &host, stat)?;
    refuse_unsupported(name, &applied)?;
    Ok(Some(applied))
}

/// Edits the runtime cannot honour fail here, before anything is created,
/// rather than being dropped silently.
fn refuse_unsupported(name: &str, applied: &Applied) -> Result<(), DeviceError> {
    let unsupported = |what: &str| DeviceError::Unsupported {
        service: name.to_owned(),
        what: what.to_owned(),
    };
    if applied.intel_rdt.is_some() {
        return Err(unsupported("intelRdt"));
    }
    if let Some(net) = applied.net_devices.first() {
        return Err(unsupported(&format!("netDevices ({})", net.host_interface_name)));
    }
    Ok(())
}

/// Adds `applied` to `config`: device nodes (replacing one at the same
/// path) and, unless every device is already allowed, a device cgroup rule
/// for each; mounts (replacing one at the same target); env, overriding
/// by key (CDI's `AddMultipleProcessEnv`); hooks; supplementary groups.
pub fn apply_to_config(config: &mut ContainerConfig, applied: &Applied) {
    for entry in &applied.env {
        let key = entry.split_once('=').map_or(entry.as_str(), |(k, _)| k);
        match config
            .env
            .iter_mut()
            .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
        {
            Some(existing) => existing.clone_from(entry),
            None => config.env.push(entry.clone()),
        }
    }
    let allow_all = config.resources.devices.iter().any(|r| r.allow && r.kind == 'a');
    for node in &applied.devices {
        match config.devices.iter_mut().find(|d| d.path == node.path) {
            Some(existing) => existing.clone_from(node),
            None => config.devices.push(node.clone()),
        }
        if let Some(rule) = cgroup_rule(node).filter(|_| !allow_all) {
            if !config.resources.devices.contains(&rule) {
                config.resources.devices.push(rule);
            }
        }
    }
    for mount in &applied.mounts {
        let spec = mount_spec(mount);
        config.mounts.retain(|m| m.target != spec.target);
        config.mounts.push(spec);
    }
    for hook in &applied.hooks {
        if !config.hooks.contains(hook) {
            config.hooks.push(hook.clone());
        }
    }
    for gid in &applied.additional_gids {
        let gid = gid.to_string();
        if !config.group_add.contains(&gid) {
            config.group_add.push(gid);
        }
    }
}

/// The allow rule a node needs; none for FIFOs, which the device cgroup
/// does not control.
fn cgroup_rule(node: &DeviceNode) -> Option<DeviceRule> {
    let kind = match node.kind {
        'b' => 'b',
        'c' | 'u' => 'c',
        _ => return None,
    };
    let number = |n: u64| i64::try_from(n).ok();
    let access = if node.access.is_empty() { "rwm" } else { &node.access };
    Some(DeviceRule::allow(kind, number(node.major), number(node.minor), access))
}

/// A CDI mount as the runtime's mount: a bind unless the spec names
/// another filesystem type.
fn mount_spec(mount: &AppliedMount) -> MountSpec {
    let read_only = mount.options.iter().any(|o| o == "ro");
    let fs_type = mount.fs_type.as_deref().filter(|t| !t.is_empty() && *t != "bind");
    let is_bind = fs_type.is_none() || mount.options.iter().any(|o| o == "bind" || o == "rbind");
    let (kind, fstype) = match fs_type {
        _ if is_bind => (MountKind::Bind, None),
        Some("tmpfs") => (MountKind::Tmpfs, None),
        // Its own filesystem mounted from `source`, as a volume with an
        // fstype is (no named volume behind it).
        other => (MountKind::Volume, other.map(str::to_owned)),
    };
    let options = match kind {
        MountKind::Bind => mount.options.clone(),
        // Mount data: flags like ro are not data.
        _ => mount
            .options
            .iter()
            .filter(|o| !matches!(o.as_str(), "ro" | "rw"))
            .cloned()
            .collect(),
    };
    MountSpec {
        kind,
        source: (kind != MountKind::Tmpfs).then(|| PathBuf::from(&mount.host_path)),
        target: mount.container_path.clone(),
        read_only,
        options,
        volume: None,
        fstype,
        // A device's files are mounted as they are, never copied into.
        no_copy: true,
    }
}

#[cfg(test)]
#[path = "inject_tests.rs"]
mod tests;

//! `berth system info`: the engine root, the host facts the runtime
//! depends on (cgroups, kernel, seccomp, overlayfs) and object counts.

use std::path::PathBuf;

use serde::Serialize;

use super::SystemError;
use crate::image::ImageStore;
use crate::network::NetworkStore;
use crate::runtime::cgroups::{detect, Hierarchy};
use crate::runtime::config::Status;
use crate::runtime::container;
use crate::store::Root;
use crate::volume::VolumeStore;

/// docker's `info` fields that berth has, in docker's names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SystemInfo {
    pub server_version: String,
    pub api_version: String,
    pub root_dir: PathBuf,
    /// `1` (v1 or hybrid) or `2`.
    pub cgroup_version: String,
    /// `v1`, `v2` or `hybrid` (v1 controllers plus an empty cgroup2).
    pub cgroup_hierarchy: String,
    /// berth writes the cgroup files itself; there is no systemd driver.
    pub cgroup_driver: String,
    pub kernel_version: String,
    pub operating_system: String,
    pub architecture: String,
    #[serde(rename = "NCPU")]
    pub ncpu: usize,
    pub mem_total: u64,
    /// The kernel has seccomp filters (`Seccomp:` in /proc/self/status).
    pub seccomp: bool,
    /// overlayfs is registered in /proc/filesystems (the rootfs needs it).
    pub overlay: bool,
    pub containers: usize,
    pub containers_running: usize,
    pub containers_paused: usize,
    pub containers_stopped: usize,
    pub images: usize,
    pub volumes: usize,
    pub networks: usize,
}

/// Reads the facts.
///
/// # Errors
///
/// A store of the root that cannot be read.
pub fn info(root: &Root) -> Result<SystemInfo, SystemError> {
    let containers = container::list(root)?;
    let status = |s: &[Status]| {
        containers
            .iter()
            .filter(|c| c.state().is_ok_and(|st| s.contains(&st.status)))
            .count()
    };
    let running = status(&[Status::Running]);
    let paused = status(&[Status::Paused]);
    let (cgroup_version, cgroup_hierarchy) = cgroup_names(detect());
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    Ok(SystemInfo {
        server_version: env!("CARGO_PKG_VERSION").to_string(),
        api_version: crate::engine::api::API_VERSION.to_string(),
        root_dir: root.path().to_path_buf(),
        cgroup_version: cgroup_version.to_string(),
        cgroup_hierarchy: cgroup_hierarchy.to_string(),
        cgroup_driver: "cgroupfs".to_string(),
        kernel_version: read("/proc/sys/kernel/osrelease").trim().to_string(),
        operating_system: os_name(&read("/etc/os-release")),
        architecture: std::env::consts::ARCH.to_string(),
        ncpu: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        mem_total: crate::engine::stats::host_memory(),
        seccomp: read("/proc/self/status").lines().any(|l| l.starts_with("Seccomp:")),
        overlay: has_filesystem(&read("/proc/filesystems"), "overlay"),
        containers: containers.len(),
        containers_running: running,
        containers_paused: paused,
        containers_stopped: containers.len().saturating_sub(running + paused),
        images: ImageStore::open(root)?.list()?.len(),
        volumes: VolumeStore::open(root)?.list()?.len(),
        networks: NetworkStore::new(root).list()?.len(),
    })
}

fn cgroup_names(hierarchy: Hierarchy) -> (&'static str, &'static str) {
    match hierarchy {
        Hierarchy::V1 => ("1", "v1"),
        Hierarchy::Hybrid => ("1", "hybrid"),
        Hierarchy::V2 => ("2", "v2"),
    }
}

/// `PRETTY_NAME` of os-release(5), else `NAME`, else `Linux`.
fn os_name(os_release: &str) -> String {
    let value = |key: &str| {
        os_release
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(|v| v.trim().trim_matches('"').to_string())
    };
    value("PRETTY_NAME")
        .or_else(|| value("NAME"))
        .unwrap_or_else(|| "Linux".to_string())
}

/// Whether /proc/filesystems lists `name` (`nodev\toverlay`).
fn has_filesystem(filesystems: &str, name: &str) -> bool {
    filesystems.lines().any(|l| l.split_whitespace().last() == Some(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_names() {
        assert_eq!(
            os_name("NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"),
            "Debian GNU/Linux 12 (bookworm)"
        );
        assert_eq!(os_name("NAME=Alpine\n"), "Alpine");
        assert_eq!(os_name(""), "Linux");
    }

    #[test]
    fn filesystems_and_cgroups() {
        assert!(has_filesystem("nodev\tsysfs\nnodev\toverlay\n\text4\n", "overlay"));
        assert!(!has_filesystem("nodev\toverlayfs2\n", "overlay"));
        assert_eq!(cgroup_names(Hierarchy::Hybrid), ("1", "hybrid"));
        assert_eq!(cgroup_names(Hierarchy::V2).0, "2");
    }
}

//! Which cgroup layout the host has, and where each hierarchy is mounted.
//! Detection is youki's `get_cgroup_setup_with_root` (runtime-reference
//! A.6): hybrid is v1 for resource control plus an empty v2 hierarchy that
//! berth only uses to track processes (runc PR #2087: "madness" otherwise).

use std::fs;
use std::path::{Path, PathBuf};

use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC, TMPFS_MAGIC};

/// The cgroup layout of the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hierarchy {
    /// One v1 hierarchy per controller (or group of controllers).
    V1,
    /// A single v2 hierarchy at `/sys/fs/cgroup`.
    V2,
    /// v1 controllers plus an empty cgroup2 at `/sys/fs/cgroup/unified`.
    Hybrid,
}

pub(crate) const CGROUP_ROOT: &str = "/sys/fs/cgroup";
pub(crate) const HYBRID_UNIFIED: &str = "/sys/fs/cgroup/unified";

/// Classifies `/sys/fs/cgroup` by filesystem magic. A host where statfs
/// fails is treated as v1 rather than panicking (runc PR #3435): creating a
/// cgroup then fails with a message naming the missing controller.
pub fn detect() -> Hierarchy {
    match statfs(CGROUP_ROOT).map(|s| s.filesystem_type()) {
        Ok(t) if t == CGROUP2_SUPER_MAGIC => Hierarchy::V2,
        Ok(t) if t == TMPFS_MAGIC => {
            let unified = statfs(HYBRID_UNIFIED).map(|s| s.filesystem_type());
            if matches!(unified, Ok(u) if u == CGROUP2_SUPER_MAGIC) {
                Hierarchy::Hybrid
            } else {
                Hierarchy::V1
            }
        }
        _ => Hierarchy::V1,
    }
}

/// One mounted v1 hierarchy: where it is, and which controllers it carries
/// (`["cpu", "cpuacct"]` when co-mounted, `["name=systemd"]` for a named one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct V1Mount {
    pub mount_point: PathBuf,
    pub controllers: Vec<String>,
}

const V1_CONTROLLERS: &[&str] = &[
    "blkio",
    "cpu",
    "cpuacct",
    "cpuset",
    "devices",
    "freezer",
    "hugetlb",
    "memory",
    "misc",
    "net_cls",
    "net_prio",
    "perf_event",
    "pids",
    "rdma",
];

/// Every v1 hierarchy mounted in this mount namespace, from
/// `/proc/self/mountinfo` as parsed by cgroups-rs. A hierarchy mounted
/// twice (bind mounts) is listed once.
pub(crate) fn v1_mounts() -> Vec<V1Mount> {
    let mut mounts: Vec<V1Mount> = Vec::new();
    for info in cgroups_rs::fs::hierarchies::mountinfo_self() {
        let controllers: Vec<String> = info
            .super_opts
            .iter()
            .filter(|o| V1_CONTROLLERS.contains(&o.as_str()) || o.starts_with("name="))
            .cloned()
            .collect();
        if controllers.is_empty() || mounts.iter().any(|m| m.controllers == controllers) {
            continue;
        }
        mounts.push(V1Mount {
            mount_point: info.mount_point,
            controllers,
        });
    }
    // blkio before memory: cgroup writeback needs the blkcg set before the
    // memcg when a task moves (as cgroups-rs orders its subsystems).
    mounts.sort_by_key(|m| !m.controllers.iter().any(|c| c == "blkio"));
    mounts
}

/// Every hierarchy root to look under for this host's layout.
pub(crate) fn roots(hierarchy: Hierarchy) -> Vec<PathBuf> {
    match hierarchy {
        Hierarchy::V2 => vec![PathBuf::from(CGROUP_ROOT)],
        Hierarchy::V1 => v1_mounts().into_iter().map(|m| m.mount_point).collect(),
        Hierarchy::Hybrid => {
            let mut roots: Vec<_> = v1_mounts().into_iter().map(|m| m.mount_point).collect();
            roots.push(PathBuf::from(HYBRID_UNIFIED));
            roots
        }
    }
}

/// Every cgroup directory whose name starts with `prefix`, in every
/// hierarchy of this host: the residue check of tests and `berth doctor`.
pub fn leftover_cgroups(prefix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for root in roots(detect()) {
        find_prefixed(&root, prefix, &mut found);
    }
    found
}

fn find_prefixed(dir: &Path, prefix: &str, found: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with(prefix) {
            found.push(path);
        } else {
            find_prefixed(&path, prefix, found);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn prefix_search_reports_the_outermost_match() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("system.slice/berth-t-1/ctr")).unwrap();
        fs::create_dir_all(tmp.path().join("berth-t-2")).unwrap();
        fs::create_dir_all(tmp.path().join("other")).unwrap();
        let mut found = Vec::new();
        find_prefixed(tmp.path(), "berth-t-", &mut found);
        found.sort();
        assert_eq!(
            found,
            vec![tmp.path().join("berth-t-2"), tmp.path().join("system.slice/berth-t-1")]
        );
    }
}

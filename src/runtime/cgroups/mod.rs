//! Control groups: v1, v2 and hybrid hosts.
//!
//! [`Cgroup`] is a container's cgroup in every hierarchy the host has.
//! [`detect`] classifies the host (runtime-reference A.6): v2 unified hosts
//! get one directory with delegated controllers and an eBPF device filter
//! ([`devices_bpf`]); v1 and hybrid hosts get one directory per mounted v1
//! hierarchy, and on hybrid also a v2 directory that only tracks processes.
//!
//! cgroups-rs supplies mount discovery and the typed v1/v2 setters; berth
//! wraps them because their errors name only the file, not the directory,
//! and `Cgroup::apply` there silently drops write errors. Device control
//! on v2 and the v1↔v2 value conversions are berth's own.

mod cgroup;
mod detect;
pub mod devices_bpf;
mod error;
mod fsio;
pub mod resources;
mod stats;
mod v1;
mod v2;

pub use cgroup::{Cgroup, CgroupTree, SelfJoin};
pub use detect::{detect, leftover_cgroups, Hierarchy};
pub use error::CgroupError;

/// Whether a v1 hierarchy with these controllers holds a directory for
/// each container (`v1::USED`): the others are not mounted inside it,
/// since there its cgroup namespace root would be the host's cgroup.
pub fn v1_hierarchy_is_used<'a>(mut controllers: impl Iterator<Item = &'a str>) -> bool {
    controllers.any(|c| v1::USED.contains(&c))
}
pub use resources::{docker_default_device_rules, DeviceRule, Resources};
pub use stats::CgroupStats;

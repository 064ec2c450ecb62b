//! cgroup v2 on a unified host: one directory, controllers delegated from
//! the ancestors, devices by eBPF. Kernel doc:
//! `Documentation/admin-guide/cgroup-v2.rst`.

use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use cgroups_rs::fs::cpu::CpuController;
use cgroups_rs::fs::cpuset::CpuSetController;
use cgroups_rs::fs::memory::MemController;
use cgroups_rs::fs::pid::PidController;

use super::devices_bpf;
use super::error::CgroupError;
use super::fsio::{self, via_crate};
use super::resources::{self, Resources, SwapLimit};
use super::stats::CgroupStats;

/// Controllers berth configures; `io` is delegated for future limits.
const WANTED: &[&str] = &["cpu", "cpuset", "io", "memory", "pids"];

/// Enables the controllers in `cgroup.subtree_control` of `root` and every
/// ancestor of `leaf` below it, never the leaf itself: a cgroup with
/// controllers enabled for children may not hold processes ("no internal
/// processes" rule, cgroup-v2.rst §2.4.1), so the leaf write would leave
/// the container unable to start. Best effort per controller, as youki
/// (issue #3597): a controller the parent lacks simply isn't offered, and
/// the write of a value for it then fails naming the file.
pub(crate) fn delegate(root: &Path, leaf: &Path) {
    let mut dir = root.to_owned();
    let rest = leaf.strip_prefix(root).unwrap_or(leaf);
    let mut parts: Vec<_> = rest.components().collect();
    parts.pop();
    for next in std::iter::once(None).chain(parts.into_iter().map(Some)) {
        if let Some(part) = next {
            dir.push(part);
        }
        let available = fsio::read(&dir.join("cgroup.controllers")).unwrap_or_default();
        for c in available.split_whitespace().filter(|c| WANTED.contains(c)) {
            let _ = fsio::write(&dir.join("cgroup.subtree_control"), &format!("+{c}"));
        }
    }
}

/// Writes `res`; see [`super::v1::apply`] for `with_devices` and the
/// returned "swap ignored" flag.
pub(crate) fn apply(dir: &Path, res: &Resources, with_devices: bool) -> Result<bool, CgroupError> {
    let d = dir.to_owned();
    let root = PathBuf::new();
    if res.cpuset_cpus.is_some() || res.cpuset_mems.is_some() {
        let c = CpuSetController::new(d.clone(), root.clone(), true);
        if let Some(cpus) = &res.cpuset_cpus {
            via_crate(dir, "cpuset.cpus", cpus, c.set_cpus(cpus))?;
        }
        if let Some(mems) = &res.cpuset_mems {
            via_crate(dir, "cpuset.mems", mems, c.set_mems(mems))?;
        }
    }
    let mem = MemController::new(d.clone(), root.clone(), true);
    if let Some(low) = res.memory_reservation {
        via_crate(dir, "memory.low", low, mem.set_soft_limit(low))?;
    }
    if let Some(max) = res.memory.filter(|m| *m != 0) {
        // cgroups-rs writes -1 as "max".
        via_crate(dir, "memory.max", max, mem.set_limit(max))?;
    }
    let swap = resources::swap_limit(res.memory, res.memory_swap)?;
    let swap_file = dir.join("memory.swap.max");
    let swap_ignored = swap != SwapLimit::Unset && !swap_file.exists();
    if let Some(value) = resources::v2_swap_max(swap, res.memory).filter(|_| !swap_ignored) {
        fsio::write(&swap_file, &value)?;
    }
    let cpu = CpuController::new(d.clone(), root.clone(), true);
    if let Some(weight) = res.cpu_shares.and_then(resources::shares_to_weight) {
        via_crate(dir, "cpu.weight", weight, cpu.set_shares(weight))?;
    }
    if res.cpu_quota.is_some() || res.cpu_period.is_some() {
        let part = |v: Option<String>| v.unwrap_or_else(|| "(unchanged)".to_owned());
        let quota = res.cpu_quota.map(|q| if q > 0 { q.to_string() } else { "max".into() });
        let value = format!("{} {}", part(quota), part(res.cpu_period.map(|p| p.to_string())));
        let r = cpu.set_cfs_quota_and_period(res.cpu_quota, res.cpu_period);
        via_crate(dir, "cpu.max", value, r)?;
    }
    if let Some(limit) = res.pids_limit {
        let max = resources::pids_max(limit);
        let c = PidController::new(d.clone(), root, true);
        via_crate(dir, "pids.max", max, c.set_pid_max(max))?;
    }
    if with_devices {
        devices_bpf::apply(&res.devices, dir).map_err(|source| CgroupError::DeviceFilter {
            path: dir.to_owned(),
            source,
        })?;
    }
    Ok(swap_ignored)
}

const FREEZE_TIMEOUT: Duration = Duration::from_secs(10);

/// Sets `cgroup.freeze` and waits for `cgroup.events` to report it: the
/// write only requests the state (cgroup-v2.rst "cgroup.freeze").
pub(crate) fn set_frozen(dir: &Path, frozen: bool) -> Result<(), CgroupError> {
    let want = if frozen { "1" } else { "0" };
    fsio::write(&dir.join("cgroup.freeze"), want)?;
    let events = dir.join("cgroup.events");
    let started = Instant::now();
    loop {
        if fsio::keyed(&fsio::read(&events)?, "frozen") == Some(u64::from(frozen)) {
            return Ok(());
        }
        if started.elapsed() > FREEZE_TIMEOUT {
            if frozen {
                let _ = fsio::write(&dir.join("cgroup.freeze"), "0");
            }
            return Err(CgroupError::Timeout {
                path: events,
                what: if frozen { "report frozen 1" } else { "report frozen 0" },
                waited_ms: started.elapsed().as_millis(),
            });
        }
        sleep(Duration::from_millis(10));
    }
}

pub(crate) fn is_frozen(dir: &Path) -> bool {
    fsio::read(&dir.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1")
}

/// `memory.events` counts OOM kills in this cgroup and its descendants.
pub(crate) fn oom_killed(dir: &Path) -> bool {
    fsio::read(&dir.join("memory.events")).is_ok_and(|text| fsio::keyed(&text, "oom_kill").unwrap_or(0) > 0)
}

/// `cgroup.kill` (Linux 5.14+) kills every process in the subtree at once,
/// racing no forks. Returns false when the kernel lacks it.
pub(crate) fn kill(dir: &Path) -> Result<bool, CgroupError> {
    let file = dir.join("cgroup.kill");
    if !file.exists() {
        return Ok(false);
    }
    fsio::write(&file, "1").map(|()| true)
}

pub(crate) fn stats(dir: &Path) -> Result<CgroupStats, CgroupError> {
    let max_file = dir.join("memory.max");
    let max = fsio::read(&max_file)?;
    let cpu_stat = dir.join("cpu.stat");
    let cpu_text = fsio::read(&cpu_stat)?;
    let usage_usec = fsio::keyed(&cpu_text, "usage_usec").ok_or(CgroupError::Parse {
        path: cpu_stat,
        content: cpu_text.clone(),
    })?;
    Ok(CgroupStats {
        memory_usage: fsio::read_u64(&dir.join("memory.current"))?,
        memory_limit: match max.trim() {
            "max" => None,
            n => Some(n.parse().map_err(|_| CgroupError::Parse {
                path: max_file,
                content: max.clone(),
            })?),
        },
        cpu_usage_ns: usage_usec.saturating_mul(1000),
        pids_current: fsio::read_u64(&dir.join("pids.current"))?,
    })
}

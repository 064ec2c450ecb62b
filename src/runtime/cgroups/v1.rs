//! cgroup v1 (and the resource side of hybrid hosts): one directory per
//! mounted hierarchy, values written through cgroups-rs's typed controllers.
//! Kernel docs: `Documentation/admin-guide/cgroup-v1/{memory,cpusets,
//! devices,freezer-subsystem,pids}.rst`, `scheduler/sched-bwc.rst`.

use std::path::PathBuf;
use std::thread::sleep;
use std::time::{Duration, Instant};

use cgroups_rs::fs::cpu::CpuController;
use cgroups_rs::fs::cpuset::CpuSetController;
use cgroups_rs::fs::devices::{DevicePermissions, DeviceType, DevicesController};
use cgroups_rs::fs::freezer::FreezerController;
use cgroups_rs::fs::memory::MemController;
use cgroups_rs::fs::pid::PidController;
use cgroups_rs::FreezerState;

use super::error::CgroupError;
use super::fsio::{self, via_crate};
use super::resources::{self, MemoryOrder, Resources, SwapLimit};
use super::stats::CgroupStats;

/// A container's directory in one v1 hierarchy.
#[derive(Debug, Clone)]
pub(crate) struct V1Dir {
    pub root: PathBuf,
    pub dir: PathBuf,
    pub controllers: Vec<String>,
}

impl V1Dir {
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// The directory carrying `controller`, or a message naming it.
pub(crate) fn dir_of<'a>(dirs: &'a [V1Dir], controller: &'static str) -> Result<&'a V1Dir, CgroupError> {
    dirs.iter()
        .find(|d| d.has(controller))
        .ok_or(CgroupError::MissingController {
            controller,
            hint: "mount it under /sys/fs/cgroup",
        })
}

/// A new cpuset cgroup starts with empty `cpuset.cpus`/`cpuset.mems`, and
/// no task can join it until both are set (cpusets.rst §1.4). Copy the
/// parent's values into each directory of the path that lacks them,
/// outermost first.
/// (cgroups-rs does the same in `post_create` but only logs failures.)
pub(crate) fn inherit_cpuset(created: &[PathBuf]) -> Result<(), CgroupError> {
    for dir in created {
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let own = dir.join(file);
            if !fsio::read(&own)?.trim().is_empty() {
                continue;
            }
            let parent = dir.parent().unwrap_or(dir).join(file);
            let value = fsio::read(&parent)?;
            fsio::write(&own, value.trim())?;
        }
    }
    Ok(())
}

/// Writes `res` into the container's hierarchies. `with_devices` is true on
/// create only: re-applying a device list means a deny-all first, which
/// would briefly break running containers (Docker's `update` never touches
/// devices either). Returns whether a requested swap limit was ignored
/// because swap accounting is off (no `memory.memsw.*` files).
pub(crate) fn apply(dirs: &[V1Dir], res: &Resources, with_devices: bool) -> Result<bool, CgroupError> {
    if res.cpuset_cpus.is_some() || res.cpuset_mems.is_some() {
        let d = dir_of(dirs, "cpuset")?;
        let c = CpuSetController::new(d.dir.clone(), d.root.clone(), false);
        if let Some(cpus) = &res.cpuset_cpus {
            via_crate(&d.dir, "cpuset.cpus", cpus, c.set_cpus(cpus))?;
        }
        if let Some(mems) = &res.cpuset_mems {
            via_crate(&d.dir, "cpuset.mems", mems, c.set_mems(mems))?;
        }
    }
    let swap_ignored = apply_memory(dirs, res)?;
    apply_cpu(dirs, res)?;
    if let Some(limit) = res.pids_limit {
        let d = dir_of(dirs, "pids")?;
        let max = resources::pids_max(limit);
        let c = PidController::new(d.dir.clone(), d.root.clone(), false);
        via_crate(&d.dir, "pids.max", max, c.set_pid_max(max))?;
    }
    if with_devices {
        apply_devices(dirs, res)?;
    }
    Ok(swap_ignored)
}

fn apply_memory(dirs: &[V1Dir], res: &Resources) -> Result<bool, CgroupError> {
    let memory = res.memory.filter(|m| *m != 0);
    let swap = resources::swap_limit(res.memory, res.memory_swap)?;
    if memory.is_none() && swap == SwapLimit::Unset && res.memory_reservation.is_none() {
        return Ok(false);
    }
    let d = dir_of(dirs, "memory")?;
    let c = MemController::new(d.dir.clone(), d.root.clone(), false);
    if let Some(soft) = res.memory_reservation {
        let r = c.set_soft_limit(soft);
        via_crate(&d.dir, "memory.soft_limit_in_bytes", soft, r)?;
    }
    let memsw = d.dir.join("memory.memsw.limit_in_bytes");
    // Swap accounting off (kernel `swapaccount=0`, or no swap support):
    // the file is absent and only the memory limit can be enforced.
    let swap_ignored = swap != SwapLimit::Unset && !memsw.exists();
    let swap_value = match swap {
        SwapLimit::Total(total) if !swap_ignored => Some(total),
        SwapLimit::Unlimited if !swap_ignored => Some(-1),
        _ => None,
    };
    let order = match swap_value {
        Some(_) => resources::v1_memory_order(fsio::read_u64(&memsw)? as i64, swap),
        None => MemoryOrder::MemoryFirst,
    };
    let set_memory = || match memory {
        Some(m) => via_crate(&d.dir, "memory.limit_in_bytes", m, c.set_limit(m)),
        None => Ok(()),
    };
    let set_swap = || match swap_value {
        Some(s) => via_crate(&d.dir, "memory.memsw.limit_in_bytes", s, c.set_memswap_limit(s)),
        None => Ok(()),
    };
    match order {
        MemoryOrder::MemoryFirst => set_memory().and_then(|()| set_swap())?,
        MemoryOrder::SwapFirst => set_swap().and_then(|()| set_memory())?,
    }
    Ok(swap_ignored)
}

fn apply_cpu(dirs: &[V1Dir], res: &Resources) -> Result<(), CgroupError> {
    if res.cpu_shares.is_none() && res.cpu_quota.is_none() && res.cpu_period.is_none() {
        return Ok(());
    }
    let d = dir_of(dirs, "cpu")?;
    let c = CpuController::new(d.dir.clone(), d.root.clone(), false);
    if let Some(shares) = res.cpu_shares.filter(|s| *s != 0) {
        via_crate(&d.dir, "cpu.shares", shares, c.set_shares(shares))?;
    }
    // Period first: a quota is checked against the period in force.
    if let Some(period) = res.cpu_period {
        via_crate(&d.dir, "cpu.cfs_period_us", period, c.set_cfs_period(period))?;
    }
    if let Some(quota) = res.cpu_quota {
        via_crate(&d.dir, "cpu.cfs_quota_us", quota, c.set_cfs_quota(quota))?;
    }
    Ok(())
}

fn apply_devices(dirs: &[V1Dir], res: &Resources) -> Result<(), CgroupError> {
    let d = dir_of(dirs, "devices")?;
    let c = DevicesController::new(d.dir.clone(), d.root.clone());
    let all = DevicePermissions::all();
    via_crate(
        &d.dir,
        "devices.deny",
        "a",
        c.deny_device(DeviceType::All, -1, -1, &all),
    )?;
    for rule in &res.devices {
        let kind = DeviceType::from_char(Some(rule.kind)).unwrap_or(DeviceType::All);
        let access: Vec<_> = rule.access.chars().filter_map(DevicePermissions::from_char).collect();
        let (major, minor) = (rule.major.unwrap_or(-1), rule.minor.unwrap_or(-1));
        let (file, result) = if rule.allow {
            ("devices.allow", c.allow_device(kind, major, minor, &access))
        } else {
            ("devices.deny", c.deny_device(kind, major, minor, &access))
        };
        via_crate(&d.dir, file, rule.to_v1_line(), result)?;
    }
    Ok(())
}

const FREEZE_TIMEOUT: Duration = Duration::from_secs(10);

/// Freezes and waits for `FROZEN`. The kernel may stay in `FREEZING` while
/// a task is in an uninterruptible sleep; writing `FROZEN` again retries
/// the tasks that were missed (runc `fs/freezer.go`). On timeout the
/// cgroup is thawed again so it is never left half-frozen.
pub(crate) fn freeze(dirs: &[V1Dir]) -> Result<(), CgroupError> {
    let d = dir_of(dirs, "freezer")?;
    let c = FreezerController::new(d.dir.clone(), d.root.clone(), false);
    let started = Instant::now();
    loop {
        via_crate(&d.dir, "freezer.state", "FROZEN", c.freeze())?;
        let state = c.state();
        if matches!(state, Ok(FreezerState::Frozen)) {
            return Ok(());
        }
        if started.elapsed() > FREEZE_TIMEOUT {
            let _ = c.thaw();
            return Err(CgroupError::Timeout {
                path: d.dir.join("freezer.state"),
                what: "read FROZEN",
                waited_ms: started.elapsed().as_millis(),
            });
        }
        sleep(Duration::from_millis(10));
    }
}

pub(crate) fn thaw(dirs: &[V1Dir]) -> Result<(), CgroupError> {
    let d = dir_of(dirs, "freezer")?;
    let c = FreezerController::new(d.dir.clone(), d.root.clone(), false);
    via_crate(&d.dir, "freezer.state", "THAWED", c.thaw())
}

/// Whether the freezer directory exists and is not thawed.
pub(crate) fn is_frozen(dirs: &[V1Dir]) -> bool {
    dir_of(dirs, "freezer").is_ok_and(|d| {
        FreezerController::new(d.dir.clone(), d.root.clone(), false)
            .state()
            .is_ok_and(|s| !matches!(s, FreezerState::Thawed))
    })
}

/// `memory.oom_control` has an `oom_kill` counter since Linux 4.13; older
/// kernels only show `under_oom` while the OOM is in progress.
pub(crate) fn oom_killed(dirs: &[V1Dir]) -> bool {
    let Ok(d) = dir_of(dirs, "memory") else {
        return false;
    };
    fsio::read(&d.dir.join("memory.oom_control")).is_ok_and(|text| {
        fsio::keyed(&text, "oom_kill").unwrap_or(0) > 0 || fsio::keyed(&text, "under_oom").unwrap_or(0) > 0
    })
}

/// v1 reports "no limit" as a page-aligned `LLONG_MAX`.
const V1_UNLIMITED: u64 = 0x7FFF_FFFF_FFFF_F000;

pub(crate) fn stats(dirs: &[V1Dir]) -> Result<CgroupStats, CgroupError> {
    let mem = dir_of(dirs, "memory")?;
    let cpuacct = dir_of(dirs, "cpuacct")?;
    let pids = dir_of(dirs, "pids")?;
    // Read directly: cgroups-rs's `memory_stat()`/`cpuacct()` turn read
    // errors into 0, which would hide a vanished cgroup.
    let read = |d: &V1Dir, file: &str| fsio::read_u64(&d.dir.join(file));
    let limit = read(mem, "memory.limit_in_bytes")?;
    Ok(CgroupStats {
        memory_usage: read(mem, "memory.usage_in_bytes")?,
        memory_limit: (limit < V1_UNLIMITED).then_some(limit),
        cpu_usage_ns: read(cpuacct, "cpuacct.usage")?,
        pids_current: read(pids, "pids.current")?,
    })
}

/// The `cgroup.procs` file of every hierarchy (for joins at `exec`).
pub(crate) fn procs_files(dirs: &[V1Dir]) -> Vec<PathBuf> {
    dirs.iter().map(|d| d.dir.join("cgroup.procs")).collect()
}

/// The controllers a container's cgroup is made in: those berth sets
/// limits with (memory, cpu, cpuset, pids, devices), reads statistics from
/// (cpuacct) or pauses and tracks with (freezer). Every other hierarchy
/// (blkio, net_cls, perf_event, hugetlb, `name=systemd`, …) would only
/// cost two `mkdir`s and two `rmdir`s per container start; the container
/// stays in its parent's cgroup there, as the monitor does.
pub(crate) const USED: &[&str] = &["memory", "cpu", "cpuacct", "cpuset", "pids", "devices", "freezer"];

/// The directory of `name` in each mounted hierarchy that has a controller
/// berth uses ([`USED`]).
pub(crate) fn layout(name: &str) -> Vec<V1Dir> {
    super::detect::v1_mounts()
        .into_iter()
        .filter(|m| m.controllers.iter().any(|c| USED.contains(&c.as_str())))
        .map(|m| V1Dir {
            dir: m.mount_point.join(name),
            root: m.mount_point,
            controllers: m.controllers,
        })
        .collect()
}

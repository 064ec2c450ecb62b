//! [`Cgroup`]: one container's cgroup in every hierarchy of the host,
//! whatever the layout. Version-specific work lives in `v1.rs`/`v2.rs`;
//! this file decides which and owns the lifecycle (create with rollback,
//! join, teardown).

use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::detect::{detect, Hierarchy, CGROUP_ROOT, HYBRID_UNIFIED};
use super::error::CgroupError;
use super::fsio;
use super::resources::Resources;
use super::stats::CgroupStats;
use super::v1::{self, V1Dir};
use super::v2;

/// Where a container's cgroup lives.
#[derive(Debug)]
enum Layout {
    /// v1 directories; on hybrid hosts also a plain v2 directory that only
    /// tracks membership (its `/proc/<pid>/cgroup` `0::` line).
    V1 {
        dirs: Vec<V1Dir>,
        unified: Option<PathBuf>,
    },
    V2 {
        dir: PathBuf,
    },
}

/// A container's cgroup, in every relevant hierarchy.
#[derive(Debug)]
pub struct Cgroup {
    name: String,
    hierarchy: Hierarchy,
    layout: Layout,
    swap_ignored: AtomicBool,
}

/// Rejects anything but a plain relative path, so a name can never escape
/// the hierarchy root (`..`) or address the root itself.
fn check_name(name: &str) -> Result<(), CgroupError> {
    let bad = |reason| CgroupError::InvalidName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(bad("it is empty"));
    }
    if name.starts_with('/') {
        return Err(bad("it must be relative to the hierarchy root"));
    }
    if name.split('/').any(|p| p.is_empty() || p == "." || p == "..") {
        return Err(bad("components may not be empty, \".\" or \"..\""));
    }
    Ok(())
}

impl Cgroup {
    fn handle(name: &str) -> Result<Cgroup, CgroupError> {
        check_name(name)?;
        let hierarchy = detect();
        let layout = match hierarchy {
            Hierarchy::V2 => Layout::V2 {
                dir: Path::new(CGROUP_ROOT).join(name),
            },
            Hierarchy::V1 | Hierarchy::Hybrid => {
                let dirs = v1::layout(name);
                if dirs.is_empty() {
                    return Err(CgroupError::MissingController {
                        controller: "any v1",
                        hint: "no cgroup hierarchy is mounted under /sys/fs/cgroup",
                    });
                }
                let unified = (hierarchy == Hierarchy::Hybrid).then(|| Path::new(HYBRID_UNIFIED).join(name));
                Layout::V1 { dirs, unified }
            }
        };
        Ok(Cgroup {
            name: name.to_owned(),
            hierarchy,
            layout,
            swap_ignored: AtomicBool::new(false),
        })
    }

    /// Creates `name` (a relative path like `berth-1a2b3c4d-<container-id>`)
    /// in every hierarchy and applies `resources`. Values are validated
    /// before anything is created; on any failure every directory this call
    /// made is removed again.
    pub fn create(name: &str, resources: &Resources) -> Result<Cgroup, CgroupError> {
        resources.validate()?;
        let cg = Self::handle(name)?;
        let mut created = Vec::new();
        match cg.build(resources, &mut created) {
            Ok(()) => Ok(cg),
            Err(source) => {
                let cleanup: Vec<_> = created
                    .iter()
                    .rev()
                    .filter_map(|dir| fsio::remove_tree(dir).err())
                    .collect();
                if cleanup.is_empty() {
                    Err(source)
                } else {
                    Err(CgroupError::CreateRolledBack {
                        source: Box::new(source),
                        cleanup,
                    })
                }
            }
        }
    }

    fn build(&self, res: &Resources, created: &mut Vec<PathBuf>) -> Result<(), CgroupError> {
        let swap_ignored = match &self.layout {
            Layout::V1 { dirs, unified } => {
                for d in dirs {
                    fsio::mkdirs(&d.root, &self.name, created)?;
                    if d.has("cpuset") {
                        // Every level, not only those made here: a parent
                        // made by a concurrent create may not be filled yet.
                        let levels: Vec<PathBuf> = Path::new(&self.name)
                            .ancestors()
                            .filter(|a| !a.as_os_str().is_empty())
                            .map(|a| d.root.join(a))
                            .collect();
                        let outermost_first: Vec<PathBuf> = levels.into_iter().rev().collect();
                        v1::inherit_cpuset(&outermost_first)?;
                    }
                }
                if unified.is_some() {
                    fsio::mkdirs(Path::new(HYBRID_UNIFIED), &self.name, created)?;
                }
                v1::apply(dirs, res, true)?
            }
            Layout::V2 { dir } => {
                fsio::mkdirs(Path::new(CGROUP_ROOT), &self.name, created)?;
                v2::delegate(Path::new(CGROUP_ROOT), dir);
                v2::apply(dir, res, true)?
            }
        };
        self.swap_ignored.store(swap_ignored, Ordering::Relaxed);
        Ok(())
    }

    /// The first step of a start, before the init is forked: makes the
    /// directory a `clone3(CLONE_INTO_CGROUP)` can put the init in (the
    /// v2 one; on hybrid hosts the tracking one) and opens it. None on v1
    /// hosts. Being born in a cgroup is no migration, so it never waits for
    /// an RCU grace period (see [`SelfJoin`]). [`Cgroup::create_rest`]
    /// makes everything else; [`Cgroup::destroy`] removes this one too.
    pub fn create_birth_dir(&self) -> Result<Option<OwnedFd>, CgroupError> {
        let (root, dir) = match &self.layout {
            Layout::V2 { dir } => (Path::new(CGROUP_ROOT), dir),
            Layout::V1 { unified: Some(dir), .. } => (Path::new(HYBRID_UNIFIED), dir),
            Layout::V1 { unified: None, .. } => return Ok(None),
        };
        let mut created = Vec::new();
        fsio::mkdirs(root, &self.name, &mut created)?;
        match fs::File::open(dir) {
            Ok(file) => Ok(Some(file.into())),
            Err(source) => {
                created.iter().rev().for_each(|d| {
                    let _ = fsio::remove_tree(d);
                });
                Err(CgroupError::Read {
                    path: dir.clone(),
                    source,
                })
            }
        }
    }

    /// The existing v2 directory (on hybrid hosts the tracking one),
    /// opened for `clone3(CLONE_INTO_CGROUP)`: how `exec` puts its process
    /// in the cgroup without a migration. None on v1 hosts.
    pub fn open_v2_dir(&self) -> Option<OwnedFd> {
        match &self.layout {
            Layout::V2 { dir } | Layout::V1 { unified: Some(dir), .. } => fs::File::open(dir).ok().map(OwnedFd::from),
            Layout::V1 { unified: None, .. } => None,
        }
    }

    /// The rest of [`Cgroup::create`] after [`Cgroup::create_birth_dir`]:
    /// the other directories and the limits. On failure the directories
    /// this call made are removed; the birth directory (which may hold the
    /// init) is left to the caller's [`Cgroup::destroy`].
    pub fn create_rest(&self, resources: &Resources) -> Result<(), CgroupError> {
        resources.validate()?;
        let mut created = Vec::new();
        self.build(resources, &mut created).inspect_err(|_| {
            created.iter().rev().for_each(|d| {
                let _ = fsio::remove_tree(d);
            });
        })
    }

    /// What a process needs to join this cgroup's v1 hierarchies by
    /// itself; see [`SelfJoin`].
    pub fn self_join(&self) -> SelfJoin {
        SelfJoin {
            tasks: match &self.layout {
                Layout::V1 { dirs, .. } => dirs.iter().map(|d| d.dir.join("tasks")).collect(),
                Layout::V2 { .. } => Vec::new(),
            },
        }
    }

    /// The hierarchies a container mounts under its `/sys/fs/cgroup`, as
    /// this handle found them: the init, a fork of the monitor that made
    /// the handle, needs no second reading of `/proc/self/mountinfo`.
    pub fn container_tree(&self) -> CgroupTree {
        match &self.layout {
            Layout::V2 { .. } => CgroupTree::Unified,
            Layout::V1 { dirs, .. } => CgroupTree::V1(
                dirs.iter()
                    .filter_map(|d| {
                        let name = d.root.file_name()?.to_string_lossy().into_owned();
                        Some((name, d.controllers.join(",")))
                    })
                    .collect(),
            ),
        }
    }

    /// A handle to an existing cgroup (after an engine restart). Fails with
    /// [`CgroupError::NotFound`] if the directory does not exist.
    pub fn open(name: &str) -> Result<Cgroup, CgroupError> {
        let cg = Self::handle(name)?;
        if !cg.exists() {
            return Err(CgroupError::NotFound {
                name: name.to_owned(),
                path: cg.probe(),
            });
        }
        Ok(cg)
    }

    /// A handle to `name` whether or not it exists yet (or still): finding
    /// the hierarchies costs a read of the mount table, which a caller can
    /// do before it waits for the cgroup's owner to finish.
    pub fn named(name: &str) -> Result<Cgroup, CgroupError> {
        Self::handle(name)
    }

    /// Whether the cgroup's directory exists (its memory or freezer one on
    /// v1).
    pub fn exists(&self) -> bool {
        self.probe().is_dir()
    }

    fn probe(&self) -> PathBuf {
        match &self.layout {
            Layout::V2 { dir } => dir.clone(),
            Layout::V1 { dirs, .. } => v1::dir_of(dirs, "memory")
                .or_else(|_| v1::dir_of(dirs, "freezer"))
                .map_or_else(|_| dirs[0].dir.clone(), |d| d.dir.clone()),
        }
    }

    /// The host's layout this cgroup was made for.
    pub fn hierarchy(&self) -> Hierarchy {
        self.hierarchy
    }

    /// The relative name given to `create`/`open`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether a swap limit was requested but not applied because the
    /// kernel has no swap accounting (v1 without `memory.memsw.*`, v2
    /// without `memory.swap.max`). The memory limit itself still holds.
    pub fn swap_limit_ignored(&self) -> bool {
        self.swap_ignored.load(Ordering::Relaxed)
    }

    /// Moves process `pid` (its whole thread group) into every hierarchy.
    pub fn add_task(&self, pid: i32) -> Result<(), CgroupError> {
        self.add_task_v1(pid)?;
        self.add_task_v2(pid)
    }

    /// [`Cgroup::add_task`] in the v1 hierarchies only.
    pub fn add_task_v1(&self, pid: i32) -> Result<(), CgroupError> {
        match &self.layout {
            Layout::V1 { dirs, .. } => {
                let value = pid.to_string();
                v1::procs_files(dirs)
                    .iter()
                    .try_for_each(|file| fsio::write(file, &value))
            }
            Layout::V2 { .. } => Ok(()),
        }
    }

    /// [`Cgroup::add_task`] in the v2 hierarchy only (the tracking one on
    /// hybrid hosts): for an init that was not born there.
    pub fn add_task_v2(&self, pid: i32) -> Result<(), CgroupError> {
        match &self.layout {
            Layout::V1 { unified: Some(dir), .. } | Layout::V2 { dir } => {
                fsio::write(&dir.join("cgroup.procs"), &pid.to_string())
            }
            Layout::V1 { unified: None, .. } => Ok(()),
        }
    }

    /// The `cgroup.procs` files a pid must be written to for a process to
    /// join this cgroup (e.g. `exec` into a running container).
    pub fn procs_files(&self) -> Vec<PathBuf> {
        match &self.layout {
            Layout::V1 { dirs, unified } => {
                let mut files = v1::procs_files(dirs);
                files.extend(unified.iter().map(|u| u.join("cgroup.procs")));
                files
            }
            Layout::V2 { dir } => vec![dir.join("cgroup.procs")],
        }
    }

    /// Changes the limits of a running container. Device rules are fixed
    /// at create: re-applying them needs a deny-all first on v1.
    pub fn update(&self, resources: &Resources) -> Result<(), CgroupError> {
        resources.validate()?;
        let ignored = match &self.layout {
            Layout::V1 { dirs, .. } => v1::apply(dirs, resources, false)?,
            Layout::V2 { dir } => v2::apply(dir, resources, false)?,
        };
        self.swap_ignored.store(ignored, Ordering::Relaxed);
        Ok(())
    }

    /// Freezes every process and returns once the kernel reports frozen.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        match &self.layout {
            Layout::V1 { dirs, .. } => v1::freeze(dirs),
            Layout::V2 { dir } => v2::set_frozen(dir, true),
        }
    }

    pub fn thaw(&self) -> Result<(), CgroupError> {
        match &self.layout {
            Layout::V1 { dirs, .. } => v1::thaw(dirs),
            Layout::V2 { dir } => v2::set_frozen(dir, false),
        }
    }

    /// Every process in the cgroup or its sub-cgroups, sorted.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let mut pids = Vec::new();
        for dir in self.paths() {
            fsio::procs_recursive(&dir, &mut pids)?;
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// Whether the kernel's OOM killer has killed a process of this cgroup.
    pub fn oom_killed(&self) -> bool {
        match &self.layout {
            Layout::V1 { dirs, .. } => v1::oom_killed(dirs),
            Layout::V2 { dir } => v2::oom_killed(dir),
        }
    }

    pub fn stats(&self) -> Result<CgroupStats, CgroupError> {
        match &self.layout {
            Layout::V1 { dirs, .. } => v1::stats(dirs),
            Layout::V2 { dir } => v2::stats(dir),
        }
    }

    /// Every directory this cgroup owns, in every hierarchy.
    pub fn paths(&self) -> Vec<PathBuf> {
        match &self.layout {
            Layout::V1 { dirs, unified } => dirs
                .iter()
                .map(|d| d.dir.clone())
                .chain(unified.iter().cloned())
                .collect(),
            Layout::V2 { dir } => vec![dir.clone()],
        }
    }

    fn roots(&self) -> Vec<PathBuf> {
        match &self.layout {
            Layout::V1 { dirs, unified } => dirs
                .iter()
                .map(|d| d.root.clone())
                .chain(unified.iter().map(|_| PathBuf::from(HYBRID_UNIFIED)))
                .collect(),
            Layout::V2 { .. } => vec![PathBuf::from(CGROUP_ROOT)],
        }
    }

    /// Kills every remaining process (thawing first: a frozen v1 task
    /// cannot act on SIGKILL), waits until none is left, then removes the
    /// directories in every hierarchy and any parent left empty. Best
    /// effort across hierarchies, every failure reported. Idempotent.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        let mut errors = Vec::new();
        if let Err(e) = self.kill_all() {
            errors.push(e);
        }
        for (root, dir) in self.roots().iter().zip(self.paths()) {
            match fsio::remove_tree(&dir) {
                Ok(()) => fsio::remove_empty_parents(root, &dir),
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(CgroupError::Destroy {
                name: self.name.clone(),
                errors,
            })
        }
    }

    fn kill_all(&self) -> Result<(), CgroupError> {
        match &self.layout {
            Layout::V1 { dirs, .. } if v1::is_frozen(dirs) => v1::thaw(dirs)?,
            Layout::V2 { dir } => {
                if v2::is_frozen(dir) {
                    v2::set_frozen(dir, false)?;
                }
                v2::kill(dir)?;
            }
            Layout::V1 { .. } => {}
        }
        // Signal until empty: a task may fork between our read of
        // cgroup.procs and its SIGKILL, so one pass is not enough on v1.
        let started = Instant::now();
        let mut delay = Duration::from_millis(5);
        loop {
            let pids = self.pids()?;
            if pids.is_empty() {
                return Ok(());
            }
            if started.elapsed() > KILL_TIMEOUT {
                return Err(CgroupError::Timeout {
                    path: self.paths().into_iter().next().unwrap_or_default(),
                    what: "have no processes left after SIGKILL",
                    waited_ms: started.elapsed().as_millis(),
                });
            }
            for pid in pids {
                match kill(Pid::from_raw(pid), Signal::SIGKILL) {
                    Ok(()) | Err(Errno::ESRCH) => {}
                    Err(source) => {
                        return Err(CgroupError::Kill {
                            pid,
                            path: self.paths().into_iter().next().unwrap_or_default(),
                            source,
                        })
                    }
                }
            }
            sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(100));
        }
    }
}

const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// What a container sees under `/sys/fs/cgroup` ([`Cgroup::container_tree`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupTree {
    /// One cgroup2 mount.
    Unified,
    /// A tmpfs with one mount per v1 hierarchy: its directory name there
    /// (the host's, like `cpu,cpuacct`) and its mount options (the
    /// controllers, comma-separated).
    V1(Vec<(String, String)>),
}

/// Joining v1 hierarchies without the global lock's grace period.
///
/// Every write of a pid to a `cgroup.procs` (v1 and v2) takes the global
/// `cgroup_threadgroup_rwsem` for writing, and that percpu rwsem first
/// waits a full RCU grace period unless another writer took it moments
/// before (kernel/rcu/sync.c): 7-15 ms on this host, more than the rest
/// of a container start. A single-threaded process that writes `0` (itself)
/// to a v1 `tasks` file skips that lock: the kernel only needs threadgroup
/// stability when it moves a whole group or another task
/// (kernel/cgroup/cgroup.c, `cgroup_procs_write_start`). v2 has no such
/// file for domain cgroups, hence the birth directory.
#[derive(Debug, Clone, Default)]
pub struct SelfJoin {
    tasks: Vec<PathBuf>,
}

impl SelfJoin {
    /// Moves the calling thread, which must be its process's only thread,
    /// into every v1 directory.
    pub fn join(&self) -> Result<(), CgroupError> {
        self.tasks.iter().try_for_each(|file| fsio::write(file, "0"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_container_mounts_the_hierarchies_of_its_layout() {
        let v1 = |root: &str, controllers: &[&str]| V1Dir {
            root: PathBuf::from(root),
            dir: Path::new(root).join("berth-x"),
            controllers: controllers.iter().map(|c| c.to_string()).collect(),
        };
        let cgroup = |layout| Cgroup {
            name: "berth-x".into(),
            hierarchy: Hierarchy::Hybrid,
            layout,
            swap_ignored: AtomicBool::new(false),
        };
        let hybrid = cgroup(Layout::V1 {
            dirs: vec![
                v1("/sys/fs/cgroup/cpu,cpuacct", &["cpu", "cpuacct"]),
                v1("/sys/fs/cgroup/memory", &["memory"]),
            ],
            unified: Some(PathBuf::from("/sys/fs/cgroup/unified/berth-x")),
        });
        assert_eq!(
            hybrid.container_tree(),
            CgroupTree::V1(vec![
                ("cpu,cpuacct".into(), "cpu,cpuacct".into()),
                ("memory".into(), "memory".into()),
            ])
        );
        let unified = cgroup(Layout::V2 {
            dir: PathBuf::from("/sys/fs/cgroup/berth-x"),
        });
        assert_eq!(unified.container_tree(), CgroupTree::Unified);
    }

    #[test]
    fn names_must_stay_inside_the_hierarchy() {
        for bad in ["", "/abs", "a/../b", "a//b", "./a", "a/", ".."] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["berth-1a2b3c4d/ctr", "berth-x", "a.b/c-d_e"] {
            assert!(check_name(good).is_ok(), "{good:?} rejected");
        }
    }
}

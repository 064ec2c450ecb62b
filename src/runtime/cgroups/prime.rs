//! Hiding the RCU grace period of the first cgroup migration.
//!
//! Every write to a `cgroup.procs` (v1 and v2) takes the global
//! `cgroup_threadgroup_rwsem` for writing (kernel/cgroup/cgroup.c,
//! `cgroup_attach_lock`). That percpu rwsem first switches readers to their
//! slow path with `rcu_sync_enter`, which waits a full RCU grace period
//! unless another writer did so within about one grace period before
//! (kernel/rcu/sync.c). On an idle host that wait is 10-15 ms here, more
//! than the rest of a container start; crun and runc pay it too, unless
//! started back to back, and `favordynmods` (a mount option, Linux 6.0)
//! would avoid it but is the host's choice, not ours.
//!
//! [`prime`] starts that wait early, off the critical path: a thread
//! writes this process's pid into its own cgroup (a migration that moves
//! nothing) while the CLI prepares the container and starts the monitor.
//! When the monitor moves the init a few milliseconds later, the grace
//! period has passed and its write returns in microseconds.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use super::detect::{detect, Hierarchy, CGROUP_ROOT, HYBRID_UNIFIED};

/// Starts the grace period in the background (unless a primer of this
/// process is still waiting); best effort: a failure only means the later
/// migration waits itself. It starts a thread, so it is only for callers
/// that never fork and keep running Rust afterwards (`run`, `start`; not
/// `exec`).
pub fn prime() {
    static IN_FLIGHT: AtomicBool = AtomicBool::new(false);
    if IN_FLIGHT.swap(true, Ordering::SeqCst) {
        return;
    }
    let Some(procs) = own_procs_file() else {
        IN_FLIGHT.store(false, Ordering::SeqCst);
        return;
    };
    let spawned = std::thread::Builder::new().name("cgroup-prime".into()).spawn(move || {
        let _ = std::fs::write(procs, std::process::id().to_string());
        IN_FLIGHT.store(false, Ordering::SeqCst);
    });
    if spawned.is_err() {
        IN_FLIGHT.store(false, Ordering::SeqCst);
    }
}

/// The `cgroup.procs` of this process's own cgroup in one hierarchy: the
/// unified one where there is one (the rwsem is shared by all).
fn own_procs_file() -> Option<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let (mount, prefix) = match detect() {
        Hierarchy::V2 => (PathBuf::from(CGROUP_ROOT), "0::"),
        Hierarchy::Hybrid => (PathBuf::from(HYBRID_UNIFIED), "0::"),
        Hierarchy::V1 => {
            let first = super::detect::v1_mounts().into_iter().next()?;
            let line = own.lines().find(|l| {
                l.split(':')
                    .nth(1)
                    .is_some_and(|c| c.split(',').any(|c| first.controllers.iter().any(|f| f == c)))
            })?;
            let path = line.splitn(3, ':').nth(2)?;
            return Some(
                first
                    .mount_point
                    .join(path.trim_start_matches('/'))
                    .join("cgroup.procs"),
            );
        }
    };
    let path = own.lines().find_map(|l| l.strip_prefix(prefix))?;
    Some(mount.join(path.trim_start_matches('/')).join("cgroup.procs"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_own_cgroup_file_exists() {
        if let Some(file) = super::own_procs_file() {
            assert!(file.ends_with("cgroup.procs"));
            assert!(file.exists(), "{}", file.display());
        }
    }
}

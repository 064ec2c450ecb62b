//! Forking the container's init straight into its cgroup.
//!
//! `clone3(CLONE_INTO_CGROUP)` (Linux 5.7) starts the child in a v2 cgroup:
//! no migration afterwards, so no wait for the RCU grace period every
//! `cgroup.procs` write can cost (see `cgroups::SelfJoin`). Older kernels,
//! and sandboxes whose seccomp filter answers clone3 with ENOSYS (Docker's
//! does), get a plain fork and the caller moves the child itself.

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::unistd::{fork, ForkResult, Pid};

/// `struct clone_args` up to `cgroup` (include/uapi/linux/sched.h,
/// CLONE_ARGS_SIZE_VER2): the same layout on every architecture.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// A fork, and whether the child was born in the requested cgroup.
pub struct Forked {
    pub result: ForkResult,
    pub in_cgroup: bool,
}

/// fork(2), with the child born in the v2 cgroup directory `cgroup` (an
/// open descriptor) when the kernel allows it.
///
/// # Safety
/// As for `fork`: the calling process must be single-threaded when the
/// child goes on to run anything but async-signal-safe code. The child of
/// a raw clone3 also keeps the parent's thread id in libc's thread
/// descriptor, which only `pthread_kill`/`raise` on itself would notice.
pub unsafe fn fork_into(cgroup: Option<BorrowedFd<'_>>) -> Result<Forked, Errno> {
    if let Some(dir) = cgroup {
        let args = CloneArgs {
            flags: CLONE_INTO_CGROUP,
            exit_signal: libc::SIGCHLD as u64,
            cgroup: dir.as_raw_fd() as u64,
            ..CloneArgs::default()
        };
        // SAFETY: `args` is a valid clone_args of the size passed; without
        // CLONE_VM the child gets its own copy of the address space and
        // returns here like a forked child (the caller's contract).
        let ret = unsafe { libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, size_of::<CloneArgs>()) };
        if ret == 0 {
            return Ok(Forked {
                result: ForkResult::Child,
                in_cgroup: true,
            });
        }
        if ret > 0 {
            return Ok(Forked {
                result: ForkResult::Parent {
                    child: Pid::from_raw(ret as i32),
                },
                in_cgroup: true,
            });
        }
        // Whatever the reason (ENOSYS, E2BIG before 5.7, a cgroup the
        // kernel refuses), a plain fork and a migration still work, and a
        // migration that cannot work says why with the file's name.
    }
    // SAFETY: forwarded from the caller.
    let result = unsafe { fork() }?;
    Ok(Forked {
        result,
        in_cgroup: false,
    })
}

/// Moves the calling thread to another CPU it may run on, leaving this
/// one to the process it just forked.
///
/// A forked child is queued on its parent's CPU more often than not, and
/// when the parent stays busy (the CLI creating a container while its
/// monitor loads) the child waits there for a millisecond or two while
/// the other CPU idles: the load balancer leaves recently run, cache-hot
/// tasks where they are. Narrowing this thread's affinity to the other
/// CPUs migrates it at once; restoring the old affinity right away lets
/// it stay where it landed. Best effort: with one allowed CPU, or if a
/// call fails, nothing moves.
pub fn step_aside() {
    use nix::sched::{sched_getaffinity, sched_getcpu, sched_setaffinity, CpuSet};
    let me = Pid::from_raw(0);
    let (Ok(allowed), Ok(current)) = (sched_getaffinity(me), sched_getcpu()) else {
        return;
    };
    let mut others = CpuSet::new();
    let mut any = false;
    for cpu in (0..CpuSet::count()).filter(|&cpu| cpu != current && allowed.is_set(cpu).unwrap_or(false)) {
        any |= others.set(cpu).is_ok();
    }
    if any && sched_setaffinity(me, &others).is_ok() {
        let _ = sched_setaffinity(me, &allowed);
    }
}

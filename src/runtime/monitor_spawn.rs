//! Starting a monitor process before its container exists.
//!
//! The monitor is the container's parent and outlives whoever started it,
//! so it must not be our child: a double fork makes it a grandchild that
//! init (or the nearest subreaper) adopts once the middle process exits.
//! Both forks happen here, before the exec, rather than in the monitor:
//! a fork in the monitor would come after its exec and dynamic linking,
//! which already are the slowest part of a start. The caller does not wait
//! for the exec either (std's `Command::spawn` does, to report exec
//! errors): a monitor whose exec fails says so on the sync pipe.

use std::ffi::{CString, OsString};
use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStringExt;

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::socket::{recv, send, sendmsg, socketpair, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType};
use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;
use nix::unistd::{fork, pipe2, ForkResult, Pid};

use super::lifecycle::{monitor_program, LifecycleError};
use super::monitor::{decode_orders, encode_orders, Orders};
use crate::store::Root;

/// A monitor process started before its container is ready: it loads
/// (exec, dynamic linking, runtime setup) while the CLI creates the
/// container, then waits for its orders — which container, attached or
/// not — on a pipe. Dropped without orders, it exits having made nothing.
pub struct PendingMonitor {
    /// The middle process of the double fork, exited or about to (None
    /// once reaped, and for a monitor that is our child).
    middle: Option<Pid>,
    pub(super) sync: Option<OwnedFd>,
    pub(super) orders: Option<OwnedFd>,
}

/// What the monitor's exec needs, made before the fork: after it, the
/// child of a multi-threaded caller (the engine) may only make
/// async-signal-safe calls, so nothing is allocated there.
struct ExecPlan {
    program: CString,
    /// The strings `argv_ptrs` points into.
    _argv: Vec<CString>,
    /// NULL-terminated, for execv.
    argv_ptrs: Vec<*const libc::c_char>,
    devnull: OwnedFd,
    sync: RawFd,
    orders: RawFd,
    /// Whether to fork again, so that the monitor is no child of ours.
    grandchild: bool,
}

/// Reported on the sync pipe when the exec fails (no formatting after a
/// fork).
const EXEC_FAILED: &[u8] = b"error starting the monitor: exec failed";

impl PendingMonitor {
    /// Starts `berth-monitor --await` (see [`monitor_program`]) as a
    /// grandchild: fd 3 is its sync pipe (it reports how the start went),
    /// fd 4 its orders, stdio `/dev/null`, in a session of its own.
    pub fn spawn(root: &Root) -> Result<PendingMonitor, LifecycleError> {
        Self::spawn_as(root, true)
    }

    /// [`PendingMonitor::spawn`] as a child of this process, for a caller
    /// that exits soon (the CLI), after which init adopts the monitor; a
    /// long-running caller would collect its zombies. The caller then
    /// steps aside to another CPU ([`super::fork::step_aside`]), so that
    /// the monitor loads at once, beside the caller creating the
    /// container, instead of waiting on the caller's CPU.
    pub fn spawn_child(root: &Root) -> Result<PendingMonitor, LifecycleError> {
        Self::spawn_as(root, false)
    }

    fn spawn_as(root: &Root, grandchild: bool) -> Result<PendingMonitor, LifecycleError> {
        let failed = |what: &str, e: Errno| LifecycleError::Start(format!("starting the monitor: {what}: {e}"));
        let (sync_r, sync_w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| failed("pipe", e))?;
        // A packet socket, not a pipe: the orders are one message, and a
        // network namespace can follow them as a descriptor.
        let (orders_w, orders_r) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
            .map_err(|e| failed("socketpair", e))?;
        let devnull =
            open("/dev/null", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty()).map_err(|e| failed("/dev/null", e))?;
        let program = monitor_program();
        let mut argv = vec![program.clone().into_os_string()];
        argv.extend(super::monitor::await_args(root.path()));
        let cstring =
            |s: OsString| CString::new(s.into_vec()).map_err(|_| failed("a path with a NUL byte", Errno::EINVAL));
        let argv: Vec<CString> = argv.into_iter().map(cstring).collect::<Result<_, _>>()?;
        let argv_ptrs = argv
            .iter()
            .map(|a| a.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        let plan = ExecPlan {
            program: cstring(program.into_os_string())?,
            _argv: argv,
            argv_ptrs,
            devnull,
            sync: sync_w.as_raw_fd(),
            orders: orders_r.as_raw_fd(),
            grandchild,
        };
        // SAFETY: the child only runs `exec_monitor`, which makes
        // async-signal-safe calls on data prepared above and never returns.
        match unsafe { fork() }.map_err(|e| failed("fork", e))? {
            ForkResult::Child => unsafe { exec_monitor(&plan) },
            ForkResult::Parent { child } => {
                if !grandchild {
                    super::fork::step_aside();
                }
                Ok(PendingMonitor {
                    middle: grandchild.then_some(child),
                    sync: Some(sync_r),
                    orders: Some(orders_w),
                })
            }
        }
    }

    /// Sends the orders (one packet). The monitor then waits for
    /// [`PendingMonitor::send_prepared`] (or the channel's end) before it
    /// forks the container's init.
    pub(super) fn send_orders(&mut self, orders: &Orders) -> Result<(), LifecycleError> {
        let socket = self
            .orders
            .as_ref()
            .ok_or_else(|| LifecycleError::Start("the monitor was given its orders already".into()))?;
        send(socket.as_raw_fd(), &encode_orders(orders), MsgFlags::MSG_NOSIGNAL)
            .map(drop)
            .map_err(|e| LifecycleError::Start(format!("starting the monitor: {e}")))
    }

    /// What follows the orders: the container's rootfs as a detached
    /// mount, when the caller could make it; closes the orders channel
    /// either way.
    pub(super) fn send_prepared(&mut self, rootfs: Option<BorrowedFd<'_>>) {
        let Some(socket) = self.orders.take() else { return };
        let mut kinds = Vec::new();
        let mut fds = Vec::new();
        if let Some(fd) = rootfs {
            kinds.push(PREPARED_ROOTFS);
            fds.push(fd.as_raw_fd());
        }
        if kinds.is_empty() {
            kinds.push(PREPARED_NOTHING);
        }
        let rights = [ControlMessage::ScmRights(&fds)];
        let control: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &rights };
        // A failure here is the monitor's to see: without this message it
        // mounts the rootfs itself.
        let _ = sendmsg::<()>(
            socket.as_raw_fd(),
            &[IoSlice::new(&kinds)],
            control,
            MsgFlags::MSG_NOSIGNAL,
            None,
        );
    }

    /// Reaps the middle process (it exits as soon as it has forked).
    pub(super) fn reap_middle(&mut self) {
        if let Some(pid) = self.middle.take() {
            while waitpid(pid, None) == Err(Errno::EINTR) {}
        }
    }
}

impl Drop for PendingMonitor {
    fn drop(&mut self) {
        // Without orders (or after a failed write of them) the monitor
        // reads EOF and exits; its parent is init by then. Reaping the
        // middle process leaves no zombie to an engine's failed start.
        drop(self.orders.take());
        self.reap_middle();
    }
}

/// The child's side of the fork: fork again (unless the monitor stays our
/// child), then set up the descriptors and exec. Never returns.
///
/// # Safety
/// Only for the child of a fork; it makes async-signal-safe calls only.
unsafe fn exec_monitor(plan: &ExecPlan) -> ! {
    // SAFETY (whole body): plain libc calls on valid descriptors and on
    // NUL-terminated strings that outlive them.
    unsafe {
        if plan.grandchild {
            match libc::fork() {
                0 => {}
                -1 => libc::_exit(1),
                _ => libc::_exit(0),
            }
        }
        libc::setsid();
        // An orders pipe that is fd 3 itself is moved out of the way
        // first, so that the dup2 onto 3 cannot close it.
        let orders = match plan.orders {
            3 => libc::fcntl(3, libc::F_DUPFD_CLOEXEC, 5),
            fd => fd,
        };
        let devnull = plan.devnull.as_raw_fd();
        let ok = orders >= 0
            && libc::dup2(devnull, 0) >= 0
            && libc::dup2(devnull, 1) >= 0
            && libc::dup2(devnull, 2) >= 0
            && libc::dup2(plan.sync, 3) >= 0
            && libc::dup2(orders, 4) >= 0
            // dup2 onto the same number keeps CLOEXEC: clear it here.
            && libc::fcntl(3, libc::F_SETFD, 0) >= 0
            && libc::fcntl(4, libc::F_SETFD, 0) >= 0;
        let report_to = match ok {
            true => {
                libc::execv(plan.program.as_ptr(), plan.argv_ptrs.as_ptr());
                3
            }
            false => plan.sync,
        };
        libc::write(report_to, EXEC_FAILED.as_ptr().cast(), EXEC_FAILED.len());
        libc::_exit(127)
    }
}

const PREPARED_ROOTFS: u8 = b'r';
const PREPARED_NOTHING: u8 = b'-';

/// The monitor's side of the orders channel (fd 4): the orders, and the
/// channel, on which the prepared resources follow.
///
/// A monitor that is ready before its orders makes a network namespace
/// while it waits (`fresh_netns`, half a millisecond of kernel work that
/// would otherwise delay the start): every container but a `--network
/// host` one is born in one. Orders already waiting go first.
pub fn receive_orders(socket: OwnedFd) -> Option<(Orders, PendingPrepared)> {
    let spare_netns = match orders_waiting(&socket) {
        true => None,
        false => super::fresh_netns::create().ok(),
    };
    let mut buf = vec![0u8; 8192];
    let n = loop {
        match recv(socket.as_raw_fd(), &mut buf, MsgFlags::empty()) {
            Err(Errno::EINTR) => continue,
            other => break other.ok()?,
        }
    };
    let orders = decode_orders(&buf[..n])?;
    Some((
        orders,
        PendingPrepared {
            socket,
            netns: spare_netns,
        },
    ))
}

fn orders_waiting(socket: &OwnedFd) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(socket.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
}

/// What was made for the container before its init.
#[derive(Default)]
pub struct Prepared {
    /// A fresh network namespace, `lo` up, that the monitor made while it
    /// waited for its orders (`fresh_netns`).
    pub netns: Option<OwnedFd>,
    /// The rootfs overlay, detached (`overlay_mount`).
    pub rootfs: Option<OwnedFd>,
}

/// [`Prepared`] resources: the monitor's own, and the caller's, which
/// follow the orders.
pub struct PendingPrepared {
    socket: OwnedFd,
    netns: Option<OwnedFd>,
}

impl PendingPrepared {
    /// Waits for the caller's resources; none when it had none to give
    /// (or went away).
    pub fn receive(self) -> Prepared {
        let mut prepared = Prepared {
            netns: self.netns,
            rootfs: None,
        };
        let mut kinds = [0u8; 4];
        let Ok((n, received)) = super::console::recv_with_fds(&self.socket, &mut kinds) else {
            return prepared;
        };
        for (kind, fd) in kinds[..n].iter().zip(received) {
            if *kind == PREPARED_ROOTFS {
                prepared.rootfs = Some(fd);
            }
        }
        prepared
    }
}

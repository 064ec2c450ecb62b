//! The per-container monitor: `berth __monitor`, a mode of the same binary
//! with no async runtime. It is the container's parent, so the container
//! outlives the CLI (and later the engine); it creates the cgroup, forks the
//! init, writes stdout/stderr to the log, and records the exit status and
//! OOM kills when the container ends.

use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::{unshare, CloneFlags};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, pipe2, ForkResult, Pid};

use super::cgroups::Cgroup;
use super::config::{ContainerState, Status};
use super::container::{now_rfc3339, Container};
use super::init::{self, ChildFds};
use super::logs::LogWriter;
use crate::store::Root;

/// The first line the monitor writes to its sync fd: how the start went.
pub const SYNC_OK: &str = "ok";
pub const SYNC_ERROR: &str = "error";

/// Runs the monitor for the container in `dir`; `sync` receives one line,
/// `ok <pid>` or `error <message>`, once the start has succeeded or failed.
pub fn run(root: &Root, dir: &Path, sync: Option<OwnedFd>) -> i32 {
    // Daemonize: the CLI reaps this first process at once, and the monitor
    // proper is adopted by init, so no caller ever collects a zombie.
    // SAFETY: freshly exec'd and single-threaded, so forking is sound.
    match unsafe { fork() } {
        Ok(ForkResult::Parent { .. }) => return 0,
        Ok(ForkResult::Child) => {}
        Err(_) => return 1,
    }
    let mut sync = sync.map(fs::File::from);
    let mut report = |line: String| {
        if let Some(f) = sync.as_mut() {
            let _ = f.write_all(line.as_bytes());
        }
    };
    let container = match Container::open(dir) {
        Ok(c) => c,
        Err(e) => {
            report(format!("{SYNC_ERROR} {e}"));
            return 1;
        }
    };
    match start(root, &container) {
        Ok(running) => {
            report(format!("{SYNC_OK} {}", running.child));
            drop(sync);
            supervise(&container, running)
        }
        Err(message) => {
            let mut state = container.state().unwrap_or_else(|_| ContainerState::created());
            state.status = Status::Created;
            state.error = Some(message.clone());
            let _ = container.save_state(&state);
            report(format!("{SYNC_ERROR} {message}"));
            1
        }
    }
}

struct Running {
    child: Pid,
    cgroup: Cgroup,
    stdout: OwnedFd,
    stderr: OwnedFd,
    log: LogWriter,
}

fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("creating pipe: {e}"))
}

fn start(root: &Root, container: &Container) -> Result<Running, String> {
    let config = &container.config;
    let log = LogWriter::open(&container.log_path(), config.log_max_size, config.log_max_files)
        .map_err(|e| format!("opening log {}: {e}", container.log_path().display()))?;
    let cgroup = Cgroup::create(&Container::cgroup_name(&root.tag(), &config.id), &config.resources)
        .map_err(|e| e.to_string())?;
    let spawned = super::faults::fail_point("cgroup").and_then(|()| spawn(container, &cgroup));
    match spawned {
        Ok((child, stdout, stderr)) => Ok(Running {
            child,
            cgroup,
            stdout,
            stderr,
            log,
        }),
        Err(message) => {
            let _ = cgroup.destroy();
            Err(message)
        }
    }
}

/// Forks the init as pid 1 of a new pid namespace, puts it in the cgroup,
/// and waits for its exec (or its error).
fn spawn(container: &Container, cgroup: &Cgroup) -> Result<(Pid, OwnedFd, OwnedFd), String> {
    let (go_r, go_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (out_r, out_w) = pipe()?;
    let (errout_r, errout_w) = pipe()?;
    // The next child is pid 1 of a new pid namespace; the monitor itself
    // stays in the host's.
    unshare(CloneFlags::CLONE_NEWPID).map_err(|e| format!("creating pid namespace: {e}"))?;
    // SAFETY: the monitor is a freshly exec'd single-threaded process, so
    // the child may run Rust code (no lock can be held by another thread).
    match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            drop((go_w, err_r, out_r, errout_r));
            init::run(
                &container.config,
                &container.dir,
                ChildFds {
                    go: go_r,
                    error: err_w,
                    stdin: None,
                    stdout: out_w,
                    stderr: errout_w,
                },
            )
        }
        ForkResult::Parent { child } => {
            drop((go_r, err_w, out_w, errout_w));
            if let Err(e) = cgroup.add_task(child.as_raw()) {
                let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                let _ = waitpid(child, None);
                return Err(e.to_string());
            }
            drop(go_w);
            let mut message = String::new();
            let _ = fs::File::from(err_r).read_to_string(&mut message);
            if !message.is_empty() {
                let _ = waitpid(child, None);
                return Err(message);
            }
            let mut state = ContainerState::created();
            state.status = Status::Running;
            state.pid = Some(child.as_raw());
            state.monitor_pid = Some(std::process::id() as i32);
            state.started_at = Some(now_rfc3339());
            container.save_state(&state).map_err(|e| e.to_string())?;
            Ok((child, out_r, errout_r))
        }
    }
}

/// Copies output to the log until the container exits, then records how.
fn supervise(container: &Container, mut running: Running) -> i32 {
    let mut open = [true, true];
    let mut status = None;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let fds: Vec<(usize, RawFd)> = [(0, running.stdout.as_raw_fd()), (1, running.stderr.as_raw_fd())]
            .into_iter()
            .filter(|(i, _)| open[*i])
            .collect();
        if !fds.is_empty() {
            let borrowed: Vec<OwnedFdRef> = fds.iter().map(|(_, fd)| OwnedFdRef(*fd)).collect();
            let mut polls: Vec<PollFd> = borrowed
                .iter()
                .map(|fd| PollFd::new(fd.as_fd(), PollFlags::POLLIN))
                .collect();
            let _ = poll(&mut polls, PollTimeout::from(200u16));
            let ready: Vec<bool> = polls
                .iter()
                .map(|p| p.revents().is_some_and(|r| !r.is_empty()))
                .collect();
            for ((stream, fd), is_ready) in fds.iter().zip(ready) {
                if !is_ready {
                    continue;
                }
                // SAFETY: `fd` belongs to `running` and stays open; the
                // ManuallyDrop wrapper keeps this File from closing it.
                let mut file = std::mem::ManuallyDrop::new(unsafe { fs::File::from_raw_fd(*fd) });
                match file.read(&mut buf) {
                    Ok(0) | Err(_) => open[*stream] = false,
                    Ok(n) => {
                        let _ = running.log.write(*stream, &buf[..n]);
                    }
                }
            }
        } else if status.is_none() {
            std::thread::sleep(Duration::from_millis(50));
        }
        if status.is_none() {
            status = match waitpid(running.child, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(_, code)) => Some(code),
                Ok(WaitStatus::Signaled(_, signal, _)) => Some(128 + signal as i32),
                Ok(_) => None,
                Err(_) => Some(255),
            };
        }
        // Output is drained once both pipes closed (the pid namespace dies
        // with its pid 1, so nothing can keep them open after exit).
        if let (Some(code), [false, false]) = (status, open) {
            return finish(container, running, code);
        }
    }
}

/// A borrowed raw fd that can hand out `BorrowedFd`s for poll.
struct OwnedFdRef(RawFd);

impl AsFd for OwnedFdRef {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        // SAFETY: the descriptor is owned by `Running` and outlives this
        // short-lived wrapper.
        unsafe { std::os::fd::BorrowedFd::borrow_raw(self.0) }
    }
}

fn finish(container: &Container, mut running: Running, code: i32) -> i32 {
    let _ = running.log.flush();
    let oom_killed = running.cgroup.oom_killed();
    let _ = running.cgroup.destroy();
    let mut state = container.state().unwrap_or_else(|_| ContainerState::created());
    state.status = Status::Exited;
    state.pid = None;
    state.monitor_pid = None;
    state.exit_code = Some(code);
    state.finished_at = Some(now_rfc3339());
    state.oom_killed = oom_killed;
    let _ = container.save_state(&state);
    if container.config.auto_remove {
        let _ = fs::remove_dir_all(&container.dir);
    }
    code
}

//! Container lifecycle operations the CLI (and later the engine) drive:
//! create, start, stop, kill, pause, unpause, remove, wait.

use std::fs;
use std::io::Read;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use thiserror::Error;

use super::attach::AttachClient;
use super::cgroups::Cgroup;
use super::config::{ContainerConfig, ContainerState, Status};
use super::container::{self, Container, ContainerError};
use super::monitor::{Orders, SYNC_ERROR, SYNC_LISTENING, SYNC_OK};
use crate::store::Root;

#[derive(Debug, Error)]
pub enum LifecycleError {
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error("{0}")]
    Start(String),
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("container {0} is paused; unpause it first")]
    Paused(String),
    #[error("you cannot remove a running container {0}: stop the container before attempting removal or force remove")]
    RemoveRunning(String),
    #[error("invalid signal {0:?}")]
    Signal(String),
    /// Removed by its monitor at exit (`run --rm -d`) before its exit
    /// code was read.
    #[error("container {0} was removed when it exited")]
    RemovedAtExit(String),
    #[error("removing the volumes of container {id}: {source}")]
    Volumes {
        id: String,
        #[source]
        source: crate::volume::VolumeError,
    },
    #[error("{action} container {id}: {message}")]
    Operation {
        action: &'static str,
        id: String,
        message: String,
    },
}

/// Registers a new container; the name must be free.
pub fn create(root: &Root, config: ContainerConfig) -> Result<Container, LifecycleError> {
    root.ensure()
        .map_err(|e| LifecycleError::Start(format!("preparing {}: {e}", root.path().display())))?;
    let _lock = root
        .lock("containers")
        .map_err(|e| LifecycleError::Start(format!("locking containers: {e}")))?;
    if let Some(existing) = container::list(root)?
        .into_iter()
        .find(|c| c.config.name == config.name)
    {
        return Err(ContainerError::NameInUse {
            name: config.name,
            id: existing.config.id,
        }
        .into());
    }
    let container = Container::create(root, config)?;
    if let Err(e) = write_etc_files(root, &container) {
        let _ = fs::remove_dir_all(&container.dir);
        return Err(e);
    }
    Ok(container)
}

/// /etc/hostname, /etc/hosts and /etc/resolv.conf, bind-mounted into the
/// container as docker does, so the image's own files stay untouched. The
/// hosts file is `network::hosts`'s: own lines plus live peers.
fn write_etc_files(root: &Root, container: &Container) -> Result<(), LifecycleError> {
    let c = &container.config;
    let host_resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    // The gateway's DNS only while an engine serves it (`network::dns`).
    let resolv = match crate::network::dns::nameserver_for(root, c) {
        Some(gateway) => crate::network::resolv::render_served(&host_resolv, gateway, &c.dns_search, &c.dns_options),
        None => crate::network::resolv::render(&host_resolv, &c.dns, &c.dns_search, &c.dns_options),
    };
    for (name, content) in [("hostname", format!("{}\n", c.hostname)), ("resolv.conf", resolv)] {
        let path = container.dir.join(name);
        fs::write(&path, content).map_err(|e| LifecycleError::Start(format!("writing {}: {e}", path.display())))?;
    }
    crate::network::hosts::write_own(root, container).map_err(|e| LifecycleError::Start(e.to_string()))
}

/// The exit is recorded before the monitor's cleanup (cgroup, veths, attach
/// socket), so that waiters learn it at once; a new run of the same
/// container reuses those names and must not race that cleanup.
fn wait_monitor_gone(state: &ContainerState) {
    let Some(pid) = state.monitor_pid else { return };
    let deadline = Instant::now() + Duration::from_secs(10);
    // The monitor is no child of ours, but a pidfd still turns readable
    // the moment it exits: `down` waits for every monitor, so a sleep
    // between checks would add half its period to each removal.
    let exit_fd = super::monitor::pidfd(Pid::from_raw(pid));
    while super::container::process_alive(pid) && !is_zombie_or_other(pid) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match &exit_fd {
            Some(fd) => {
                readable_within(fd, left.min(Duration::from_millis(100)));
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// A recycled pid that is no longer a berth monitor, or one that is dead
/// but not reaped by its parent (the engine, for restarts): done.
fn is_zombie_or_other(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next());
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    state == Some('Z') || !String::from_utf8_lossy(&cmdline).contains(super::monitor::MONITOR_VERB)
}

/// The lower layers of a running container's overlay, lowest first: the
/// image's, then the root's init layer (`Root::init_layer`) when it can
/// be made (without it, the init creates the mount points in the upper
/// dir).
pub fn container_layers(root: &Root, config: &ContainerConfig) -> Vec<std::path::PathBuf> {
    config.layers.iter().cloned().chain(root.init_layer().ok()).collect()
}

/// The running berth binary, for the processes it starts (monitor, probes,
/// engine): exec of this path reaches the running inode even when the file
/// it came from was replaced or deleted.
pub const SELF_EXE: &str = "/proc/self/exe";

/// The dedicated monitor binary, installed beside `berth`.
const MONITOR_EXE: &str = "berth-monitor";

/// The program that runs a container's monitor: `berth-monitor` beside the
/// running binary when it is there (a small binary, since one stays
/// resident per container), else the running binary itself, whose hidden
/// `__monitor` verb is the same code.
pub fn monitor_program() -> std::path::PathBuf {
    let beside = fs::read_link(SELF_EXE)
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(MONITOR_EXE)));
    match beside {
        Some(path) if path.is_file() => path,
        _ => SELF_EXE.into(),
    }
}

/// Starts the container's monitor and waits until the command has been
/// exec'd (or failed). Returns the container's host pid.
pub fn start(root: &Root, container: &Container) -> Result<i32, LifecycleError> {
    start_with(root, container, false).map(|(pid, _)| pid)
}

/// Like [`start`], attached from the first byte: the monitor holds the
/// command until this client is connected.
pub fn start_attached(root: &Root, container: &Container) -> Result<(i32, AttachClient), LifecycleError> {
    let (pid, client) = start_with(root, container, true)?;
    client
        .map(|c| (pid, c))
        .ok_or_else(|| LifecycleError::Start("attaching failed".into()))
}

fn start_with(root: &Root, container: &Container, attach: bool) -> Result<(i32, Option<AttachClient>), LifecycleError> {
    start_pending(root, container, attach, PendingMonitor::spawn(root)?)
}

pub use super::monitor_spawn::PendingMonitor;

/// [`start`] with a monitor [`PendingMonitor::spawn`]ed earlier (`run`
/// starts it before it creates the container).
pub fn start_pending(
    root: &Root,
    container: &Container,
    attach: bool,
    mut pending: PendingMonitor,
) -> Result<(i32, Option<AttachClient>), LifecycleError> {
    let state = container.state()?;
    match state.status {
        Status::Running => return Ok((state.pid.unwrap_or_default(), None)),
        Status::Paused => return Err(LifecycleError::Paused(container.config.name.clone())),
        _ => {}
    }
    wait_monitor_gone(&state);
    // Peers that started since create: the command must find them at once.
    crate::network::hosts::write_own(root, container).map_err(|e| LifecycleError::Start(e.to_string()))?;
    // The rootfs mount is made here while the monitor makes the network
    // namespace (`monitor_spawn::receive_orders`), and follows the
    // orders; if it fails here the init mounts it.
    pending.send_orders(&Orders {
        dir: container.dir.clone(),
        attach,
    })?;
    let config = &container.config;
    let layers = container_layers(root, config);
    let (upper, work) = (container.dir.join("upper"), container.dir.join("work"));
    let sync = super::rootfs::UpperSync::for_container(config);
    let rootfs = super::overlay_mount::detached(&layers, &upper, &work, sync).ok();
    pending.send_prepared(rootfs.as_ref().map(|m| m.as_fd()));
    drop(rootfs);
    let sync_r = pending
        .sync
        .take()
        .ok_or_else(|| LifecycleError::Start("the monitor was started already".into()))?;
    pending.reap_middle();
    let mut sync_file = fs::File::from(sync_r);
    // The monitor says when its attach socket listens, before its reply;
    // a monitor that failed first sends only the reply.
    let mut first = [0u8; 1];
    let first = match sync_file.read(&mut first) {
        Ok(1) if first[0] == SYNC_LISTENING => Vec::new(),
        Ok(n) => first[..n].to_vec(),
        Err(_) => Vec::new(),
    };
    let (client, attach_error) = match attach && first.is_empty() {
        true => match AttachClient::connect(&container.dir, 1) {
            Ok(client) => (Some(client), None),
            Err(e) => (None, Some(e)),
        },
        false => (None, None),
    };
    let mut rest = Vec::new();
    let _ = sync_file.read_to_end(&mut rest);
    let reply = String::from_utf8_lossy(&[first, rest].concat()).into_owned();
    finish_start(container, reply, client, attach_error)
}

fn finish_start(
    container: &Container,
    reply: String,
    client: Option<AttachClient>,
    attach_error: Option<std::io::Error>,
) -> Result<(i32, Option<AttachClient>), LifecycleError> {
    let (kind, rest) = reply.split_once(' ').unwrap_or((reply.as_str(), ""));
    match kind {
        SYNC_OK => match (client, attach_error) {
            (None, Some(e)) => Err(LifecycleError::Start(format!(
                "attaching to {}: {e}",
                container.config.name
            ))),
            (client, _) => rest
                .trim()
                .parse()
                .map(|pid| (pid, client))
                .map_err(|_| LifecycleError::Start(format!("unexpected monitor reply {reply:?}"))),
        },
        SYNC_ERROR => Err(LifecycleError::Start(rest.trim().to_string())),
        _ => Err(LifecycleError::Start(format!(
            "the monitor of {} exited without reporting",
            container.config.name
        ))),
    }
}

pub fn parse_signal(name: &str) -> Result<Signal, LifecycleError> {
    if let Ok(n) = name.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| LifecycleError::Signal(name.into()));
    }
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    full.parse().map_err(|_| LifecycleError::Signal(name.into()))
}

/// Sends a signal to the container's pid 1.
pub fn kill_container(container: &Container, signal: Signal) -> Result<(), LifecycleError> {
    let state = container.state()?;
    let pid = match (state.status, state.pid) {
        (Status::Running | Status::Paused, Some(pid)) => pid,
        _ => return Err(LifecycleError::NotRunning(container.config.name.clone())),
    };
    kill(Pid::from_raw(pid), signal).map_err(|e| LifecycleError::Operation {
        action: "signalling",
        id: container.config.name.clone(),
        message: e.to_string(),
    })
}

/// Waits until the monitor has recorded the exit; `None` on timeout.
pub fn wait_exit(container: &Container, timeout: Option<Duration>) -> Result<Option<i32>, LifecycleError> {
    let started = Instant::now();
    // The init's pidfd wakes us the moment the command dies; the monitor
    // records the exit right after. `down` stops one dependency level after
    // another, so every poll period would be paid once per level.
    // Opened at the first wait (`None` inside: no pidfd to be had).
    let mut init_exit: Option<Option<std::os::fd::OwnedFd>> = None;
    loop {
        let state = match container.state() {
            Err(e) if container.config.auto_remove && e.is_gone() => {
                return Err(LifecycleError::RemovedAtExit(container.config.name.clone()))
            }
            state => state?,
        };
        match state.status {
            Status::Exited | Status::Created => return Ok(Some(state.exit_code.unwrap_or(0))),
            Status::Dead => return Ok(Some(state.exit_code.unwrap_or(137))),
            _ => {}
        }
        if timeout.is_some_and(|t| started.elapsed() >= t) {
            return Ok(None);
        }
        let init_exit =
            init_exit.get_or_insert_with(|| state.pid.and_then(|pid| super::monitor::pidfd(Pid::from_raw(pid))));
        match init_exit {
            Some(fd) if !readable_within(fd, Duration::from_millis(2)) => {}
            // Exited (or no pidfd): the exit record follows within moments.
            _ => std::thread::sleep(Duration::from_micros(300)),
        }
    }
}

/// Whether `fd` turns readable within `wait` (a pidfd: the process exited).
fn readable_within(fd: &std::os::fd::OwnedFd, wait: Duration) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    let timeout = PollTimeout::try_from(wait).unwrap_or(PollTimeout::ZERO);
    matches!(poll(&mut fds, timeout), Ok(n) if n > 0)
}

/// The stop signal, then SIGKILL after `timeout` (pid 1 ignores signals
/// it has no handler for, so this is how such containers end, as in docker).
pub fn stop(root: &Root, container: &Container, timeout: Duration) -> Result<(), LifecycleError> {
    let state = container.state()?;
    if !matches!(state.status, Status::Running | Status::Paused) {
        return Ok(());
    }
    mark_stopped_by_user(container)?;
    if state.status == Status::Paused {
        let _ = thaw_with(root, container);
    }
    let signal = parse_signal(&container.config.stop_signal)?;
    let _ = kill_container(container, signal);
    let stopped = match wait_exit(container, Some(timeout)) {
        Ok(None) => {
            let _ = kill_container(container, Signal::SIGKILL);
            wait_exit(container, Some(Duration::from_secs(30))).map(drop)
        }
        other => other.map(drop),
    };
    match stopped {
        // Stopped, and removed by its monitor as it asked (`run --rm -d`).
        Err(LifecycleError::RemovedAtExit(_)) => Ok(()),
        other => other,
    }
}

/// `restart`: stops the container (if it runs) and starts it again; one
/// that its monitor would remove at exit (`run --rm -d`) is kept.
pub fn restart(root: &Root, container: &Container, timeout: Duration) -> Result<(), LifecycleError> {
    let mut state = container.state()?;
    if matches!(state.status, Status::Running | Status::Paused) {
        state.restarting = true;
        container.save_state(&state)?;
    }
    stop(root, container, timeout)?;
    start(root, container).map(drop)
}

fn mark_stopped_by_user(container: &Container) -> Result<(), LifecycleError> {
    let mut state = container.state()?;
    state.stopped_by_user = true;
    container.save_state(&state)?;
    Ok(())
}

fn cgroup(root: &Root, container: &Container) -> Result<Cgroup, LifecycleError> {
    Cgroup::open(&Container::cgroup_name(&root.tag(), &container.config.id)).map_err(|e| LifecycleError::Operation {
        action: "opening the cgroup of",
        id: container.config.name.clone(),
        message: e.to_string(),
    })
}

pub fn pause(root: &Root, container: &Container) -> Result<(), LifecycleError> {
    let mut state = container.state()?;
    match state.status {
        Status::Running => {}
        Status::Paused => return Err(LifecycleError::Paused(container.config.name.clone())),
        _ => return Err(LifecycleError::NotRunning(container.config.name.clone())),
    }
    cgroup(root, container)?
        .freeze()
        .map_err(|e| LifecycleError::Operation {
            action: "pausing",
            id: container.config.name.clone(),
            message: e.to_string(),
        })?;
    state.status = Status::Paused;
    container.save_state(&state)?;
    Ok(())
}

pub fn unpause(root: &Root, container: &Container) -> Result<(), LifecycleError> {
    let mut state = container.state()?;
    if state.status != Status::Paused {
        return Err(LifecycleError::Operation {
            action: "unpausing",
            id: container.config.name.clone(),
            message: "it is not paused".into(),
        });
    }
    thaw_with(root, container)?;
    state.status = Status::Running;
    container.save_state(&state)?;
    Ok(())
}

fn thaw_with(root: &Root, container: &Container) -> Result<(), LifecycleError> {
    cgroup(root, container)?.thaw().map_err(|e| LifecycleError::Operation {
        action: "unpausing",
        id: container.config.name.clone(),
        message: e.to_string(),
    })
}

/// Removes a container; `force` kills a running one first. A container
/// whose monitor died is cleaned up too (cgroup, directory).
pub fn remove(root: &Root, container: &Container, force: bool) -> Result<(), LifecycleError> {
    let state = container.state()?;
    if matches!(state.status, Status::Running | Status::Paused) {
        if !force {
            return Err(LifecycleError::RemoveRunning(container.config.name.clone()));
        }
        if state.status == Status::Paused {
            let _ = thaw_with(root, container);
        }
        let _ = kill_container(container, Signal::SIGKILL);
        let ended = wait_exit(container, Some(Duration::from_secs(30)));
        if container.config.auto_remove && !matches!(ended, Ok(None)) {
            // Its monitor removes it (`run --rm -d`): done once the
            // monitor is gone, unless it left the directory behind.
            wait_monitor_gone(&state);
            if !container.dir.exists() {
                return Ok(());
            }
        }
        match ended {
            Err(LifecycleError::RemovedAtExit(_)) => {}
            other => other.map(drop)?,
        }
    }
    remove_after_exit(root, container)
}

/// Removes a container that has ended. Its state may not say so yet when
/// the caller learnt the exit from the monitor (`run --rm`): the monitor
/// of a throwaway container reports the exit before it records it.
pub fn remove_after_exit(root: &Root, container: &Container) -> Result<(), LifecycleError> {
    let state = container.state().ok();
    // The directory leaves the list at once (a rename) and is deleted
    // while the monitor takes down the cgroup and links on the other CPU;
    // `rm` returns only once the monitor is gone too (a residue check
    // right after `rm` must find nothing), and what the monitor wrote
    // meanwhile (its exit record) goes last.
    let hidden = container.hide(root)?;
    let removed = remove_container_entries(&hidden);
    let cgroup = Cgroup::named(&Container::cgroup_name(&root.tag(), &container.config.id)).ok();
    if let Some(state) = &state {
        wait_monitor_gone(state);
    }
    let removed = removed.and_then(|()| match fs::remove_dir_all(&hidden) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    });
    // Normally gone with the monitor; removed here after one that died.
    if let Some(cg) = cgroup.filter(Cgroup::exists) {
        let _ = cg.destroy();
    }
    // Normally done by the monitor at exit; repeated for one that died.
    let _ = crate::network::endpoint::detach(root, &container.config);
    removed.map_err(|e| LifecycleError::Operation {
        action: "removing",
        id: container.config.name.clone(),
        message: e.to_string(),
    })
}

/// Deletes what a (hidden) container directory holds, not the directory
/// itself, on the calling thread. Helper threads (one per subdirectory,
/// to overlap the synchronous discards of this host's ext4) measured
/// slower: while the monitor takes down the cgroup and exits on the other
/// CPU, new threads wait for a CPU longer than the rmdirs take.
fn remove_container_entries(dir: &std::path::Path) -> std::io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    entries.flatten().try_for_each(|entry| {
        let removed = match entry.file_type().is_ok_and(|t| t.is_dir()) {
            true => fs::remove_dir_all(entry.path()),
            false => fs::remove_file(entry.path()),
        };
        match removed {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    })
}

/// `run --rm` once the exit code is in: [`remove_after_exit`], then the
/// anonymous volumes as [`remove_with_volumes`] does.
pub fn remove_after_exit_with_volumes(root: &Root, container: &Container) -> Result<(), LifecycleError> {
    remove_after_exit(root, container)?;
    remove_anonymous_volumes(root, &container.config)
}

/// `rm -v` (and a `run` that failed to start): removes the container,
/// then its anonymous volumes no other container uses (named volumes
/// stay, as in docker).
pub fn remove_with_volumes(root: &Root, container: &Container, force: bool) -> Result<(), LifecycleError> {
    remove(root, container, force)?;
    remove_anonymous_volumes(root, &container.config)
}

/// The anonymous volumes of a removed container (also called by the
/// monitor for `run --rm -d`).
pub fn remove_anonymous_volumes(root: &Root, config: &ContainerConfig) -> Result<(), LifecycleError> {
    if crate::volume::volumes_of(config).next().is_none() {
        return Ok(());
    }
    let volumes_error = |source| LifecycleError::Volumes {
        id: config.name.clone(),
        source,
    };
    let store = crate::volume::VolumeStore::open(root).map_err(volumes_error)?;
    let locked = store.lock().map_err(volumes_error)?;
    locked.remove_anonymous_of(config).map_err(volumes_error)
}

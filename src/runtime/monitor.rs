//! The per-container monitor: `berth __monitor`, a mode of the same binary
//! with no async runtime. It is the container's parent, so the container
//! outlives the CLI (and later the engine); it creates the cgroup, forks the
//! init, writes stdout/stderr to the log, serves attach clients, and
//! records the exit status and OOM kills when the container ends.

use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{pipe2, ForkResult, Pid};

use super::attach::{self, FrameKind};
use super::cgroups::Cgroup;
use super::config::{ContainerState, HookStage, NetworkMode, Status};
use super::container::{now_rfc3339, Container};
use super::fork::fork_into;
use super::init::{self, ChildFds, ChildStdio};
use super::logs::LogWriter;
use super::monitor_spawn::PendingPrepared;
use super::{console, seccomp};
use crate::store::Root;

/// The first line the monitor writes to its sync fd: how the start went.
pub const SYNC_OK: &str = "ok";
pub const SYNC_ERROR: &str = "error";
/// Written to the sync fd before the reply once the attach socket listens
/// (a client may connect from then on).
pub const SYNC_LISTENING: u8 = b'+';

/// How long a start that waits for an attach client waits for it.
const ATTACH_WAIT: Duration = Duration::from_secs(10);

/// The monitor's command line (`lifecycle::PendingMonitor` starts it
/// before its container exists): `--root ROOT __monitor --await`; it reads
/// its orders ([`encode_orders`]) from fd 4. The verb stays in the command
/// line of the dedicated binary too, which is how a pid is recognised as a
/// monitor (`lifecycle::is_zombie_or_other`).
pub fn await_args(root: &Path) -> Vec<std::ffi::OsString> {
    vec!["--root".into(), root.into(), MONITOR_VERB.into(), AWAIT.into()]
}

const AWAIT: &str = "--await";

/// What a monitor is told to do once its container exists. A second
/// message always follows: what the caller prepared for the container
/// while this monitor was loading (`monitor_spawn::Prepared`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orders {
    /// The container's directory.
    pub dir: std::path::PathBuf,
    /// Hold the command until a client attaches.
    pub attach: bool,
}

/// Orders on the wire (one packet): `1`/`0` (attach), then the container
/// directory's bytes.
pub fn encode_orders(orders: &Orders) -> Vec<u8> {
    let mut bytes = vec![if orders.attach { b'1' } else { b'0' }];
    bytes.extend_from_slice(orders.dir.as_os_str().as_bytes());
    bytes
}

/// The inverse of [`encode_orders`]; `None` for anything else (no orders:
/// the CLI gave up before the container existed).
pub(super) fn decode_orders(bytes: &[u8]) -> Option<Orders> {
    let (attach, dir) = bytes.split_first()?;
    let attach = match attach {
        b'1' => true,
        b'0' => false,
        _ => return None,
    };
    (!dir.is_empty()).then(|| Orders {
        dir: std::ffi::OsStr::from_bytes(dir).into(),
        attach,
    })
}

/// The hidden verb that names a monitor's command line.
pub const MONITOR_VERB: &str = "__monitor";

/// Runs the monitor when this process's arguments are [`await_args`]'
/// form; `None` otherwise.
pub fn main_from_args() -> Option<std::process::ExitCode> {
    status_from_args().map(std::process::ExitCode::from)
}

fn status_from_args() -> Option<u8> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let root = parse_args(&args)?;
    // SAFETY: fd 4 is the orders socket `lifecycle::PendingMonitor` set up
    // for us; nothing else owns it.
    let socket = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(4) };
    let Some((orders, prepared)) = super::monitor_spawn::receive_orders(socket) else {
        return Some(1);
    };
    // SAFETY: fd 3 is the sync pipe the starting CLI set up for us (see
    // runtime::lifecycle::start); nothing else owns it.
    let sync = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(3) };
    let root = Root::new(&root);
    let code = run(&root, &orders.dir, Some(sync), orders.attach, prepared);
    Some(u8::try_from(code.clamp(0, 255)).unwrap_or(1))
}

/// The inverse of [`await_args`]: the root.
fn parse_args(args: &[std::ffi::OsString]) -> Option<std::path::PathBuf> {
    match args {
        [flag, root, verb, wait] if flag == "--root" && verb == MONITOR_VERB && wait == AWAIT => Some(root.into()),
        _ => None,
    }
}

/// The dedicated monitor binary's `main`: its exit status.
pub fn main() -> u8 {
    status_from_args().unwrap_or_else(|| {
        eprintln!("berth-monitor is started by berth itself: berth-monitor --root ROOT __monitor --await");
        2
    })
}

/// Runs the monitor for the container in `dir`; `sync` receives
/// [`SYNC_LISTENING`] once the attach socket listens, then one line,
/// `ok <pid>` or `error <message>`, once the start has succeeded or failed.
/// With `wait_attach` the command is held until a client has attached, so
/// a foreground `run -i`/`-t` sees every byte of output.
pub fn run(root: &Root, dir: &Path, sync: Option<OwnedFd>, wait_attach: bool, prepared: PendingPrepared) -> i32 {
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
    // The attach socket listens before the CLI hears SYNC_LISTENING, so an
    // attaching CLI connects at its first try instead of sleeping between
    // retries.
    let listener = match listen(&container.dir) {
        Ok(l) => l,
        Err(message) => {
            record_failure(&container, &message);
            report(format!("{SYNC_ERROR} {message}"));
            return 1;
        }
    };
    report(char::from(SYNC_LISTENING).to_string());
    match start(root, &container, listener, wait_attach, prepared) {
        Ok(mut running) => {
            report(format!("{SYNC_OK} {}", running.child));
            drop(sync);
            if wait_attach {
                if let Err(message) = record_running(root, &container, running.child) {
                    // Nothing runs unrecorded: the attached caller sees why
                    // and the exit that follows.
                    let line = format!("berth: recording the start failed: {message}\n");
                    broadcast(
                        &mut running.clients,
                        &attach::encode(FrameKind::Stderr, line.as_bytes()),
                    );
                    let _ = nix::sys::signal::kill(running.child, nix::sys::signal::Signal::SIGKILL);
                }
            }
            supervise(root, &container, running)
        }
        Err(message) => {
            record_failure(&container, &message);
            report(format!("{SYNC_ERROR} {message}"));
            1
        }
    }
}

/// A failed start leaves the container created, with the reason.
fn record_failure(container: &Container, message: &str) {
    let _ = fs::remove_file(attach::socket_path(&container.dir));
    let mut state = container.state().unwrap_or_else(|_| ContainerState::created());
    state.status = Status::Created;
    state.error = Some(message.to_owned());
    let _ = container.save_state(&state);
}

/// The container's stdio as the monitor sees it.
struct Stdio {
    /// Output sources: (0 = stdout, 1 = stderr, fd). A tty has one.
    outputs: Vec<(usize, OwnedFd)>,
    /// Where client stdin goes: the stdin pipe, or the pty master.
    input: Option<OwnedFd>,
    /// The pty master, for resizes.
    master: Option<RawFd>,
}

struct Running {
    child: Pid,
    cgroup: Cgroup,
    stdio: Stdio,
    log: LogWriter,
    listener: UnixListener,
    clients: Vec<Client>,
    /// Published ports' forwarder (`super::ports::proxy`).
    ports: super::ports::proxy::Proxy,
}

struct Client {
    stream: UnixStream,
    buffer: Vec<u8>,
}

fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("creating pipe: {e}"))
}

fn start(
    root: &Root,
    container: &Container,
    listener: UnixListener,
    wait_attach: bool,
    prepared: PendingPrepared,
) -> Result<Running, String> {
    let config = &container.config;
    let log = LogWriter::open(&container.log_path(), config.log_max_size, config.log_max_files)
        .map_err(|e| format!("opening log {}: {e}", container.log_path().display()))?;
    // Host ports are bound before anything else exists, so a port taken
    // since create fails the start cleanly.
    let ports = bind_ports(config)?;
    if !config.hooks.is_empty() {
        super::hooks::write_bundle(config, &container.dir).map_err(|e| e.to_string())?;
    }
    let (child, cgroup, stdio, clients) = spawn(root, container, &listener, wait_attach, prepared)?;
    // A failed poststart hook is a warning (runtime spec), put where the
    // container's user looks: its log.
    let mut log = log;
    let warnings = super::hooks::warnings_for(config, &container.dir, HookStage::Poststart, Some(child.as_raw()));
    if !warnings.is_empty() {
        let _ = log.write(1, warnings.as_bytes());
    }
    Ok(Running {
        child,
        cgroup,
        stdio,
        log,
        listener,
        clients,
        ports,
    })
}

fn bind_ports(config: &super::config::ContainerConfig) -> Result<super::ports::proxy::Proxy, String> {
    let target = match config.networks.first() {
        Some(first) => first.address,
        None if config.ports.is_empty() => std::net::Ipv4Addr::UNSPECIFIED,
        None => return Err("published ports need a bridge network".into()),
    };
    super::ports::proxy::Proxy::bind(&config.ports, target).map_err(|e| format!("{:#}", anyhow::Error::from(e)))
}

fn listen(dir: &Path) -> Result<UnixListener, String> {
    let path = attach::socket_path(dir);
    let _ = fs::remove_file(&path);
    let listener = attach::with_socket_path(dir, |short| UnixListener::bind(short))
        .map_err(|e| format!("creating {}: {e}", path.display()))?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("securing {}: {e}", path.display()))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("configuring {}: {e}", path.display()))?;
    Ok(listener)
}

/// The monitor's side of a container's stdio before the init runs.
enum Pending {
    Ready(Stdio),
    /// `-t`: the init sends the pty master over this socket.
    Console(OwnedFd),
}

/// The child's stdio and the monitor's ends of it. A tty is allocated by
/// the init from the container's own devpts (`init::setup_console`).
fn stdio_pair(tty: bool, interactive: bool) -> Result<(ChildStdio, Pending), String> {
    if tty {
        let (ours, theirs) = console::socket_pair().map_err(|e| format!("creating the console socket: {e}"))?;
        return Ok((ChildStdio::Console(theirs), Pending::Console(ours)));
    }
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (child_in, input) = if interactive {
        let (r, w) = pipe()?;
        (Some(r), Some(w))
    } else {
        (None, None)
    };
    Ok((
        ChildStdio::Pipes {
            stdin: child_in,
            stdout: out_w,
            stderr: err_w,
        },
        Pending::Ready(Stdio {
            outputs: vec![(0, out_r), (1, err_r)],
            input,
            master: None,
        }),
    ))
}

/// The monitor's side of a console: the master the init sent.
fn console_stdio(socket: &OwnedFd) -> Result<Option<Stdio>, String> {
    let Some(master) = console::recv_fd(socket).map_err(|e| format!("receiving the pty: {e}"))? else {
        return Ok(None);
    };
    let input = master.try_clone().map_err(|e| format!("pty: {e}"))?;
    let raw = master.as_raw_fd();
    Ok(Some(Stdio {
        outputs: vec![(0, master)],
        input: Some(input),
        master: Some(raw),
    }))
}

/// Forks the init as pid 1 of a new pid namespace, makes its cgroup while
/// the init builds its rootfs, puts it in the cgroup,
/// optionally waits for a client, and waits for its exec (or its error).
fn spawn(
    root: &Root,
    container: &Container,
    listener: &UnixListener,
    wait_attach: bool,
    prepared: PendingPrepared,
) -> Result<(Pid, Cgroup, Stdio, Vec<Client>), String> {
    let (go_r, go_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (child_stdio, pending) = stdio_pair(container.config.tty, container.config.interactive)?;
    let seccomp = match container.config.privileged {
        true => None,
        false => seccomp::compile_cached(
            &(&container.config.seccomp).into(),
            &container.config.capabilities,
            &seccomp::cache_dir(root.path()),
        )
        .map_err(|e| format!("seccomp: {e}"))?,
    };
    // The next child is pid 1 of a new pid namespace; the monitor itself
    // stays in the host's. A bridged container is also born in a network
    // namespace of its own, so that it exists (and is plumbed) before the
    // init is released: the monitor enters a new one for the fork and goes
    // back to the host's right after (it is single-threaded, so `setns`
    // moves the whole process).
    let bridged = container.config.network == NetworkMode::Bridge;
    // What the caller made while this monitor was loading: a fresh
    // network namespace (`fresh_netns`), which the init is born in instead
    // of making one, and the rootfs (`overlay_mount`), which it attaches
    // instead of mounting: about a millisecond of its start together.
    let prepared = prepared.receive();
    let given_netns = match container.config.network {
        NetworkMode::Host => None,
        NetworkMode::None | NetworkMode::Bridge => prepared.netns,
    };
    let given_rootfs = prepared.rootfs;
    // Only an init without the mount mounts the overlay itself.
    let layers = match given_rootfs {
        Some(_) => Vec::new(),
        None => super::lifecycle::container_layers(root, &container.config),
    };
    let host_netns = match bridged || given_netns.is_some() {
        true => {
            Some(fs::File::open("/proc/self/ns/net").map_err(|e| format!("opening the host network namespace: {e}"))?)
        }
        false => None,
    };
    let host_pidns = super::hooks::save_pid_namespace(&container.config)?;
    let config = &container.config;
    // The init is born in the cgroup's v2 directory and joins the v1 ones
    // itself: neither is a migration that waits for an RCU grace period.
    config.resources.validate().map_err(|e| e.to_string())?;
    let cgroup = Cgroup::named(&Container::cgroup_name(&root.tag(), &config.id)).map_err(|e| e.to_string())?;
    let birth_dir = cgroup.create_birth_dir().map_err(|e| e.to_string())?;
    let mut flags = CloneFlags::CLONE_NEWPID;
    let born_in_netns = given_netns
        .as_ref()
        .is_some_and(|ns| setns(ns, CloneFlags::CLONE_NEWNET).is_ok());
    if bridged && !born_in_netns {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    // SAFETY: the monitor is a freshly exec'd single-threaded process, so
    // the child may run Rust code (no lock can be held by another thread).
    let forked = unshare(flags)
        .map_err(|e| format!("creating pid/network namespaces: {e}"))
        .and_then(|()| unsafe { fork_into(birth_dir.as_ref().map(|d| d.as_fd())) }.map_err(|e| format!("fork: {e}")))
        .inspect_err(|_| {
            let _ = cgroup.destroy();
        })?;
    drop(birth_dir);
    match forked.result {
        ForkResult::Child => {
            drop((go_w, err_r, pending, host_netns, host_pidns, given_netns));
            // `given_rootfs` goes to the init.
            init::run(
                &container.config,
                &container.dir,
                ChildFds {
                    go: go_r,
                    cgroup: cgroup.self_join(),
                    cgroup_tree: cgroup.container_tree(),
                    netns_ready: born_in_netns,
                    rootfs: given_rootfs,
                    layers,
                    error: err_w,
                    stdio: child_stdio,
                    seccomp,
                },
            )
        }
        ForkResult::Parent { child } => {
            drop((go_r, err_w, child_stdio, seccomp));
            let init_errors = fs::File::from(err_r);
            // The init builds its rootfs meanwhile: when it failed first
            // (so that, say, a hook found no process), its own message is
            // the one that explains.
            let abort = |message: String| {
                let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                let _ = waitpid(child, None);
                let mut reported = String::new();
                let _ = (&init_errors).read_to_string(&mut reported);
                if reported.is_empty() {
                    message
                } else {
                    reported
                }
            };
            let released = |message: String| {
                let _ = cgroup.destroy();
                let _ = crate::network::endpoint::detach_links(config);
                message
            };
            if let Some(netns) = &host_netns {
                setns(netns, CloneFlags::CLONE_NEWNET)
                    .map_err(|e| released(abort(format!("returning to the host network namespace: {e}"))))?;
            }
            super::hooks::restore_pid_namespace(host_pidns.as_ref()).map_err(|e| released(abort(e)))?;
            // The init has its copy; ours would keep the overlay mounted
            // (and its work directory "in use") for the monitor's life.
            drop((given_netns, given_rootfs));
            // The init builds its rootfs meanwhile (overlay, /proc, /dev,
            // its terminal); on two CPUs that overlaps with making the
            // rest of the cgroup, which the init joins before it runs
            // anything of the container's.
            let placed = cgroup
                .create_rest(&config.resources)
                .map_err(|e| e.to_string())
                .and_then(|()| super::faults::fail_point("cgroup"))
                .and_then(|()| {
                    crate::network::endpoint::claim(root, config).map_err(|e| format!("{:#}", anyhow::Error::from(e)))
                })
                .and_then(|()| match forked.in_cgroup {
                    true => Ok(()),
                    false => cgroup.add_task_v2(child.as_raw()).map_err(|e| e.to_string()),
                })
                // Hooks may look the container up by its cgroup (the
                // NVIDIA legacy hook does): it is put there before them.
                .and_then(|()| match config.hooks.is_empty() {
                    true => Ok(()),
                    false => cgroup.add_task_v1(child.as_raw()).map_err(|e| e.to_string()),
                })
                .and_then(|()| {
                    crate::network::endpoint::attach(root, config, child.as_raw())
                        .map_err(|e| format!("{:#}", anyhow::Error::from(e)))
                })
                // The container's process, cgroup and network exist; its
                // init waits on `go` before it enters its cgroup namespace.
                .and_then(|()| {
                    super::hooks::run_for(config, &container.dir, HookStage::CreateRuntime, Some(child.as_raw()))
                        .map_err(|e| e.to_string())
                })
                .and_then(|()| match wait_attach {
                    true => accept_within(listener, ATTACH_WAIT).map(|client| vec![client]),
                    false => Ok(Vec::new()),
                });
            let clients = placed.map_err(|message| released(abort(message)))?;
            drop(go_w);
            // A console arrives before the exec; EOF without one means the
            // init failed first, and the error pipe says why.
            let stdio = match pending {
                Pending::Ready(stdio) => Some(stdio),
                Pending::Console(socket) => console_stdio(&socket).map_err(|m| released(abort(m)))?,
            };
            let mut message = String::new();
            let _ = (&init_errors).read_to_string(&mut message);
            if !message.is_empty() {
                let _ = waitpid(child, None);
                return Err(released(message));
            }
            let stdio = stdio.ok_or_else(|| released(abort("the init sent no terminal".to_string())))?;
            // An attached caller learns the start from the reply and reads
            // no state before the exit, so its record follows the reply
            // (`run`), off the start's critical path. Anyone else may look
            // at once (`run -d` then `ls`): the record comes first.
            if !wait_attach {
                record_running(root, container, child).map_err(|e| released(abort(e)))?;
            }
            Ok((child, cgroup, stdio, clients))
        }
    }
}

/// Records the container as running, and its address in its peers'
/// hosts files.
fn record_running(root: &Root, container: &Container, child: Pid) -> Result<(), String> {
    let mut state = ContainerState::created();
    state.status = Status::Running;
    state.pid = Some(child.as_raw());
    state.monitor_pid = Some(std::process::id() as i32);
    state.started_at = Some(now_rfc3339());
    container.save_state(&state).map_err(|e| e.to_string())?;
    let _ = crate::network::hosts::refresh_for_container(root, container);
    Ok(())
}

fn accept_within(listener: &UnixListener, timeout: Duration) -> Result<Client, String> {
    let mut polls = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
    let millis = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
    match poll(&mut polls, PollTimeout::from(millis)) {
        Ok(n) if n > 0 => {}
        _ => return Err("no client attached in time".into()),
    }
    let (stream, _) = listener
        .accept()
        .map_err(|e| format!("accepting the attach client: {e}"))?;
    Ok(Client {
        stream,
        buffer: Vec::new(),
    })
}

/// How long the container is left alone before the monitor drops what it
/// only needed to start it ([`release_startup_pages`]).
const SETTLE_MILLIS: u16 = 50;

/// The shortest time between two such releases (each reads smaps).
const RESETTLE: Duration = Duration::from_secs(10);

/// Copies output to the log and clients until the container exits, then
/// records how.
fn supervise(root: &Root, container: &Container, mut running: Running) -> i32 {
    // A pidfd becomes readable when the child exits, so the exit is seen at
    // once rather than at the next poll timeout (output EOF comes slightly
    // before the child is reapable).
    let exit_fd = pidfd(running.child);
    let mut open: Vec<bool> = vec![true; running.stdio.outputs.len()];
    let mut status = None;
    let mut buf = vec![0u8; 16 * 1024];
    // The start's pages are dropped at the first quiet moment, not before
    // the first poll: a short command's exit is then noticed at once.
    let mut settled = false;
    let mut release = false;
    let mut released_at = std::time::Instant::now();
    loop {
        // Poll set: outputs still open, the listener, the clients.
        let output_fds: Vec<(usize, usize, RawFd)> = running
            .stdio
            .outputs
            .iter()
            .enumerate()
            .filter(|(i, _)| open[*i])
            .map(|(i, (stream, fd))| (i, *stream, fd.as_raw_fd()))
            .collect();
        let client_fds: Vec<RawFd> = running.clients.iter().map(|c| c.stream.as_raw_fd()).collect();
        let mut fds: Vec<RawFd> = output_fds.iter().map(|(_, _, fd)| *fd).collect();
        fds.push(running.listener.as_raw_fd());
        fds.extend(&client_fds);
        if let (Some(fd), None) = (&exit_fd, status) {
            fds.push(fd.as_raw_fd());
        }
        let port_fds = running.ports.poll_fds();
        // With a pidfd the exit wakes the poll, so a quiet container leaves
        // the monitor asleep (and its code pages untouched) until something
        // happens; only UDP session expiry, or a kernel without pidfds,
        // needs a timeout.
        let timeout = match (status, settled) {
            (Some(_), _) => PollTimeout::ZERO,
            (None, false) => PollTimeout::from(SETTLE_MILLIS),
            (None, true) if exit_fd.is_some() && !running.ports.has_timers() => PollTimeout::NONE,
            (None, true) => PollTimeout::from(200u16),
        };
        let (ready, port_ready) = poll_ready(&fds, &port_fds, timeout, std::mem::take(&mut release));
        let quiet = status.is_none() && !port_ready.iter().any(|(_, r)| !r.is_empty()) && !ready.contains(&true);
        // Activity (output, clients, traffic) faults code back in: drop it
        // again at the next quiet moment, at most every RESETTLE.
        if !quiet && settled && released_at.elapsed() >= RESETTLE {
            settled = false;
        }
        if quiet && !settled {
            released_at = std::time::Instant::now();
            // Nothing happened: back to sleep, dropping the start's pages
            // right before the poll (see `poll_ready`).
            settled = true;
            release = true;
            continue;
        }
        running.ports.handle(&port_ready);

        for (slot, (index, stream, fd)) in output_fds.iter().enumerate() {
            if !ready[slot] {
                continue;
            }
            match read_fd(*fd, &mut buf) {
                Some(n) if n > 0 => {
                    let _ = running.log.write(*stream, &buf[..n]);
                    let kind = if *stream == 0 {
                        FrameKind::Stdout
                    } else {
                        FrameKind::Stderr
                    };
                    broadcast(&mut running.clients, &attach::encode(kind, &buf[..n]));
                }
                // EOF, or EIO on a pty whose last slave closed.
                _ => open[*index] = false,
            }
        }
        if ready[output_fds.len()] {
            if let Ok((stream, _)) = running.listener.accept() {
                running.clients.push(Client {
                    stream,
                    buffer: Vec::new(),
                });
            }
        }
        let first_client = output_fds.len() + 1;
        let mut gone = Vec::new();
        for (i, is_ready) in ready[first_client..first_client + client_fds.len()].iter().enumerate() {
            if *is_ready && !serve_client(&mut running, i, &mut buf) {
                gone.push(i);
            }
        }
        for i in gone.into_iter().rev() {
            running.clients.remove(i);
        }

        if status.is_none() {
            status = match waitpid(running.child, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(_, code)) => Some(code),
                Ok(WaitStatus::Signaled(_, signal, _)) => Some(128 + signal as i32),
                Ok(_) => None,
                Err(_) => Some(255),
            };
        }
        // Output is drained once every source closed (the pid namespace
        // dies with its pid 1, so nothing can keep pipes open after exit;
        // a pty reads EIO once its last slave is gone).
        if let Some(code) = status {
            if open.iter().all(|o| !o) {
                return finish(root, container, running, code);
            }
        }
    }
}

/// Unmaps the file pages the start touched.
///
/// Starting a container faults in (with the kernel's 64 KiB fault-around)
/// much of the monitor's code and read-only data (about 4 MiB when the
/// monitor was the whole berth binary), which would then count in every
/// monitor's RSS although the supervise loop needs a small part of them. `MADV_DONTNEED` on a private
/// file mapping drops its page table entries; pages that were never
/// written are still in the page cache, and the next access maps them
/// again with a minor fault (madvise(2)). Written (copy-on-write) pages
/// would be lost, as in the relocated `.data.rel.ro`, so only mappings
/// whose smaps entry says `Anonymous: 0 kB` are released: every resident
/// page of those is a clean page of the file. Nothing runs concurrently
/// (the monitor is single-threaded), so that stays true until the call.
fn release_startup_pages() {
    let Ok(smaps) = fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    // All ranges first, then every madvise in one tight loop: parsing after
    // a release would fault the parser's code straight back in.
    let mut clean: Vec<(usize, usize)> = Vec::new();
    let mut mapping: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else { continue };
        if let Some((start, end)) = first.split_once('-') {
            // A mapping header: range, perms, offset, device, inode, path.
            let perms = fields.next().unwrap_or_default();
            let inode = fields.nth(2);
            let path = fields.next();
            let file_backed = inode.is_some_and(|inode| inode != "0") && path.is_some();
            let range = usize::from_str_radix(start, 16)
                .ok()
                .zip(usize::from_str_radix(end, 16).ok());
            mapping = match range {
                Some(range) if file_backed && perms.ends_with('p') && !perms.contains('w') => Some(range),
                _ => None,
            };
            continue;
        }
        if first == "Anonymous:" {
            if let (Some(range), Some("0")) = (mapping.take(), fields.next()) {
                clean.push(range);
            }
        }
    }
    drop(smaps);
    // The start's allocations (configuration, smaps text) are freed: hand
    // the heap's free pages back instead of keeping them resident.
    // SAFETY: glibc's malloc_trim only releases free memory.
    unsafe { libc::malloc_trim(0) };
    for (start, end) in clean {
        // SAFETY: [start, end) is a whole private, read-only file mapping
        // of this process with no anonymous (modified) pages: dropping its
        // PTEs changes no contents.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
    }
}

/// `pidfd_open(2)` (Linux 5.3); `None` on older kernels, where the poll
/// timeout bounds how late an exit is noticed.
pub(crate) fn pidfd(pid: Pid) -> Option<OwnedFd> {
    // SAFETY: a plain syscall; on success the kernel returns a new fd that
    // we take ownership of.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    let fd = RawFd::try_from(fd).ok().filter(|fd| *fd >= 0)?;
    // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
    Some(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// Which of `fds` are readable (or hung up) within `millis`, and the
/// events of `extra` (polled for their own flags) in the same wait.
/// With `release`, [`release_startup_pages`] runs last before the poll, so
/// that only the few code pages between it and the syscall come back.
fn poll_ready(
    fds: &[RawFd],
    extra: &[(RawFd, PollFlags)],
    timeout: PollTimeout,
    release: bool,
) -> (Vec<bool>, Vec<(RawFd, PollFlags)>) {
    // SAFETY: every descriptor is owned by `Running` for the whole call.
    let borrow = |fd: &RawFd| unsafe { BorrowedFd::borrow_raw(*fd) };
    let mut polls: Vec<PollFd> = fds
        .iter()
        .map(|fd| PollFd::new(borrow(fd), PollFlags::POLLIN))
        .collect();
    polls.extend(extra.iter().map(|(fd, flags)| PollFd::new(borrow(fd), *flags)));
    if release {
        release_startup_pages();
    }
    let _ = poll(&mut polls, timeout);
    let events: Vec<PollFlags> = polls
        .iter()
        .map(|p| p.revents().unwrap_or(PollFlags::empty()))
        .collect();
    let ready = events[..fds.len()].iter().map(|r| !r.is_empty()).collect();
    let extra = extra
        .iter()
        .zip(&events[fds.len()..])
        .map(|((fd, _), r)| (*fd, *r))
        .collect();
    (ready, extra)
}

fn read_fd(fd: RawFd, buf: &mut [u8]) -> Option<usize> {
    // SAFETY: reading into a live buffer from a descriptor we own.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    usize::try_from(n).ok()
}

fn broadcast(clients: &mut Vec<Client>, frame: &[u8]) {
    // A client that cannot keep up or went away is dropped, never waited on.
    clients.retain_mut(|c| c.stream.write_all(frame).is_ok());
}

/// Handles one readable client; `false` when it disconnected.
fn serve_client(running: &mut Running, index: usize, buf: &mut [u8]) -> bool {
    let client = &mut running.clients[index];
    let n = match client.stream.read(buf) {
        Ok(0) | Err(_) => return false,
        Ok(n) => n,
    };
    client.buffer.extend_from_slice(&buf[..n]);
    let Ok(frames) = attach::decode(&mut client.buffer) else {
        return false;
    };
    for (kind, payload) in frames {
        match kind {
            FrameKind::Stdin => {
                if let Some(input) = &running.stdio.input {
                    write_all(input, &payload);
                }
            }
            // Without a tty, the container sees EOF (docker's StdinOnce);
            // a tty has no such notion.
            FrameKind::StdinEof if running.stdio.master.is_none() => running.stdio.input = None,
            FrameKind::Resize => resize(running.stdio.master, &payload),
            _ => {}
        }
    }
    true
}

fn write_all(fd: &OwnedFd, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(0) | Err(_) => return,
            Ok(n) => bytes = &bytes[n..],
        }
    }
}

fn resize(master: Option<RawFd>, payload: &[u8]) {
    let (Some(master), [r0, r1, c0, c1]) = (master, payload) else {
        return;
    };
    let size = libc::winsize {
        ws_row: u16::from_be_bytes([*r0, *r1]),
        ws_col: u16::from_be_bytes([*c0, *c1]),
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ with a pointer to a live winsize.
    unsafe { libc::ioctl(master, libc::TIOCSWINSZ, &size) };
}

fn finish(root: &Root, container: &Container, mut running: Running, code: i32) -> i32 {
    let report = |clients: &mut Vec<Client>| {
        broadcast(clients, &attach::encode(FrameKind::Exit, &code.to_be_bytes()));
        clients.clear();
    };
    // A throwaway container that its attached `run` removes is reported
    // at once: that caller needs no record (`lifecycle::remove_after_exit`)
    // and returns only once this monitor is gone, its ports closed.
    let removed_by_caller = container.config.removed_on_exit && !container.config.auto_remove;
    if removed_by_caller {
        report(&mut running.clients);
    }
    let _ = running.log.flush();
    // The host ports are free again before the exit is recorded, so
    // whoever waited for it can bind them at once.
    running.ports.close();
    let oom_killed = running.cgroup.oom_killed();
    let mut state = container.state().unwrap_or_else(|_| ContainerState::created());
    let remove = container.config.auto_remove && !state.restarting;
    state.status = Status::Exited;
    state.pid = None;
    // Kept: whoever starts the container again waits for this monitor to
    // finish its cleanup below (same cgroup and veth names).
    state.exit_code = Some(code);
    state.finished_at = Some(now_rfc3339());
    state.oom_killed = oom_killed;
    let _ = container.save_state(&state);
    let _ = crate::network::hosts::refresh_for_container(root, container);
    // Other attached clients learn the exit as soon as it is recorded
    // (they may look at the state next), and cleanup below does not delay
    // them.
    if !removed_by_caller {
        report(&mut running.clients);
    }
    let _ = running.cgroup.destroy();
    let _ = crate::network::endpoint::detach_links(&container.config);
    let warnings = super::hooks::warnings_for(&container.config, &container.dir, HookStage::Poststop, None);
    if !warnings.is_empty() {
        let _ = running.log.write(1, warnings.as_bytes());
        let _ = running.log.flush();
    }
    let _ = fs::remove_file(attach::socket_path(&container.dir));
    if remove {
        let store = crate::network::NetworkStore::new(root);
        for a in &container.config.networks {
            let _ = store.release_address(&a.network, &container.config.id);
        }
        // Out of the list at once, as `rm` does: a listing in between
        // must not find it half removed.
        let _ = container.hide(root).map(fs::remove_dir_all);
        // `--rm` takes the container's anonymous volumes with it.
        let _ = super::lifecycle::remove_anonymous_volumes(root, &container.config);
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_round_trips() {
        let args = await_args(Path::new("/var/lib/berth"));
        assert_eq!(parse_args(&args), Some("/var/lib/berth".into()));
    }

    #[test]
    fn orders_round_trip_and_nothing_else_is_orders() {
        for attach in [false, true] {
            let orders = Orders {
                dir: "/var/lib/my berth/containers/abc".into(),
                attach,
            };
            assert_eq!(decode_orders(&encode_orders(&orders)), Some(orders));
        }
        assert_eq!(decode_orders(b""), None);
        assert_eq!(decode_orders(b"1"), None);
        assert_eq!(decode_orders(b"x/dir"), None);
    }

    #[test]
    fn other_command_lines_are_not_the_monitor() {
        let os = |v: &[&str]| v.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        assert!(parse_args(&os(&["--root", "/r", "ps", "--await"])).is_none());
        assert!(parse_args(&os(&["--root", "/r", "__monitor", "/d"])).is_none());
        assert!(parse_args(&os(&["--root", "/r", "__monitor", "--await", "--bogus"])).is_none());
        assert!(parse_args(&os(&["--root", "/r", "__monitor"])).is_none());
        assert!(parse_args(&os(&["-f", "/r", "__monitor", "--await"])).is_none());
    }
}

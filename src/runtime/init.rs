//! The container's init: runs in the monitor's forked child, which is pid 1
//! of the new pid namespace, and turns it into the container process.
//!
//! The monitor is a freshly exec'd, single-threaded berth, so forking it and
//! running Rust in the child is safe (never fork the multi-threaded engine).
//! The order follows youki/runc (see docs/runtime.md): namespaces, rootfs,
//! pivot_root, masked paths, sysctls, user, seccomp, capabilities, exec.

use std::ffi::CString;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::sched::{unshare, CloneFlags};
use nix::sys::resource::{setrlimit, Resource};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::stat::{umask, Mode};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{execve, fork, setresgid, setresuid, ForkResult, Gid, Pid, Uid};

use super::cgroups::{CgroupTree, SelfJoin};
use super::config::{ContainerConfig, HookStage, NetworkMode};
use super::hooks;
use super::rootfs::{self, cstring};
use super::seccomp;
use super::user;

/// What the child gets from the monitor: descriptors, and the seccomp
/// filter (compiled or loaded from the cache by the monitor; `None` for
/// privileged or unconfined containers).
pub struct ChildFds {
    /// Closed by the monitor once the child's cgroup and network are ready.
    pub go: OwnedFd,
    /// How the child joins its cgroup's v1 hierarchies itself after `go`
    /// (it is born in the v2 one).
    pub cgroup: SelfJoin,
    /// Its cgroups as it mounts them (`Cgroup::container_tree`).
    pub cgroup_tree: CgroupTree,
    /// Born in its own network namespace, `lo` up (`fresh_netns`): a
    /// `--network none` init makes none.
    pub netns_ready: bool,
    /// The rootfs overlay as a detached mount (`overlay_mount`), to attach
    /// instead of mounting it.
    pub rootfs: Option<OwnedFd>,
    /// The overlay's lower layers when it mounts it itself
    /// (`lifecycle::container_layers`).
    pub layers: Vec<std::path::PathBuf>,
    /// CLOEXEC: closes silently on a successful exec; carries the error
    /// text otherwise.
    pub error: OwnedFd,
    pub stdio: ChildStdio,
    pub seccomp: Option<seccomp::CompiledFilter>,
}

/// The container's stdio, as the monitor hands it over.
pub enum ChildStdio {
    /// Pipes from the monitor (no stdin: `/dev/null`).
    Pipes {
        stdin: Option<OwnedFd>,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
    /// `-t`: the init allocates a pty from the container's own devpts once
    /// it is mounted, and sends the master back over this socket
    /// (`super::console`).
    Console(OwnedFd),
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Never returns: execs the container command or exits 127 after writing
/// the reason to the error pipe.
pub fn run(config: &ContainerConfig, dir: &Path, fds: ChildFds) -> ! {
    let ChildFds {
        go,
        cgroup,
        cgroup_tree,
        netns_ready,
        rootfs,
        layers,
        error,
        stdio,
        seccomp,
    } = fds;
    let own_netns = config.network == NetworkMode::None && !netns_ready;
    let prepared = Prepared {
        own_netns,
        rootfs,
        layers,
    };
    let message = match setup_and_exec(
        config,
        dir,
        (go, (cgroup, cgroup_tree), prepared),
        error.as_raw_fd(),
        stdio,
        seccomp,
    ) {
        Ok(never) => match never {},
        Err(message) => message,
    };
    let mut pipe = fs::File::from(error);
    let _ = pipe.write_all(message.as_bytes());
    std::process::exit(127)
}

enum Never {}

/// What the init does differently for what the monitor was handed.
struct Prepared {
    /// `--network none` and no namespace given: make one.
    own_netns: bool,
    /// The detached rootfs mount, if given.
    rootfs: Option<OwnedFd>,
    /// The lower layers, to mount it otherwise.
    layers: Vec<std::path::PathBuf>,
}

fn setup_and_exec(
    config: &ContainerConfig,
    dir: &Path,
    (go, (cgroup, cgroup_tree), prepared): (OwnedFd, (SelfJoin, CgroupTree), Prepared),
    error_fd: RawFd,
    stdio: ChildStdio,
    filter: Option<seccomp::CompiledFilter>,
) -> Result<Never, String> {
    // Everything up to `go` needs neither the cgroup nor the cgroup
    // namespace, so it runs while the monitor makes the cgroup and plumbs
    // the network: milliseconds of each start that overlap.
    nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
    let console = match stdio {
        ChildStdio::Pipes { stdin, stdout, stderr } => {
            redirect_stdio(stdin, &stdout, &stderr)?;
            None
        }
        ChildStdio::Console(socket) => Some(socket),
    };
    umask(Mode::empty());

    let mut flags = CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC;
    if prepared.own_netns {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    unshare(flags).map_err(|e| format!("creating namespaces: {e}"))?;
    rootfs::make_root_rslave().map_err(|e| format!("making / rslave: {e}"))?;
    if prepared.own_netns {
        super::fresh_netns::bring_up_loopback();
    }

    let rootfs = dir.join("rootfs");
    match &prepared.rootfs {
        Some(mount) => super::overlay_mount::attach(mount, &rootfs),
        None => rootfs::mount_overlay(
            &prepared.layers,
            &dir.join("upper"),
            &dir.join("work"),
            rootfs::UpperSync::for_container(config),
            &rootfs,
        ),
    }
    .map_err(|e| e.to_string())?;
    drop(prepared.rootfs);
    super::faults::fail_point("mount")?;
    let passwd = fs::read_to_string(rootfs::scoped_join(&rootfs, "/etc/passwd")).unwrap_or_default();
    let group = fs::read_to_string(rootfs::scoped_join(&rootfs, "/etc/group")).unwrap_or_default();
    let identity = user::resolve(&config.user, &passwd, &group, &config.group_add).map_err(|e| e.to_string())?;
    rootfs::mount_defaults(&rootfs, config).map_err(|e| e.to_string())?;
    if let Some(socket) = console {
        setup_console(&rootfs, socket, identity.uid)?;
    }

    // Wait until the monitor has made the cgroup (EOF on `go`) and join
    // it: the cgroup namespace takes the cgroup we are in as its root.
    let mut buf = [0u8; 1];
    let _ = fs::File::from(go).read(&mut buf);
    cgroup.join().map_err(|e| format!("joining the cgroup: {e}"))?;
    unshare(CloneFlags::CLONE_NEWCGROUP).map_err(|e| format!("creating the cgroup namespace: {e}"))?;
    rootfs::mount_cgroup_tree(&rootfs, config, &cgroup_tree).map_err(|e| e.to_string())?;
    let etc_files = [
        (dir.join("hostname"), "/etc/hostname"),
        (dir.join("hosts"), "/etc/hosts"),
        (dir.join("resolv.conf"), "/etc/resolv.conf"),
    ];
    rootfs::mount_user_mounts(&rootfs, config, &etc_files).map_err(|e| e.to_string())?;
    // Before pivot_root the host's /proc is still mounted at /proc, and it
    // names processes in the host's pid namespace: the pid hooks expect.
    let host_pid = host_pid();
    // The rootfs and its device nodes and mounts are in place and the
    // host's binaries still resolve: where nvidia-cdi-hook runs.
    hooks::run_for(config, dir, HookStage::CreateContainer, Some(host_pid)).map_err(|e| e.to_string())?;
    let env = environment(config, &identity.home);

    rootfs::pivot(&rootfs).map_err(|e| e.to_string())?;
    super::faults::fail_point("pivot_root")?;
    // Inside the container's root now: paths resolve as they will for its
    // command, and no symlink can leave it.
    let _ = fs::create_dir_all(&config.working_dir);
    let program = find_program(&config.args, &env)?;
    rootfs::apply_sysctls(&config.sysctls).map_err(|e| e.to_string())?;
    if !config.privileged {
        rootfs::mask_paths().map_err(|e| e.to_string())?;
        rootfs::readonly_paths().map_err(|e| e.to_string())?;
    }
    if config.read_only {
        rootfs::remount_root_readonly().map_err(|e| e.to_string())?;
    }
    nix::unistd::sethostname(&config.hostname).map_err(|e| format!("setting hostname: {e}"))?;
    if let Some(domain) = &config.domainname {
        set_domainname(domain)?;
    }
    apply_rlimits(config)?;
    nix::unistd::chdir(config.working_dir.as_str()).map_err(|e| format!("chdir to {}: {e}", config.working_dir))?;
    close_other_fds_at_exec(error_fd);
    reset_signals();
    // Resolved in the container's filesystem now; still root with every
    // capability, before seccomp and the user switch below.
    hooks::run_for(config, dir, HookStage::StartContainer, Some(host_pid)).map_err(|e| e.to_string())?;

    if config.no_new_privileges {
        nix::sys::prctl::set_no_new_privs().map_err(|e| format!("setting no_new_privs: {e}"))?;
    }
    let caps: Vec<String> = config.capabilities.clone();

    if config.init {
        fork_init_supervisor()?;
    }
    // Without no_new_privs the filter can only be loaded with
    // CAP_SYS_ADMIN, so it goes in before the user switch drops it.
    if let Some(filter) = &filter {
        filter
            .install()
            .map_err(|e| format!("installing seccomp filter: {e}"))?;
    }
    let set = caps.into_iter().collect();
    super::caps::drop_bounding(&set).map_err(|e| e.to_string())?;
    switch_user(&identity)?;
    super::caps::set_process_caps(&set).map_err(|e| e.to_string())?;

    let argv: Vec<CString> = config
        .args
        .iter()
        .map(|a| cstring(a))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let envp: Vec<CString> = env
        .iter()
        .map(|e| cstring(e))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let program = cstring(&program).map_err(|e| e.to_string())?;
    super::faults::fail_point("exec")?;
    match execve(&program, &argv, &envp) {
        Ok(never) => match never {},
        Err(errno) => Err(format!(
            "exec: {:?}: {errno}",
            config.args.first().cloned().unwrap_or_default()
        )),
    }
}

/// `-t`: a pty from the container's devpts (mounted by `mount_defaults`)
/// becomes stdio and the controlling terminal, and is bound on
/// `/dev/console` (runc `setupConsole`/`mountConsole`); the master goes
/// to the monitor.
fn setup_console(rootfs: &Path, socket: OwnedFd, uid: u32) -> Result<(), String> {
    let dev = rootfs.join("dev");
    let pty = super::console::allocate(&dev.join("pts")).map_err(|e| format!("allocating a pty: {e}"))?;
    // Only the owner changes, as runc's fixStdioPermissions: a non-root
    // user must be able to use its terminal; the group stays tty.
    nix::unistd::fchown(&pty.slave, Some(Uid::from_raw(uid)), None).map_err(|e| format!("chown of the pty: {e}"))?;
    let console = dev.join("console");
    fs::File::create(&console).map_err(|e| format!("creating {}: {e}", console.display()))?;
    let slave_path = dev.join("pts").join(pty.index.to_string());
    rootfs::do_mount(slave_path.to_str(), &console, None, nix::mount::MsFlags::MS_BIND, None)
        .map_err(|e| e.to_string())?;
    super::console::send_fd(&socket, std::os::fd::AsFd::as_fd(&pty.master))
        .map_err(|e| format!("sending the pty to the monitor: {e}"))?;
    super::console::make_controlling(&pty.slave).map_err(|e| format!("setting the controlling terminal: {e}"))
}

/// This process's pid in the host's pid namespace, read through the
/// host's procfs (only meaningful before `pivot_root`); our own pid (1)
/// when that fails.
fn host_pid() -> i32 {
    fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str()?.parse().ok())
        .unwrap_or_else(|| nix::unistd::getpid().as_raw())
}

fn redirect_stdio(stdin: Option<OwnedFd>, stdout: &OwnedFd, stderr: &OwnedFd) -> Result<(), String> {
    let dup = |from: RawFd, to: RawFd| {
        // SAFETY: dup2 on descriptors this process owns.
        if unsafe { libc::dup2(from, to) } < 0 {
            Err(format!("redirecting fd {to}: {}", std::io::Error::last_os_error()))
        } else {
            Ok(())
        }
    };
    match stdin {
        Some(fd) => dup(fd.as_raw_fd(), 0)?,
        None => {
            let null = fs::File::open("/dev/null").map_err(|e| format!("opening /dev/null: {e}"))?;
            dup(null.as_raw_fd(), 0)?;
        }
    }
    dup(stdout.as_raw_fd(), 1)?;
    dup(stderr.as_raw_fd(), 2)
}

fn set_domainname(domain: &str) -> Result<(), String> {
    // SAFETY: pointer and length of a live byte slice.
    let rc = unsafe { libc::setdomainname(domain.as_ptr().cast(), domain.len()) };
    if rc != 0 {
        return Err(format!("setting domainname: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// The image's environment plus what docker adds when missing.
pub(super) fn environment(config: &ContainerConfig, home: &str) -> Vec<String> {
    let mut env = config.env.clone();
    let has = |env: &[String], key: &str| env.iter().any(|e| e.split('=').next() == Some(key));
    if !has(&env, "PATH") {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    if !has(&env, "HOSTNAME") {
        env.push(format!("HOSTNAME={}", config.hostname));
    }
    if !has(&env, "HOME") {
        env.push(format!("HOME={home}"));
    }
    if config.tty && !has(&env, "TERM") {
        env.push("TERM=xterm".into());
    }
    env
}

/// Resolves the program like execvp would, with the container's PATH, so a
/// missing command is reported as docker does. Called inside the
/// container's root (after pivot_root, or chroot for exec), where the
/// kernel resolves every symlink within it.
pub(super) fn find_program(args: &[String], env: &[String]) -> Result<String, String> {
    let Some(name) = args.first() else {
        return Err("no command specified".into());
    };
    if name.contains('/') {
        return if Path::new(name).exists() {
            Ok(name.clone())
        } else {
            Err(format!("exec: {name:?}: stat {name}: no such file or directory"))
        };
    }
    let path = env.iter().find_map(|e| e.strip_prefix("PATH=")).unwrap_or(DEFAULT_PATH);
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = format!("{}/{name}", dir.trim_end_matches('/'));
        if let Ok(meta) = fs::metadata(&candidate) {
            use std::os::unix::fs::PermissionsExt;
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return Ok(candidate);
            }
        }
    }
    Err(format!("exec: {name:?}: executable file not found in $PATH"))
}

fn apply_rlimits(config: &ContainerConfig) -> Result<(), String> {
    for limit in &config.rlimits {
        let resource = match limit.name.as_str() {
            "nofile" => Resource::RLIMIT_NOFILE,
            "nproc" => Resource::RLIMIT_NPROC,
            "core" => Resource::RLIMIT_CORE,
            "memlock" => Resource::RLIMIT_MEMLOCK,
            "stack" => Resource::RLIMIT_STACK,
            "cpu" => Resource::RLIMIT_CPU,
            "fsize" => Resource::RLIMIT_FSIZE,
            "data" => Resource::RLIMIT_DATA,
            "as" => Resource::RLIMIT_AS,
            "locks" => Resource::RLIMIT_LOCKS,
            "sigpending" => Resource::RLIMIT_SIGPENDING,
            "msgqueue" => Resource::RLIMIT_MSGQUEUE,
            "nice" => Resource::RLIMIT_NICE,
            "rtprio" => Resource::RLIMIT_RTPRIO,
            "rss" => Resource::RLIMIT_RSS,
            other => return Err(format!("unknown ulimit {other:?}")),
        };
        setrlimit(resource, limit.soft, limit.hard)
            .map_err(|e| format!("setting ulimit {}={}:{}: {e}", limit.name, limit.soft, limit.hard))?;
    }
    Ok(())
}

/// Puts every signal back to its default action and unblocks them all:
/// an ignored signal stays ignored across `execve` (signal(7)), and Rust's
/// runtime ignores SIGPIPE in the monitor and the CLI, so without this a
/// container's `yes | head` would print "Broken pipe" instead of ending
/// quietly, unlike under Docker.
pub(super) fn reset_signals() {
    // The kernel's `struct sigaction` on x86_64 and aarch64: handler,
    // flags, restorer, mask. The raw call, because glibc refuses to touch
    // its own real-time signals 32 and 33, which a caller may have ignored
    // too (they then show in the container's SigIgn).
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    let default = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for signal in 1..=64 {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        // SAFETY: a plain syscall with a valid `struct sigaction` of the
        // kernel's layout and size 8 for the mask; SIG_DFL installs no
        // handler of ours.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                signal,
                &default as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                8usize,
            )
        };
    }
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
}

/// Nothing of the monitor leaks into the container (runc
/// GHSA-xr7r-f8xq-vfvv): right before the exec, every descriptor above
/// stderr is marked close-on-exec with one `close_range(2)` (Linux 5.11);
/// on older kernels each one but `keep` is closed now. `keep` (the init's
/// error pipe) is close-on-exec itself: it must stay open until the exec,
/// and close with it.
pub(super) fn close_other_fds_at_exec(keep: RawFd) {
    // SAFETY: a plain syscall on a descriptor range; marking descriptors
    // close-on-exec changes nothing before the exec.
    let marked = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) == 0 };
    if !marked {
        close_other_fds(keep);
    }
}

/// Closes every descriptor above stderr except `keep` now (the `--init`
/// supervisor, which never execs).
pub(super) fn close_other_fds(keep: RawFd) {
    let fds: Vec<RawFd> = fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    for fd in fds {
        if fd > 2 && fd != keep {
            // SAFETY: closing a descriptor number; nothing else uses it.
            unsafe { libc::close(fd) };
        }
    }
}

pub(super) fn switch_user(identity: &user::ResolvedUser) -> Result<(), String> {
    let groups: Vec<Gid> = identity.additional_gids.iter().map(|g| Gid::from_raw(*g)).collect();
    nix::unistd::setgroups(&groups).map_err(|e| format!("setgroups: {e}"))?;
    let gid = Gid::from_raw(identity.gid);
    setresgid(gid, gid, gid).map_err(|e| format!("setgid {}: {e}", identity.gid))?;
    // Keep the permitted set across setuid; `caps::set_process_caps` then sets it.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    let uid = Uid::from_raw(identity.uid);
    setresuid(uid, uid, uid).map_err(|e| format!("setuid {}: {e}", identity.uid))
}

/// `--init`: this process stays pid 1, reaping zombies and forwarding
/// signals to the command, which the returned child goes on to exec.
fn fork_init_supervisor() -> Result<(), String> {
    let all = SigSet::all();
    let mut previous = SigSet::empty();
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&all), Some(&mut previous))
        .map_err(|e| format!("blocking signals: {e}"))?;
    // SAFETY: this process is single-threaded (a forked child of the
    // single-threaded monitor), so the child may keep running Rust.
    match unsafe { fork() }.map_err(|e| format!("fork for --init: {e}"))? {
        ForkResult::Child => {
            nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&previous), None)
                .map_err(|e| format!("restoring signal mask: {e}"))?;
            Ok(())
        }
        ForkResult::Parent { child } => supervise(child, &all),
    }
}

fn supervise(child: Pid, signals: &SigSet) -> ! {
    close_other_fds(-1);
    loop {
        let Ok(signal) = signals.wait() else { continue };
        if signal == Signal::SIGCHLD {
            loop {
                match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::Exited(pid, code)) if pid == child => std::process::exit(code),
                    Ok(WaitStatus::Signaled(pid, sig, _)) if pid == child => std::process::exit(128 + sig as i32),
                    Ok(WaitStatus::StillAlive) | Err(_) => break,
                    Ok(_) => continue,
                }
            }
        } else {
            let _ = kill(child, signal);
        }
    }
}

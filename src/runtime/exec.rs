//! `exec`: a new process in a running container — every namespace and the
//! cgroup of its pid 1, the container's user rules, seccomp filter and
//! capabilities.

use std::ffi::CString;
use std::fs;
use std::path::Path;

use nix::sched::{setns, CloneFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{execve, fork, ForkResult};

use super::cgroups::Cgroup;
use super::config::Status;
use super::container::Container;
use super::fork::fork_into;
use super::lifecycle::LifecycleError;
use super::{caps, console, init, seccomp, user};
use crate::store::Root;

#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub privileged: bool,
    /// `-t`: a pty from the container's devpts, relayed to this terminal.
    pub tty: bool,
    /// `-i`: forward stdin (with `-t`; without, stdin is inherited).
    pub interactive: bool,
}

/// Namespaces to join, mount last: the others are looked up through
/// /proc of the host, which the container's mount namespace hides.
const NAMESPACES: &[(&str, CloneFlags)] = &[
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

/// Runs the command and returns its exit status (126/127 style codes for
/// failures to start it, like docker).
pub fn exec(root: &Root, container: &Container, options: &ExecOptions) -> Result<i32, LifecycleError> {
    let state = container.state()?;
    let pid = match (state.status, state.pid) {
        (Status::Running, Some(pid)) => pid,
        (Status::Paused, _) => return Err(LifecycleError::Paused(container.config.name.clone())),
        _ => return Err(LifecycleError::NotRunning(container.config.name.clone())),
    };
    let config = &container.config;
    let proc_root = format!("/proc/{pid}/root");
    let passwd = fs::read_to_string(format!("{proc_root}/etc/passwd")).unwrap_or_default();
    let group = fs::read_to_string(format!("{proc_root}/etc/group")).unwrap_or_default();
    let spec = options.user.clone().unwrap_or_else(|| config.user.clone());
    let identity = user::resolve(&spec, &passwd, &group, &config.group_add).map_err(|e| LifecycleError::Operation {
        action: "exec in",
        id: config.name.clone(),
        message: e.to_string(),
    })?;
    let mut env = init::environment(config, &identity.home);
    for e in &options.env {
        let key = e.split('=').next().unwrap_or(e);
        env.retain(|existing| existing.split('=').next() != Some(key));
        env.push(e.clone());
    }
    let namespaces: Vec<(fs::File, CloneFlags)> = NAMESPACES
        .iter()
        .map(|(name, flag)| {
            fs::File::open(format!("/proc/{pid}/ns/{name}"))
                .map(|f| (f, *flag))
                .map_err(|e| LifecycleError::Operation {
                    action: "exec in",
                    id: config.name.clone(),
                    message: format!("opening its {name} namespace: {e}"),
                })
        })
        .collect::<Result<_, _>>()?;
    let cgroup = Cgroup::open(&Container::cgroup_name(&root.tag(), &config.id)).ok();
    let workdir = options.workdir.clone().unwrap_or_else(|| config.working_dir.clone());
    let caps_set: Vec<String> = if options.privileged {
        caps::ALL.iter().map(|c| c.to_string()).collect()
    } else {
        config.capabilities.clone()
    };

    // Loaded here, on the host: after joining the container's mount
    // namespace, paths (a profile file, the cache) would resolve inside it.
    let filter = match config.privileged || options.privileged {
        true => None,
        false => seccomp::compile_cached(&(&config.seccomp).into(), &caps_set, &seccomp::cache_dir(root.path()))
            .map_err(|e| LifecycleError::Start(format!("seccomp: {e}")))?,
    };
    let console = match options.tty {
        true => Some(console::socket_pair().map_err(|e| LifecycleError::Start(format!("console socket: {e}")))?),
        false => None,
    };
    // Born in the cgroup's v2 directory and joining the v1 ones itself, the
    // child waits for no RCU grace period (`docs/cgroups.md`).
    let v2_dir = cgroup.as_ref().and_then(Cgroup::open_v2_dir);
    // SAFETY: the CLI is single-threaded (no runtime threads are started
    // before exec), so the child may continue in Rust.
    let forked = unsafe { fork_into(v2_dir.as_ref().map(std::os::fd::AsFd::as_fd)) }
        .map_err(|e| LifecycleError::Start(format!("fork: {e}")))?;
    drop(v2_dir);
    match forked.result {
        ForkResult::Child => {
            let code = match enter_and_exec(
                cgroup.as_ref().map(|cg| (cg, forked.in_cgroup)),
                &namespaces,
                &identity,
                &workdir,
                &env,
                &caps_set,
                config,
                options,
                console.map(|(_, theirs)| theirs),
                filter.as_ref(),
            ) {
                Ok(code) => code,
                Err(message) => {
                    eprintln!("{message}");
                    127
                }
            };
            std::process::exit(code)
        }
        ForkResult::Parent { child } => {
            if let Some((ours, theirs)) = console {
                drop(theirs);
                // No master: the child failed before allocating it (and
                // said why on stderr).
                if let Ok(Some(master)) = console::recv_fd(&ours) {
                    console::relay(&master, options.interactive);
                }
            }
            Ok(wait_code(child))
        }
    }
}

fn wait_code(child: nix::unistd::Pid) -> i32 {
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, signal, _)) => return 128 + signal as i32,
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 255,
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn enter_and_exec(
    cgroup: Option<(&Cgroup, bool)>,
    namespaces: &[(fs::File, CloneFlags)],
    identity: &user::ResolvedUser,
    workdir: &str,
    env: &[String],
    caps_set: &[String],
    config: &super::config::ContainerConfig,
    options: &ExecOptions,
    console: Option<std::os::fd::OwnedFd>,
    filter: Option<&seccomp::CompiledFilter>,
) -> Result<i32, String> {
    if let Some((cg, born_in_v2)) = cgroup {
        if !born_in_v2 {
            cg.add_task_v2(std::process::id() as i32)
                .map_err(|e| format!("joining the cgroup: {e}"))?;
        }
        cg.self_join().join().map_err(|e| format!("joining the cgroup: {e}"))?;
    }
    for (file, flag) in namespaces {
        setns(file, *flag).map_err(|e| format!("joining namespace {flag:?}: {e}"))?;
    }
    // In the container's mount namespace now: its /dev/pts is the
    // container's devpts instance, so `tty` inside can name the pty.
    let pty = match &console {
        Some(socket) => {
            let pty = console::allocate(Path::new("/dev/pts")).map_err(|e| format!("allocating a pty: {e}"))?;
            nix::unistd::fchown(&pty.slave, Some(nix::unistd::Uid::from_raw(identity.uid)), None)
                .map_err(|e| format!("chown of the pty: {e}"))?;
            console::send_fd(socket, std::os::fd::AsFd::as_fd(&pty.master))
                .map_err(|e| format!("sending the pty: {e}"))?;
            Some(pty.slave)
        }
        None => None,
    };
    drop(console);
    // The pid namespace applies to children: fork once more.
    // SAFETY: still single-threaded.
    match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Parent { child } => {
            // The relay sees EIO once the command's side is all closed.
            drop(pty);
            return Ok(wait_code(child));
        }
        ForkResult::Child => {}
    }
    if let Some(slave) = &pty {
        nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
        console::make_controlling(slave).map_err(|e| format!("setting the controlling terminal: {e}"))?;
    }
    drop(pty);
    let program = init::find_program(&options.args, env)?;
    nix::unistd::chdir(workdir).map_err(|e| format!("chdir to {workdir}: {e}"))?;
    init::close_other_fds_at_exec(-1);
    init::reset_signals();
    if config.no_new_privileges {
        nix::sys::prctl::set_no_new_privs().map_err(|e| format!("setting no_new_privs: {e}"))?;
    }
    if let Some(filter) = filter {
        filter
            .install()
            .map_err(|e| format!("installing seccomp filter: {e}"))?;
    }
    let set = caps_set.iter().cloned().collect();
    caps::drop_bounding(&set).map_err(|e| e.to_string())?;
    init::switch_user(identity)?;
    caps::set_process_caps(&set).map_err(|e| e.to_string())?;
    let cstrings = |items: &[String]| -> Result<Vec<CString>, String> {
        items
            .iter()
            .map(|s| CString::new(s.as_str()).map_err(|_| format!("{s:?} contains a NUL byte")))
            .collect()
    };
    let argv = cstrings(&options.args)?;
    let envp = cstrings(env)?;
    let program = CString::new(program).map_err(|_| "program path contains a NUL byte".to_string())?;
    match execve(&program, &argv, &envp) {
        Ok(never) => match never {},
        Err(e) => Err(format!(
            "exec: {:?}: {e}",
            options.args.first().cloned().unwrap_or_default()
        )),
    }
}

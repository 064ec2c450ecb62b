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
use super::lifecycle::LifecycleError;
use super::{caps, init, seccomp, user};
use crate::store::Root;

#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub privileged: bool,
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

    // SAFETY: the CLI is single-threaded (no runtime threads are started
    // before exec), so the child may continue in Rust.
    match unsafe { fork() }.map_err(|e| LifecycleError::Start(format!("fork: {e}")))? {
        ForkResult::Child => {
            let code = match enter_and_exec(
                cgroup.as_ref(),
                &namespaces,
                &identity,
                &workdir,
                &env,
                &caps_set,
                config,
                options,
            ) {
                Ok(code) => code,
                Err(message) => {
                    eprintln!("{message}");
                    127
                }
            };
            std::process::exit(code)
        }
        ForkResult::Parent { child } => Ok(wait_code(child)),
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
    cgroup: Option<&Cgroup>,
    namespaces: &[(fs::File, CloneFlags)],
    identity: &user::ResolvedUser,
    workdir: &str,
    env: &[String],
    caps_set: &[String],
    config: &super::config::ContainerConfig,
    options: &ExecOptions,
) -> Result<i32, String> {
    if let Some(cg) = cgroup {
        cg.add_task(std::process::id() as i32)
            .map_err(|e| format!("joining the cgroup: {e}"))?;
    }
    for (file, flag) in namespaces {
        setns(file, *flag).map_err(|e| format!("joining namespace {flag:?}: {e}"))?;
    }
    // The pid namespace applies to children: fork once more.
    // SAFETY: still single-threaded.
    match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Parent { child } => return Ok(wait_code(child)),
        ForkResult::Child => {}
    }
    let program = init::find_program(Path::new("/"), &options.args, env)?;
    nix::unistd::chdir(workdir).map_err(|e| format!("chdir to {workdir}: {e}"))?;
    init::close_other_fds(-1);
    if config.no_new_privileges {
        nix::sys::prctl::set_no_new_privs().map_err(|e| format!("setting no_new_privs: {e}"))?;
    }
    let mode = match &config.seccomp {
        super::config::Seccomp::Default => seccomp::SeccompMode::DockerDefault,
        super::config::Seccomp::Unconfined => seccomp::SeccompMode::Unconfined,
        super::config::Seccomp::Profile(p) => seccomp::SeccompMode::Profile(p.clone()),
    };
    if !(config.privileged || options.privileged) {
        if let Some(filter) = seccomp::compile(&mode, caps_set).map_err(|e| format!("seccomp: {e}"))? {
            filter
                .install()
                .map_err(|e| format!("installing seccomp filter: {e}"))?;
        }
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

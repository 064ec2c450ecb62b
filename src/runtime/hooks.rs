//! OCI hooks (runtime-spec `config.md#posix-platform-hooks`): host programs
//! a device spec asks to run at points of the container's life, each given
//! the container's state JSON on stdin.
//!
//! Where berth runs each stage (the runtime spec's points, mapped onto the
//! monitor/init split of `monitor.rs` and `init.rs`):
//!
//! | stage | process | namespaces | when |
//! | --- | --- | --- | --- |
//! | `prestart`, `createRuntime` | monitor | host | the init exists and is in its cgroup (and network), before it sets up its rootfs |
//! | `createContainer` | init | container mount ns | after every mount and device node, before `pivot_root`, so host binaries still resolve |
//! | `startContainer` | init | container | after `pivot_root`, before seccomp, capabilities and exec |
//! | `poststart` | monitor | host | once the command has been exec'd, before `start` returns |
//! | `poststop` | monitor | host | once the container has exited and its cgroup is gone |
//!
//! As in youki's `hooks.rs`: the environment is exactly the hook's `env`,
//! `args[0]` is the argv\[0\] given to the program, a broken pipe on stdin
//! is not an error (a hook may ignore its state), and a timeout kills the
//! hook. The first four stages fail the start with an error naming the
//! hook; poststart and poststop only warn (the runtime spec says so).
//!
//! Hooks find the container through the state's `bundle`: berth writes a
//! minimal OCI `config.json` there whose `root.path` is the container's
//! rootfs mount point (what NVIDIA's `nvidia-cdi-hook` reads).

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use serde::Serialize;
use thiserror::Error;

use super::config::{ContainerConfig, Hook, HookStage};

/// The runtime-spec version berth's state and bundle documents follow.
pub const OCI_VERSION: &str = "1.0.2";

/// How much of a failing hook's output its error keeps (the end of it).
const OUTPUT_KEPT: usize = 2048;

#[derive(Debug, Error)]
pub enum HookError {
    #[error("{stage} hook {path}: cannot run it: {source}")]
    Spawn {
        stage: HookStage,
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{stage} hook {path} failed ({status}){output}")]
    Failed {
        stage: HookStage,
        path: String,
        status: String,
        output: Captured,
    },
    #[error("{stage} hook {path} did not finish within {seconds}s and was killed{output}")]
    Timeout {
        stage: HookStage,
        path: String,
        seconds: u32,
        output: Captured,
    },
    #[error("writing the OCI bundle for hooks at {path}: {source}")]
    Bundle {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The tail of a hook's stdout and stderr, shown after `: ` when any.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Captured(pub String);

impl std::fmt::Display for Captured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = self.0.trim();
        if text.is_empty() {
            Ok(())
        } else {
            write!(f, ": {text}")
        }
    }
}

/// The OCI state document (runtime-spec `runtime.md#state`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct State<'a> {
    oci_version: &'static str,
    id: &'a str,
    status: &'static str,
    /// Host pid of the container's pid 1; absent once it has exited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<i32>,
    bundle: String,
    annotations: &'a BTreeMap<String, String>,
}

/// The container's status as a hook at `stage` sees it.
pub fn status_at(stage: HookStage) -> &'static str {
    match stage {
        HookStage::Prestart | HookStage::CreateRuntime | HookStage::CreateContainer => "creating",
        HookStage::StartContainer => "created",
        HookStage::Poststart => "running",
        HookStage::Poststop => "stopped",
    }
}

/// Where the bundle of the container in `dir` is.
pub fn bundle_dir(dir: &Path) -> PathBuf {
    dir.join("bundle")
}

/// The state JSON a hook at `stage` reads on stdin.
pub fn state_json(config: &ContainerConfig, dir: &Path, stage: HookStage, pid: Option<i32>) -> String {
    let state = State {
        oci_version: OCI_VERSION,
        id: &config.id,
        status: status_at(stage),
        pid,
        bundle: bundle_dir(dir).display().to_string(),
        annotations: &config.labels,
    };
    serde_json::to_string(&state).unwrap_or_default()
}

/// The bundle's `config.json`: a minimal OCI runtime spec with what hooks
/// read (root path, process, hostname), not a spec berth runs from.
pub fn bundle_spec(config: &ContainerConfig, dir: &Path) -> serde_json::Value {
    serde_json::json!({
        "ociVersion": OCI_VERSION,
        "root": {
            "path": dir.join("rootfs").display().to_string(),
            "readonly": config.read_only,
        },
        "process": {
            "args": config.args,
            "env": config.env,
            "cwd": config.working_dir,
        },
        "hostname": config.hostname,
        "annotations": config.labels,
    })
}

/// Writes `<dir>/bundle/config.json` (removed with the container's
/// directory, so it leaves nothing behind).
pub fn write_bundle(config: &ContainerConfig, dir: &Path) -> Result<(), HookError> {
    let bundle = bundle_dir(dir);
    let fail = |source| HookError::Bundle {
        path: bundle.clone(),
        source,
    };
    std::fs::create_dir_all(&bundle).map_err(fail)?;
    let text = serde_json::to_vec_pretty(&bundle_spec(config, dir)).map_err(|e| fail(io::Error::other(e)))?;
    crate::store::write_atomic(&bundle.join("config.json"), &text).map_err(fail)
}

/// The hooks that run at `stage`, in order: `prestart` ones run first with
/// `createRuntime` (runc's order).
pub fn at_stage(hooks: &[Hook], stage: HookStage) -> Vec<&Hook> {
    let wanted = match stage {
        HookStage::Prestart | HookStage::CreateRuntime => vec![HookStage::Prestart, HookStage::CreateRuntime],
        other => vec![other],
    };
    wanted
        .into_iter()
        .flat_map(|want| hooks.iter().filter(move |h| h.stage == want))
        .collect()
}

/// Runs the hooks of `stage` one after another, stopping at the first that
/// fails.
pub fn run_stage(hooks: &[Hook], stage: HookStage, state: &str) -> Result<(), HookError> {
    for hook in at_stage(hooks, stage) {
        run(hook, state)?;
    }
    Ok(())
}

/// Runs the hooks of a stage that must not fail the container (poststart,
/// poststop), returning one warning per failed hook.
pub fn run_stage_warning(hooks: &[Hook], stage: HookStage, state: &str) -> Vec<String> {
    at_stage(hooks, stage)
        .into_iter()
        .filter_map(|hook| run(hook, state).err())
        .map(|e| format!("berth: warning: {e}"))
        .collect()
}

/// Runs the hooks of `stage` for the container in `dir`, given the state
/// they expect; nothing to do without hooks.
pub fn run_for(config: &ContainerConfig, dir: &Path, stage: HookStage, pid: Option<i32>) -> Result<(), HookError> {
    if config.hooks.is_empty() {
        return Ok(());
    }
    run_stage(&config.hooks, stage, &state_json(config, dir, stage, pid))
}

/// [`run_for`] for the stages that only warn: the warnings, one a line.
pub fn warnings_for(config: &ContainerConfig, dir: &Path, stage: HookStage, pid: Option<i32>) -> String {
    if config.hooks.is_empty() {
        return String::new();
    }
    let warnings = run_stage_warning(&config.hooks, stage, &state_json(config, dir, stage, pid));
    warnings.iter().map(|w| format!("{w}\n")).collect()
}

/// The monitor's own pid namespace, when the container has hooks.
/// `unshare(CLONE_NEWPID)` also puts every later child of the monitor in
/// the container's pid namespace (and makes fork fail once its pid 1 is
/// gone), so a monitor that runs hooks returns there with
/// [`restore_pid_namespace`] right after forking the init.
pub fn save_pid_namespace(config: &ContainerConfig) -> Result<Option<std::fs::File>, String> {
    if config.hooks.is_empty() {
        return Ok(None);
    }
    std::fs::File::open("/proc/self/ns/pid")
        .map(Some)
        .map_err(|e| format!("opening the host pid namespace: {e}"))
}

pub fn restore_pid_namespace(saved: Option<&std::fs::File>) -> Result<(), String> {
    let Some(ns) = saved else { return Ok(()) };
    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWPID)
        .map_err(|e| format!("returning to the host pid namespace: {e}"))
}

/// Runs one hook to completion (or its timeout).
pub fn run(hook: &Hook, state: &str) -> Result<(), HookError> {
    let stage = hook.stage;
    let spawn_err = |source| HookError::Spawn {
        stage,
        path: hook.path.clone(),
        source,
    };
    let (reader, writer) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| spawn_err(e.into()))?;
    // Only our end is non-blocking: the hook's writes must block normally.
    fcntl(&reader, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).map_err(|e| spawn_err(e.into()))?;
    let mut command = Command::new(&hook.path);
    if let Some((arg0, rest)) = hook.args.split_first() {
        command.arg0(arg0).args(rest);
    }
    command.env_clear();
    for entry in &hook.env {
        let (name, value) = entry.split_once('=').unwrap_or((entry, ""));
        command.env(name, value);
    }
    let writer_too = writer.try_clone().map_err(spawn_err)?;
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::from(writer_too))
        .current_dir("/");
    // SAFETY: umask(2) is async-signal-safe and touches no Rust state; the
    // init runs with umask 0, which a hook creating files must not inherit.
    unsafe {
        command.pre_exec(|| {
            libc::umask(0o022);
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(spawn_err)?;
    // The Command holds our copies of the pipe's write end; drop them so
    // the read end sees EOF once the hook (and its children) close theirs.
    drop(command);
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its state may exit first: EPIPE is fine.
        let _ = stdin.write_all(state.as_bytes());
    }
    let deadline = hook
        .timeout
        .map(|seconds| (seconds, Instant::now() + Duration::from_secs(seconds.into())));
    let mut output = Vec::new();
    let status: ExitStatus = loop {
        drain(&reader, &mut output, 50);
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(source) => return Err(spawn_err(source)),
        }
        if let Some((seconds, at)) = deadline {
            if Instant::now() >= at {
                let _ = child.kill();
                let _ = child.wait();
                drain(&reader, &mut output, 0);
                return Err(HookError::Timeout {
                    stage,
                    path: hook.path.clone(),
                    seconds,
                    output: captured(&output),
                });
            }
        }
    };
    // What the hook wrote before exiting; a child it left running may hold
    // the pipe open, so this does not wait for EOF.
    drain(&reader, &mut output, 0);
    if status.success() {
        return Ok(());
    }
    Err(HookError::Failed {
        stage,
        path: hook.path.clone(),
        status: describe(status),
        output: captured(&output),
    })
}

/// Reads what is available on `reader` (waiting up to `millis` for the
/// first bytes), keeping only the last [`OUTPUT_KEPT`] bytes.
fn drain(reader: &OwnedFd, output: &mut Vec<u8>, millis: u16) {
    let mut polls = [PollFd::new(reader.as_fd(), PollFlags::POLLIN)];
    if !matches!(poll(&mut polls, PollTimeout::from(millis)), Ok(n) if n > 0) {
        return;
    }
    let mut file = std::fs::File::from(match reader.try_clone() {
        Ok(fd) => fd,
        Err(_) => return,
    });
    let mut buf = [0u8; 4096];
    // Non-blocking: stops at EAGAIN (nothing more now) or EOF.
    while let Ok(n) = file.read(&mut buf) {
        if n == 0 {
            break;
        }
        output.extend_from_slice(&buf[..n]);
        if output.len() > OUTPUT_KEPT {
            output.drain(..output.len() - OUTPUT_KEPT);
        }
    }
}

fn captured(output: &[u8]) -> Captured {
    Captured(String::from_utf8_lossy(output).trim().replace('\n', "; "))
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => status.to_string(),
    }
}

#[cfg(test)]
#[path = "hooks_tests.rs"]
mod tests;

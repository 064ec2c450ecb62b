//! Connect to the root's engine, starting one when none runs, so that a
//! newcomer never runs a separate install step.
//!
//! Races are settled by the engine's lock, not here: two CLIs that both
//! find no engine both start one; the second engine fails to take
//! `<root>/engine.lock` and exits, and both CLIs' polls find the first.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{socket_path, ApiError, Client, API_VERSION};
use crate::store::{create_private_dir, Root};

/// How long a started engine gets to answer.
const START_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(25);
/// Starts per call: an engine that lost the lock to one that was stopping
/// is worth one more try; a broken install is not worth many.
const MAX_STARTS: u32 = 3;
const LOG_TAIL_LINES: usize = 20;

/// The engine's log, appended to by every engine the CLI starts.
pub fn log_path(root: &Root) -> PathBuf {
    root.path().join("engine.log")
}

/// A client for the root's engine; starts `berth engine` (this very
/// executable) when nothing answers on the socket.
pub fn connect_or_start(root: &Root) -> Result<Client, ApiError> {
    // The running binary, even if a new build replaced its file since.
    connect_or_start_with(root, Path::new(crate::runtime::lifecycle::SELF_EXE))
}

/// [`connect_or_start`] with the `berth` executable to start given (tests
/// and tools that are not themselves `berth`).
pub fn connect_or_start_with(root: &Root, exe: &Path) -> Result<Client, ApiError> {
    let client = Client::new(socket_path(root));
    match probe(&client) {
        Err(error) if error.is_unanswered() => {}
        answer => return answer.map(|()| client),
    }
    let log = log_path(root);
    let deadline = Instant::now() + START_TIMEOUT;
    let mut child = Some(spawn(root, exe, &log)?);
    let mut starts = 1;
    loop {
        std::thread::sleep(POLL);
        match probe(&client) {
            Err(error) if error.is_unanswered() => {}
            answer => {
                // Reap a loser that already exited; a running engine is
                // left alone (it outlives us, adopted by init).
                if let Some(mut child) = child {
                    let _ = child.try_wait();
                }
                return answer.map(|()| client);
            }
        }
        if Instant::now() >= deadline {
            return Err(ApiError::StartTimeout {
                socket: client.path().to_path_buf(),
                tail: log_tail(&log),
                log,
                timeout: START_TIMEOUT,
            });
        }
        let exited = child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_)) | Err(_)));
        if exited {
            child = None;
            if starts < MAX_STARTS {
                child = Some(spawn(root, exe, &log)?);
                starts += 1;
            }
        }
    }
}

/// One `GET /v1/version`; an engine of another API version is an error,
/// not a reason to start a second one.
fn probe(client: &Client) -> Result<(), ApiError> {
    let version = client.request("GET", &format!("/{API_VERSION}/version"), None)?;
    match version.get("api").and_then(Value::as_str) {
        Some(API_VERSION) => Ok(()),
        other => Err(ApiError::VersionMismatch {
            socket: client.path().to_path_buf(),
            engine: other.unwrap_or("unknown").to_string(),
        }),
    }
}

/// Starts `exe --root <root> engine` in its own session, detached from the
/// CLI's terminal (a Ctrl-C there must not stop the engine), with output
/// appended to the engine log.
fn spawn(root: &Root, exe: &Path, log: &Path) -> Result<Child, ApiError> {
    let log_error = |source| ApiError::Log {
        path: log.to_path_buf(),
        source,
    };
    let spawn_error = |source| ApiError::Spawn {
        exe: exe.to_path_buf(),
        root: root.path().to_path_buf(),
        source,
    };
    create_private_dir(root.path()).map_err(log_error)?;
    let stdout = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(log)
        .map_err(log_error)?;
    let stderr = stdout.try_clone().map_err(log_error)?;
    // The engine runs from "/" so it does not pin the CLI's directory (a
    // mount the user may want to unmount); the root must then be absolute.
    let root_arg = std::path::absolute(root.path()).map_err(spawn_error)?;
    let mut command = Command::new(exe);
    command
        .arg("--root")
        .arg(root_arg)
        .arg("engine")
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    // SAFETY: setsid(2) is async-signal-safe and the closure touches no
    // memory of the parent, as required between fork and exec.
    unsafe {
        command.pre_exec(|| nix::unistd::setsid().map(drop).map_err(io::Error::from));
    }
    command.spawn().map_err(spawn_error)
}

/// The last lines of the engine log, for an error that says why the engine
/// never answered.
fn log_tail(log: &Path) -> String {
    let read = || -> io::Result<String> {
        let mut file = File::open(log)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(16 * 1024)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    match read() {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
            if tail.trim().is_empty() {
                "(empty)".to_string()
            } else {
                tail
            }
        }
        Err(error) => format!("(cannot read it: {error})"),
    }
}

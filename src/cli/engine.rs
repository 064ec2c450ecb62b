//! `berth engine`: run the engine daemon in the foreground, or stop the
//! running one (`--stop`).

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

use crate::engine::api::{self, Client};
use crate::engine::daemon;
use crate::store::Root;

/// An engine drains open requests for up to 5 s before it exits.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, clap::Args)]
pub struct EngineArgs {
    /// Ask the running engine to stop, and wait until it has (containers
    /// keep running).
    #[arg(long, conflicts_with = "group")]
    pub stop: bool,
    /// Let members of GROUP (a name or gid) use the engine socket (mode
    /// 0660). They can then do anything root can with containers.
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
}

pub fn run(root: &Root, args: &EngineArgs) -> anyhow::Result<ExitCode> {
    if args.stop {
        return stop(root);
    }
    daemon::run(root, args.group.clone())?;
    Ok(ExitCode::SUCCESS)
}

fn stop(root: &Root) -> anyhow::Result<ExitCode> {
    let socket = api::socket_path(root);
    let client = Client::new(socket.clone());
    match client.request("POST", &format!("/{}/engine/stop", api::API_VERSION), None) {
        Ok(_) => {}
        Err(error) if error.is_not_running() => {
            writeln!(io::stdout(), "no engine is running for {}", root.path().display())?;
            return Ok(ExitCode::SUCCESS);
        }
        Err(error) => return Err(error.into()),
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    // The socket goes first (no new clients), the lock when the process
    // exits: only then can a new engine start on this root.
    while socket_exists(&socket) || lock_held(root) {
        if Instant::now() >= deadline {
            anyhow::bail!(
                "the engine for {} was asked to stop but is still running after {} s (see {})",
                root.path().display(),
                STOP_TIMEOUT.as_secs(),
                api::autostart::log_path(root).display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    writeln!(io::stdout(), "engine stopped ({})", root.path().display())?;
    Ok(ExitCode::SUCCESS)
}

fn socket_exists(socket: &Path) -> bool {
    socket.symlink_metadata().is_ok()
}

/// Whether a process holds `<root>/engine.lock`, probed by taking it
/// without waiting and letting it go at once.
fn lock_held(root: &Root) -> bool {
    let Ok(file) = OpenOptions::new().write(true).open(root.path().join("engine.lock")) else {
        return false;
    };
    Flock::lock(file, FlockArg::LockExclusiveNonblock).is_err()
}

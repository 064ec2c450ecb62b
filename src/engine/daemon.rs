//! `berth engine`: the daemon shell around the API server.
//!
//! One engine per root, enforced by an exclusive lock on
//! `<root>/engine.lock` held for the engine's whole life. Stopping (SIGTERM,
//! SIGINT or `POST /v1/engine/stop`) only stops serving: containers are
//! owned by their monitors and keep running.

use std::fmt::Display;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::unistd::{Gid, Group};
use thiserror::Error;
use tokio::signal::unix::{signal, SignalKind};

use crate::engine::api::{self, ApiError};
use crate::engine::server::{self, EngineState};
use crate::store::Root;

/// Blocking work still running at exit (a handler in spawn_blocking) gets
/// this long before the process ends anyway.
const RUNTIME_SHUTDOWN: Duration = Duration::from_secs(2);

#[derive(Debug, Error)]
pub enum DaemonError {
    #[error(
        "an engine is already running for root {root} (it holds {lock}): stop it with `berth \
         engine --stop`, or use another --root"
    )]
    AlreadyRunning { root: PathBuf, lock: PathBuf },
    #[error("preparing the engine root {root}: {source}")]
    Root {
        root: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("locking {lock}: {source}")]
    Lock {
        lock: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("no such group {0:?} (for --group): create it, or name an existing one")]
    UnknownGroup(String),
    #[error("looking up group {name:?}: {source}")]
    GroupLookup {
        name: String,
        #[source]
        source: Errno,
    },
    #[error("letting group {gid} reach the engine socket in {root}: {source}")]
    GroupAccess {
        root: PathBuf,
        gid: Gid,
        #[source]
        source: io::Error,
    },
    #[error("starting the engine's runtime: {0}")]
    Runtime(#[source] io::Error),
    #[error("installing the {signal} handler: {source}")]
    Signal {
        signal: &'static str,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// One line on stderr (the engine log when auto-started), timestamped.
pub fn log(message: impl Display) {
    let _ = writeln!(
        io::stderr().lock(),
        "{} engine[{}]: {message}",
        crate::rfc3339::now(),
        std::process::id()
    );
}

/// Runs the engine for `root` until it is told to stop. `group` (a name or
/// a number) may use the socket too.
pub fn run(root: &Root, group: Option<String>) -> anyhow::Result<()> {
    Ok(run_engine(root, group.as_deref())?)
}

fn run_engine(root: &Root, group: Option<&str>) -> Result<(), DaemonError> {
    root.ensure().map_err(|source| DaemonError::Root {
        root: root.path().to_path_buf(),
        source,
    })?;
    let _lock = lock(root)?;
    let gid = group.map(resolve_group).transpose()?;
    if let Some(gid) = gid {
        open_root_to_group(root, gid)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("berth-engine")
        .build()
        .map_err(DaemonError::Runtime)?;
    let state = Arc::new(EngineState::new(root.clone()));
    let socket = api::socket_path(root);
    // Repairs what an engine killed part way left, before anything new.
    for repaired in super::recovery::recover(root) {
        log(format_args!("recovery: {repaired}"));
    }
    // Healthchecks and restart policies, for every container of the root.
    let supervisor = super::supervisor::Supervisor::spawn(root.clone());
    // Service discovery on each network's gateway (before the API serves,
    // so containers created through it name the gateway in resolv.conf).
    let dns = super::dns::DnsServer::spawn(root.clone(), runtime.handle().clone());
    let result = runtime.block_on(async {
        // Handlers first, socket second: a client that connects is never
        // met by the default action of SIGTERM.
        let mut terminate = signal(SignalKind::terminate()).map_err(|source| DaemonError::Signal {
            signal: "SIGTERM",
            source,
        })?;
        let mut interrupt = signal(SignalKind::interrupt()).map_err(|source| DaemonError::Signal {
            signal: "SIGINT",
            source,
        })?;
        let stopping = Arc::clone(&state);
        let shutdown = async move {
            let why = tokio::select! {
                _ = terminate.recv() => "SIGTERM",
                _ = interrupt.recv() => "SIGINT",
                () = stopping.shutdown_requested() => "a stop request",
            };
            log(format_args!("stopping on {why}"));
        };
        log(format_args!(
            "berth {} (API {}) serving {} on {}",
            env!("CARGO_PKG_VERSION"),
            api::API_VERSION,
            root.path().display(),
            socket.display()
        ));
        api::serve(&socket, gid, server::router(Arc::clone(&state)), shutdown)
            .await
            .map_err(DaemonError::from)
    });
    // Whatever ended the server, everything else listening must end too.
    state.request_shutdown();
    supervisor.stop();
    dns.stop();
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
    match &result {
        Ok(()) => log("stopped"),
        Err(error) => log(format_args!("stopped: {error}")),
    }
    result
}

/// Takes `<root>/engine.lock` without waiting. The descriptor is
/// close-on-exec (std's default), so processes the engine starts, such as
/// container monitors, never inherit the lock and keep it past the engine.
fn lock(root: &Root) -> Result<Flock<File>, DaemonError> {
    let path = root.path().join("engine.lock");
    let lock_error = |source| DaemonError::Lock {
        lock: path.clone(),
        source,
    };
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(lock_error)?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(lock),
        Err((_, Errno::EWOULDBLOCK)) => Err(DaemonError::AlreadyRunning {
            root: root.path().to_path_buf(),
            lock: path,
        }),
        Err((_, errno)) => Err(lock_error(io::Error::from(errno))),
    }
}

fn resolve_group(name: &str) -> Result<Gid, DaemonError> {
    if let Ok(number) = name.parse::<u32>() {
        return Ok(Gid::from_raw(number));
    }
    match Group::from_name(name) {
        Ok(Some(group)) => Ok(group.gid),
        Ok(None) => Err(DaemonError::UnknownGroup(name.to_string())),
        Err(source) => Err(DaemonError::GroupLookup {
            name: name.to_string(),
            source,
        }),
    }
}

/// The root is 0700, which would stop the group at the directory before
/// it reaches the 0660 socket: give the group search permission only
/// (0710), so it can reach the socket by name but list or read nothing.
fn open_root_to_group(root: &Root, gid: Gid) -> Result<(), DaemonError> {
    let access_error = |source| DaemonError::GroupAccess {
        root: root.path().to_path_buf(),
        gid,
        source,
    };
    std::os::unix::fs::chown(root.path(), None, Some(gid.as_raw())).map_err(access_error)?;
    fs::set_permissions(root.path(), fs::Permissions::from_mode(0o710)).map_err(access_error)
}

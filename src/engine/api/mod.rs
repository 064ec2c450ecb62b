//! The engine's transport: HTTP/1.1 with JSON bodies over a root-only UNIX
//! socket at `<root>/engine.sock`.
//!
//! - [`router`]: routes `{param}` patterns to async handlers (pure matching,
//!   unit-tested without a socket).
//! - [`listener`]: binds the socket with its permissions and serves a
//!   [`Router`] with hyper until shutdown.
//! - [`client`]: the blocking client the (synchronous) CLI uses, including
//!   NDJSON streams it prints as they arrive.
//! - [`autostart`]: connect to the root's engine, starting one when none runs.
//!
//! Every path starts with the API version ([`API_VERSION`]), so a newer CLI
//! talking to an older engine gets a clear 404 instead of a wrong answer.

pub mod autostart;
pub mod client;
pub mod listener;
pub mod router;

use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::store::Root;

pub use autostart::{connect_or_start, connect_or_start_with};
pub use client::{Client, NdjsonStream};
pub use listener::serve;
pub use router::{handler, BoxFuture, Handler, Request, Response, ResponseBody, Router};

/// The API version every path starts with (`/v1/...`).
pub const API_VERSION: &str = "v1";

/// `sun_path` holds 108 bytes including the terminating NUL (unix(7)).
const SUN_PATH_MAX: usize = 107;

/// The engine socket of a root: `<root>/engine.sock`.
pub fn socket_path(root: &Root) -> PathBuf {
    root.path().join("engine.sock")
}

/// Fails when `path` cannot be a UNIX socket address: the kernel would
/// reject it with a bare EINVAL that names nothing.
pub fn check_socket_path(path: &Path) -> Result<(), ApiError> {
    let len = path.as_os_str().len();
    if len > SUN_PATH_MAX {
        return Err(ApiError::SocketPathTooLong {
            path: path.to_path_buf(),
            len,
        });
    }
    Ok(())
}

#[derive(Debug, Error)]
pub enum ApiError {
    #[error(
        "engine socket path {path} is {len} bytes, longer than the {SUN_PATH_MAX} a UNIX socket \
         allows: use a shorter --root"
    )]
    SocketPathTooLong { path: PathBuf, len: usize },
    #[error("no engine is running at {path}: {source}")]
    NotRunning {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot connect to the engine at {path}: {source}")]
    Connect {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("connecting to the engine at {path} timed out")]
    ConnectTimeout { path: PathBuf },
    #[error("{method} {target} on {socket}: {source}")]
    Http {
        socket: PathBuf,
        method: String,
        target: String,
        #[source]
        source: hyper::Error,
    },
    #[error("{method} {target}: invalid request: {source}")]
    InvalidRequest {
        method: String,
        target: String,
        #[source]
        source: hyper::http::Error,
    },
    /// The engine answered with a non-2xx status; `message` is its reason.
    #[error("{message}")]
    Status { status: u16, message: String },
    #[error("{method} {target}: the engine sent invalid JSON: {source}")]
    Decode {
        method: String,
        target: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("starting the client's I/O runtime: {0}")]
    Runtime(#[source] io::Error),
    #[error(
        "an engine is already running on {path}: stop it with `berth engine --stop`, or use \
         another --root"
    )]
    AlreadyRunning { path: PathBuf },
    #[error("{path} exists and is not a socket: move it away so the engine can bind there")]
    NotASocket { path: PathBuf },
    #[error("removing the stale engine socket {path}: {source}")]
    RemoveStale {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("binding the engine socket {path}: {source}")]
    Bind {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("setting the permissions of the engine socket {path}: {source}")]
    Permissions {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("accepting connections on {path}: {source}")]
    Accept {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("starting the engine ({exe} --root {root} engine): {source}")]
    Spawn {
        exe: PathBuf,
        root: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("preparing the engine log {path}: {source}")]
    Log {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "the engine did not answer on {socket} within {secs} s; the end of {log}:\n{tail}",
        secs = timeout.as_secs()
    )]
    StartTimeout {
        socket: PathBuf,
        log: PathBuf,
        timeout: std::time::Duration,
        tail: String,
    },
    #[error(
        "the engine on {socket} speaks API {engine}, this berth speaks {API_VERSION}: stop it with \
         `berth engine --stop` and run the command again"
    )]
    VersionMismatch { socket: PathBuf, engine: String },
}

impl ApiError {
    /// True when nothing listens on the socket (absent file, or a stale one
    /// left by an engine that died): the case where starting one helps.
    pub fn is_not_running(&self) -> bool {
        matches!(self, ApiError::NotRunning { .. })
    }

    /// Nothing answered, or what answered went away mid-request (an engine
    /// being killed still accepts for a moment, then resets): worth
    /// starting an engine and asking again.
    pub fn is_unanswered(&self) -> bool {
        matches!(
            self,
            ApiError::NotRunning { .. } | ApiError::Connect { .. } | ApiError::Http { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_path_is_under_the_root() {
        let root = Root::new("/var/lib/berth");
        assert_eq!(socket_path(&root), Path::new("/var/lib/berth/engine.sock"));
        assert!(check_socket_path(&socket_path(&root)).is_ok());
    }

    #[test]
    fn too_long_socket_path_names_the_path() {
        let root = Root::new(format!("/tmp/{}", "x".repeat(120)));
        let error = check_socket_path(&socket_path(&root)).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("engine.sock"), "{message}");
        assert!(message.contains("--root"), "{message}");
    }
}

//! Errors of the cgroup layer. Every variant that touches the kernel names
//! the file (and the value, for writes) so the message alone says what to fix.

use std::io;
use std::path::PathBuf;

use super::devices_bpf::BpfError;
use super::resources::ResourceError;

/// A failure while creating, configuring, querying or removing a cgroup.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// The cgroup name is not a plain relative path.
    #[error("invalid cgroup name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },

    /// `/sys/fs/cgroup` could not be classified.
    #[error("detecting the cgroup hierarchy at /sys/fs/cgroup: {0}")]
    Detect(#[source] nix::Error),

    /// A controller berth needs is not mounted (see `/proc/self/mountinfo`).
    #[error("the {controller} cgroup controller is not available on this host ({hint})")]
    MissingController {
        controller: &'static str,
        hint: &'static str,
    },

    /// [`Cgroup::open`](super::Cgroup::open) found no directory.
    #[error("cgroup {name:?} does not exist (looked for {path})")]
    NotFound { name: String, path: PathBuf },

    #[error("creating cgroup directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("writing {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },

    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("unexpected content in {path}: {content:?}")]
    Parse { path: PathBuf, content: String },

    #[error("removing cgroup directory {path}: {source}")]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("sending SIGKILL to pid {pid} of cgroup {path}: {source}")]
    Kill {
        pid: i32,
        path: PathBuf,
        #[source]
        source: nix::Error,
    },

    /// The kernel did not reach the requested state in time.
    #[error("timed out after {waited_ms} ms waiting for {path} to {what}")]
    Timeout {
        path: PathBuf,
        what: &'static str,
        waited_ms: u128,
    },

    #[error("invalid resource limits: {0}")]
    Resources(#[from] ResourceError),

    #[error("cgroup v2 device filter on {path}: {source}")]
    DeviceFilter {
        path: PathBuf,
        #[source]
        source: BpfError,
    },

    /// Creation failed and so did part of the rollback: both are kept.
    #[error("{source} (and cleaning up the partial cgroup failed: {})", join(cleanup))]
    CreateRolledBack {
        #[source]
        source: Box<CgroupError>,
        cleanup: Vec<CgroupError>,
    },

    /// Teardown is best effort across hierarchies; every failure is kept.
    #[error("destroying cgroup {name:?}: {}", join(errors))]
    Destroy { name: String, errors: Vec<CgroupError> },
}

fn join(errors: &[CgroupError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// Turns a cgroups-rs error into the `io::Error` underneath it, so our own
/// variants can carry the full path and value. cgroups-rs only names the
/// file (`memory.limit_in_bytes`), not the directory, and wraps the OS error.
pub(crate) fn io_of(err: &cgroups_rs::fs::error::Error) -> io::Error {
    use std::error::Error as _;
    match err.source().and_then(|s| s.downcast_ref::<io::Error>()) {
        Some(inner) => match inner.raw_os_error() {
            Some(code) => io::Error::from_raw_os_error(code),
            None => io::Error::new(inner.kind(), inner.to_string()),
        },
        None => io::Error::other(err.to_string()),
    }
}

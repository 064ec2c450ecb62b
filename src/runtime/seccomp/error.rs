//! Errors of loading, resolving, compiling and installing a seccomp profile.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum SeccompError {
    /// `--security-opt seccomp=FILE` names a file we cannot read.
    #[error("cannot read seccomp profile {path}")]
    ReadProfile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The profile is not valid Docker/OCI seccomp JSON.
    #[error("invalid seccomp profile {origin}: {source}")]
    ParseProfile {
        /// The file path, or "the embedded Docker default profile".
        origin: String,
        #[source]
        source: serde_json::Error,
    },

    /// A rule uses an action berth cannot implement.
    #[error(
        "seccomp profile rule #{rule} ({syscalls}): {action} needs a seccomp-notify \
         listener, which berth does not provide; use another action"
    )]
    UnsupportedAction {
        rule: usize,
        syscalls: String,
        action: &'static str,
    },

    /// A rule compares an argument that syscalls do not have.
    #[error("seccomp profile rule #{rule} ({syscalls}): argument index {index} is not in 0..=5")]
    ArgIndex { rule: usize, syscalls: String, index: u8 },

    /// A rule's `minKernel` is not `MAJOR.MINOR`.
    #[error("seccomp profile rule #{rule}: minKernel {value:?} is not MAJOR.MINOR (e.g. \"4.8\")")]
    MinKernel { rule: usize, value: String },

    /// `uname` failed or returned a release we cannot parse.
    #[error("cannot determine the host kernel version (release {release:?})")]
    KernelVersion {
        release: String,
        #[source]
        source: Option<io::Error>,
    },

    /// berth only compiles filters for x86_64 (its syscall table's arch).
    #[error("seccomp filters can only be compiled for x86_64, not {0}")]
    UnsupportedArch(&'static str),

    /// seccompiler rejected the filter for one action (e.g. too many instructions).
    #[error("cannot compile the seccomp filter for action {action}")]
    Compile {
        action: String,
        #[source]
        source: seccompiler::BackendError,
    },

    /// The kernel refused a BPF program. EACCES means the process has neither
    /// `no_new_privs` nor CAP_SYS_ADMIN.
    #[error("cannot install seccomp BPF program {index} of {count}")]
    Install {
        index: usize,
        count: usize,
        #[source]
        source: io::Error,
    },
}

//! Devices beyond `--device` paths: GPUs and the Container Device
//! Interface (CDI).
//!
//! Everything here is pure over a filesystem root: specs are read from
//! `<root>/etc/cdi`, device nodes are found under `<root>/dev` and their
//! type and numbers come from an injected [`NodeStat`], so the decisions are
//! tested on fake trees without root and without a GPU. The runtime applies
//! the resulting [`Applied`] edits at create time ([`apply_to_config`]).
//!
//! - [`cdi`]: the CDI spec format, a registry over spec directories, and the
//!   merge of container edits with conflict detection.
//! - [`nvidia`]: NVIDIA discovery when no CDI spec exists (what
//!   `nvidia-ctk cdi generate` would have written).
//! - [`request`]: compose `gpus:`, device reservations and CDI `devices:`
//!   entries turned into a [`request::Resolved`] plan, then into edits.
//! - [`inject`]: the entry points the engine and the CLI call
//!   ([`edits_for_service`]) and the merge of edits into a container's
//!   configuration ([`apply_to_config`]).
//! - [`gpus_flag`]: docker's `--gpus` syntax as a device request.

pub mod cdi;
mod error;
pub mod gpus_flag;
pub mod host_nodes;
pub mod inject;
pub mod nvidia;
pub mod request;

use std::path::Path;

pub use cdi::edits::{Applied, AppliedMount, Hook, HookStage};
pub use error::{CdiError, DeviceError, NvidiaError};
pub use gpus_flag::{parse_gpus_flag, GpusFlagError};
pub use inject::{apply_to_config, device_root, edits_for_requests, edits_for_service, DEVICE_ROOT_ENV};

/// What `stat` says about a device node: its type (`'c'`, `'b'`, `'p'`)
/// and numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeInfo {
    pub kind: char,
    pub major: u64,
    pub minor: u64,
}

/// Looks up a device node on the host; `None` when the path is missing or
/// not a device. The seam that lets tests run on trees of plain files.
pub type NodeStat<'a> = &'a dyn Fn(&Path) -> Option<NodeInfo>;

/// The real [`NodeStat`]: follows symlinks (`/dev/dri/by-path/*`, udev
/// aliases) like CDI's `deviceInfoFromPath`.
pub fn host_stat(path: &Path) -> Option<NodeInfo> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta = std::fs::metadata(path).ok()?;
    let file_type = meta.file_type();
    let kind = if file_type.is_char_device() {
        'c'
    } else if file_type.is_block_device() {
        'b'
    } else if file_type.is_fifo() {
        'p'
    } else {
        return None;
    };
    let rdev = meta.rdev();
    Some(NodeInfo {
        kind,
        major: nix::sys::stat::major(rdev),
        minor: nix::sys::stat::minor(rdev),
    })
}

/// `path` (absolute, as seen on the host) under `root`.
pub(crate) fn under_root(root: &Path, path: &str) -> std::path::PathBuf {
    root.join(path.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_stat_sees_dev_null_and_not_plain_files() {
        let null = host_stat(Path::new("/dev/null")).unwrap();
        assert_eq!((null.kind, null.major, null.minor), ('c', 1, 3));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        std::fs::write(&file, "").unwrap();
        assert_eq!(host_stat(&file), None);
        assert_eq!(host_stat(Path::new("/nonexistent")), None);
    }

    #[test]
    fn under_root_strips_the_leading_slash() {
        assert_eq!(under_root(Path::new("/r"), "/dev/x"), Path::new("/r/dev/x"));
        assert_eq!(under_root(Path::new("/"), "/dev/x"), Path::new("/dev/x"));
    }
}

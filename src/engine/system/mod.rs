//! `berth system …`: facts about one engine root as a whole, not a
//! project: [`info`] (like `docker info`), [`df`] (disk usage) and
//! [`prune`] (remove what nothing uses).

pub mod df;
pub mod info;
pub mod prune;

use std::path::{Path, PathBuf};

use crate::image::ImageError;
use crate::network::NetworkStoreError;
use crate::runtime::container::ContainerError;
use crate::volume::VolumeError;

#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    #[error("listing containers")]
    Containers(#[from] ContainerError),
    #[error("reading the image store")]
    Images(#[from] ImageError),
    #[error("reading the volume store")]
    Volumes(#[from] VolumeError),
    #[error("reading the network store")]
    Networks(#[from] NetworkStoreError),
}

/// Bytes of the files under `path` (apparent sizes, symlinks not
/// followed, unreadable entries skipped: usage is an estimate, and one
/// file vanishing under a running container must not fail the whole
/// report).
pub fn disk_size(path: &Path) -> u64 {
    let mut total = 0u64;
    let mut pending: Vec<PathBuf> = vec![path.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                total = total.saturating_add(meta.len());
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_size_sums_files_recursively() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), [0u8; 10]).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/b"), [0u8; 5]).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("sub/link")).unwrap();
        let link_len = std::fs::symlink_metadata(dir.path().join("sub/link")).unwrap().len();
        assert_eq!(disk_size(dir.path()), 15 + link_len);
        assert_eq!(disk_size(&dir.path().join("missing")), 0);
    }
}

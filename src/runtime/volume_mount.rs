//! Mounting a named volume in the container (in the init, inside its
//! mount namespace, before `pivot_root`), and docker's copy-up: an empty
//! volume mounted where the image has a directory is first given that
//! directory's content, owner and mode.
//!
//! The copy reads the image's directory through a descriptor opened just
//! before the volume is mounted over it. That is the merged overlay, so
//! the topmost layer wins and whiteouts hide what they delete: the volume
//! gets exactly what the container would have seen at the path. Skipped
//! when the volume already has content, or with `-v NAME:/path:nocopy`.
//! Nothing is mounted on the host: a `tmpfs` or device volume is mounted
//! afresh for each container (unlike docker, which shares one host mount
//! between the containers using it).

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{lchown, symlink, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::mount::MsFlags;
use nix::sys::stat::{mknod, Mode, SFlag};

use super::config::MountSpec;
use super::rootfs::{do_mount, ensure_dir, io_err, RootfsError};

/// Mounts volume `m` on `dest` (already resolved inside the rootfs).
pub fn mount(dest: &Path, m: &MountSpec) -> Result<(), RootfsError> {
    // The image's directory, held open before the volume hides it.
    let below = fs::symlink_metadata(dest)
        .ok()
        .filter(|meta| meta.is_dir())
        .and_then(|_| {
            open(
                dest,
                OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .ok()
        });
    ensure_dir(dest)?;
    let source = m.source.clone().unwrap_or_default();
    let source = source.display().to_string();
    match &m.fstype {
        None => do_mount(Some(&source), dest, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)?,
        Some(fstype) => {
            let data = m.options.join(",");
            do_mount(
                Some(&source),
                dest,
                Some(fstype),
                MsFlags::empty(),
                (!data.is_empty()).then_some(data.as_str()),
            )?
        }
    }
    if let Some(below) = below.filter(|_| !m.no_copy) {
        let from = PathBuf::from(format!("/proc/self/fd/{}", below.as_raw_fd()));
        let empty = fs::read_dir(dest)
            .map_err(io_err("reading volume", dest))?
            .next()
            .is_none();
        if empty {
            copy_dir_contents(&from, dest)?;
            copy_metadata(&from, dest)?;
        }
    }
    if m.read_only {
        // Flags are ignored on the first bind: remount to apply.
        do_mount(
            None,
            dest,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC,
            None,
        )?;
    }
    Ok(())
}

/// Owner, then mode (chown clears set-id bits, so mode goes last).
fn copy_metadata(from: &Path, to: &Path) -> Result<(), RootfsError> {
    let meta = fs::metadata(from).map_err(io_err("reading", from))?;
    lchown(to, Some(meta.uid()), Some(meta.gid())).map_err(io_err("chown", to))?;
    fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777)).map_err(io_err("chmod", to))
}

/// Copies a tree without following symlinks: directories, files,
/// symlinks, device nodes and fifos, with owners and modes (sockets are
/// skipped; hard links become copies).
fn copy_dir_contents(from: &Path, to: &Path) -> Result<(), RootfsError> {
    for entry in fs::read_dir(from).map_err(io_err("reading", from))? {
        let entry = entry.map_err(io_err("reading", from))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let meta = fs::symlink_metadata(&src).map_err(io_err("reading", &src))?;
        let kind = meta.file_type();
        if kind.is_dir() {
            fs::create_dir(&dst).map_err(io_err("creating directory", &dst))?;
            copy_dir_contents(&src, &dst)?;
        } else if kind.is_symlink() {
            let target = fs::read_link(&src).map_err(io_err("reading link", &src))?;
            symlink(&target, &dst).map_err(io_err("creating symlink", &dst))?;
            lchown(&dst, Some(meta.uid()), Some(meta.gid())).map_err(io_err("chown", &dst))?;
            continue;
        } else if kind.is_file() {
            fs::copy(&src, &dst).map_err(io_err("copying", &src))?;
        } else if kind.is_socket() {
            continue;
        } else {
            let sflag = if kind.is_block_device() {
                SFlag::S_IFBLK
            } else if kind.is_char_device() {
                SFlag::S_IFCHR
            } else {
                SFlag::S_IFIFO
            };
            mknod(&dst, sflag, Mode::from_bits_truncate(meta.mode()), meta.rdev()).map_err(|errno| {
                RootfsError::Path {
                    action: "mknod",
                    path: dst.display().to_string(),
                    errno,
                }
            })?;
        }
        copy_metadata(&src, &dst)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_a_tree_without_following_links() {
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (dir.path().join("from"), dir.path().join("to"));
        fs::create_dir_all(from.join("sub")).unwrap();
        fs::create_dir(&to).unwrap();
        fs::write(from.join("sub/f"), "x").unwrap();
        fs::set_permissions(from.join("sub/f"), fs::Permissions::from_mode(0o640)).unwrap();
        symlink("/etc/passwd", from.join("link")).unwrap();
        copy_dir_contents(&from, &to).unwrap();
        assert_eq!(fs::read_to_string(to.join("sub/f")).unwrap(), "x");
        let mode = fs::metadata(to.join("sub/f")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        assert_eq!(fs::read_link(to.join("link")).unwrap(), PathBuf::from("/etc/passwd"));
    }
}

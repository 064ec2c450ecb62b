//! Copying trees for `cp`: host ↔ container, tar stream ↔ container.
//!
//! Every entry is written without following a symlink at its own path: an
//! existing non-directory there is removed and the entry created anew
//! (`O_CREAT|O_EXCL` never follows), and directories are entered only if
//! they are real directories. Parents inside the container are resolved
//! with `scoped_join`, so links planted in it stay inside it.
//!
//! Known limit: a container that swaps a directory for a symlink *while*
//! a copy runs could race these checks (see `openat2(RESOLVE_IN_ROOT)`).

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{lchown, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use tar::EntryType;

use super::{io_err, resolve, FilesError};
use crate::runtime::rootfs::scoped_join;

/// `cp` flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyOptions {
    /// `-a`: keep uid/gid (otherwise the copy belongs to the caller).
    pub archive: bool,
    /// `-L`: copy what a source symlink points to, not the link.
    pub follow_link: bool,
}

/// What a written entry gets once its content is in place.
#[derive(Debug, Clone, Copy)]
struct Attributes {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: SystemTime,
}

impl Attributes {
    fn of(meta: &Metadata, options: CopyOptions) -> Self {
        let (uid, gid) = owner(options, meta.uid(), meta.gid());
        Attributes {
            mode: meta.mode() & 0o7777,
            uid,
            gid,
            mtime: meta.modified().unwrap_or(UNIX_EPOCH),
        }
    }
}

fn owner(options: CopyOptions, uid: u32, gid: u32) -> (u32, u32) {
    if options.archive {
        (uid, gid)
    } else {
        (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw())
    }
}

/// Copies `src` (a file, link, directory or special file) to `dst`,
/// merging into a directory already there. `follow_top` follows `src`
/// itself if it is a symlink.
pub fn copy(src: &Path, dst: &Path, options: CopyOptions, follow_top: bool) -> Result<(), FilesError> {
    let meta = if follow_top {
        fs::metadata(src)
    } else {
        fs::symlink_metadata(src)
    }
    .map_err(io_err("cannot copy", src))?;
    let attributes = Attributes::of(&meta, options);
    let kind = meta.file_type();
    if kind.is_dir() {
        make_dir(dst)?;
        for entry in fs::read_dir(src).map_err(io_err("cannot list", src))? {
            let entry = entry.map_err(io_err("cannot list", src))?;
            copy(&entry.path(), &dst.join(entry.file_name()), options, false)?;
        }
        finish_dir(dst, attributes)
    } else if kind.is_symlink() {
        let target = fs::read_link(src).map_err(io_err("cannot read link", src))?;
        write_symlink(dst, &target, attributes)
    } else if kind.is_file() {
        let flags = if follow_top { 0 } else { libc::O_NOFOLLOW };
        let mut file = OpenOptions::new()
            .read(true)
            .custom_flags(flags)
            .open(src)
            .map_err(io_err("cannot open", src))?;
        write_file(dst, &mut file, attributes)
    } else if kind.is_socket() {
        Ok(())
    } else {
        write_special(dst, special_kind(&meta), meta.rdev(), attributes)
    }
}

fn special_kind(meta: &Metadata) -> SFlag {
    let kind = meta.file_type();
    if kind.is_char_device() {
        SFlag::S_IFCHR
    } else if kind.is_block_device() {
        SFlag::S_IFBLK
    } else {
        SFlag::S_IFIFO
    }
}

/// Unpacks a tar stream into `dst`, a directory of the container whose `/`
/// is at `root`; every entry's parent is resolved inside the container.
pub fn extract(root: &Path, dst: &str, tar: impl Read, options: CopyOptions) -> Result<(), FilesError> {
    let tar_err = |e: io::Error| FilesError::Tar(format!("reading the tar stream: {e}"));
    let mut archive = tar::Archive::new(tar);
    let mut dirs = Vec::new();
    for entry in archive.entries().map_err(tar_err)? {
        let mut entry = entry.map_err(tar_err)?;
        let path = entry.path().map_err(tar_err)?.into_owned();
        let mut names = Vec::new();
        for component in path.components() {
            match component {
                Component::Normal(name) => names.push(name.to_string_lossy().into_owned()),
                Component::ParentDir => {
                    return Err(FilesError::Tar(format!("refusing entry {path:?}: it contains \"..\"")))
                }
                _ => {}
            }
        }
        let Some((name, parents)) = names.split_last() else {
            continue;
        };
        let parent = scoped_join(root, &format!("{dst}/{}", parents.join("/")));
        fs::create_dir_all(&parent).map_err(io_err("cannot create", &parent))?;
        let target = parent.join(name);
        let header = entry.header();
        let (uid, gid) = owner(
            options,
            header.uid().unwrap_or(0) as u32,
            header.gid().unwrap_or(0) as u32,
        );
        let attributes = Attributes {
            mode: header.mode().unwrap_or(0o644) & 0o7777,
            uid,
            gid,
            mtime: UNIX_EPOCH + Duration::from_secs(header.mtime().unwrap_or(0)),
        };
        let link = entry.link_name().map_err(tar_err)?.map(|l| l.into_owned());
        let device = makedev(
            u64::from(header.device_major().ok().flatten().unwrap_or(0)),
            u64::from(header.device_minor().ok().flatten().unwrap_or(0)),
        );
        match entry.header().entry_type() {
            EntryType::Directory => {
                make_dir(&target)?;
                dirs.push((target, attributes));
            }
            EntryType::Regular | EntryType::Continuous => write_file(&target, &mut entry, attributes)?,
            EntryType::Symlink => write_symlink(&target, &link.unwrap_or_default(), attributes)?,
            EntryType::Link => {
                let first = resolve(root, &format!("{dst}/{}", link.unwrap_or_default().display()), false);
                remove_non_dir(&target)?;
                fs::hard_link(&first, &target).map_err(io_err("cannot create hard link", &target))?;
            }
            EntryType::Char => write_special(&target, SFlag::S_IFCHR, device, attributes)?,
            EntryType::Block => write_special(&target, SFlag::S_IFBLK, device, attributes)?,
            EntryType::Fifo => write_special(&target, SFlag::S_IFIFO, device, attributes)?,
            _ => {}
        }
    }
    // Modes last: a read-only directory must not block its own contents.
    for (dir, attributes) in dirs.into_iter().rev() {
        finish_dir(&dir, attributes)?;
    }
    Ok(())
}

/// Writes `from` as a tar stream, named `name` (its contents' own names
/// when `None`), links as links, owners and modes kept.
pub fn archive(from: &Path, name: Option<&str>, out: &mut dyn Write) -> Result<(), FilesError> {
    let err = io_err("cannot archive", from);
    let mut builder = tar::Builder::new(out);
    builder.follow_symlinks(false);
    let is_dir = fs::symlink_metadata(from).is_ok_and(|m| m.is_dir());
    let result = match name {
        Some(name) if is_dir => builder.append_dir_all(name, from),
        Some(name) => builder.append_path_with_name(from, name),
        None => builder.append_dir_all(".", from),
    };
    result.and_then(|()| builder.finish()).map_err(err)
}

/// A directory at `path`, keeping one already there; anything else there
/// (a symlink above all) is replaced, never followed.
fn make_dir(path: &Path) -> Result<(), FilesError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => return Ok(()),
        Ok(_) => fs::remove_file(path).map_err(io_err("cannot replace", path))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("cannot stat", path)(e)),
    }
    fs::create_dir(path).map_err(io_err("cannot create directory", path))
}

fn finish_dir(path: &Path, attributes: Attributes) -> Result<(), FilesError> {
    let dir = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(path)
        .map_err(io_err("cannot open", path))?;
    apply(&dir, path, attributes)
}

/// Removes what is at `path` unless it is a directory (which is an error:
/// docker refuses to overwrite a directory with a non-directory).
fn remove_non_dir(path: &Path) -> Result<(), FilesError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => Err(io_err("cannot overwrite a directory with a non-directory", path)(
            io::Error::from(io::ErrorKind::IsADirectory),
        )),
        Ok(_) => fs::remove_file(path).map_err(io_err("cannot replace", path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("cannot stat", path)(e)),
    }
}

fn write_file(path: &Path, content: &mut dyn Read, attributes: Attributes) -> Result<(), FilesError> {
    remove_non_dir(path)?;
    // O_EXCL: fails on (never follows) a symlink created since.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(io_err("cannot create", path))?;
    io::copy(content, &mut file).map_err(io_err("cannot write", path))?;
    apply(&file, path, attributes)
}

fn write_symlink(path: &Path, target: &Path, attributes: Attributes) -> Result<(), FilesError> {
    remove_non_dir(path)?;
    std::os::unix::fs::symlink(target, path).map_err(io_err("cannot create symlink", path))?;
    lchown(path, Some(attributes.uid), Some(attributes.gid)).map_err(io_err("cannot chown", path))
}

fn write_special(path: &Path, kind: SFlag, device: u64, attributes: Attributes) -> Result<(), FilesError> {
    remove_non_dir(path)?;
    mknod(path, kind, Mode::from_bits_truncate(attributes.mode), device)
        .map_err(|errno| io_err("cannot create", path)(io::Error::from(errno)))?;
    lchown(path, Some(attributes.uid), Some(attributes.gid)).map_err(io_err("cannot chown", path))
}

/// Owner, then mode (chown clears setuid bits), then mtime, all by fd.
fn apply(file: &File, path: &Path, attributes: Attributes) -> Result<(), FilesError> {
    std::os::unix::fs::fchown(file, Some(attributes.uid), Some(attributes.gid))
        .map_err(io_err("cannot chown", path))?;
    file.set_permissions(fs::Permissions::from_mode(attributes.mode))
        .map_err(io_err("cannot chmod", path))?;
    file.set_modified(attributes.mtime)
        .map_err(io_err("cannot set the modification time of", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_keeps_modes_and_links_and_replaces_links_it_would_write_through() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        fs::create_dir_all(src.join("sub")).unwrap();
        fs::write(src.join("sub/run.sh"), b"#!/bin/sh\n").unwrap();
        fs::set_permissions(src.join("sub/run.sh"), fs::Permissions::from_mode(0o750)).unwrap();
        std::os::unix::fs::symlink("/nowhere", src.join("link")).unwrap();
        fs::write(src.join("victim"), b"new").unwrap();

        // The destination holds a link where a file will go: it must be
        // replaced, not written through.
        let outside = dir.path().join("outside");
        fs::write(&outside, b"keep").unwrap();
        let dst = dir.path().join("dst");
        fs::create_dir(&dst).unwrap();
        std::os::unix::fs::symlink(&outside, dst.join("victim")).unwrap();

        copy(&src, &dst, CopyOptions::default(), false).unwrap();
        assert_eq!(fs::read(&outside).unwrap(), b"keep");
        assert_eq!(fs::read(dst.join("victim")).unwrap(), b"new");
        let mode = fs::metadata(dst.join("sub/run.sh")).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o750);
        assert_eq!(fs::read_link(dst.join("link")).unwrap(), Path::new("/nowhere"));

        // Round trip through a tar stream, into a scoped destination.
        let mut tar = Vec::new();
        archive(&src, Some("src"), &mut tar).unwrap();
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("in")).unwrap();
        extract(&root, "/in", &tar[..], CopyOptions::default()).unwrap();
        assert_eq!(fs::read(root.join("in/src/sub/run.sh")).unwrap(), b"#!/bin/sh\n");
        assert_eq!(fs::read_link(root.join("in/src/link")).unwrap(), Path::new("/nowhere"));
    }
}

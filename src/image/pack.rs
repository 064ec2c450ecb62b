//! Writing a directory tree as a tar stream: a container's rootfs for
//! `export`, or an overlay upper dir as a layer for `commit`.
//!
//! Ownership, modes, mtimes, symlinks, hard links (by inode), devices,
//! fifos and xattrs (as PAX `SCHILY.xattr.*` records) are preserved.
//! Sockets cannot be represented in tar and are skipped, as GNU tar does.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File, Metadata};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use tar::{Builder, EntryType, Header};

use super::unpack::{OPAQUE_MARKER, WHITEOUT_PREFIX};
use super::xattrs::{self, OVERLAY_OPAQUE};
use super::ImageError;

/// How special overlayfs entries are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeKind {
    /// A plain filesystem tree, written as is.
    Rootfs,
    /// An overlayfs upper dir: whiteouts (char 0:0) become `.wh.NAME`,
    /// opaque dirs get a `.wh..wh..opq` entry.
    OverlayUpper,
}

/// Writes the tree at `dir` as a tar stream to `out` (for `container export`).
pub fn write_rootfs_tar(dir: &Path, out: &mut dyn Write) -> Result<(), ImageError> {
    write_tree(dir, out, TreeKind::Rootfs)
}

/// Writes the tree at `dir` as a tar stream, converting overlay markers per `kind`.
pub fn write_tree(dir: &Path, out: &mut dyn Write, kind: TreeKind) -> Result<(), ImageError> {
    let mut packer = Packer {
        root: dir.to_path_buf(),
        builder: Builder::new(out),
        kind,
        links: HashMap::new(),
    };
    packer.walk(Path::new(""))?;
    packer
        .builder
        .finish()
        .map_err(ImageError::io("cannot write tar of", dir))
}

struct Packer<'a> {
    root: PathBuf,
    builder: Builder<&'a mut dyn Write>,
    kind: TreeKind,
    /// (dev, ino) → first path written, for hard links.
    links: HashMap<(u64, u64), PathBuf>,
}

impl Packer<'_> {
    fn walk(&mut self, rel: &Path) -> Result<(), ImageError> {
        let dir = self.root.join(rel);
        let mut names: Vec<_> = fs::read_dir(&dir)
            .map_err(ImageError::io("cannot list", &dir))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(ImageError::io("cannot list", &dir))?;
        names.sort();
        for name in names {
            let rel = rel.join(&name);
            let path = self.root.join(&rel);
            let meta = fs::symlink_metadata(&path).map_err(ImageError::io("cannot stat", &path))?;
            self.entry(&rel, &path, &meta)?;
            if meta.is_dir() {
                self.walk(&rel)?;
            }
        }
        Ok(())
    }

    fn header(meta: &Metadata, kind: EntryType) -> Header {
        let mut header = Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(meta.mode() & 0o7777);
        header.set_uid(u64::from(meta.uid()));
        header.set_gid(u64::from(meta.gid()));
        header.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
        header.set_size(0);
        header
    }

    /// PAX records for the entry's xattrs (overlay-private ones dropped).
    fn xattrs(&mut self, path: &Path) -> Result<(), ImageError> {
        let io = ImageError::io("cannot read xattrs of", path);
        let names = match xattrs::list(path) {
            Ok(names) => names,
            Err(e) => return Err(io(e)),
        };
        let mut records: Vec<(String, Vec<u8>)> = Vec::new();
        for name in names {
            let text = name.to_string_lossy().into_owned();
            if text.starts_with("trusted.overlay.") {
                continue;
            }
            let value = xattrs::get(path, &name).map_err(ImageError::io("cannot read xattrs of", path))?;
            records.push((format!("SCHILY.xattr.{text}"), value));
        }
        self.builder
            .append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
            .map_err(ImageError::io("cannot write tar entry for", path))
    }

    fn entry(&mut self, rel: &Path, path: &Path, meta: &Metadata) -> Result<(), ImageError> {
        let write_err = || ImageError::io("cannot write tar entry for", path);
        let file_type = meta.file_type();
        let overlay = self.kind == TreeKind::OverlayUpper;
        if overlay && file_type.is_char_device() && meta.rdev() == 0 {
            let name = rel.file_name().unwrap_or_default();
            let mut whiteout = OsStr::new(WHITEOUT_PREFIX).to_os_string();
            whiteout.push(name);
            let target = rel.with_file_name(whiteout);
            let mut header = Self::header(meta, EntryType::Regular);
            return self
                .builder
                .append_data(&mut header, target, io::empty())
                .map_err(write_err());
        }
        if file_type.is_socket() {
            return Ok(());
        }
        if file_type.is_file() && meta.nlink() > 1 {
            if let Some(first) = self.links.get(&(meta.dev(), meta.ino())) {
                let first = first.clone();
                let mut header = Self::header(meta, EntryType::Link);
                return self.builder.append_link(&mut header, rel, first).map_err(write_err());
            }
            self.links.insert((meta.dev(), meta.ino()), rel.to_path_buf());
        }
        self.xattrs(path)?;
        if file_type.is_dir() {
            let mut header = Self::header(meta, EntryType::Directory);
            let mut name = rel.as_os_str().to_os_string();
            name.push("/");
            self.builder
                .append_data(&mut header, &name, io::empty())
                .map_err(write_err())?;
            if overlay && xattrs::get(path, OsStr::new(OVERLAY_OPAQUE)).is_ok_and(|v| v == b"y") {
                let mut header = Self::header(meta, EntryType::Regular);
                header.set_mode(0o644);
                self.builder
                    .append_data(&mut header, rel.join(OPAQUE_MARKER), io::empty())
                    .map_err(write_err())?;
            }
        } else if file_type.is_symlink() {
            let target = fs::read_link(path).map_err(ImageError::io("cannot read link", path))?;
            let mut header = Self::header(meta, EntryType::Symlink);
            self.builder
                .append_link(&mut header, rel, target)
                .map_err(write_err())?;
        } else if file_type.is_file() {
            let mut header = Self::header(meta, EntryType::Regular);
            header.set_size(meta.len());
            let file = File::open(path).map_err(ImageError::io("cannot open", path))?;
            // A file that changes size while read would corrupt the stream;
            // `take` keeps the entry exactly as long as its header says.
            let mut data = io::Read::take(file, meta.len());
            self.builder
                .append_data(&mut header, rel, &mut data)
                .map_err(write_err())?;
        } else {
            let kind = if file_type.is_char_device() {
                EntryType::Char
            } else if file_type.is_block_device() {
                EntryType::Block
            } else {
                EntryType::Fifo
            };
            let mut header = Self::header(meta, kind);
            if kind != EntryType::Fifo {
                let rdev = meta.rdev();
                let (major, minor) = (libc::major(rdev), libc::minor(rdev));
                header.set_device_major(major).map_err(write_err())?;
                header.set_device_minor(minor).map_err(write_err())?;
            }
            self.builder
                .append_data(&mut header, rel, io::empty())
                .map_err(write_err())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};

    use nix::sys::stat::{mknod, Mode, SFlag};

    use super::*;

    fn entries(tar: &[u8]) -> Vec<(String, EntryType)> {
        let mut archive = tar::Archive::new(tar);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    e.header().entry_type(),
                )
            })
            .collect()
    }

    #[test]
    fn overlay_upper_markers_become_whiteout_entries() {
        let upper = tempfile::tempdir().unwrap();
        let u = upper.path();
        fs::create_dir(u.join("opq")).unwrap();
        xattrs::set(&xattrs::Target::Path(&u.join("opq")), OVERLAY_OPAQUE, b"y").unwrap();
        fs::write(u.join("opq/new"), b"n").unwrap();
        mknod(&u.join("deleted"), SFlag::S_IFCHR, Mode::empty(), 0).unwrap();
        fs::write(u.join("file"), b"data").unwrap();
        fs::set_permissions(u.join("file"), fs::Permissions::from_mode(0o4755)).unwrap();
        fs::hard_link(u.join("file"), u.join("file2")).unwrap();
        std::os::unix::fs::symlink("/nowhere", u.join("link")).unwrap();

        let mut tar = Vec::new();
        write_tree(u, &mut tar, TreeKind::OverlayUpper).unwrap();
        let listed = entries(&tar);
        let names: Vec<&str> = listed.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                ".wh.deleted",
                "file",
                "file2",
                "link",
                "opq/",
                "opq/.wh..wh..opq",
                "opq/new"
            ]
        );
        assert_eq!(listed[2].1, EntryType::Link);
        assert_eq!(listed[3].1, EntryType::Symlink);

        // Unpacking the layer restores the overlay markers.
        let back = tempfile::tempdir().unwrap();
        super::super::unpack::unpack_layer(&tar[..], None, back.path()).unwrap();
        let b = back.path();
        assert!(fs::symlink_metadata(b.join("deleted"))
            .unwrap()
            .file_type()
            .is_char_device());
        assert_eq!(xattrs::get(&b.join("opq"), OsStr::new(OVERLAY_OPAQUE)).unwrap(), b"y");
        assert_eq!(
            fs::metadata(b.join("file")).unwrap().permissions().mode() & 0o7777,
            0o4755
        );
        assert_eq!(fs::metadata(b.join("file2")).unwrap().nlink(), 2);
        assert_eq!(fs::read_link(b.join("link")).unwrap(), Path::new("/nowhere"));

        // A plain rootfs tar keeps the device as a device.
        let mut tar = Vec::new();
        write_rootfs_tar(u, &mut tar).unwrap();
        assert!(entries(&tar).contains(&("deleted".to_string(), EntryType::Char)));
    }
}

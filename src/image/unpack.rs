//! Layer unpacking: tar (plain, gzip or zstd) into an empty directory,
//! with overlayfs whiteouts, and refusing anything that could write outside
//! that directory.
//!
//! Safety does not rest on the tar crate's `unpack_in`. Every entry is
//! placed by our own loop:
//! - its path is normalized lexically (`.` and empty components dropped,
//!   `..` resolved); an absolute path, or a `..` that climbs above the
//!   layer root, is refused;
//! - its parent is reached one component at a time with
//!   `openat(O_DIRECTORY|O_NOFOLLOW)` from the layer root, so a symlink
//!   planted earlier in the same layer can never be written through;
//! - the entry itself is created with `*at` calls relative to that parent
//!   fd, never following a final symlink (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`,
//!   `linkat` without `AT_SYMLINK_FOLLOW`).
//!
//! The caller unpacks into a fresh staging directory and removes it on any
//! error, so a refused layer leaves nothing behind.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{self, Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd::{self, Gid, Uid, UnlinkatFlags};
use tar::EntryType;

use super::digest::{Digest, HashingReader};
use super::xattrs::{self, OVERLAY_OPAQUE};
use super::ImageError;

pub const WHITEOUT_PREFIX: &str = ".wh.";
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// What unpacking learned about the uncompressed layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackedLayer {
    pub diff_id: Digest,
    pub size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Picks the decompressor from the media type and the first bytes. The
/// magic bytes win (docker-save archives carry no media type at all); the
/// media type must still name a layer.
pub fn detect_compression(media_type: Option<&str>, head: &[u8]) -> Result<Compression, ImageError> {
    if let Some(media_type) = media_type {
        let known = media_type.starts_with("application/vnd.oci.image.layer.")
            || media_type.starts_with("application/vnd.docker.image.rootfs.");
        if !known {
            return Err(ImageError::UnsupportedMediaType {
                media_type: media_type.to_string(),
                what: "a layer".to_string(),
            });
        }
    }
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    })
}

/// Wraps `reader` in the decompressor its content needs.
pub fn decompress<'a>(reader: impl Read + 'a, media_type: Option<&str>) -> Result<Box<dyn Read + 'a>, ImageError> {
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let head = reader
        .fill_buf()
        .map_err(|source| ImageError::Unpack {
            entry: String::new(),
            source,
        })?
        .to_vec();
    Ok(match detect_compression(media_type, &head)? {
        Compression::None => Box::new(reader),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        Compression::Zstd => {
            Box::new(
                zstd::stream::read::Decoder::with_buffer(reader).map_err(|source| ImageError::Unpack {
                    entry: String::new(),
                    source,
                })?,
            )
        }
    })
}

/// Unpacks one layer into `dest`, an existing, empty, private directory.
pub fn unpack_layer(reader: impl Read, media_type: Option<&str>, dest: &Path) -> Result<UnpackedLayer, ImageError> {
    let hashing = HashingReader::new(decompress(reader, media_type)?);
    let mut archive = tar::Archive::new(hashing);
    let root = File::open(dest).map_err(ImageError::io("cannot open", dest))?;
    let root: OwnedFd = root.into();
    let mut dir_times: Vec<(Vec<Vec<u8>>, i64)> = Vec::new();
    let entries = archive.entries().map_err(|source| ImageError::Unpack {
        entry: String::new(),
        source,
    })?;
    for entry in entries {
        let mut entry = entry.map_err(|source| ImageError::Unpack {
            entry: String::new(),
            source,
        })?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        place_entry(&root, &mut entry, &name, &mut dir_times)?;
    }
    // Directory mtimes last: creating children changed them.
    for (components, mtime) in dir_times {
        if let Ok(dir) = walk(&root, &components, false, "") {
            let time = TimeSpec::new(mtime, 0);
            let _ = stat::futimens(&dir, &time, &time);
        }
    }
    let (diff_id, size) = archive.into_inner().finish().map_err(|source| ImageError::Unpack {
        entry: String::new(),
        source,
    })?;
    Ok(UnpackedLayer { diff_id, size })
}

fn unsafe_entry(entry: &str, reason: impl Into<String>) -> ImageError {
    ImageError::UnsafeLayerEntry {
        entry: entry.to_string(),
        reason: reason.into(),
    }
}

fn io_error(entry: &str) -> impl Fn(io::Error) -> ImageError + '_ {
    move |source| ImageError::Unpack {
        entry: entry.to_string(),
        source,
    }
}

fn errno_error(entry: &str) -> impl Fn(Errno) -> ImageError + '_ {
    move |errno| ImageError::Unpack {
        entry: entry.to_string(),
        source: io::Error::from(errno),
    }
}

/// Normalizes an entry path to components below the layer root.
pub fn normalize(path: &[u8], entry: &str) -> Result<Vec<Vec<u8>>, ImageError> {
    if path.starts_with(b"/") {
        return Err(unsafe_entry(
            entry,
            "absolute path (layer entries must be relative to the layer root)",
        ));
    }
    let mut components: Vec<Vec<u8>> = Vec::new();
    for component in path.split(|b| *b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => {
                if components.pop().is_none() {
                    return Err(unsafe_entry(entry, "path escapes the layer root with '..'"));
                }
            }
            other => components.push(other.to_vec()),
        }
    }
    Ok(components)
}

/// What a tar entry's final name means in a layer.
#[derive(Debug, PartialEq, Eq)]
pub enum Whiteout<'a> {
    /// Not a whiteout: create the entry as is.
    None,
    /// `.wh..wh..opq`: the parent directory hides lower content.
    Opaque,
    /// `.wh.NAME`: `NAME` is deleted (an overlay char device 0:0).
    Remove(&'a [u8]),
    /// Other `.wh..wh.` names: aufs bookkeeping, skipped.
    Skip,
}

/// Classifies a final path component.
pub fn classify<'a>(name: &'a [u8], entry: &str) -> Result<Whiteout<'a>, ImageError> {
    if name == OPAQUE_MARKER.as_bytes() {
        return Ok(Whiteout::Opaque);
    }
    let Some(target) = name.strip_prefix(WHITEOUT_PREFIX.as_bytes()) else {
        return Ok(Whiteout::None);
    };
    if target.starts_with(WHITEOUT_PREFIX.as_bytes()) {
        return Ok(Whiteout::Skip);
    }
    if target.is_empty() || target == b"." || target == b".." {
        return Err(unsafe_entry(entry, "whiteout of an invalid name"));
    }
    Ok(Whiteout::Remove(target))
}

/// Opens the directory at `components` below `root`, one component at a
/// time, never following a symlink; missing directories are created
/// (0755, root-owned) when `create` is set.
fn walk(root: &OwnedFd, components: &[Vec<u8>], create: bool, entry: &str) -> Result<OwnedFd, ImageError> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut current = root.try_clone().map_err(io_error(entry))?;
    for (depth, component) in components.iter().enumerate() {
        let name = component.as_slice();
        let next = match openat(&current, name, flags, Mode::empty()) {
            Err(Errno::ENOENT) if create => {
                stat::mkdirat(&current, name, Mode::from_bits_truncate(0o755)).map_err(errno_error(entry))?;
                openat(&current, name, flags, Mode::empty()).map_err(errno_error(entry))
            }
            Err(Errno::ELOOP | Errno::ENOTDIR) => {
                let prefix = components[..=depth]
                    .iter()
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                let is_link = stat::fstatat(&current, name, AtFlags::AT_SYMLINK_NOFOLLOW)
                    .map(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK)
                    .unwrap_or(false);
                let reason = if is_link {
                    format!("parent {prefix:?} is a symlink (writing through symlinks is refused)")
                } else {
                    format!("parent {prefix:?} is not a directory")
                };
                return Err(unsafe_entry(entry, reason));
            }
            other => other.map_err(errno_error(entry)),
        }?;
        current = next;
    }
    Ok(current)
}

/// Removes whatever is at `name` in `dir`, unless both it and the new entry
/// are directories (tar semantics: a later entry replaces an earlier one,
/// directories merge). Returns whether a directory was kept.
fn clear_slot(dir: &OwnedFd, name: &[u8], new_is_dir: bool, entry: &str) -> Result<bool, ImageError> {
    let existing = match stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT,
        Err(Errno::ENOENT) => return Ok(false),
        Err(e) => return Err(errno_error(entry)(e)),
    };
    if existing == SFlag::S_IFDIR {
        if new_is_dir {
            return Ok(true);
        }
        // The magic link resolves to `dir` itself; remove_dir_all does not
        // follow symlinks below it.
        let path = fd_path(dir).join(OsStr::from_bytes(name));
        std::fs::remove_dir_all(&path).map_err(io_error(entry))?;
    } else {
        unistd::unlinkat(dir, name, UnlinkatFlags::NoRemoveDir).map_err(errno_error(entry))?;
    }
    Ok(false)
}

fn fd_path(fd: &OwnedFd) -> PathBuf {
    use std::os::fd::AsRawFd;
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: i64,
    xattrs: Vec<(String, Vec<u8>)>,
}

fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>, name: &str) -> Result<Meta, ImageError> {
    let header = entry.header();
    let invalid = |what: &str| unsafe_entry(name, format!("unreadable {what} in tar header"));
    let uid = u32::try_from(header.uid().map_err(|_| invalid("uid"))?).map_err(|_| invalid("uid"))?;
    let gid = u32::try_from(header.gid().map_err(|_| invalid("gid"))?).map_err(|_| invalid("gid"))?;
    let mode = header.mode().map_err(|_| invalid("mode"))? & 0o7777;
    let mtime = i64::try_from(header.mtime().unwrap_or(0)).unwrap_or(0);
    let mut xattrs = Vec::new();
    if let Some(extensions) = entry.pax_extensions().map_err(io_error(name))? {
        for extension in extensions {
            let extension = extension.map_err(io_error(name))?;
            let Ok(key) = extension.key() else { continue };
            if let Some(attr) = key.strip_prefix("SCHILY.xattr.") {
                // overlayfs-private attributes would let a layer steer the
                // overlay mount (redirects, metacopy); whiteouts arrive as
                // `.wh.` names instead.
                if !attr.starts_with("trusted.overlay.") {
                    xattrs.push((attr.to_string(), extension.value_bytes().to_vec()));
                }
            }
        }
    }
    Ok(Meta {
        uid,
        gid,
        mode,
        mtime,
        xattrs,
    })
}

fn place_entry<R: Read>(
    root: &OwnedFd,
    entry: &mut tar::Entry<'_, R>,
    name: &str,
    dir_times: &mut Vec<(Vec<Vec<u8>>, i64)>,
) -> Result<(), ImageError> {
    let kind = entry.header().entry_type();
    if matches!(
        kind,
        EntryType::XGlobalHeader | EntryType::XHeader | EntryType::GNULongName | EntryType::GNULongLink
    ) {
        return Ok(());
    }
    let path = entry.path_bytes().into_owned();
    let components = normalize(&path, name)?;
    let meta = read_meta(entry, name)?;
    let Some((last, parents)) = components.split_last() else {
        // `./` itself: the layer root's own metadata.
        if kind != EntryType::Directory {
            return Err(unsafe_entry(name, "the layer root must be a directory"));
        }
        apply_meta(root, None, &meta, name)?;
        dir_times.push((Vec::new(), meta.mtime));
        return Ok(());
    };
    match classify(last, name)? {
        Whiteout::Skip => return Ok(()),
        Whiteout::Opaque => {
            let dir = walk(root, parents, true, name)?;
            return xattrs::set(&xattrs::Target::Fd(dir.as_fd()), OVERLAY_OPAQUE, b"y").map_err(io_error(name));
        }
        Whiteout::Remove(target) => {
            let dir = walk(root, parents, true, name)?;
            clear_slot(&dir, target, false, name)?;
            return stat::mknodat(&dir, target, SFlag::S_IFCHR, Mode::empty(), stat::makedev(0, 0))
                .map_err(errno_error(name));
        }
        Whiteout::None => {}
    }
    let parent = walk(root, parents, true, name)?;
    let last = last.as_slice();
    match kind {
        EntryType::Directory => {
            if !clear_slot(&parent, last, true, name)? {
                stat::mkdirat(&parent, last, Mode::from_bits_truncate(0o700)).map_err(errno_error(name))?;
            }
            let dir = walk(&parent, &[last.to_vec()], false, name)?;
            apply_meta(&dir, None, &meta, name)?;
            dir_times.push((components.clone(), meta.mtime));
        }
        EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
            clear_slot(&parent, last, false, name)?;
            let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let fd = openat(&parent, last, flags, Mode::from_bits_truncate(0o600)).map_err(errno_error(name))?;
            let mut file = File::from(fd);
            copy_contents(entry, &mut file).map_err(io_error(name))?;
            let fd: OwnedFd = file.into();
            apply_meta(&fd, None, &meta, name)?;
        }
        EntryType::Symlink => {
            let target = entry
                .link_name_bytes()
                .ok_or_else(|| unsafe_entry(name, "symlink without a target"))?
                .into_owned();
            clear_slot(&parent, last, false, name)?;
            // The target is stored verbatim: it is only ever resolved inside
            // the container, and unpacking never follows it.
            unistd::symlinkat(target.as_slice(), &parent, last).map_err(errno_error(name))?;
            apply_meta(&parent, Some(last), &meta, name)?;
        }
        EntryType::Link => {
            let target = entry
                .link_name_bytes()
                .ok_or_else(|| unsafe_entry(name, "hard link without a target"))?
                .into_owned();
            if target.starts_with(b"/") {
                return Err(unsafe_entry(name, "hard link to an absolute path (outside the layer)"));
            }
            let target_components =
                normalize(&target, name).map_err(|_| unsafe_entry(name, "hard link target escapes the layer root"))?;
            let Some((target_last, target_parents)) = target_components.split_last() else {
                return Err(unsafe_entry(name, "hard link to the layer root"));
            };
            let target_dir = walk(root, target_parents, false, name)?;
            match stat::fstatat(&target_dir, target_last.as_slice(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR => {
                    return Err(unsafe_entry(name, "hard link to a directory"));
                }
                Ok(_) => {}
                Err(_) => {
                    return Err(unsafe_entry(
                        name,
                        "hard link target is not an earlier entry of this layer",
                    ));
                }
            }
            if target_components == components {
                return Ok(());
            }
            clear_slot(&parent, last, false, name)?;
            // No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink
            // itself, never what it points at.
            unistd::linkat(&target_dir, target_last.as_slice(), &parent, last, AtFlags::empty())
                .map_err(errno_error(name))?;
        }
        EntryType::Char | EntryType::Block | EntryType::Fifo => {
            let header = entry.header();
            let major = u64::from(header.device_major().ok().flatten().unwrap_or(0));
            let minor = u64::from(header.device_minor().ok().flatten().unwrap_or(0));
            let sflag = match kind {
                EntryType::Char => SFlag::S_IFCHR,
                EntryType::Block => SFlag::S_IFBLK,
                _ => SFlag::S_IFIFO,
            };
            clear_slot(&parent, last, false, name)?;
            stat::mknodat(&parent, last, sflag, Mode::empty(), stat::makedev(major, minor))
                .map_err(errno_error(name))?;
            apply_meta(&parent, Some(last), &meta, name)?;
        }
        other => {
            return Err(unsafe_entry(name, format!("unsupported tar entry type {other:?}")));
        }
    }
    Ok(())
}

/// Copies a file's contents in blocks of up to 1 MiB: `io::copy`'s 8 KiB
/// blocks cost a `write` each, ~4000 for a 30 MB file.
fn copy_contents<R: Read>(entry: &mut tar::Entry<'_, R>, file: &mut File) -> io::Result<u64> {
    use std::io::Write;
    const SMALL: u64 = 64 * 1024;
    const BLOCK: u64 = 1024 * 1024;
    let size = entry.size();
    if size <= SMALL {
        return io::copy(entry, file);
    }
    let mut buf = vec![0u8; size.min(BLOCK) as usize];
    let mut copied = 0;
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            match entry.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if filled == 0 {
            return Ok(copied);
        }
        file.write_all(&buf[..filled])?;
        copied += filled as u64;
        if filled < buf.len() {
            return Ok(copied);
        }
    }
}

/// Ownership, then mode (chown clears setuid bits), then xattrs (chown also
/// clears `security.capability`), then mtime. With `name`, the target is
/// `name` in directory `fd` and is not followed; otherwise `fd` itself.
fn apply_meta(fd: &OwnedFd, name: Option<&[u8]>, meta: &Meta, entry: &str) -> Result<(), ImageError> {
    let (uid, gid) = (Some(Uid::from_raw(meta.uid)), Some(Gid::from_raw(meta.gid)));
    let mode = Mode::from_bits_truncate(meta.mode);
    let time = TimeSpec::new(meta.mtime, 0);
    match name {
        None => {
            unistd::fchown(fd, uid, gid).map_err(errno_error(entry))?;
            stat::fchmod(fd, mode).map_err(errno_error(entry))?;
            set_xattrs(&xattrs::Target::Fd(fd.as_fd()), &meta.xattrs, entry)?;
            stat::futimens(fd, &time, &time).map_err(errno_error(entry))?;
        }
        Some(name) => {
            unistd::fchownat(fd, name, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(errno_error(entry))?;
            let is_link = stat::fstatat(fd, name, AtFlags::AT_SYMLINK_NOFOLLOW)
                .map(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK)
                .map_err(errno_error(entry))?;
            if !is_link {
                // Not a symlink (checked just above, in our private staging
                // dir), so following is moot; Linux has no lchmod.
                stat::fchmodat(fd, name, mode, stat::FchmodatFlags::FollowSymlink).map_err(errno_error(entry))?;
            }
            let path = fd_path(fd).join(OsStr::from_bytes(name));
            set_xattrs(&xattrs::Target::Path(&path), &meta.xattrs, entry)?;
            stat::utimensat(fd, name, &time, &time, stat::UtimensatFlags::NoFollowSymlink)
                .map_err(errno_error(entry))?;
        }
    }
    Ok(())
}

fn set_xattrs(target: &xattrs::Target<'_>, attrs: &[(String, Vec<u8>)], entry: &str) -> Result<(), ImageError> {
    for (attr, value) in attrs {
        if let Err(error) = xattrs::set(target, attr, value) {
            if !xattrs::may_ignore(attr, &error) {
                return Err(ImageError::Unpack {
                    entry: format!("{entry} (xattr {attr})"),
                    source: error,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_paths_and_refuses_escapes() {
        let n = |p: &str| normalize(p.as_bytes(), p);
        assert_eq!(n("./a/b/").unwrap(), vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(n("a/./c/../b").unwrap(), vec![b"a".to_vec(), b"b".to_vec()]);
        assert!(n("./").unwrap().is_empty());
        for bad in ["../evil", "a/../../evil", "/etc/evil", "./../x"] {
            let err = n(bad).unwrap_err();
            assert!(
                matches!(&err, ImageError::UnsafeLayerEntry { entry, .. } if entry == bad),
                "{err}"
            );
        }
    }

    #[test]
    fn classifies_whiteouts() {
        let c = |n: &str| classify(n.as_bytes(), n).map(|w| format!("{w:?}"));
        assert_eq!(c("file").unwrap(), "None");
        assert_eq!(c(".wh..wh..opq").unwrap(), "Opaque");
        assert_eq!(c(".wh.gone").unwrap(), format!("{:?}", Whiteout::Remove(b"gone")));
        assert_eq!(c(".wh..wh.plnk").unwrap(), "Skip");
        for bad in [".wh.", ".wh..", ".wh..."] {
            assert!(c(bad).is_err(), "{bad}");
        }
    }

    /// A tar of (path, kind, data) with raw names, so tests can build
    /// entries the tar crate's builder would refuse.
    pub(crate) fn raw_tar(entries: &[(&str, EntryType, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, kind, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_entry_type(*kind);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(1_700_000_000);
            header.set_mode(if *kind == EntryType::Directory { 0o755 } else { 0o644 });
            let size = if *kind == EntryType::Regular { data.len() } else { 0 };
            if matches!(kind, EntryType::Symlink | EntryType::Link) {
                header.as_old_mut().linkname[..data.len()].copy_from_slice(data);
            }
            header.set_size(size as u64);
            header.set_cksum();
            builder.append(&header, &data[..size]).unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn whiteouts_become_overlay_markers() {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let dir = tempfile::tempdir().unwrap();
        let layer = raw_tar(&[
            ("etc/", EntryType::Directory, b""),
            ("etc/.wh.gone", EntryType::Regular, b""),
            ("opq/.wh..wh..opq", EntryType::Regular, b""),
            ("opq/kept", EntryType::Regular, b"x"),
            ("etc/.wh..wh.plnk", EntryType::Regular, b""),
        ]);
        let unpacked = unpack_layer(&layer[..], None, dir.path()).unwrap();
        assert_eq!(unpacked.diff_id, Digest::of(&layer));
        let gone = std::fs::symlink_metadata(dir.path().join("etc/gone")).unwrap();
        assert!(gone.file_type().is_char_device());
        assert_eq!(gone.rdev(), 0);
        assert!(!dir.path().join("etc/.wh.gone").exists());
        assert!(!dir.path().join("etc/.wh..wh.plnk").exists());
        assert!(!dir.path().join("opq/.wh..wh..opq").exists());
        let opaque = xattrs::get(&dir.path().join("opq"), OsStr::new(OVERLAY_OPAQUE)).unwrap();
        assert_eq!(opaque, b"y");
        assert_eq!(std::fs::read(dir.path().join("opq/kept")).unwrap(), b"x");
    }

    #[test]
    fn large_files_are_copied_whole_in_blocks() {
        let dir = tempfile::tempdir().unwrap();
        // Over the small-file cutoff, several 1 MiB blocks and a partial one.
        let big: Vec<u8> = (0..(3 << 20) + 12_345).map(|i: u32| (i % 251) as u8).collect();
        let mid = vec![7u8; 64 * 1024 + 1];
        let layer = raw_tar(&[
            ("big", EntryType::Regular, &big),
            ("mid", EntryType::Regular, &mid),
            ("small", EntryType::Regular, b"s"),
        ]);
        let unpacked = unpack_layer(&layer[..], None, dir.path()).unwrap();
        assert_eq!(unpacked.diff_id, Digest::of(&layer));
        assert_eq!(std::fs::read(dir.path().join("big")).unwrap(), big);
        assert_eq!(std::fs::read(dir.path().join("mid")).unwrap(), mid);
        assert_eq!(std::fs::read(dir.path().join("small")).unwrap(), b"s");
    }

    #[test]
    fn later_entries_replace_earlier_ones_without_following_them() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("victim");
        std::fs::write(&target, b"original").unwrap();
        let link_target = target.to_str().unwrap().as_bytes().to_vec();
        let layer = raw_tar(&[
            ("f", EntryType::Symlink, &link_target),
            ("f", EntryType::Regular, b"replaced"),
        ]);
        unpack_layer(&layer[..], None, dir.path()).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"original");
        assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"replaced");
    }

    #[test]
    fn detects_compression_by_magic_and_checks_media_type() {
        let gz = [0x1f, 0x8b, 8];
        let zst = [0x28, 0xb5, 0x2f, 0xfd];
        assert_eq!(detect_compression(None, &gz).unwrap(), Compression::Gzip);
        assert_eq!(
            detect_compression(Some("application/vnd.oci.image.layer.v1.tar+zstd"), &zst).unwrap(),
            Compression::Zstd
        );
        assert_eq!(
            detect_compression(Some("application/vnd.docker.image.rootfs.diff.tar"), b"abc").unwrap(),
            Compression::None
        );
        assert!(detect_compression(Some("application/vnd.oci.image.config.v1+json"), b"{").is_err());
    }
}

//! COPY and ADD: files are written through an overlay of the image so far
//! (its layers as lowers, a fresh upper), so the upper dir is the layer
//! with overlayfs's own copy-up and whiteout semantics, exactly as a RUN.
//!
//! Every destination path is resolved with [`scoped_join`]: a symlink in
//! the image (`/app/conf -> /etc`) resolves inside the image, never to the
//! host's files. The overlay is mounted in the host mount namespace only
//! for the duration of the copy and unmounted by [`Overlay`]'s drop.

use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{umount2, MntFlags};
use nix::sys::stat::{utimensat, UtimensatFlags};
use nix::sys::time::TimeSpec;

use super::context::{Source, SourceTree};
use super::BuildError;
use crate::runtime::rootfs::{mount_overlay, scoped_join, UpperSync};
use crate::store::create_private_dir;

/// An overlay of some layers with a fresh upper dir, mounted under the
/// engine root's tmp dir; unmounted and removed on drop.
pub struct Overlay {
    dir: PathBuf,
    mounted: bool,
}

impl Overlay {
    pub fn mount(tmp: &Path, layers: &[PathBuf]) -> Result<Overlay, BuildError> {
        create_private_dir(tmp).map_err(BuildError::io("cannot create", tmp))?;
        let dir = tmp.join(crate::image::staging_name("build-overlay"));
        let mut overlay = Overlay { dir, mounted: false };
        for sub in ["upper", "work", "merged", "empty"] {
            let path = overlay.dir.join(sub);
            fs::create_dir_all(&path).map_err(BuildError::io("cannot create", &path))?;
        }
        // The upper dir's mode becomes `/`'s in the merged view.
        let upper = overlay.upper();
        fs::set_permissions(&upper, fs::Permissions::from_mode(0o755))
            .map_err(BuildError::io("cannot chmod", &upper))?;
        // overlayfs needs a lower layer: an empty one stands for scratch.
        let lowers = if layers.is_empty() {
            vec![overlay.dir.join("empty")]
        } else {
            layers.to_vec()
        };
        let work = overlay.dir.join("work");
        mount_overlay(&lowers, &upper, &work, UpperSync::Synced, &overlay.merged()).map_err(BuildError::runtime)?;
        overlay.mounted = true;
        Ok(overlay)
    }

    pub fn merged(&self) -> PathBuf {
        self.dir.join("merged")
    }

    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }

    /// Unmounts now, keeping the upper dir for the layer.
    pub fn unmount(&mut self) -> Result<(), BuildError> {
        if self.mounted {
            umount2(&self.merged(), MntFlags::empty())
                .map_err(|e| BuildError::io("cannot unmount", self.merged())(io::Error::from(e)))?;
            self.mounted = false;
        }
        Ok(())
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        if self.mounted {
            let _ = umount2(&self.merged(), MntFlags::MNT_DETACH);
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// One COPY/ADD, its variables expanded.
pub struct CopyRequest<'a> {
    pub tree: &'a SourceTree,
    pub sources: Vec<Source>,
    /// Absolute, in the image; a trailing `/` means a directory.
    pub dest: String,
    /// `--chown` as `user[:group]`, resolved against the image.
    pub chown: Option<String>,
    pub chmod: Option<String>,
    /// From another stage or image: owners are kept (context files
    /// become root's, as docker does).
    pub keep_owners: bool,
    /// ADD: local tar archives are extracted.
    pub extract: bool,
}

/// Copies into the image whose root is `rootfs` (the merged overlay).
pub fn copy_into(rootfs: &Path, request: &CopyRequest) -> Result<(), BuildError> {
    let owner = match &request.chown {
        Some(spec) => Some(resolve_owner(rootfs, spec)?),
        None => None,
    };
    let chmod = match &request.chmod {
        Some(text) => Some(
            u32::from_str_radix(text, 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .ok_or_else(|| BuildError::invalid(format!("invalid --chmod {text:?}: use an octal mode like 0644")))?,
        ),
        None => None,
    };
    let dest_is_dir = request.dest.ends_with('/')
        || request.sources.len() > 1
        || request.sources.iter().any(|s| s.is_dir)
        || scoped_join(rootfs, &request.dest).is_dir();
    if request.sources.len() > 1 && !request.dest.ends_with('/') {
        return Err(BuildError::invalid(
            "when copying several sources, the destination must be a directory and end with a /",
        ));
    }
    let writer = Writer { rootfs, owner, chmod };
    let dest = request.dest.trim_end_matches('/');
    for source in &request.sources {
        if request.extract && !source.is_dir {
            if let Some(reader) = archive_reader(&source.path)? {
                let dir = writer.ensure_dir(dest)?;
                unpack(reader, &dir, &source.path)?;
                continue;
            }
        }
        let base = if source.is_dir {
            dest.to_string()
        } else if dest_is_dir {
            let name = source.rel.rsplit('/').next().unwrap_or(&source.rel);
            format!("{dest}/{name}")
        } else {
            dest.to_string()
        };
        if let Some(parent) = Path::new(&base).parent() {
            writer.ensure_dir(&parent.to_string_lossy())?;
        }
        request.tree.walk(source, &mut |rel, path, meta| {
            let target = if rel.is_empty() {
                base.clone()
            } else {
                format!("{base}/{rel}")
            };
            let (uid, gid) = owner.unwrap_or(if request.keep_owners {
                (meta.uid(), meta.gid())
            } else {
                (0, 0)
            });
            writer.entry(&target, path, meta, uid, gid)
        })?;
    }
    Ok(())
}

struct Writer<'a> {
    rootfs: &'a Path,
    owner: Option<(u32, u32)>,
    chmod: Option<u32>,
}

impl Writer<'_> {
    /// Creates `dir` (in the image) and missing parents: mode 0755, owned
    /// by the `--chown` owner or root. Returns its host path.
    fn ensure_dir(&self, dir: &str) -> Result<PathBuf, BuildError> {
        let mut current = String::new();
        for part in dir.split('/').filter(|p| !p.is_empty()) {
            current = format!("{current}/{part}");
            let path = scoped_join(self.rootfs, &current);
            if path.is_dir() {
                continue;
            }
            fs::create_dir(&path).map_err(BuildError::io("cannot create", &path))?;
            let (uid, gid) = self.owner.unwrap_or((0, 0));
            chown(&path, uid, gid)?;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
                .map_err(BuildError::io("cannot chmod", &path))?;
        }
        Ok(scoped_join(self.rootfs, dir))
    }

    /// The host path for `target`: parents resolved inside the image, the
    /// last component itself not followed (it is what we replace).
    fn target_path(&self, target: &str) -> PathBuf {
        let path = Path::new(target);
        match (path.parent(), path.file_name()) {
            (Some(parent), Some(name)) => scoped_join(self.rootfs, &parent.to_string_lossy()).join(name),
            _ => scoped_join(self.rootfs, target),
        }
    }

    fn entry(&self, target: &str, source: &Path, meta: &Metadata, uid: u32, gid: u32) -> Result<(), BuildError> {
        let mut path = self.target_path(target);
        if !path.parent().is_some_and(Path::exists) {
            // The parent was excluded by .dockerignore but this entry was
            // re-included: create it as docker does.
            if let Some(parent) = Path::new(target).parent() {
                self.ensure_dir(&parent.to_string_lossy())?;
                path = self.target_path(target);
            }
        }
        let existing = fs::symlink_metadata(&path).ok();
        let file_type = meta.file_type();
        if file_type.is_dir() {
            match existing {
                Some(e) if e.is_dir() => {}
                Some(_) => {
                    fs::remove_file(&path).map_err(BuildError::io("cannot replace", &path))?;
                    fs::create_dir(&path).map_err(BuildError::io("cannot create", &path))?;
                }
                None => fs::create_dir(&path).map_err(BuildError::io("cannot create", &path))?,
            }
        } else if file_type.is_file() || file_type.is_symlink() {
            if let Some(e) = existing {
                if e.is_dir() {
                    return Err(BuildError::invalid(format!(
                        "cannot copy {} over the directory {target}",
                        source.display()
                    )));
                }
                fs::remove_file(&path).map_err(BuildError::io("cannot replace", &path))?;
            }
            if file_type.is_symlink() {
                let link = fs::read_link(source).map_err(BuildError::io("cannot read link", source))?;
                std::os::unix::fs::symlink(&link, &path).map_err(BuildError::io("cannot create", &path))?;
                return chown(&path, uid, gid);
            }
            let mut from = File::open(source).map_err(BuildError::io("cannot open", source))?;
            let mut to = File::create(&path).map_err(BuildError::io("cannot create", &path))?;
            io::copy(&mut from, &mut to).map_err(BuildError::io("cannot write", &path))?;
        } else {
            // Devices, fifos and sockets are not build inputs.
            return Ok(());
        }
        chown(&path, uid, gid)?;
        // After chown, which clears setuid bits.
        let mode = self.chmod.unwrap_or(meta.mode() & 0o7777);
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(BuildError::io("cannot chmod", &path))?;
        let mtime = TimeSpec::new(meta.mtime(), meta.mtime_nsec());
        utimensat(
            nix::fcntl::AT_FDCWD,
            &path,
            &mtime,
            &mtime,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| BuildError::io("cannot set times of", &path)(io::Error::from(e)))
    }
}

fn chown(path: &Path, uid: u32, gid: u32) -> Result<(), BuildError> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(BuildError::io("cannot chown", path))
}

/// `--chown=user[:group]`: names looked up in the image's files; a
/// missing group means the user's uid as gid, as docker documents.
fn resolve_owner(rootfs: &Path, spec: &str) -> Result<(u32, u32), BuildError> {
    let read = |name: &str| fs::read_to_string(scoped_join(rootfs, name)).unwrap_or_default();
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let lookup = |text: &str, name: &str| -> Option<u32> {
        text.lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() > 2 && f[0] == name)
            .and_then(|f| f[2].parse().ok())
    };
    let uid = match user.parse::<u32>() {
        Ok(uid) => uid,
        Err(_) => lookup(&read("/etc/passwd"), user)
            .ok_or_else(|| BuildError::invalid(format!("--chown: unable to find user {user} in /etc/passwd")))?,
    };
    let gid = match group {
        None | Some("") => uid,
        Some(group) => match group.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => lookup(&read("/etc/group"), group)
                .ok_or_else(|| BuildError::invalid(format!("--chown: unable to find group {group} in /etc/group")))?,
        },
    };
    Ok((uid, gid))
}

/// A reader of the tar inside `path`, if it is a (plain, gzip or zstd)
/// tar archive; `None` means copy it as a file.
fn archive_reader(path: &Path) -> Result<Option<Box<dyn Read>>, BuildError> {
    let open = || File::open(path).map_err(BuildError::io("cannot open", path));
    let mut head = Vec::new();
    open()?
        .take(512)
        .read_to_end(&mut head)
        .map_err(BuildError::io("cannot read", path))?;
    let decoded: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(open()?))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::new(open()?).map_err(BuildError::io("cannot read", path))?)
    } else {
        Box::new(open()?)
    };
    // Only a tar inside counts: a gzip'd text file is copied as is.
    let mut inner = Vec::new();
    let mut probe = decoded.take(512);
    if probe.read_to_end(&mut inner).is_err() || !is_tar_header(&inner) {
        return Ok(None);
    }
    Ok(Some(match head.first() {
        Some(0x1f) => Box::new(flate2::read::GzDecoder::new(open()?)),
        Some(0x28) => Box::new(zstd::stream::read::Decoder::new(open()?).map_err(BuildError::io("cannot read", path))?),
        _ => Box::new(open()?),
    }))
}

fn is_tar_header(block: &[u8]) -> bool {
    block.len() >= 262 && &block[257..262] == b"ustar"
}

fn unpack(reader: Box<dyn Read>, dir: &Path, source: &Path) -> Result<(), BuildError> {
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(true);
    // `unpack` refuses entries (and links) leading outside `dir`.
    archive.unpack(dir).map_err(BuildError::io("cannot extract", source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_resolve_by_name_and_number() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("etc")).unwrap();
        fs::write(
            root.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        fs::write(root.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        assert_eq!(resolve_owner(root.path(), "app").unwrap(), (1000, 1000));
        assert_eq!(resolve_owner(root.path(), "app:staff").unwrap(), (1000, 50));
        assert_eq!(resolve_owner(root.path(), "42").unwrap(), (42, 42));
        assert_eq!(resolve_owner(root.path(), "42:7").unwrap(), (42, 7));
        assert!(resolve_owner(root.path(), "nobody").is_err());
        assert!(resolve_owner(root.path(), "app:nogroup").is_err());
    }

    #[test]
    fn tars_are_recognized_inside_compression() {
        let dir = tempfile::tempdir().unwrap();
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        header.set_size(2);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_cksum();
        tar.append_data(&mut header, "f", &b"hi"[..]).unwrap();
        let bytes = tar.into_inner().unwrap();
        fs::write(dir.path().join("a.tar"), &bytes).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, &bytes).unwrap();
        fs::write(dir.path().join("a.tgz"), gz.finish().unwrap()).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, b"just text").unwrap();
        fs::write(dir.path().join("t.gz"), gz.finish().unwrap()).unwrap();
        fs::write(dir.path().join("plain"), "text").unwrap();
        assert!(archive_reader(&dir.path().join("a.tar")).unwrap().is_some());
        assert!(archive_reader(&dir.path().join("a.tgz")).unwrap().is_some());
        assert!(archive_reader(&dir.path().join("t.gz")).unwrap().is_none());
        assert!(archive_reader(&dir.path().join("plain")).unwrap().is_none());
        let out = dir.path().join("out");
        fs::create_dir(&out).unwrap();
        unpack(
            archive_reader(&dir.path().join("a.tgz")).unwrap().unwrap(),
            &out,
            Path::new("a.tgz"),
        )
        .unwrap();
        assert_eq!(fs::read_to_string(out.join("f")).unwrap(), "hi");
    }
}

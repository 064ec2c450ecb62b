//! A container's files seen from the host: `cp` in and out, `export`.
//!
//! A running container's filesystem (its mounts included) is reachable at
//! `/proc/<pid>/root`. A stopped one has nothing mounted: a forked child
//! mounts the overlay in a mount namespace of its own, works there and
//! exits, so the mount vanishes with it and never appears on the host.
//!
//! Container paths are resolved with [`scoped_join`], so a symlink inside
//! the container resolves as it would inside it and never reaches the
//! host's files. Writes never follow a symlink at the entry they create.

mod tree;

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use nix::mount::{umount2, MntFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, pipe, ForkResult};
use thiserror::Error;

use super::config::Status;
use super::container::{Container, ContainerError};
use super::rootfs::{self, scoped_join};
use crate::store::Root;

pub use tree::CopyOptions;

#[derive(Debug, Error)]
pub enum FilesError {
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("Could not find the file {path} in container {container}")]
    NotFound { container: String, path: String },
    #[error("{0}")]
    Placement(#[from] Placement),
    #[error("mounting the filesystem of container {container}: {message}")]
    Mount { container: String, message: String },
    /// An error in the forked child, as text (it names the container).
    #[error("{message}")]
    Child { container: String, message: String },
    #[error("writing the tar stream: {0}")]
    Tar(String),
}

/// Docker's refusals when source and destination kinds do not fit.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Placement {
    #[error("destination {0:?} must be a directory")]
    NotADirectory(String),
    #[error("destination directory {0:?} must exist")]
    DirectoryMissing(String),
    #[error("cannot copy a directory to a file: {0:?}")]
    DirectoryToFile(String),
}

pub(crate) fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> FilesError + 'a {
    move |source| FilesError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// What is at the destination before the copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    Missing,
    Dir,
    Other,
}

/// Where the source lands: at the destination path itself, or inside it
/// under the source's name (docker's `cp` rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    At,
    Inside(String),
}

/// Docker's `cp` rules: a file into a directory keeps its name, onto a
/// file overwrites it; a directory becomes a new directory, or goes inside
/// an existing one — its contents only when the source ends in `/.`.
pub fn place(src: &str, src_is_dir: bool, dst: &str, existing: Existing) -> Result<Target, Placement> {
    let trailing = dst.ends_with('/') || dst.ends_with("/.");
    let contents = src.ends_with("/.") || src == "." || base_name(src).is_none();
    match (src_is_dir, existing) {
        (_, Existing::Dir) if src_is_dir && contents => Ok(Target::At),
        (_, Existing::Dir) => Ok(Target::Inside(base_name(src).unwrap_or_default())),
        (true, Existing::Other) => Err(Placement::DirectoryToFile(dst.into())),
        (false, Existing::Other) if trailing => Err(Placement::NotADirectory(dst.into())),
        (_, Existing::Missing) if trailing && !src_is_dir => Err(Placement::DirectoryMissing(dst.into())),
        _ => Ok(Target::At),
    }
}

/// The last name of a path (`/a/b/` → `b`); `None` for `/`, `.` and `/a/.`.
pub fn base_name(path: &str) -> Option<String> {
    let trimmed = path.trim_end_matches('/');
    let name = trimmed.rsplit('/').next()?;
    (!matches!(name, "" | "." | "..")).then(|| name.to_string())
}

/// A container path as a host path below `root`. The final name is taken
/// as is (a symlink there is copied as a link) unless `follow` is set or
/// the path ends in `/` or `/.`; every other component resolves inside.
pub fn resolve(root: &Path, path: &str, follow: bool) -> PathBuf {
    let trimmed = path.trim_end_matches('/');
    match (follow, base_name(path), trimmed.rsplit_once('/')) {
        (false, Some(name), Some((parent, _))) if !path.ends_with('/') => scoped_join(root, parent).join(name),
        (false, Some(name), None) if !path.ends_with('/') => root.join(name),
        _ => scoped_join(root, path),
    }
}

fn existing(path: &Path) -> Existing {
    match fs::metadata(path) {
        Ok(m) if m.is_dir() => Existing::Dir,
        Ok(_) => Existing::Other,
        Err(_) if fs::symlink_metadata(path).is_ok() => Existing::Other,
        Err(_) => Existing::Missing,
    }
}

/// Copies the host path `src` to `dst` in the container whose `/` is at `root`.
pub fn copy_in(root: &Path, src: &Path, dst: &str, options: CopyOptions) -> Result<(), FilesError> {
    let meta = if options.follow_link {
        fs::metadata(src)
    } else {
        fs::symlink_metadata(src)
    }
    .map_err(io_err("cannot copy", src))?;
    let target = scoped_join(root, dst);
    let src_text = src.to_string_lossy();
    let at = match place(&src_text, meta.is_dir(), dst, existing(&target))? {
        Target::At => target,
        Target::Inside(name) => target.join(name),
    };
    tree::copy(src, &at, options, options.follow_link)
}

/// Unpacks a tar stream (`cp - CONTAINER:DIR`) into an existing directory.
pub fn copy_in_tar(root: &Path, tar: impl Read, dst: &str, options: CopyOptions) -> Result<(), FilesError> {
    if existing(&scoped_join(root, dst)) != Existing::Dir {
        return Err(Placement::NotADirectory(dst.into()).into());
    }
    tree::extract(root, dst, tar, options)
}

/// Copies `src` in the container whose `/` is at `root` to the host path `dst`.
pub fn copy_out(root: &Path, container: &str, src: &str, dst: &Path, options: CopyOptions) -> Result<(), FilesError> {
    let from = source(root, container, src, options)?;
    let dst_text = dst.to_string_lossy();
    // `from` is the link itself unless following: no need to stat through.
    let is_dir = fs::symlink_metadata(&from).is_ok_and(|m| m.is_dir());
    let at = match place(src, is_dir, &dst_text, existing(dst))? {
        Target::At => dst.to_path_buf(),
        Target::Inside(name) => dst.join(name),
    };
    tree::copy(&from, &at, options, false)
}

/// Writes `src` as a tar stream (`cp CONTAINER:PATH -`), named by its base
/// name, or by its contents' names when it ends in `/.`.
pub fn copy_out_tar(
    root: &Path,
    container: &str,
    src: &str,
    out: &mut dyn Write,
    options: CopyOptions,
) -> Result<(), FilesError> {
    let from = source(root, container, src, options)?;
    let name = base_name(src).filter(|_| !src.ends_with("/."));
    tree::archive(&from, name.as_deref(), out)
}

fn source(root: &Path, container: &str, src: &str, options: CopyOptions) -> Result<PathBuf, FilesError> {
    let from = resolve(root, src, options.follow_link);
    if fs::symlink_metadata(&from).is_err() {
        return Err(FilesError::NotFound {
            container: container.into(),
            path: src.into(),
        });
    }
    Ok(from)
}

/// Runs `f` with the host path of the container's `/`: `/proc/<pid>/root`
/// while it runs, else its overlay mounted in a forked child's private
/// mount namespace (`f` then runs in that child: its effects must go to
/// files or file descriptors, and its error comes back as text).
pub fn with_container_root(
    root: &Root,
    container: &Container,
    f: impl FnOnce(&Path) -> Result<(), FilesError>,
) -> Result<(), FilesError> {
    let state = container.state()?;
    if let (Status::Running | Status::Paused, Some(pid)) = (state.status, state.pid) {
        return f(Path::new(&format!("/proc/{pid}/root")));
    }
    // The same layers as when it runs, the init layer's mount points too.
    let layers = super::lifecycle::container_layers(root, &container.config);
    in_child(container, |container| {
        private_mounts(container)?;
        let rootfs = container.rootfs();
        let sync = rootfs::UpperSync::for_container(&container.config);
        rootfs::mount_overlay(&layers, &container.upper(), &container.work(), sync, &rootfs).map_err(|e| {
            FilesError::Mount {
                container: container.config.name.clone(),
                message: e.to_string(),
            }
        })?;
        f(&rootfs)
    })
}

/// The whole filesystem of the container (the merged overlay, without the
/// mounts on top of it) as a tar stream, as `docker export` writes it.
pub fn export_tar(root: &Root, container: &Container, out: &mut dyn Write) -> Result<(), FilesError> {
    let state = container.state()?;
    let write = |dir: &Path, out: &mut dyn Write| -> Result<(), FilesError> {
        crate::image::write_rootfs_tar(dir, out).map_err(|e| FilesError::Tar(e.chain()))?;
        out.flush().map_err(io_err("writing the export of", &container.dir))
    };
    let (Status::Running | Status::Paused, Some(pid)) = (state.status, state.pid) else {
        return with_container_root(root, container, |dir| write(dir, out));
    };
    // /proc/<pid>/root shows /proc, /sys, /dev and binds on top of the
    // overlay: join a copy of the container's mount namespace and detach
    // them there, leaving the merged overlay alone at `/`.
    let mountinfo_path = PathBuf::from(format!("/proc/{pid}/mountinfo"));
    let mountinfo = fs::read_to_string(&mountinfo_path).map_err(io_err("reading", &mountinfo_path))?;
    let ns_path = PathBuf::from(format!("/proc/{pid}/ns/mnt"));
    let ns = fs::File::open(&ns_path).map_err(io_err("opening", &ns_path))?;
    in_child(container, |container| {
        let failed = |message: String| FilesError::Mount {
            container: container.config.name.clone(),
            message,
        };
        setns(&ns, CloneFlags::CLONE_NEWNS).map_err(|e| failed(format!("joining its mount namespace: {e}")))?;
        private_mounts(container)?;
        for point in mount_points(&mountinfo).iter().rev().filter(|p| p.as_str() != "/") {
            // A parent detached first takes its children along: EINVAL.
            let _ = umount2(point.as_str(), MntFlags::MNT_DETACH);
        }
        write(Path::new("/"), out)
    })
}

/// Mount points of a mountinfo file, in mount order, octal escapes decoded.
fn mount_points(mountinfo: &str) -> Vec<String> {
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| {
            let mut out = Vec::new();
            let bytes = field.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                let code = bytes
                    .get(i + 1..i + 4)
                    .and_then(|o| u8::from_str_radix(std::str::from_utf8(o).ok()?, 8).ok());
                match (bytes[i], code) {
                    (b'\\', Some(c)) => {
                        out.push(c);
                        i += 4;
                    }
                    (b, _) => {
                        out.push(b);
                        i += 1;
                    }
                }
            }
            String::from_utf8_lossy(&out).into_owned()
        })
        .collect()
}

/// A mount namespace of our own whose mounts never propagate to the host
/// (as the container's init does it).
fn private_mounts(container: &Container) -> Result<(), FilesError> {
    let failed = |what: &str, e: nix::Error| FilesError::Mount {
        container: container.config.name.clone(),
        message: format!("{what}: {e}"),
    };
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| failed("unshare(CLONE_NEWNS)", e))?;
    super::rootfs::make_root_rslave().map_err(|e| failed("making / rslave", e))
}

/// Runs `f` in a forked child and waits for it; the child's error comes
/// back as text through a pipe.
fn in_child(container: &Container, f: impl FnOnce(&Container) -> Result<(), FilesError>) -> Result<(), FilesError> {
    let name = &container.config.name;
    let child_failed = |message: String| FilesError::Child {
        container: name.clone(),
        message,
    };
    // Buffered output would be written twice, by parent and child.
    let _ = io::stdout().flush();
    let (read, write) = pipe().map_err(|e| child_failed(format!("container {name}: pipe: {e}")))?;
    // SAFETY: the CLI is single-threaded (no async runtime, no threads are
    // spawned before this), so the child may run arbitrary Rust code: no
    // lock can be held by a thread that does not exist in it.
    match unsafe { fork() } {
        Err(e) => Err(child_failed(format!("container {name}: fork: {e}"))),
        Ok(ForkResult::Child) => {
            drop(read);
            let result = f(container);
            let _ = io::stdout().flush();
            let code = match result {
                Ok(()) => 0,
                Err(e) => {
                    let _ = fs::File::from(write).write_all(e.to_string().as_bytes());
                    1
                }
            };
            std::process::exit(code)
        }
        Ok(ForkResult::Parent { child }) => {
            drop(write);
            let mut message = String::new();
            let _ = fs::File::from(read).read_to_string(&mut message);
            let status = waitpid(child, None)
                .map_err(|e| child_failed(format!("container {name}: waiting for the copy: {e}")))?;
            match status {
                _ if !message.is_empty() => Err(child_failed(message)),
                WaitStatus::Exited(_, 0) => Ok(()),
                other => Err(child_failed(format!(
                    "container {name}: the copy process ended with {other:?}"
                ))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_follows_docker() {
        use Existing::*;
        assert_eq!(place("/a/f", false, "/d", Dir), Ok(Target::Inside("f".into())));
        assert_eq!(place("/a/f", false, "/d", Other), Ok(Target::At));
        assert_eq!(place("/a/f", false, "/new", Missing), Ok(Target::At));
        assert!(matches!(
            place("/a/f", false, "/new/", Missing),
            Err(Placement::DirectoryMissing(_))
        ));
        assert!(matches!(
            place("/a/f", false, "/file/", Other),
            Err(Placement::NotADirectory(_))
        ));
        assert_eq!(place("/a/dir", true, "/d", Dir), Ok(Target::Inside("dir".into())));
        assert_eq!(place("/a/dir/", true, "/d", Dir), Ok(Target::Inside("dir".into())));
        assert_eq!(place("/a/dir/.", true, "/d", Dir), Ok(Target::At));
        assert_eq!(place("/a/dir", true, "/new", Missing), Ok(Target::At));
        assert!(matches!(
            place("/a/dir", true, "/f", Other),
            Err(Placement::DirectoryToFile(_))
        ));
    }

    #[test]
    fn resolve_keeps_the_final_link_unless_followed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("link")).unwrap();
        assert_eq!(resolve(root, "/link", false), root.join("link"));
        assert_eq!(resolve(root, "/link", true), root.join("etc"));
        assert_eq!(resolve(root, "/link/", false), root.join("etc"));
        assert_eq!(resolve(root, "/link/passwd", false), root.join("etc/passwd"));
        assert_eq!(resolve(root, "link/passwd", false), root.join("etc/passwd"));
        assert_eq!(resolve(root, "/../../etc/x", false), root.join("etc/x"));
        assert_eq!(resolve(root, "/", false), root.to_path_buf());
    }

    #[test]
    fn mountinfo_points_are_decoded() {
        let info = "22 1 0:21 / / rw - overlay overlay rw\n23 22 0:5 / /a\\040b rw - tmpfs x rw\n";
        assert_eq!(mount_points(info), ["/", "/a b"]);
    }
}

//! Mirroring host paths into a running container's filesystem, seen from
//! the host at `/proc/<pid>/root` (its mounts included): berth owns the
//! rootfs, so no tar stream goes through an exec'd process.
//!
//! Each change mirrors what the host holds *now*: a file is copied, a
//! directory created, a symlink recreated, a path that is gone removed.
//! That makes a batch idempotent and its order irrelevant, whatever
//! events (create, write, rename, delete) announced it.
//!
//! Container paths are resolved with `scoped_join`, so a symlink in the
//! container resolves as it would inside it and never reaches the host's
//! files; the entry itself is replaced, never followed.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::batch::Change;
use crate::runtime::rootfs::scoped_join;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SyncError + 'a {
    move |source| SyncError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// What a batch did, and what failed (one bad file does not stop the rest).
#[derive(Debug, Default)]
pub struct SyncReport {
    /// Files and symlinks written.
    pub written: usize,
    /// Entries removed because they are gone on the host.
    pub removed: usize,
    pub errors: Vec<SyncError>,
}

impl SyncReport {
    /// The count a status line shows.
    pub fn files(&self) -> usize {
        self.written + self.removed
    }
}

/// Mirrors every change into the container whose `/` is at `root`.
pub fn mirror(root: &Path, changes: &[Change]) -> SyncReport {
    let mut report = SyncReport::default();
    let mut sorted: Vec<&Change> = changes.iter().collect();
    // Parents before children: a removed directory goes in one step and
    // its children then find nothing to remove.
    sorted.sort_by(|a, b| a.target.cmp(&b.target));
    for change in sorted {
        match mirror_one(root, change) {
            Ok(Outcome::Written) => report.written += 1,
            Ok(Outcome::Removed) => report.removed += 1,
            Ok(Outcome::Nothing) => {}
            Err(e) => report.errors.push(e),
        }
    }
    report
}

enum Outcome {
    Written,
    Removed,
    Nothing,
}

fn mirror_one(root: &Path, change: &Change) -> Result<Outcome, SyncError> {
    let Some((parent, name)) = split(&change.target) else {
        // The container's `/` itself: only its contents are mirrored.
        return Ok(Outcome::Nothing);
    };
    let meta = match fs::symlink_metadata(&change.host) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let entry = scoped_join(root, parent).join(name);
            return remove(&entry);
        }
        Err(e) => return Err(io_err("reading", &change.host)(e)),
    };
    let dir = ensure_dir(root, parent)?;
    let entry = dir.join(name);
    let mode = meta.mode() & 0o7777;
    if meta.is_dir() {
        match fs::symlink_metadata(&entry) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                remove(&entry)?;
                create_dir_owned(&entry, &dir)?;
            }
            Err(_) => create_dir_owned(&entry, &dir)?,
        }
        fs::set_permissions(&entry, Permissions::from_mode(mode)).map_err(io_err("chmod", &entry))?;
        return Ok(Outcome::Nothing);
    }
    // A replaced entry keeps its owner; a new one gets its directory's, so
    // a service running as a non-root user can still write what it gets.
    let owner = fs::symlink_metadata(&entry)
        .or_else(|_| fs::metadata(&dir))
        .map(|m| (m.uid(), m.gid()))
        .map_err(io_err("reading", &dir))?;
    if fs::symlink_metadata(&entry).is_ok_and(|m| m.is_dir()) {
        fs::remove_dir_all(&entry).map_err(io_err("removing", &entry))?;
    }
    if meta.file_type().is_symlink() {
        let link = fs::read_link(&change.host).map_err(io_err("reading", &change.host))?;
        remove(&entry)?;
        std::os::unix::fs::symlink(&link, &entry).map_err(io_err("creating", &entry))?;
        std::os::unix::fs::lchown(&entry, Some(owner.0), Some(owner.1)).map_err(io_err("chown", &entry))?;
        return Ok(Outcome::Written);
    }
    if !meta.is_file() {
        // Sockets, fifos and devices on the host mean nothing in a container.
        return Ok(Outcome::Nothing);
    }
    write_file(&change.host, &dir, name, &entry, mode, owner)?;
    Ok(Outcome::Written)
}

/// `/a/b/c` → (`/a/b`, `c`); `None` for `/`.
fn split(target: &str) -> Option<(&str, &str)> {
    let trimmed = target.trim_end_matches('/');
    let (parent, name) = trimmed.rsplit_once('/')?;
    if name.is_empty() || name == "." || name == ".." {
        return None;
    }
    Some((if parent.is_empty() { "/" } else { parent }, name))
}

/// Writes beside the entry, then renames over it: a reader in the
/// container sees the old content or the new one, never half a file.
fn write_file(
    host: &Path,
    dir: &Path,
    name: &str,
    entry: &Path,
    mode: u32,
    owner: (u32, u32),
) -> Result<(), SyncError> {
    let mut source = File::open(host).map_err(io_err("reading", host))?;
    let temp = dir.join(format!(".{name}.berth-sync"));
    let _ = fs::remove_file(&temp);
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&temp)
        .map_err(io_err("creating", &temp))?;
    io::copy(&mut source, &mut out).map_err(io_err("writing", &temp))?;
    finish(&out, &temp, mode, owner)?;
    drop(out);
    match fs::rename(&temp, entry) {
        Ok(()) => Ok(()),
        // A file bind-mounted over the entry cannot be replaced, only
        // rewritten in place.
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
            let _ = fs::remove_file(&temp);
            let mut source = File::open(host).map_err(io_err("reading", host))?;
            let mut out = OpenOptions::new()
                .write(true)
                .truncate(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(entry)
                .map_err(io_err("opening", entry))?;
            io::copy(&mut source, &mut out).map_err(io_err("writing", entry))?;
            Ok(())
        }
        Err(e) => {
            let _ = fs::remove_file(&temp);
            Err(io_err("replacing", entry)(e))
        }
    }
}

fn finish(file: &File, path: &Path, mode: u32, owner: (u32, u32)) -> Result<(), SyncError> {
    // chown before chmod: chown clears set-id bits.
    std::os::unix::fs::fchown(file, Some(owner.0), Some(owner.1)).map_err(io_err("chown", path))?;
    file.set_permissions(Permissions::from_mode(mode))
        .map_err(io_err("chmod", path))
}

/// Removes whatever is at `entry`, without following it.
fn remove(entry: &Path) -> Result<Outcome, SyncError> {
    let result = match fs::symlink_metadata(entry) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(entry),
        Ok(_) => fs::remove_file(entry),
        Err(_) => return Ok(Outcome::Nothing),
    };
    match result {
        Ok(()) => Ok(Outcome::Removed),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Outcome::Nothing),
        Err(e) => Err(io_err("removing", entry)(e)),
    }
}

/// The container directory `target`, created (with its missing parents,
/// each owned like its own parent) when it does not exist.
fn ensure_dir(root: &Path, target: &str) -> Result<PathBuf, SyncError> {
    let resolved = scoped_join(root, target);
    if resolved.is_dir() {
        return Ok(resolved);
    }
    // Step by step: a component may be a file to replace, or a symlink
    // that resolves somewhere that does not exist yet.
    let mut walked = String::new();
    for part in target.split('/').filter(|p| !p.is_empty()) {
        walked.push('/');
        walked.push_str(part);
        let next = scoped_join(root, &walked);
        match fs::symlink_metadata(&next) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                remove(&next)?;
                create_dir_owned(&next, next.parent().unwrap_or(root))?;
            }
            Err(_) => create_missing(root, &next)?,
        }
    }
    Ok(scoped_join(root, target))
}

/// Creates `path` and its missing ancestors below `root`: they are the
/// plain names `scoped_join` appended after the last existing directory.
fn create_missing(root: &Path, path: &Path) -> Result<(), SyncError> {
    let missing: Vec<&Path> = path
        .ancestors()
        .take_while(|p| *p != root && p.starts_with(root) && fs::symlink_metadata(p).is_err())
        .collect();
    for dir in missing.into_iter().rev() {
        let parent = dir.parent().unwrap_or(root);
        create_dir_owned(dir, parent)?;
    }
    Ok(())
}

fn create_dir_owned(path: &Path, parent: &Path) -> Result<(), SyncError> {
    match fs::create_dir(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(io_err("creating", path)(e)),
    }
    let owner = fs::metadata(parent).map_err(io_err("reading", parent))?;
    std::os::unix::fs::lchown(path, Some(owner.uid()), Some(owner.gid())).map_err(io_err("chown", path))?;
    fs::set_permissions(path, Permissions::from_mode(0o755)).map_err(io_err("chmod", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(host: &Path, target: &str) -> Change {
        Change {
            host: host.to_path_buf(),
            target: target.to_string(),
        }
    }

    #[test]
    fn files_land_with_their_mode_and_missing_parents() {
        let host = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let file = host.path().join("run.sh");
        fs::write(&file, "echo hi\n").unwrap();
        fs::set_permissions(&file, Permissions::from_mode(0o750)).unwrap();
        let report = mirror(root.path(), &[change(&file, "/app/bin/run.sh")]);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(report.files(), 1);
        let landed = root.path().join("app/bin/run.sh");
        assert_eq!(fs::read_to_string(&landed).unwrap(), "echo hi\n");
        assert_eq!(fs::metadata(&landed).unwrap().mode() & 0o7777, 0o750);
        assert!(!root.path().join("app/bin/.run.sh.berth-sync").exists());
        fs::write(&file, "echo bye\n").unwrap();
        mirror(root.path(), &[change(&file, "/app/bin/run.sh")]);
        assert_eq!(fs::read_to_string(&landed).unwrap(), "echo bye\n");
    }

    #[test]
    fn gone_paths_are_removed_directories_whole() {
        let host = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("app/sub/deep")).unwrap();
        fs::write(root.path().join("app/sub/deep/x"), "x").unwrap();
        fs::write(root.path().join("app/keep"), "k").unwrap();
        let gone = host.path().join("sub");
        let report = mirror(
            root.path(),
            &[
                change(&gone.join("deep/x"), "/app/sub/deep/x"),
                change(&gone, "/app/sub"),
                change(&host.path().join("never"), "/app/never"),
            ],
        );
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(report.removed, 1);
        assert!(!root.path().join("app/sub").exists());
        assert!(root.path().join("app/keep").exists());
    }

    #[test]
    fn container_symlinks_resolve_inside_the_container() {
        let host = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        // /app -> an absolute host path: inside the container that means
        // <root>/<path>, never the host's directory.
        std::os::unix::fs::symlink(outside.path(), root.path().join("app")).unwrap();
        let file = host.path().join("f");
        fs::write(&file, "data").unwrap();
        let report = mirror(root.path(), &[change(&file, "/app/f")]);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert!(!outside.path().join("f").exists(), "wrote through to the host");
        let inside = scoped_join(root.path(), "/app/f");
        assert_eq!(fs::read_to_string(inside).unwrap(), "data");
        // A symlink at the entry itself is replaced, not followed.
        std::os::unix::fs::symlink(outside.path().join("t"), root.path().join("link")).unwrap();
        mirror(root.path(), &[change(&file, "/link")]);
        assert!(!outside.path().join("t").exists());
        assert_eq!(fs::read_to_string(root.path().join("link")).unwrap(), "data");
    }

    #[test]
    fn directories_symlinks_and_type_changes() {
        let host = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let dir = host.path().join("d");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::symlink("../target", dir.join("l")).unwrap();
        let report = mirror(root.path(), &[change(&dir, "/d"), change(&dir.join("l"), "/d/l")]);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(fs::metadata(root.path().join("d")).unwrap().mode() & 0o7777, 0o700);
        assert_eq!(fs::read_link(root.path().join("d/l")).unwrap(), Path::new("../target"));
        // The host's directory became a file.
        fs::remove_dir_all(&dir).unwrap();
        fs::write(&dir, "now a file").unwrap();
        let report = mirror(root.path(), &[change(&dir, "/d")]);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(fs::read_to_string(root.path().join("d")).unwrap(), "now a file");
    }

    #[test]
    fn targets_split_into_parent_and_name() {
        assert_eq!(split("/a/b/c"), Some(("/a/b", "c")));
        assert_eq!(split("/a"), Some(("/", "a")));
        assert_eq!(split("/a/"), Some(("/", "a")));
        assert_eq!(split("/"), None);
    }
}

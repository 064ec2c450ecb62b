//! The engine root on disk: its layout, atomic writes and locks.
//!
//! Everything berth keeps lives under one root (`--root`, `BERTH_ROOT`,
//! default `/var/lib/berth`), so that removing it after `down` leaves the
//! host as it was, and tests can run several isolated roots side by side.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

/// The layout of an engine root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    path: PathBuf,
}

impl Root {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Root { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Content-addressed blobs: `images/blobs/sha256/<hex>`.
    pub fn blobs_dir(&self) -> PathBuf {
        self.path.join("images/blobs")
    }

    /// Image references and metadata.
    pub fn images_dir(&self) -> PathBuf {
        self.path.join("images")
    }

    /// Unpacked layers keyed by chain id, shared between images.
    pub fn snapshots_dir(&self) -> PathBuf {
        self.path.join("images/snapshots")
    }

    /// One directory per container: config, state, upper/work dirs, log.
    pub fn containers_dir(&self) -> PathBuf {
        self.path.join("containers")
    }

    /// Staging area for atomic writes; on the same filesystem as the rest.
    pub fn tmp_dir(&self) -> PathBuf {
        self.path.join("tmp")
    }

    /// The mount points every container needs, as a read-only lower layer
    /// shared by all containers of this root (Docker's per-container
    /// "-init" layer): empty `/etc/hostname`, `/etc/hosts` and
    /// `/etc/resolv.conf` for the bind mounts, `/proc`, `/sys` and `/dev`.
    /// Without it the init would create them through the overlay at every
    /// start (a copy-up of `/etc` and three files in the container's upper
    /// dir, removed again with the container). Made once, atomically.
    pub fn init_layer(&self) -> io::Result<PathBuf> {
        let layer = self.path.join("init-layer");
        if layer.is_dir() {
            return Ok(layer);
        }
        self.ensure()?;
        let staging = self.tmp_dir().join(format!("init-layer-{}", std::process::id()));
        let _ = fs::remove_dir_all(&staging);
        let built = (|| -> io::Result<()> {
            for dir in ["etc", "proc", "sys", "dev"] {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(staging.join(dir))?;
            }
            for file in INIT_LAYER_FILES {
                OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o644)
                    .open(staging.join(file))?;
            }
            fs::set_permissions(&staging, fs::Permissions::from_mode(0o755))
        })();
        let placed = built.and_then(|()| match fs::rename(&staging, &layer) {
            // Another process made it first: theirs is the same.
            Err(_) if layer.is_dir() => Ok(()),
            other => other,
        });
        let _ = fs::remove_dir_all(&staging);
        placed.map(|()| layer)
    }

    /// A short, stable tag of this root (for cgroup and interface names),
    /// so that engines with different roots never collide.
    pub fn tag(&self) -> String {
        let hash = self
            .path
            .to_string_lossy()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
            });
        format!("{:08x}", hash >> 32)
    }

    /// Creates the layout (root-only: 0700). The directories are made in
    /// order and never removed one by one, so when the last one exists the
    /// layout is complete: one `stat` for the callers that check again.
    pub fn ensure(&self) -> io::Result<()> {
        if self.tmp_dir().is_dir() {
            return Ok(());
        }
        for dir in [
            self.path.clone(),
            self.images_dir(),
            self.blobs_dir(),
            self.snapshots_dir(),
            self.containers_dir(),
            self.tmp_dir(),
        ] {
            create_private_dir(&dir)?;
        }
        Ok(())
    }

    /// Takes an exclusive lock on `<root>/<name>.lock`, held until dropped.
    pub fn lock(&self, name: &str) -> io::Result<Flock<File>> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(self.path.join(format!("{name}.lock")))?;
        Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| io::Error::from(errno))
    }
}

/// `mkdir -p` with mode 0700 for the directories created.
/// The files of [`Root::init_layer`], relative to it.
pub const INIT_LAYER_FILES: [&str; 3] = ["etc/hostname", "etc/hosts", "etc/resolv.conf"];

pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory, fsync, rename. A crash leaves the old file or the new one,
/// never a torn one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_replacing(path, bytes, true)
}

/// [`write_atomic`] without the fsync, for state that changes often and is
/// worth nothing after a host crash (a container's run state, its health):
/// the rename still makes every reader see the old or the new content, and
/// the fsync — milliseconds on a busy disk — stays off the start and stop
/// paths.
pub fn write_atomic_volatile(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_replacing(path, bytes, false)
}

/// [`write_atomic_volatile`] for state that is worth nothing after a host
/// crash even as an old copy (a throwaway container's run state): readers
/// still see the old content or the new, but nothing is flushed, not even
/// what ext4 flushes itself when a rename replaces a file
/// (`auto_da_alloc`, ~0.15 ms, and the blocks it allocates are then
/// freed, and discarded, at removal). The new file is swapped in with
/// `RENAME_EXCHANGE` and the old one unlinked; a crash can leave the file
/// empty. Where there is nothing to exchange with, or the filesystem
/// cannot, a plain rename.
pub fn write_atomic_unflushed(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_then(path, bytes, false, |tmp, path| {
        match nix::fcntl::renameat2(
            nix::fcntl::AT_FDCWD,
            tmp,
            nix::fcntl::AT_FDCWD,
            path,
            nix::fcntl::RenameFlags::RENAME_EXCHANGE,
        ) {
            // The old content now has the temporary name.
            Ok(()) => fs::remove_file(tmp),
            Err(nix::errno::Errno::ENOENT | nix::errno::Errno::EINVAL) => fs::rename(tmp, path),
            Err(e) => Err(e.into()),
        }
    })
}

fn write_replacing(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    write_then(path, bytes, durable, |tmp, path| fs::rename(tmp, path))
}

/// Writes `bytes` to a temporary file beside `path`, then has `publish`
/// put it in place; the temporary file is removed if anything fails.
fn write_then(
    path: &Path,
    bytes: &[u8],
    durable: bool,
    publish: impl FnOnce(&Path, &Path) -> io::Result<()>,
) -> io::Result<()> {
    static SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Unique per process and per write: threads of one process (the
    // engine) may replace the same file at once.
    let sequence = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp-{}-{sequence}", std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(bytes)?;
        if durable {
            file.sync_all()?;
        }
        publish(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unflushed_write_creates_then_swaps_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        write_atomic_unflushed(&p, b"first, and longer").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"first, and longer");
        write_atomic_unflushed(&p, b"second").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"second");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
    }

    #[test]
    fn atomic_write_replaces_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary left");
    }

    #[test]
    fn layout_is_private_and_tags_differ() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path().join("r"));
        root.ensure().unwrap();
        let mode = fs::metadata(root.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert!(root.containers_dir().is_dir());
        assert_ne!(root.tag(), Root::new("/other").tag());
        let _lock = root.lock("test").unwrap();
    }
}

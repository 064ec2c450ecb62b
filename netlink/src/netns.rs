//! Network namespaces: handles to them, throwaway ones for tests and
//! containers, and running code inside one.
//!
//! `setns(2)` and `unshare(2)` act on the calling *thread*. Switching a
//! thread that belongs to someone else (a tokio worker, the test harness's
//! thread) would leave it in the wrong namespace if anything failed on the
//! way back, and every socket it opened meanwhile would silently live in
//! the other namespace. So everything here that has to be inside a
//! namespace runs on a fresh, dedicated thread that enters the namespace,
//! does its work and ends; the caller's thread never moves. What that
//! thread created keeps its namespace after the thread is gone: a netlink
//! or UDP socket stays bound to the namespace it was created in
//! (netavark's `exec_netns!` relies on the same rule), and a namespace
//! stays alive while a file descriptor or a bind mount refers to it.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

use crate::error::{Error, NetnsAction, Result};

/// The calling thread's own namespace file. `/proc/self` would name the
/// main thread's, which is not the same thing once a thread has moved.
const THREAD_NETNS: &str = "/proc/thread-self/ns/net";

/// An open network namespace. The namespace lives at least as long as this
/// handle; a named one (see [`Netns::create_named`]) also outlives it,
/// until [`Netns::delete`].
#[derive(Debug)]
pub struct Netns {
    fd: OwnedFd,
    /// How errors name it: its path, or `<anonymous #inode>`.
    label: String,
    /// The bind mount that keeps a named namespace alive without a process.
    mount: Option<PathBuf>,
}

impl Netns {
    /// The namespace of the calling thread.
    pub fn current() -> Result<Self> {
        Self::open(THREAD_NETNS)
    }

    /// Opens a namespace by path: `/proc/<pid>/ns/net`, or a bind mount such
    /// as `/run/netns/<name>`. Dropping the handle leaves the namespace as
    /// it was.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let label = format!("{:?}", path.display().to_string());
        let file = File::open(path).map_err(|e| Error::netns(NetnsAction::Open, label.clone(), e))?;
        Ok(Self {
            fd: file.into(),
            label,
            mount: None,
        })
    }

    /// A new, empty namespace (only a down `lo`) that exists as long as the
    /// returned handle: nothing is left behind when it is dropped, even if
    /// the process dies. The right thing for tests.
    pub fn create_anonymous() -> Result<Self> {
        let fd = on_new_thread(|| {
            unshare(CloneFlags::CLONE_NEWNET).map_err(|e| Error::netns(NetnsAction::Create, "<new>", e))?;
            File::open(THREAD_NETNS)
                .map(OwnedFd::from)
                .map_err(|e| Error::netns(NetnsAction::Open, THREAD_NETNS, e))
        })?;
        let label = format!("<anonymous #{}>", inode(&fd).unwrap_or(0));
        Ok(Self { fd, label, mount: None })
    }

    /// A new, empty namespace bind-mounted at `dir/name`, like
    /// `ip netns add` does under `/run/netns`, so that other processes can
    /// open it by path and it outlives this process. Remove it with
    /// [`Netns::delete`]; dropping the handle keeps it.
    ///
    /// Unlike `ip netns add` this does not make `dir` a shared mount point,
    /// so the mount is not propagated into mount namespaces created after
    /// it; callers that need that set up `dir` themselves.
    pub fn create_named(dir: &Path, name: &str) -> Result<Self> {
        let path = dir.join(name);
        let label = format!("{:?}", path.display().to_string());
        // The mount point must exist; `create_new` refuses to reuse a path
        // that another namespace (or anything else) already holds.
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::netns(NetnsAction::Create, label.clone(), e))?;
        let mounted = on_new_thread(|| {
            unshare(CloneFlags::CLONE_NEWNET).map_err(|e| Error::netns(NetnsAction::Create, label.clone(), e))?;
            mount(Some(THREAD_NETNS), &path, None::<&str>, MsFlags::MS_BIND, None::<&str>)
                .map_err(|e| Error::netns(NetnsAction::Mount, label.clone(), e))
        });
        if let Err(err) = mounted {
            let _ = fs::remove_file(&path);
            return Err(err);
        }
        match File::open(&path) {
            Ok(file) => Ok(Self {
                fd: file.into(),
                label,
                mount: Some(path),
            }),
            Err(e) => {
                let _ = umount2(&path, MntFlags::MNT_DETACH);
                let _ = fs::remove_file(&path);
                Err(Error::netns(NetnsAction::Open, label, e))
            }
        }
    }

    /// Runs `f` on a dedicated thread that has entered this namespace, and
    /// returns its result. Sockets `f` creates belong to this namespace and
    /// may be used from any thread afterwards. A panic in `f` is resumed on
    /// the calling thread.
    pub fn run<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        on_new_thread(|| {
            setns(&self.fd, CloneFlags::CLONE_NEWNET)
                .map_err(|e| Error::netns(NetnsAction::Enter, self.label.clone(), e))?;
            Ok(f())
        })
    }

    /// Whether both handles refer to the same namespace (same nsfs inode).
    pub fn same_as(&self, other: &Netns) -> Result<bool> {
        let mine = identity(&self.fd).map_err(|e| Error::netns(NetnsAction::Inspect, self.label.clone(), e))?;
        let theirs = identity(&other.fd).map_err(|e| Error::netns(NetnsAction::Inspect, other.label.clone(), e))?;
        Ok(mine == theirs)
    }

    /// Closes the handle and, for a named namespace, unmounts and removes
    /// its file. The namespace itself disappears once no process, mount or
    /// descriptor refers to it any more.
    pub fn delete(self) -> Result<()> {
        let Self { fd, label, mount } = self;
        drop(fd);
        if let Some(path) = mount {
            // MNT_DETACH: a process that still has the file open must not
            // make the removal fail; the kernel finishes when it closes it.
            umount2(&path, MntFlags::MNT_DETACH).map_err(|e| Error::netns(NetnsAction::Unmount, label.clone(), e))?;
            fs::remove_file(&path).map_err(|e| Error::netns(NetnsAction::Remove, label, e))?;
        }
        Ok(())
    }

    /// The bind-mount path of a named namespace.
    pub fn path(&self) -> Option<&Path> {
        self.mount.as_deref()
    }

    /// How errors and logs name this namespace.
    pub fn label(&self) -> &str {
        &self.label
    }
}

impl AsFd for Netns {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Runs `f` on a fresh scoped thread (so it may borrow) and hands back its
/// result; the thread's namespace changes die with it.
fn on_new_thread<T: Send>(f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|scope| match scope.spawn(f).join() {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

fn identity(fd: &OwnedFd) -> io::Result<(u64, u64)> {
    let meta = File::from(fd.try_clone()?).metadata()?;
    Ok((meta.dev(), meta.ino()))
}

fn inode(fd: &OwnedFd) -> io::Result<u64> {
    identity(fd).map(|(_, ino)| ino)
}

//! The container's rootfs as a detached mount, made before its init runs.
//!
//! Mounting the overlay costs most of a millisecond (overlayfs checks its
//! work directory on the upper filesystem: a `mkdir`, an `O_TMPFILE`, an
//! xattr). With the new mount API (`fsopen`/`fsconfig`/`fsmount`, Linux
//! 5.2) the starting caller builds it while the container's monitor is
//! still loading and hands the mount over as a descriptor; the init only
//! attaches it (`move_mount`) in its own mount namespace. A detached mount
//! that nobody attaches is gone when its last descriptor closes: nothing
//! to clean up on a failed start.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use super::rootfs::{overlay_options, RootfsError, UpperSync};

const FSOPEN_CLOEXEC: libc::c_uint = 0x1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 0x1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

fn cstring(s: &str) -> Result<CString, Errno> {
    CString::new(s).map_err(|_| Errno::EINVAL)
}

/// The overlay of `layers` (lowest first) with `upper` and `work`, as a
/// mount attached nowhere yet.
pub fn detached(layers: &[PathBuf], upper: &Path, work: &Path, sync: UpperSync) -> Result<OwnedFd, Errno> {
    // The init's own mount, the fallback, says why if this fails.
    sync.prepare_work_dir(work).map_err(|_| Errno::EIO)?;
    // SAFETY: fsopen with a NUL-terminated name; a non-negative result is
    // a new descriptor we own.
    let context = unsafe {
        let fd = libc::syscall(libc::SYS_fsopen, c"overlay".as_ptr(), FSOPEN_CLOEXEC);
        if fd < 0 {
            return Err(Errno::last());
        }
        OwnedFd::from_raw_fd(fd as i32)
    };
    // `source` only names the mount in mountinfo, as mount(2)'s does.
    let options = std::iter::once(("source", "overlay".to_string())).chain(overlay_options(layers, upper, work));
    for (key, value) in options {
        let (key, value) = (cstring(key)?, cstring(&value)?);
        // SAFETY: valid descriptor and NUL-terminated strings.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                context.as_raw_fd(),
                FSCONFIG_SET_STRING,
                key.as_ptr(),
                value.as_ptr(),
                0,
            )
        };
        if rc < 0 {
            return Err(Errno::last());
        }
    }
    if sync == UpperSync::Volatile {
        // SAFETY: valid descriptor and a NUL-terminated flag name; a flag
        // takes no value.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                context.as_raw_fd(),
                FSCONFIG_SET_FLAG,
                c"volatile".as_ptr(),
                std::ptr::null::<libc::c_void>(),
                0,
            )
        };
        if rc < 0 {
            return Err(Errno::last());
        }
    }
    // SAFETY: as above; CMD_CREATE takes no key or value.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            context.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    if rc < 0 {
        return Err(Errno::last());
    }
    // SAFETY: a configured context; a non-negative result is a new
    // descriptor for the detached mount.
    unsafe {
        let fd = libc::syscall(libc::SYS_fsmount, context.as_raw_fd(), FSMOUNT_CLOEXEC, 0);
        if fd < 0 {
            return Err(Errno::last());
        }
        Ok(OwnedFd::from_raw_fd(fd as i32))
    }
}

/// Attaches a [`detached`] mount at `target` in the caller's mount
/// namespace.
pub fn attach(mount: &OwnedFd, target: &Path) -> Result<(), RootfsError> {
    let failed = |errno| RootfsError::Mount {
        what: "overlay".into(),
        target: target.display().to_string(),
        errno,
    };
    let path = CString::new(target.as_os_str().as_bytes()).map_err(|_| failed(Errno::EINVAL))?;
    // SAFETY: a valid mount descriptor, an empty path with
    // MOVE_MOUNT_F_EMPTY_PATH, and a NUL-terminated target.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mount.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            path.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    match rc {
        0 => Ok(()),
        _ => Err(failed(Errno::last())),
    }
}

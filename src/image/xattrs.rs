//! Extended attributes, via libc (no extra crate): set on an fd or on a
//! path without following a final symlink, list and read without following.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

/// The overlayfs attribute marking a directory opaque.
pub const OVERLAY_OPAQUE: &str = "trusted.overlay.opaque";

/// What an xattr is set on.
pub enum Target<'a> {
    Fd(BorrowedFd<'a>),
    /// A path whose final component is not followed.
    Path(&'a Path),
}

fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in name"))
}

pub fn set(target: &Target<'_>, name: &str, value: &[u8]) -> io::Result<()> {
    let cname = cstring(name.as_bytes())?;
    let rc = match target {
        // SAFETY: `cname` is a valid NUL-terminated string and `value`
        // a live buffer of `value.len()` bytes for the call's duration.
        Target::Fd(fd) => unsafe {
            libc::fsetxattr(fd.as_raw_fd(), cname.as_ptr(), value.as_ptr().cast(), value.len(), 0)
        },
        Target::Path(path) => {
            let cpath = cstring(path.as_os_str().as_bytes())?;
            // SAFETY: as above; `cpath` is NUL-terminated and outlives the call.
            unsafe { libc::lsetxattr(cpath.as_ptr(), cname.as_ptr(), value.as_ptr().cast(), value.len(), 0) }
        }
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Names of the xattrs on `path` (final symlink not followed).
pub fn list(path: &Path) -> io::Result<Vec<OsString>> {
    let cpath = cstring(path.as_os_str().as_bytes())?;
    let mut buf = vec![0_u8; 1024];
    loop {
        // SAFETY: `buf` is a writable buffer of `buf.len()` bytes.
        let n = unsafe { libc::llistxattr(cpath.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            buf.truncate(n as usize);
            break;
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::ERANGE) => buf.resize(buf.len() * 4, 0),
            Some(libc::ENOTSUP) => return Ok(Vec::new()),
            _ => return Err(err),
        }
    }
    Ok(buf
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| OsString::from_vec(n.to_vec()))
        .collect())
}

/// The value of xattr `name` on `path` (final symlink not followed).
pub fn get(path: &Path, name: &OsStr) -> io::Result<Vec<u8>> {
    let cpath = cstring(path.as_os_str().as_bytes())?;
    let cname = cstring(name.as_bytes())?;
    let mut buf = vec![0_u8; 256];
    loop {
        // SAFETY: valid NUL-terminated strings; `buf` writable for its length.
        let n = unsafe { libc::lgetxattr(cpath.as_ptr(), cname.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            buf.truncate(n as usize);
            return Ok(buf);
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ERANGE) && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 4, 0);
        } else {
            return Err(err);
        }
    }
}

/// Whether a failure to set `name` may be ignored: the filesystem does not
/// support xattrs, or the kernel refuses a security/trusted attribute
/// (SELinux labels on a host without SELinux, for instance). Docker and
/// containerd tolerate the same cases.
pub fn may_ignore(name: &str, error: &io::Error) -> bool {
    match error.raw_os_error() {
        Some(libc::ENOTSUP) => true,
        Some(libc::EPERM | libc::EACCES | libc::EINVAL) => {
            name.starts_with("security.") || name.starts_with("trusted.") || name.starts_with("user.")
        }
        _ => false,
    }
}

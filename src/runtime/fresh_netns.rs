//! A container's network namespace, made before its init exists.
//!
//! Creating a network namespace costs about half a millisecond of kernel
//! work (loopback device, sysctl tables, per-net subsystems). The
//! container's monitor makes one while it waits for its orders
//! (`monitor_spawn::receive_orders`), as the starting caller creates the
//! container, and forks the init straight into it. A monitor without one
//! (its orders came first) has the init make it as before.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;

use nix::sched::{unshare, CloneFlags};

/// A new network namespace with `lo` up. A short-lived thread makes it,
/// so the caller's own namespace never changes (a thread-local
/// `unshare` in an engine worker would be a hazard).
pub fn create() -> io::Result<OwnedFd> {
    std::thread::Builder::new()
        .name("netns".into())
        .spawn(|| -> io::Result<OwnedFd> {
            unshare(CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
            bring_up_loopback();
            Ok(File::open("/proc/thread-self/ns/net")?.into())
        })?
        .join()
        .map_err(|_| io::Error::other("the network namespace thread panicked"))?
}

/// A new network namespace has `lo` down; containers expect it up.
pub fn bring_up_loopback() {
    // SAFETY: a plain socket + ioctl on a local ifreq buffer.
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if sock < 0 {
            return;
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        if libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req) == 0 {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            libc::ioctl(sock, libc::SIOCSIFFLAGS, &mut req);
        }
        libc::close(sock);
    }
}

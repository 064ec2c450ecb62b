//! The container's terminal (`-t`, `exec -t`): a pty allocated from the
//! container's own devpts instance, as runc does, so that `tty(1)` inside
//! names it (`/dev/pts/0`) and `/dev/console` can be bound to it. A pty
//! from the host's devpts works as a terminal, but its path does not exist
//! in the container, so `ttyname(3)` fails ("not a tty").
//!
//! The process inside the container allocates the pair and sends the master
//! to whoever relays it (the monitor, or the `exec` CLI) over a unix socket
//! with `SCM_RIGHTS`, like runc's `--console-socket`.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType,
};
use nix::sys::stat::Mode;

/// One end of a new master pty with its slave, both close-on-exec.
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
    /// The slave's number: it is `<devpts>/<index>`.
    pub index: u32,
}

/// A connected `SOCK_SEQPACKET` pair (close-on-exec) to pass the master.
pub fn socket_pair() -> Result<(OwnedFd, OwnedFd), Errno> {
    socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
}

/// Allocates a pty from the devpts instance mounted at `devpts` (its
/// `ptmx` node: the instance's own, not the host's `/dev/ptmx`).
pub fn allocate(devpts: &Path) -> Result<Pty, Errno> {
    let master = open(
        &devpts.join("ptmx"),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK with a pointer to a live int (unlockpt(3)).
    Errno::result(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &mut unlock) })?;
    let mut index: libc::c_uint = 0;
    // SAFETY: TIOCGPTN with a pointer to a live unsigned int (ptsname(3)).
    Errno::result(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut index) })?;
    // TIOCGPTPEER (Linux 4.13) opens the slave through the master's own
    // devpts mount, with no path lookup a container could redirect
    // (the race ioctl_tty(2) describes for opening ptsname's path).
    // SAFETY: TIOCGPTPEER takes open flags as an integer argument.
    let slave = Errno::result(unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: the kernel just returned this descriptor; nothing else owns it.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    Ok(Pty { master, slave, index })
}

/// Sends `fd` over `socket` (one byte of payload, the fd as SCM_RIGHTS).
pub fn send_fd(socket: &OwnedFd, fd: BorrowedFd<'_>) -> Result<(), Errno> {
    let fds = [fd.as_raw_fd()];
    let control = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &[IoSlice::new(b"m")],
        &control,
        MsgFlags::empty(),
        None,
    )
    .map(|_| ())
}

/// Receives a descriptor sent with [`send_fd`]; `None` when the peer closed
/// the socket without sending one (it failed before allocating the pty).
pub fn recv_fd(socket: &OwnedFd) -> Result<Option<OwnedFd>, Errno> {
    let mut byte = [0u8; 1];
    let (_, fds) = recv_with_fds(socket, &mut byte)?;
    Ok(fds.into_iter().next())
}

/// One message into `buf` and the descriptors that came with it (at most
/// two; more are closed): the payload's length and the descriptors, in
/// the order sent.
pub fn recv_with_fds(socket: &OwnedFd, buf: &mut [u8]) -> Result<(usize, Vec<OwnedFd>), Errno> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!([RawFd; 2]);
    let message = loop {
        match recvmsg::<()>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(Errno::EINTR) => continue,
            other => break other?,
        }
    };
    let mut owned = Vec::new();
    for cmsg in message.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            // SAFETY: SCM_RIGHTS installed these descriptors in this
            // process just now; nothing else owns them.
            owned.extend(fds.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
        }
    }
    Ok((message.bytes, owned))
}

/// Makes `slave` the calling process's stdin, stdout, stderr and
/// controlling terminal (the caller has called `setsid`).
pub fn make_controlling(slave: &OwnedFd) -> Result<(), Errno> {
    for target in 0..=2 {
        // SAFETY: dup2 onto the standard descriptors of this process.
        Errno::result(unsafe { libc::dup2(slave.as_raw_fd(), target) })?;
    }
    // SAFETY: TIOCSCTTY on our own stdin with an integer argument.
    Errno::result(unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) }).map(|_| ())
}

/// The calling terminal in raw mode (`cfmakeraw`) until dropped.
pub struct RawMode {
    saved: nix::sys::termios::Termios,
}

impl RawMode {
    /// `None` when stdin is not a terminal (nothing to change).
    pub fn enter() -> Option<RawMode> {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        use std::io::IsTerminal;
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return None;
        }
        let saved = tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(&stdin, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = nix::sys::termios::tcsetattr(std::io::stdin(), nix::sys::termios::SetArg::TCSANOW, &self.saved);
    }
}

/// The window size of terminal `fd`, if it is one.
pub fn window_size(fd: RawFd) -> Option<libc::winsize> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ into a live winsize.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) };
    (rc == 0 && size.ws_row != 0).then_some(size)
}

/// Copies `master` to this process's stdout (and, with `forward_stdin`,
/// its stdin to `master`, in raw mode), following the window size, until
/// the last slave closes (the master reads EIO): `exec -t`'s terminal.
pub fn relay(master: &OwnedFd, forward_stdin: bool) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::io::Write;
    let _raw = if forward_stdin { RawMode::enter() } else { None };
    let stdin = std::io::stdin();
    let mut stdin_open = forward_stdin;
    let mut size = None;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // Polled rather than signalled: no handler to install, and a
        // resize shows within one poll timeout.
        let now = window_size(libc::STDOUT_FILENO).map(|s| (s.ws_row, s.ws_col));
        if now.is_some() && now != size {
            if let Some(s) = window_size(libc::STDOUT_FILENO) {
                // SAFETY: TIOCSWINSZ with a pointer to a live winsize.
                unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &s) };
            }
            size = now;
        }
        let mut polls = vec![PollFd::new(std::os::fd::AsFd::as_fd(master), PollFlags::POLLIN)];
        if stdin_open {
            polls.push(PollFd::new(std::os::fd::AsFd::as_fd(&stdin), PollFlags::POLLIN));
        }
        match poll(&mut polls, PollTimeout::from(100u16)) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return,
        }
        let master_ready = polls[0].revents().is_some_and(|r| !r.is_empty());
        let stdin_ready = polls.get(1).and_then(PollFd::revents).is_some_and(|r| !r.is_empty());
        if master_ready {
            match nix::unistd::read(master, &mut buf) {
                Ok(n) if n > 0 => {
                    let mut out = std::io::stdout().lock();
                    if out.write_all(&buf[..n]).and_then(|()| out.flush()).is_err() {
                        return;
                    }
                }
                Err(Errno::EINTR | Errno::EAGAIN) => {}
                // EOF, or EIO once the last slave is closed.
                _ => return,
            }
        }
        if stdin_ready {
            match nix::unistd::read(&stdin, &mut buf) {
                Ok(n) if n > 0 => {
                    let mut rest = &buf[..n];
                    while !rest.is_empty() {
                        match nix::unistd::write(master, rest) {
                            Ok(w) if w > 0 => rest = &rest[w..],
                            Err(Errno::EINTR) => {}
                            _ => break,
                        }
                    }
                }
                Err(Errno::EINTR | Errno::EAGAIN) => {}
                _ => stdin_open = false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_descriptor_crosses_the_socket() {
        let (a, b) = socket_pair().unwrap();
        let (r, w) = nix::unistd::pipe().unwrap();
        send_fd(&a, std::os::fd::AsFd::as_fd(&w)).unwrap();
        drop(w);
        let received = recv_fd(&b).unwrap().unwrap();
        nix::unistd::write(&received, b"x").unwrap();
        let mut buf = [0u8; 1];
        nix::unistd::read(&r, &mut buf).unwrap();
        assert_eq!(&buf, b"x");
        drop(a);
        assert!(recv_fd(&b).unwrap().is_none(), "EOF carries no descriptor");
    }

    #[test]
    fn ptys_come_from_the_given_devpts() {
        // The host's devpts stands in for a container's instance.
        let Ok(pty) = allocate(Path::new("/dev/pts")) else {
            return; // no devpts here (some build sandboxes)
        };
        let link = std::fs::read_link(format!("/proc/self/fd/{}", pty.slave.as_raw_fd())).unwrap();
        assert_eq!(link, Path::new("/dev/pts").join(pty.index.to_string()));
    }
}

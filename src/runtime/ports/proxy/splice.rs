//! Zero-copy relaying for the TCP forwarder: bytes go socket → kernel pipe
//! → socket with `splice(2)`, as page references, and never enter the
//! monitor's memory (a `read` + `write` pair copies each byte twice and
//! costs two syscalls per 64 KiB).
//!
//! A pipe holds data only while the destination cannot take it, so pipes
//! are lent from [`Spares`] for one step and given back once drained: an
//! idle connection holds no pipe, and a monitor with hundreds of
//! connections does not need four more descriptors for each.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::unistd::pipe2;

/// What a pipe is asked to hold: past the default 64 KiB (16 pages), one
/// `splice` moves as much as a fast sender has queued. Best effort; the
/// default is used where the kernel refuses (`/proc/sys/fs/pipe-max-size`,
/// `pipe-user-pages-soft` for an unprivileged monitor).
pub const PIPE_SIZE: usize = 1024 * 1024;
/// Drained pipes kept for the next step; more are closed. A pipe resized
/// to 1 MiB costs about 10 KiB of kernel memory (its 256 slots) while it
/// is kept, so a monitor keeps few: one busy connection needs two.
const SPARE_PIPES: usize = 4;

/// A non-blocking pipe between two sockets.
#[derive(Debug)]
pub struct KernelPipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl KernelPipe {
    pub fn new() -> io::Result<KernelPipe> {
        let (read, write) = pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?;
        let _ = fcntl(
            &write,
            FcntlArg::F_SETPIPE_SZ(nix::libc::c_int::try_from(PIPE_SIZE).unwrap_or(0)),
        );
        Ok(KernelPipe { read, write })
    }

    /// Moves up to `len` bytes from socket `from` into the pipe; `Ok(0)` is
    /// the socket's EOF. `WouldBlock` when the socket has nothing (or the
    /// pipe is full).
    pub fn fill(&self, from: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
        splice(from, self.write.as_fd(), len)
    }

    /// Moves up to `len` bytes from the pipe into socket `to`.
    /// `WouldBlock` when the socket's send buffer is full.
    pub fn drain(&self, to: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
        splice(self.read.as_fd(), to, len)
    }
}

/// One `splice` without offsets, never blocking (`SPLICE_F_NONBLOCK` for
/// the pipe; the sockets are non-blocking themselves). `SPLICE_F_MOVE` is
/// only a hint. A peer that has gone away gives `EPIPE`: the monitor runs
/// with SIGPIPE ignored (Rust's runtime does that before `main`), so no
/// signal kills it.
fn splice(from: BorrowedFd<'_>, to: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
    loop {
        // SAFETY: both descriptors are open for the call (borrowed); null
        // offsets are valid for pipes and sockets (the files' own
        // positions, which sockets and pipes do not have).
        let n = unsafe {
            nix::libc::splice(
                from.as_raw_fd(),
                std::ptr::null_mut(),
                to.as_raw_fd(),
                std::ptr::null_mut(),
                len,
                nix::libc::SPLICE_F_MOVE | nix::libc::SPLICE_F_NONBLOCK,
            )
        };
        if n >= 0 {
            return Ok(n.unsigned_abs());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Pipes lent to connections for one step.
#[derive(Debug)]
pub struct Spares {
    pipes: Vec<KernelPipe>,
    /// Off in tests of the copying fallback, which runs when no pipe can
    /// be made (descriptors exhausted).
    splice: bool,
}

impl Default for Spares {
    fn default() -> Self {
        Spares {
            pipes: Vec::new(),
            splice: true,
        }
    }
}

impl Spares {
    #[cfg(test)]
    pub fn copying() -> Spares {
        Spares {
            pipes: Vec::new(),
            splice: false,
        }
    }

    /// A drained pipe, or a new one; `None` when none can be made.
    pub fn take(&mut self) -> Option<KernelPipe> {
        if !self.splice {
            return None;
        }
        self.pipes.pop().or_else(|| KernelPipe::new().ok())
    }

    /// Takes back a pipe that holds no data.
    pub fn give_back(&mut self, pipe: KernelPipe) {
        if self.pipes.len() < SPARE_PIPES {
            self.pipes.push(pipe);
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.pipes.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    fn connected() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (b, _) = listener.accept().unwrap();
        (a, b)
    }

    #[test]
    fn moves_bytes_between_sockets_and_reports_eof() {
        let (mut client, from) = connected();
        let (to, mut server) = connected();
        from.set_nonblocking(true).unwrap();
        to.set_nonblocking(true).unwrap();
        let pipe = KernelPipe::new().unwrap();
        let err = pipe.fill(from.as_fd(), 1 << 20).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "nothing sent yet");
        client.write_all(b"hello, splice").unwrap();
        let mut moved = 0;
        while moved < 13 {
            match pipe.fill(from.as_fd(), 1 << 20) {
                Ok(n) => moved += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(pipe.drain(to.as_fd(), moved).unwrap(), 13);
        let mut got = [0u8; 13];
        server.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello, splice");
        drop(client);
        let eof = loop {
            match pipe.fill(from.as_fd(), 1 << 20) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                other => break other.unwrap(),
            }
        };
        assert_eq!(eof, 0);
    }

    #[test]
    fn spares_are_reused_and_bounded() {
        let mut spares = Spares::default();
        let pipes: Vec<KernelPipe> = (0..SPARE_PIPES + 4).map(|_| spares.take().unwrap()).collect();
        for p in pipes {
            spares.give_back(p);
        }
        assert_eq!(spares.len(), SPARE_PIPES);
        let _ = spares.take().unwrap();
        assert_eq!(spares.len(), SPARE_PIPES - 1);
        assert!(Spares::copying().take().is_none());
    }
}

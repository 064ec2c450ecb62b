//! The client side of attach: forwards the terminal's stdin to the
//! container and its output back, in raw mode for a tty.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::runtime::attach::{AttachClient, FrameKind};
use crate::runtime::console::RawMode;
use crate::runtime::container::Container;
use crate::runtime::lifecycle;

/// Set by signal handlers: a signal to forward, a window change.
static FORWARD: AtomicI32 = AtomicI32::new(0);
static WINCH: AtomicBool = AtomicBool::new(false);

extern "C" fn on_forwarded_signal(signal: i32) {
    FORWARD.store(signal, Ordering::SeqCst);
}

extern "C" fn on_winch(_: i32) {
    WINCH.store(true, Ordering::SeqCst);
}

/// Installs the handlers: SIGINT/SIGTERM are proxied to the container (as
/// docker's sig-proxy), SIGWINCH resizes its tty.
pub fn install_signal_handlers() -> anyhow::Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    for (signal, handler) in [
        (Signal::SIGINT, on_forwarded_signal as extern "C" fn(i32)),
        (Signal::SIGTERM, on_forwarded_signal),
        (Signal::SIGWINCH, on_winch),
    ] {
        let action = SigAction::new(SigHandler::Handler(handler), SaFlags::SA_RESTART, SigSet::empty());
        // SAFETY: the handlers only store into atomics.
        unsafe { sigaction(signal, &action) }?;
    }
    Ok(())
}

/// The signal received since the last call, if any.
pub fn take_forwarded_signal() -> Option<nix::sys::signal::Signal> {
    let n = FORWARD.swap(0, Ordering::SeqCst);
    (n != 0).then(|| nix::sys::signal::Signal::try_from(n).ok()).flatten()
}

fn window_size() -> Option<[u8; 4]> {
    let size = crate::runtime::console::window_size(std::io::stdout().as_raw_fd())?;
    let [r0, r1] = size.ws_row.to_be_bytes();
    let [c0, c1] = size.ws_col.to_be_bytes();
    Some([r0, r1, c0, c1])
}

/// Runs an attach session until the container exits; returns its code.
pub fn session(mut client: AttachClient, container: &Container, forward_stdin: bool, tty: bool) -> anyhow::Result<i32> {
    let _raw = if tty { RawMode::enter() } else { None };
    if tty {
        if let Some(size) = window_size() {
            client.send(FrameKind::Resize, &size)?;
        }
    }
    let mut stdin_open = forward_stdin;
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        if let Some(signal) = take_forwarded_signal() {
            let _ = lifecycle::kill_container(container, signal);
        }
        if WINCH.swap(false, Ordering::SeqCst) && tty {
            if let Some(size) = window_size() {
                let _ = client.send(FrameKind::Resize, &size);
            }
        }
        let stdin = std::io::stdin();
        let socket_fd = client.stream.as_raw_fd();
        // SAFETY: both descriptors stay open for the duration of the poll.
        let socket = unsafe { BorrowedFd::borrow_raw(socket_fd) };
        let mut polls = vec![PollFd::new(socket, PollFlags::POLLIN)];
        if stdin_open {
            polls.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut polls, PollTimeout::from(100u16)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        let socket_ready = polls[0].revents().is_some_and(|r| !r.is_empty());
        let stdin_ready = stdin_open && polls.get(1).and_then(PollFd::revents).is_some_and(|r| !r.is_empty());
        if stdin_ready {
            match stdin.lock().read(&mut buf) {
                Ok(0) | Err(_) => {
                    stdin_open = false;
                    client.send(FrameKind::StdinEof, &[])?;
                }
                Ok(n) => client.send(FrameKind::Stdin, &buf[..n])?,
            }
        }
        if socket_ready {
            let (alive, frames) = client.receive()?;
            for (kind, payload) in frames {
                match kind {
                    FrameKind::Stdout => write_flush(&mut std::io::stdout().lock(), &payload)?,
                    FrameKind::Stderr => write_flush(&mut std::io::stderr().lock(), &payload)?,
                    FrameKind::Exit => {
                        let code = payload.try_into().map(i32::from_be_bytes).unwrap_or(0);
                        return Ok(code);
                    }
                    _ => {}
                }
            }
            if !alive {
                // The monitor went away without an exit frame: read the state.
                return Ok(lifecycle::wait_exit(container, Some(std::time::Duration::from_secs(5)))?.unwrap_or(255));
            }
        }
    }
}

fn write_flush(out: &mut dyn Write, bytes: &[u8]) -> std::io::Result<()> {
    out.write_all(bytes)?;
    out.flush()
}

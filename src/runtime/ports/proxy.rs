//! The monitor's port forwarder: a poll-driven state machine with no
//! threads (after `unshare(CLONE_NEWPID)` the monitor cannot create any;
//! the kernel refuses `CLONE_THREAD` there). The monitor asks for
//! [`Proxy::poll_fds`], polls them with its own fds, and hands the results
//! to [`Proxy::handle`]. Every socket is non-blocking.
//!
//! TCP bytes move with `splice(2)` through a kernel pipe per direction
//! ([`splice`]), lent only while it holds data; when no pipe can be had
//! they are copied through a buffer instead.

mod splice;

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::{Duration, Instant};

use nix::poll::PollFlags;
use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, SockaddrIn};

use self::splice::{KernelPipe, Spares};
use super::{bind_error, HostSocket, PortError};
use crate::runtime::config::PublishedPort;

/// A UDP "session" (one client address) is forgotten after this long idle.
const UDP_IDLE: Duration = Duration::from_secs(30);
/// A UDP datagram, and the copying fallback's chunk.
const BUFFER: usize = 64 * 1024;
/// At most this much moves one way per step, so that one busy connection
/// cannot starve the others and the monitor's own fds (the container's
/// log); what is left is still ready at the next poll.
const STEP_BUDGET: usize = 4 * splice::PIPE_SIZE;

/// One direction of a TCP pair: bytes taken from one side, not yet given
/// to the other, held in a lent kernel pipe (`in_pipe` bytes) or, without
/// one, in `buf`.
#[derive(Default)]
struct Pipe {
    pipe: Option<KernelPipe>,
    in_pipe: usize,
    buf: Vec<u8>,
    /// The source reached EOF.
    eof: bool,
    /// The EOF was passed on (`shutdown(Write)` on the destination).
    shut: bool,
}

impl Pipe {
    fn pending(&self) -> bool {
        self.in_pipe > 0 || !self.buf.is_empty()
    }

    /// Read only once everything taken has been passed on: that is the
    /// backpressure (a slow destination stops the source being read).
    fn wants_read(&self) -> bool {
        !self.eof && !self.pending()
    }

    /// Moves bytes from `from` to `to` until either would block or the
    /// step's budget is spent; `Err` when the pair is broken. A drained
    /// pipe goes back to `spares`.
    fn pump(&mut self, from: &mut TcpStream, to: &mut TcpStream, spares: &mut Spares) -> std::io::Result<()> {
        let result = self.pump_some(from, to, spares);
        if self.in_pipe == 0 {
            if let Some(pipe) = self.pipe.take() {
                spares.give_back(pipe);
            }
        }
        result
    }

    fn pump_some(&mut self, from: &mut TcpStream, to: &mut TcpStream, spares: &mut Spares) -> std::io::Result<()> {
        let mut moved = 0;
        loop {
            if self.in_pipe > 0 {
                let Some(pipe) = &self.pipe else {
                    return Err(ErrorKind::InvalidData.into());
                };
                match pipe.drain(to.as_fd(), self.in_pipe) {
                    Ok(0) => return Err(ErrorKind::WriteZero.into()),
                    Ok(n) => {
                        self.in_pipe -= n;
                        moved += n;
                        continue;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
            if !self.buf.is_empty() {
                match to.write(&self.buf) {
                    Ok(0) => return Err(ErrorKind::WriteZero.into()),
                    Ok(n) => {
                        self.buf.drain(..n);
                        moved += n;
                        continue;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            }
            if self.eof {
                if !self.shut {
                    // Half-close: the other side sees EOF but may still answer.
                    let _ = to.shutdown(Shutdown::Write);
                    self.shut = true;
                }
                return Ok(());
            }
            if moved >= STEP_BUDGET {
                return Ok(());
            }
            if self.pipe.is_none() {
                self.pipe = spares.take();
            }
            let read = match &self.pipe {
                Some(pipe) => pipe.fill(from.as_fd(), splice::PIPE_SIZE),
                None => Self::copy_in(from, &mut self.buf),
            };
            match read {
                Ok(0) => self.eof = true,
                Ok(n) if self.pipe.is_some() => self.in_pipe = n,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The fallback without a pipe: one buffer's worth into `buf`.
    fn copy_in(from: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<usize> {
        // Read straight into the heap buffer: a 64 KiB array on the stack
        // would make every caller's frame that large, and the stack probes
        // would keep all of it resident in the monitor.
        let start = buf.len();
        buf.resize(start + BUFFER, 0);
        let read = from.read(&mut buf[start..]);
        buf.truncate(start + *read.as_ref().unwrap_or(&0));
        read
    }
}

struct TcpPair {
    client: TcpStream,
    upstream: TcpStream,
    connecting: bool,
    up: Pipe,
    down: Pipe,
}

impl TcpPair {
    fn fds(&self) -> [(RawFd, PollFlags); 2] {
        let flag = |on: bool, f: PollFlags| if on { f } else { PollFlags::empty() };
        [
            (
                self.client.as_raw_fd(),
                flag(!self.connecting && self.up.wants_read(), PollFlags::POLLIN)
                    | flag(self.down.pending(), PollFlags::POLLOUT),
            ),
            (
                self.upstream.as_raw_fd(),
                flag(self.connecting || self.up.pending(), PollFlags::POLLOUT)
                    | flag(!self.connecting && self.down.wants_read(), PollFlags::POLLIN),
            ),
        ]
    }

    /// Makes progress both ways; `false` once the pair is finished.
    fn step(&mut self, spares: &mut Spares) -> bool {
        if self.connecting {
            match self.upstream.take_error() {
                Ok(None) if self.upstream.peer_addr().is_ok() => self.connecting = false,
                Ok(None) => return true,
                _ => return false,
            }
        }
        let up = self.up.pump(&mut self.client, &mut self.upstream, spares);
        let down = self.down.pump(&mut self.upstream, &mut self.client, spares);
        up.is_ok() && down.is_ok() && !(self.up.shut && self.down.shut)
    }
}

struct UdpSession {
    socket: UdpSocket,
    /// Index of the front socket in [`Proxy::udp`].
    front: usize,
    client: SocketAddr,
    last: Instant,
}

/// Every listener and connection of one container's published ports.
#[derive(Default)]
pub struct Proxy {
    tcp: Vec<(TcpListener, SocketAddrV4)>,
    udp: Vec<(UdpSocket, SocketAddrV4)>,
    pairs: Vec<TcpPair>,
    sessions: Vec<UdpSession>,
    /// Drained pipes for the pairs' next steps.
    spares: Spares,
    /// One datagram, for UDP ports only (allocated on first use): on the
    /// heap, not in a frame of the monitor's poll loop.
    datagram: Vec<u8>,
}

impl Proxy {
    /// Binds every host port (before the container exists, so a port taken
    /// since create fails the start cleanly); traffic goes to `target`.
    pub fn bind(ports: &[PublishedPort], target: Ipv4Addr) -> Result<Proxy, PortError> {
        let mut proxy = Proxy::default();
        for p in ports {
            let dest = SocketAddrV4::new(target, p.container_port);
            let socket =
                HostSocket::bind(p.host_ip, p.host_port, p.protocol).map_err(|e| bind_error(p, e, |_| None))?;
            let nonblocking = match socket {
                HostSocket::Tcp(l) => l.set_nonblocking(true).map(|()| proxy.tcp.push((l, dest))),
                HostSocket::Udp(s) => s.set_nonblocking(true).map(|()| proxy.udp.push((s, dest))),
            };
            nonblocking.map_err(|source| PortError::Bind {
                ip: p.host_ip,
                port: p.host_port,
                protocol: p.protocol,
                source,
            })?;
        }
        Ok(proxy)
    }

    /// Closes everything, releasing the host ports.
    pub fn close(&mut self) {
        *self = Proxy::default();
    }

    /// Whether [`Self::handle`] has time-based work (expiring idle UDP
    /// sessions), so the caller's poll needs a timeout.
    pub fn has_timers(&self) -> bool {
        !self.sessions.is_empty()
    }

    /// What to poll, and for what.
    pub fn poll_fds(&self) -> Vec<(RawFd, PollFlags)> {
        let mut fds: Vec<(RawFd, PollFlags)> = Vec::new();
        fds.extend(self.tcp.iter().map(|(l, _)| (l.as_raw_fd(), PollFlags::POLLIN)));
        fds.extend(self.udp.iter().map(|(s, _)| (s.as_raw_fd(), PollFlags::POLLIN)));
        fds.extend(self.pairs.iter().flat_map(TcpPair::fds));
        fds.extend(self.sessions.iter().map(|s| (s.socket.as_raw_fd(), PollFlags::POLLIN)));
        fds
    }

    /// Acts on poll results (fd, revents) for fds from [`Self::poll_fds`];
    /// also expires idle UDP sessions, so call it on every loop.
    pub fn handle(&mut self, ready: &[(RawFd, PollFlags)]) {
        let ready: HashMap<RawFd, PollFlags> = ready.iter().filter(|(_, r)| !r.is_empty()).copied().collect();
        for i in 0..self.tcp.len() {
            if ready.contains_key(&self.tcp[i].0.as_raw_fd()) {
                self.accept(i);
            }
        }
        let spares = &mut self.spares;
        self.pairs.retain_mut(|p| {
            let touched = ready.contains_key(&p.client.as_raw_fd()) || ready.contains_key(&p.upstream.as_raw_fd());
            !touched || p.step(spares)
        });
        for i in 0..self.udp.len() {
            if ready.contains_key(&self.udp[i].0.as_raw_fd()) {
                self.udp_from_clients(i);
            }
        }
        if self.sessions.is_empty() {
            return;
        }
        let udp = &self.udp;
        let now = Instant::now();
        let buf = datagram_buffer(&mut self.datagram);
        self.sessions.retain_mut(|s| {
            if ready.contains_key(&s.socket.as_raw_fd()) {
                while let Ok(n) = s.socket.recv(buf) {
                    s.last = now;
                    let _ = udp[s.front].0.send_to(&buf[..n], s.client);
                }
            }
            now.duration_since(s.last) < UDP_IDLE
        });
    }

    fn accept(&mut self, index: usize) {
        let (listener, dest) = &self.tcp[index];
        while let Ok((client, _)) = listener.accept() {
            if client.set_nonblocking(true).is_err() {
                continue;
            }
            // A connection the container refuses is closed at once.
            if let Ok(upstream) = connect_nonblocking(*dest) {
                self.pairs.push(TcpPair {
                    client,
                    upstream,
                    connecting: true,
                    up: Pipe::default(),
                    down: Pipe::default(),
                });
            }
        }
    }

    fn udp_from_clients(&mut self, index: usize) {
        let mut buf = std::mem::take(&mut self.datagram);
        datagram_buffer(&mut buf);
        let dest = self.udp[index].1;
        while let Ok((n, client)) = self.udp[index].0.recv_from(&mut buf) {
            let existing = self
                .sessions
                .iter()
                .position(|s| s.front == index && s.client == client);
            let session = match existing {
                Some(i) => i,
                None => {
                    let Ok(socket) = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)) else {
                        continue;
                    };
                    if socket.connect(dest).is_err() || socket.set_nonblocking(true).is_err() {
                        continue;
                    }
                    self.sessions.push(UdpSession {
                        socket,
                        front: index,
                        client,
                        last: Instant::now(),
                    });
                    self.sessions.len() - 1
                }
            };
            let s = &mut self.sessions[session];
            s.last = Instant::now();
            let _ = s.socket.send(&buf[..n]);
        }
        self.datagram = buf;
    }
}

/// `buf` grown to the largest datagram, once.
fn datagram_buffer(buf: &mut Vec<u8>) -> &mut [u8] {
    if buf.len() < BUFFER {
        buf.resize(BUFFER, 0);
    }
    buf
}

/// A TCP connect that returns at once (EINPROGRESS); its outcome shows as
/// writability, then `SO_ERROR`.
fn connect_nonblocking(dest: SocketAddrV4) -> std::io::Result<TcpStream> {
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    match connect(fd.as_raw_fd(), &SockaddrIn::from(dest)) {
        Ok(()) | Err(nix::errno::Errno::EINPROGRESS) => Ok(TcpStream::from(fd)),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::runtime::config::Protocol;
    use nix::poll::{poll, PollFd, PollTimeout};
    use std::os::fd::BorrowedFd;

    /// Runs the proxy's poll loop for `rounds` rounds of up to 20 ms.
    fn spin(proxy: &mut Proxy, rounds: usize) {
        for _ in 0..rounds {
            let fds = proxy.poll_fds();
            // SAFETY: the fds are owned by `proxy` for the whole poll.
            let borrowed: Vec<BorrowedFd> = fds
                .iter()
                .map(|(fd, _)| unsafe { BorrowedFd::borrow_raw(*fd) })
                .collect();
            let mut polls: Vec<PollFd> = borrowed
                .iter()
                .zip(&fds)
                .map(|(b, (_, f))| PollFd::new(*b, *f))
                .collect();
            let _ = poll(&mut polls, PollTimeout::from(20u16));
            let ready: Vec<(RawFd, PollFlags)> = fds
                .iter()
                .zip(&polls)
                .map(|((fd, _), p)| (*fd, p.revents().unwrap_or(PollFlags::empty())))
                .collect();
            proxy.handle(&ready);
        }
    }

    fn published(port: u16, container_port: u16, protocol: Protocol) -> PublishedPort {
        PublishedPort {
            host_ip: "127.0.0.1".parse().unwrap(),
            host_port: port,
            container_port,
            protocol,
        }
    }

    #[test]
    fn forwards_tcp_both_ways_with_half_close() {
        let backend = TcpListener::bind("127.0.0.1:0").unwrap();
        let backend_port = backend.local_addr().unwrap().port();
        let front = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut proxy = Proxy::bind(&[published(front, backend_port, Protocol::Tcp)], Ipv4Addr::LOCALHOST).unwrap();
        let mut client = TcpStream::connect(("127.0.0.1", front)).unwrap();
        client.write_all(b"ping").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        spin(&mut proxy, 10);
        let (mut server, _) = backend.accept().unwrap();
        server.set_nonblocking(false).unwrap();
        let mut got = Vec::new();
        server.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"ping");
        server.write_all(b"pong").unwrap();
        drop(server);
        spin(&mut proxy, 10);
        let mut reply = Vec::new();
        client.read_to_end(&mut reply).unwrap();
        assert_eq!(reply, b"pong");
        assert!(proxy.pairs.is_empty());
    }

    /// A backend that echoes every connection back until EOF, then
    /// half-closes, one thread per connection.
    fn echo_backend() -> u16 {
        let backend = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = backend.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for conn in backend.incoming() {
                let Ok(mut conn) = conn else { return };
                std::thread::spawn(move || {
                    let mut reader = conn.try_clone().unwrap();
                    std::io::copy(&mut reader, &mut conn).unwrap();
                    conn.shutdown(Shutdown::Write).unwrap();
                });
            }
        });
        port
    }

    fn pattern(len: usize, seed: usize) -> Vec<u8> {
        (0..len).map(|i| ((i * 7 + seed) % 251) as u8).collect()
    }

    /// Sends `len` bytes through the proxy to the echo backend and back,
    /// with a reader that starts late, so that the proxy must hold back
    /// (backpressure); asserts that the echo came back intact.
    fn echo_through(mut proxy: Proxy, len: usize) -> Proxy {
        let front = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let backend_port = echo_backend();
        proxy.tcp.extend(
            Proxy::bind(&[published(front, backend_port, Protocol::Tcp)], Ipv4Addr::LOCALHOST)
                .unwrap()
                .tcp,
        );
        let sent = pattern(len, 3);
        let expected = sent.clone();
        let client = std::thread::spawn(move || {
            let mut writer = TcpStream::connect(("127.0.0.1", front)).unwrap();
            let mut reader = writer.try_clone().unwrap();
            let sending = std::thread::spawn(move || {
                writer.write_all(&sent).unwrap();
                writer.shutdown(Shutdown::Write).unwrap();
            });
            std::thread::sleep(Duration::from_millis(300));
            let mut got = Vec::new();
            reader.read_to_end(&mut got).unwrap();
            sending.join().unwrap();
            got
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        while !client.is_finished() {
            assert!(Instant::now() < deadline, "the transfer did not finish");
            spin(&mut proxy, 1);
            for pair in &proxy.pairs {
                // Backpressure: never more than one read's worth held.
                assert!(pair.up.buf.len() <= BUFFER && pair.down.buf.len() <= BUFFER);
            }
        }
        let got = client.join().unwrap();
        assert!(
            got == expected,
            "{} bytes came back, {} sent, or they differ",
            got.len(),
            len
        );
        spin(&mut proxy, 2);
        assert!(proxy.pairs.is_empty());
        proxy
    }

    #[test]
    fn splices_bulk_data_both_ways_and_returns_the_pipes() {
        let proxy = echo_through(Proxy::default(), 32 << 20);
        // Both directions drained: both pipes came back, none is held.
        assert!((1..=2).contains(&proxy.spares.len()), "{}", proxy.spares.len());
    }

    #[test]
    fn copies_bulk_data_when_no_pipe_can_be_had() {
        let proxy = Proxy {
            spares: Spares::copying(),
            ..Proxy::default()
        };
        let proxy = echo_through(proxy, 8 << 20);
        assert_eq!(proxy.spares.len(), 0);
    }

    #[test]
    fn many_connections_at_once_hold_no_idle_pipes() {
        let backend_port = echo_backend();
        let front = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut proxy = Proxy::bind(&[published(front, backend_port, Protocol::Tcp)], Ipv4Addr::LOCALHOST).unwrap();
        let clients: Vec<_> = (0..64)
            .map(|seed| {
                std::thread::spawn(move || {
                    let data = pattern(256 * 1024, seed);
                    let mut conn = TcpStream::connect(("127.0.0.1", front)).unwrap();
                    let mut reader = conn.try_clone().unwrap();
                    let expected = data.clone();
                    let writer = std::thread::spawn(move || {
                        conn.write_all(&data).unwrap();
                        conn.shutdown(Shutdown::Write).unwrap();
                    });
                    let mut got = Vec::new();
                    reader.read_to_end(&mut got).unwrap();
                    writer.join().unwrap();
                    got == expected
                })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut most_pairs = 0;
        while !clients.iter().all(|c| c.is_finished()) {
            assert!(Instant::now() < deadline, "the transfers did not finish");
            spin(&mut proxy, 1);
            most_pairs = most_pairs.max(proxy.pairs.len());
            let held = proxy
                .pairs
                .iter()
                .flat_map(|p| [&p.up, &p.down])
                .filter(|d| d.pipe.is_some())
                .count();
            let pending = proxy
                .pairs
                .iter()
                .flat_map(|p| [&p.up, &p.down])
                .filter(|d| d.in_pipe > 0)
                .count();
            // Between steps a pipe is held only while it holds data.
            assert_eq!(held, pending);
        }
        for c in clients {
            assert!(c.join().unwrap(), "an echo came back wrong");
        }
        assert!(most_pairs > 1, "the connections never overlapped");
        spin(&mut proxy, 2);
        assert!(proxy.pairs.is_empty());
    }

    #[test]
    fn forwards_udp_per_client() {
        let backend = UdpSocket::bind("127.0.0.1:0").unwrap();
        let backend_port = backend.local_addr().unwrap().port();
        let front = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut proxy = Proxy::bind(&[published(front, backend_port, Protocol::Udp)], Ipv4Addr::LOCALHOST).unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.send_to(b"hello", ("127.0.0.1", front)).unwrap();
        spin(&mut proxy, 5);
        let mut buf = [0u8; 64];
        let (n, from) = backend.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello");
        backend.send_to(b"HELLO", from).unwrap();
        spin(&mut proxy, 5);
        client.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let (n, _) = client.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"HELLO");
        assert_eq!(proxy.sessions.len(), 1);
    }

    #[test]
    fn a_taken_port_fails_the_bind() {
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let err = Proxy::bind(&[published(port, 80, Protocol::Tcp)], Ipv4Addr::LOCALHOST)
            .err()
            .unwrap();
        assert!(err.to_string().contains("already in use"), "{err}");
        proxy_releases_ports_on_close();
    }

    fn proxy_releases_ports_on_close() {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut proxy = Proxy::bind(&[published(port, 80, Protocol::Tcp)], Ipv4Addr::LOCALHOST).unwrap();
        proxy.close();
        TcpListener::bind(("127.0.0.1", port)).unwrap();
    }
}

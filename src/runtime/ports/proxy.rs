//! The monitor's port forwarder: a poll-driven state machine with no
//! threads (after `unshare(CLONE_NEWPID)` the monitor cannot create any;
//! the kernel refuses `CLONE_THREAD` there). The monitor asks for
//! [`Proxy::poll_fds`], polls them with its own fds, and hands the results
//! to [`Proxy::handle`]. Every socket is non-blocking.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use nix::poll::PollFlags;
use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, SockaddrIn};

use super::{bind_error, HostSocket, PortError};
use crate::runtime::config::PublishedPort;

/// A UDP "session" (one client address) is forgotten after this long idle.
const UDP_IDLE: Duration = Duration::from_secs(30);
const BUFFER: usize = 64 * 1024;

/// One direction of a TCP pair: bytes read from one side, not yet written
/// to the other.
#[derive(Default)]
struct Pipe {
    buf: Vec<u8>,
    /// The source reached EOF.
    eof: bool,
    /// The EOF was passed on (`shutdown(Write)` on the destination).
    shut: bool,
}

impl Pipe {
    fn wants_read(&self) -> bool {
        !self.eof && self.buf.is_empty()
    }

    /// Moves bytes from `from` to `to` until either would block; `Err`
    /// when the pair is broken.
    fn pump(&mut self, from: &mut TcpStream, to: &mut TcpStream) -> std::io::Result<()> {
        let mut chunk = [0u8; BUFFER];
        loop {
            if !self.buf.is_empty() {
                match to.write(&self.buf) {
                    Ok(0) => return Err(ErrorKind::WriteZero.into()),
                    Ok(n) => {
                        self.buf.drain(..n);
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
            match from.read(&mut chunk) {
                Ok(0) => self.eof = true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
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
                    | flag(!self.down.buf.is_empty(), PollFlags::POLLOUT),
            ),
            (
                self.upstream.as_raw_fd(),
                flag(self.connecting || !self.up.buf.is_empty(), PollFlags::POLLOUT)
                    | flag(!self.connecting && self.down.wants_read(), PollFlags::POLLIN),
            ),
        ]
    }

    /// Makes progress both ways; `false` once the pair is finished.
    fn step(&mut self) -> bool {
        if self.connecting {
            match self.upstream.take_error() {
                Ok(None) if self.upstream.peer_addr().is_ok() => self.connecting = false,
                Ok(None) => return true,
                _ => return false,
            }
        }
        let up = self.up.pump(&mut self.client, &mut self.upstream);
        let down = self.down.pump(&mut self.upstream, &mut self.client);
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
        self.pairs.retain_mut(|p| {
            let touched = ready.contains_key(&p.client.as_raw_fd()) || ready.contains_key(&p.upstream.as_raw_fd());
            !touched || p.step()
        });
        for i in 0..self.udp.len() {
            if ready.contains_key(&self.udp[i].0.as_raw_fd()) {
                self.udp_from_clients(i);
            }
        }
        let udp = &self.udp;
        let now = Instant::now();
        self.sessions.retain_mut(|s| {
            if ready.contains_key(&s.socket.as_raw_fd()) {
                let mut buf = [0u8; BUFFER];
                while let Ok(n) = s.socket.recv(&mut buf) {
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
        let mut buf = [0u8; BUFFER];
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
    }
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

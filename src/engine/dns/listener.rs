//! One network's listeners, UDP and TCP on `<gateway>:53`, and the answer
//! to one query: parse, ask the snapshot, reply or relay.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{self, sockopt, AddressFamily, Backlog, SockFlag, SockType, SockaddrIn};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use super::forward::{self, Transport};
use super::{DnsServerError, Shared, MISS_REFRESH};
use crate::network::dns::wire::{self, Rcode, Record, WireError, TYPE_A, TYPE_ANY, UDP_LIMIT};
use crate::network::dns::Answer;

const DNS_PORT: u16 = 53;
/// Answers are valid for no time at all: a recreated container's new
/// address must be seen at once, not after a cache in the client expires.
const TTL: u32 = 0;
/// A TCP client that sends nothing for this long is dropped.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// The largest UDP message read (an EDNS client may send up to 4096).
const UDP_BUFFER: usize = 4096;

/// Binds `network`'s sockets and starts serving them on `runtime`.
pub(super) fn start(
    shared: &Arc<Shared>,
    runtime: &Handle,
    network: &str,
    gateway: Ipv4Addr,
) -> Result<Vec<JoinHandle<()>>, DnsServerError> {
    let udp = bind(network, gateway, SockType::Datagram)?;
    let tcp = bind(network, gateway, SockType::Stream)?;
    let address = SocketAddr::V4(SocketAddrV4::new(gateway, DNS_PORT));
    let bind_error = |source: io::Error| DnsServerError::Bind {
        network: network.to_string(),
        address,
        source,
    };
    socket::listen(&tcp, Backlog::MAXCONN).map_err(|e| bind_error(e.into()))?;
    // from_std registers with the reactor of the runtime entered.
    let _entered = runtime.enter();
    let udp = UdpSocket::from_std(std::net::UdpSocket::from(udp)).map_err(bind_error)?;
    let tcp = TcpListener::from_std(std::net::TcpListener::from(tcp)).map_err(bind_error)?;
    Ok(vec![
        runtime.spawn(serve_udp(Arc::clone(shared), Listener::new(network, gateway), udp)),
        runtime.spawn(serve_tcp(Arc::clone(shared), Listener::new(network, gateway), tcp)),
    ])
}

/// Which listener a query came in on.
#[derive(Debug, Clone)]
pub(super) struct Listener {
    network: String,
    gateway: Ipv4Addr,
}

impl Listener {
    fn new(network: &str, gateway: Ipv4Addr) -> Arc<Listener> {
        Arc::new(Listener {
            network: network.to_string(),
            gateway,
        })
    }
}

/// A non-blocking socket bound to `<gateway>:53`.
fn bind(network: &str, gateway: Ipv4Addr, kind: SockType) -> Result<OwnedFd, DnsServerError> {
    let address = SocketAddrV4::new(gateway, DNS_PORT);
    let error = |errno: Errno| DnsServerError::Bind {
        network: network.to_string(),
        address: SocketAddr::V4(address),
        source: errno.into(),
    };
    let fd = socket::socket(
        AddressFamily::Inet,
        kind,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(error)?;
    // IP_FREEBIND (ip(7)): the network's record appears a moment before
    // its bridge has the gateway address; bind anyway, and the kernel
    // delivers to the socket once the address exists.
    socket::setsockopt(&fd, sockopt::IpFreebind, &true).map_err(error)?;
    // A listener closed a moment ago (network recreated) leaves TCP
    // sockets in TIME_WAIT on the same address.
    socket::setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(error)?;
    socket::bind(fd.as_raw_fd(), &SockaddrIn::from(address)).map_err(error)?;
    Ok(fd)
}

async fn serve_udp(shared: Arc<Shared>, listener: Arc<Listener>, socket: UdpSocket) {
    let socket = Arc::new(socket);
    let mut buffer = vec![0u8; UDP_BUFFER];
    loop {
        let (len, peer) = match socket.recv_from(&mut buffer).await {
            Ok(received) => received,
            Err(_) => {
                // Transient (ENOMEM, a pending ICMP error): do not spin.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let SocketAddr::V4(client) = peer else {
            continue;
        };
        let message = buffer[..len].to_vec();
        let (shared, listener, socket) = (Arc::clone(&shared), Arc::clone(&listener), Arc::clone(&socket));
        // A task per query: a slow forward must not hold up the next one.
        tokio::spawn(async move {
            if let Some(reply) = answer(&shared, &listener, *client.ip(), &message, Transport::Udp).await {
                let _ = socket.send_to(&reply, peer).await;
            }
        });
    }
}

async fn serve_tcp(shared: Arc<Shared>, listener: Arc<Listener>, tcp: TcpListener) {
    loop {
        let (stream, peer) = match tcp.accept().await {
            Ok(accepted) => accepted,
            Err(_) => {
                // Out of descriptors, say: wait instead of spinning.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let SocketAddr::V4(client) = peer else {
            continue;
        };
        tokio::spawn(serve_connection(
            Arc::clone(&shared),
            Arc::clone(&listener),
            stream,
            *client.ip(),
        ));
    }
}

/// Queries over one TCP connection, each behind its 2-byte length
/// (RFC 1035 §4.2.2), answered in order until the client goes quiet.
async fn serve_connection(shared: Arc<Shared>, listener: Arc<Listener>, mut stream: TcpStream, client: Ipv4Addr) {
    loop {
        let Ok(Ok(len)) = tokio::time::timeout(TCP_IDLE, stream.read_u16()).await else {
            return;
        };
        let mut message = vec![0u8; usize::from(len)];
        if !matches!(
            tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut message)).await,
            Ok(Ok(_))
        ) {
            return;
        }
        let Some(reply) = answer(&shared, &listener, client, &message, Transport::Tcp).await else {
            return;
        };
        let Ok(reply_len) = u16::try_from(reply.len()) else {
            return;
        };
        let mut framed = reply_len.to_be_bytes().to_vec();
        framed.extend_from_slice(&reply);
        if stream.write_all(&framed).await.is_err() {
            return;
        }
    }
}

/// Whether `address` is one of the host's own: binding to it works only
/// then (no IP_FREEBIND here).
fn is_host_address(address: Ipv4Addr) -> bool {
    std::net::UdpSocket::bind((address, 0)).is_ok()
}

/// The reply to `message` from `client` on `listener`; `None` for a
/// message that must not be answered (a response, or less than a header).
async fn answer(
    shared: &Arc<Shared>,
    listener: &Listener,
    client: Ipv4Addr,
    message: &[u8],
    transport: Transport,
) -> Option<Vec<u8>> {
    let query = match wire::parse_query(message) {
        Ok(query) => query,
        // Answering an answer could start a loop between two servers.
        Err(WireError::NotQuery) => return None,
        Err(_) => return wire::error_response(message, Rcode::FormErr),
    };
    let limit = match transport {
        Transport::Udp => UDP_LIMIT,
        Transport::Tcp => usize::from(u16::MAX),
    };
    if query.opcode() != 0 {
        return Some(wire::response(&query, Rcode::NotImp, false, &[], TTL, limit));
    }
    let name = query.question.name();
    let qtype = query.question.qtype;
    // Only address queries turn the wheel: the AAAA query a stub resolver
    // sends beside each A query must not make every answer start alike.
    let rotation = if qtype == TYPE_A || qtype == TYPE_ANY {
        shared.next_rotation()
    } else {
        0
    };
    let snapshot = shared.current();
    let network = listener.network.as_str();
    // The host itself asks as if from the gateway, i.e. as a member of
    // the network. Its queries rarely carry the gateway as their source:
    // the network's masquerade rule rewrites traffic that leaves through
    // `lo` to the host's main address.
    let client = if !snapshot.knows_client(client) && is_host_address(client) {
        listener.gateway
    } else {
        client
    };
    let mut decision = snapshot.resolve(network, client, &name, qtype, rotation);
    let miss = match decision {
        Answer::NxDomain | Answer::Refused => true,
        Answer::Forward(_) => !snapshot.knows_client(client),
        _ => false,
    };
    if miss {
        // Perhaps a container newer than the snapshot, asking or asked for.
        let fresh = Arc::clone(shared);
        if let Ok(snapshot) = tokio::task::spawn_blocking(move || fresh.refresh_if_older(MISS_REFRESH)).await {
            decision = snapshot.resolve(network, client, &name, qtype, rotation);
        }
    }
    let reply =
        |rcode, authoritative, records: &[Record]| wire::response(&query, rcode, authoritative, records, TTL, limit);
    Some(match decision {
        Answer::Addresses(addresses) => {
            let records: Vec<Record> = addresses.into_iter().map(Record::A).collect();
            reply(Rcode::NoError, true, &records)
        }
        Answer::Pointer(name) => reply(Rcode::NoError, true, &[Record::Ptr(name)]),
        Answer::NoData => reply(Rcode::NoError, true, &[]),
        Answer::NxDomain => reply(Rcode::NxDomain, true, &[]),
        Answer::Refused => reply(Rcode::Refused, false, &[]),
        Answer::Forward(servers) => match forward::relay(message, &servers, transport).await {
            Some(relayed) => relayed,
            None => reply(Rcode::ServFail, false, &[]),
        },
    })
}

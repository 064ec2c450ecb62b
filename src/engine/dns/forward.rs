//! Relaying a query the engine does not answer: the client's bytes go, as
//! they are, to each upstream in turn until one replies, over the
//! transport the client used (a TCP client asked over TCP because a UDP
//! answer was truncated, so UDP upstream would truncate again).

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// How long one upstream gets before the next is tried. Stub resolvers
/// retry after about a second and give up after five: two upstreams fit.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest reply accepted over UDP (EDNS may allow up to this).
const UDP_REPLY_MAX: usize = 65535;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// The first upstream reply to `query`, or `None` when none replied.
pub async fn relay(query: &[u8], servers: &[SocketAddr], transport: Transport) -> Option<Vec<u8>> {
    for server in servers {
        let attempt = match transport {
            Transport::Udp => tokio::time::timeout(UPSTREAM_TIMEOUT, over_udp(query, *server)).await,
            Transport::Tcp => tokio::time::timeout(UPSTREAM_TIMEOUT, over_tcp(query, *server)).await,
        };
        if let Ok(Ok(reply)) = attempt {
            return Some(reply);
        }
    }
    None
}

/// From a fresh socket (a random source port per query, against spoofed
/// replies), connected so only `server`'s datagrams arrive; a reply whose
/// id is not the query's is ignored.
async fn over_udp(query: &[u8], server: SocketAddr) -> io::Result<Vec<u8>> {
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(server).await?;
    socket.send(query).await?;
    let mut buffer = vec![0u8; UDP_REPLY_MAX];
    loop {
        let len = socket.recv(&mut buffer).await?;
        if len >= 2 && buffer.get(..2) == query.get(..2) {
            buffer.truncate(len);
            return Ok(buffer);
        }
    }
}

async fn over_tcp(query: &[u8], server: SocketAddr) -> io::Result<Vec<u8>> {
    let len = u16::try_from(query.len()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut stream = TcpStream::connect(server).await?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    stream.write_all(&framed).await?;
    let reply_len = stream.read_u16().await?;
    let mut reply = vec![0u8; usize::from(reply_len)];
    stream.read_exact(&mut reply).await?;
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-shot UDP upstream on loopback that first sends a stray reply
    /// with the wrong id, then echoes the query with the QR bit set.
    #[tokio::test]
    async fn udp_relay_skips_strays_and_falls_through_dead_servers() {
        let upstream = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let address = upstream.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buffer = [0u8; 512];
            let (len, peer) = upstream.recv_from(&mut buffer).await.unwrap();
            upstream.send_to(&[0xFF, 0xFF, 0x80, 0], peer).await.unwrap();
            buffer[2] |= 0x80;
            upstream.send_to(&buffer[..len], peer).await.unwrap();
        });
        // A port nobody listens on: refused at once, then the live one.
        let dead = UdpSocket::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        let query = crate::network::dns::wire::build_query(0x4242, "example.com", 1);
        let reply = relay(&query, &[dead, address], Transport::Udp).await.unwrap();
        assert_eq!(&reply[..2], &[0x42, 0x42]);
        assert_eq!(reply[2] & 0x80, 0x80);
        assert_eq!(reply.len(), query.len());
        assert_eq!(relay(&query, &[], Transport::Udp).await, None);
    }

    #[tokio::test]
    async fn tcp_relay_frames_both_ways() {
        let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = upstream.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = upstream.accept().await.unwrap();
            let len = stream.read_u16().await.unwrap();
            let mut query = vec![0u8; usize::from(len)];
            stream.read_exact(&mut query).await.unwrap();
            query[2] |= 0x80;
            stream.write_u16(len).await.unwrap();
            stream.write_all(&query).await.unwrap();
        });
        let query = crate::network::dns::wire::build_query(7, "example.com", 1);
        let reply = relay(&query, &[address], Transport::Tcp).await.unwrap();
        assert_eq!(reply.len(), query.len());
        assert_eq!(reply[2] & 0x80, 0x80);
    }
}

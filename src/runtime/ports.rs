//! Published ports (`-p`): parsing the flag into [`PortRequest`]s (pure),
//! picking ephemeral host ports and checking for conflicts (at create
//! time, before anything exists), and the monitor's forwarding proxy
//! ([`proxy::Proxy`]).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};

use super::config::{Protocol, PublishedPort};

pub mod proxy;

#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// `-p SPEC` that does not parse.
    #[error("invalid -p {spec:?}: {why}")]
    Invalid { spec: String, why: String },
    /// A host port somebody else holds.
    #[error("port {port}/{protocol} is already in use on {ip} {owner}")]
    InUse {
        ip: IpAddr,
        port: u16,
        protocol: Protocol,
        owner: String,
    },
    /// Any other failure to bind a host port.
    #[error("binding {ip}:{port}/{protocol}")]
    Bind {
        ip: IpAddr,
        port: u16,
        protocol: Protocol,
        #[source]
        source: std::io::Error,
    },
}

/// One `-p` entry before its host port is known (`None`: ephemeral).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRequest {
    pub host_ip: IpAddr,
    pub host_port: Option<u16>,
    pub container_port: u16,
    pub protocol: Protocol,
}

/// Parses `[HOST_IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp]` (ranges expand
/// pairwise, as docker does) with the compose syntax's parser.
pub fn parse(spec: &str) -> Result<Vec<PortRequest>, PortError> {
    let invalid = |why: String| PortError::Invalid {
        spec: spec.to_string(),
        why,
    };
    let entries = crate::spec::syntax::ports::parse_port(spec).map_err(|e| invalid(e.to_string()))?;
    let mut requests = Vec::new();
    for entry in entries {
        let protocol = match entry.protocol.as_str() {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            other => return Err(invalid(format!("protocol {other:?} is not supported (tcp or udp)"))),
        };
        let host_ip = match entry.host_ip.as_deref() {
            None | Some("") => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Some(ip) => ip
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .map_err(|_| invalid(format!("{ip:?} is not an IP address")))?,
        };
        let host_port = match entry.published.as_deref() {
            None | Some("") => None,
            Some(p) => Some(p.parse::<u16>().map_err(|_| {
                invalid(format!(
                    "host port {p:?}: a host port range needs one per container port"
                ))
            })?),
        };
        requests.push(PortRequest {
            host_ip,
            host_port,
            container_port: entry.target,
            protocol,
        });
    }
    Ok(requests)
}

/// `80/tcp -> 0.0.0.0:8080`, as `docker port` prints it.
pub fn describe(port: &PublishedPort) -> String {
    format!("{}/{} -> {}", port.container_port, port.protocol, host_address(port))
}

/// `0.0.0.0:8080` (`[::]:8080` for IPv6).
pub fn host_address(port: &PublishedPort) -> String {
    SocketAddr::new(port.host_ip, port.host_port).to_string()
}

/// Whether two published ports would contend for the same host socket.
pub fn overlaps(a: &PublishedPort, b: &PublishedPort) -> bool {
    a.protocol == b.protocol
        && a.host_port == b.host_port
        && (a.host_ip == b.host_ip || a.host_ip.is_unspecified() || b.host_ip.is_unspecified())
}

/// A bound host socket, held while checking so that two requests for the
/// same port in one container conflict with each other too.
pub enum HostSocket {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

impl HostSocket {
    pub fn bind(ip: IpAddr, port: u16, protocol: Protocol) -> std::io::Result<HostSocket> {
        let addr = SocketAddr::new(ip, port);
        Ok(match protocol {
            Protocol::Tcp => HostSocket::Tcp(TcpListener::bind(addr)?),
            Protocol::Udp => HostSocket::Udp(UdpSocket::bind(addr)?),
        })
    }

    fn port(&self) -> std::io::Result<u16> {
        Ok(match self {
            HostSocket::Tcp(s) => s.local_addr()?.port(),
            HostSocket::Udp(s) => s.local_addr()?.port(),
        })
    }
}

/// `-p` specs of a new container: parsed, checked free on the host (naming
/// the berth container that publishes a taken one) and with ephemeral host
/// ports picked, before anything is created.
pub fn publish(root: &crate::store::Root, specs: &[String]) -> Result<Vec<PublishedPort>, PortError> {
    if specs.is_empty() {
        return Ok(Vec::new());
    }
    let mut requests = Vec::new();
    for spec in specs {
        requests.extend(parse(spec)?);
    }
    // A listing that fails only costs the owner's name in the message.
    let others = super::container::list(root).unwrap_or_default();
    let owner_of = |wanted: &PublishedPort| {
        others
            .iter()
            .filter(|c| {
                c.state()
                    .is_ok_and(|s| matches!(s.status, super::config::Status::Running | super::config::Status::Paused))
            })
            .find(|c| c.config.ports.iter().any(|p| overlaps(p, wanted)))
            .map(|c| c.config.name.clone())
    };
    resolve(&requests, owner_of)
}

/// Binds every requested host port (port 0 for an ephemeral one, whose
/// number is then recorded). Fails on the first port in use, naming its
/// owner: `owner_of` says which other container publishes it, if any.
/// The sockets are closed on return; the monitor binds them again at start.
pub fn resolve(
    requests: &[PortRequest],
    owner_of: impl Fn(&PublishedPort) -> Option<String>,
) -> Result<Vec<PublishedPort>, PortError> {
    let mut held = Vec::new();
    let mut ports = Vec::new();
    for r in requests {
        let wanted = r.host_port.unwrap_or(0);
        let socket = HostSocket::bind(r.host_ip, wanted, r.protocol).map_err(|source| {
            let port = PublishedPort {
                host_ip: r.host_ip,
                host_port: wanted,
                container_port: r.container_port,
                protocol: r.protocol,
            };
            bind_error(&port, source, &owner_of)
        })?;
        let host_port = socket.port().map_err(|source| PortError::Bind {
            ip: r.host_ip,
            port: wanted,
            protocol: r.protocol,
            source,
        })?;
        held.push(socket);
        ports.push(PublishedPort {
            host_ip: r.host_ip,
            host_port,
            container_port: r.container_port,
            protocol: r.protocol,
        });
    }
    Ok(ports)
}

/// The error for a failed bind of `port`: [`PortError::InUse`] with the
/// owner when the address is taken.
pub fn bind_error(
    port: &PublishedPort,
    source: std::io::Error,
    owner_of: impl Fn(&PublishedPort) -> Option<String>,
) -> PortError {
    if source.kind() != std::io::ErrorKind::AddrInUse {
        return PortError::Bind {
            ip: port.host_ip,
            port: port.host_port,
            protocol: port.protocol,
            source,
        };
    }
    let owner = match owner_of(port) {
        Some(container) => format!("by container {container:?}"),
        None => match owning_pid(port) {
            Some(pid) => format!("by another process (pid {pid})"),
            None => "by another process".to_string(),
        },
    };
    PortError::InUse {
        ip: port.host_ip,
        port: port.host_port,
        protocol: port.protocol,
        owner,
    }
}

/// The pid holding `port`'s host socket: its inode from /proc/net/{tcp,udp}
/// (and the `6` variants), then the process with `socket:[inode]` among its
/// fds. Best effort: `None` when it cannot be seen (another netns, a race).
fn owning_pid(port: &PublishedPort) -> Option<i32> {
    let tables: &[&str] = match port.protocol {
        Protocol::Tcp => &["/proc/net/tcp", "/proc/net/tcp6"],
        Protocol::Udp => &["/proc/net/udp", "/proc/net/udp6"],
    };
    let inode = tables
        .iter()
        .filter_map(|t| std::fs::read_to_string(t).ok())
        .find_map(|text| socket_inode(&text, port.host_port, port.protocol))?;
    let link = format!("socket:[{inode}]");
    for proc_entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = proc_entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(proc_entry.path().join("fd")) else {
            continue;
        };
        if fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == link.as_str()))
        {
            return Some(pid);
        }
    }
    None
}

/// The inode of the listening (TCP) or bound (UDP) socket on local `port`
/// in a /proc/net table. Columns: sl local_address rem_address st … inode.
fn socket_inode(table: &str, port: u16, protocol: Protocol) -> Option<u64> {
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let local_port = cols.get(1)?.rsplit_once(':')?.1;
        let listening = match protocol {
            Protocol::Tcp => *cols.get(3)? == "0A",
            Protocol::Udp => *cols.get(3)? == "07",
        };
        (listening && u16::from_str_radix(local_port, 16).ok()? == port)
            .then(|| cols.get(9)?.parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn req(ip: &str, host: Option<u16>, container: u16, protocol: Protocol) -> PortRequest {
        PortRequest {
            host_ip: ip.parse().unwrap(),
            host_port: host,
            container_port: container,
            protocol,
        }
    }

    #[test]
    fn parses_docker_forms() {
        assert_eq!(parse("80").unwrap(), vec![req("0.0.0.0", None, 80, Protocol::Tcp)]);
        assert_eq!(
            parse("8080:80").unwrap(),
            vec![req("0.0.0.0", Some(8080), 80, Protocol::Tcp)]
        );
        assert_eq!(
            parse("127.0.0.1:8080:80/udp").unwrap(),
            vec![req("127.0.0.1", Some(8080), 80, Protocol::Udp)]
        );
        assert_eq!(
            parse("127.0.0.1::80").unwrap(),
            vec![req("127.0.0.1", None, 80, Protocol::Tcp)]
        );
        assert_eq!(
            parse("[::1]:81:80").unwrap(),
            vec![req("::1", Some(81), 80, Protocol::Tcp)]
        );
        assert_eq!(parse("8000-8001:80-81").unwrap().len(), 2);
    }

    #[test]
    fn rejects_what_cannot_be_published() {
        assert!(parse("80/sctp").is_err());
        assert!(parse("8000-8010:80").is_err());
        assert!(parse("nope:80:80").is_err());
        assert!(parse("x").is_err());
    }

    #[test]
    fn describes_like_docker() {
        let p = PublishedPort {
            host_ip: "0.0.0.0".parse().unwrap(),
            host_port: 8080,
            container_port: 80,
            protocol: Protocol::Tcp,
        };
        assert_eq!(describe(&p), "80/tcp -> 0.0.0.0:8080");
        let mut q = p;
        q.host_ip = "127.0.0.1".parse().unwrap();
        assert!(overlaps(&p, &q));
        q.protocol = Protocol::Udp;
        assert!(!overlaps(&p, &q));
    }

    #[test]
    fn finds_listening_inodes() {
        let table =
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1\n\
   1: 0100007F:1F91 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 77 1\n";
        assert_eq!(socket_inode(table, 8080, Protocol::Tcp), Some(4242));
        assert_eq!(socket_inode(table, 8081, Protocol::Tcp), None);
    }

    #[test]
    fn resolve_picks_ephemeral_ports_and_reports_conflicts() {
        let ports = resolve(&[req("127.0.0.1", None, 80, Protocol::Tcp)], |_| None).unwrap();
        assert_ne!(ports[0].host_port, 0);
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let err = resolve(&[req("127.0.0.1", Some(port), 80, Protocol::Tcp)], |_| {
            Some("web".into())
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("port {port}/tcp is already in use on 127.0.0.1 by container \"web\"")
        );
        let err = resolve(&[req("127.0.0.1", Some(port), 80, Protocol::Tcp)], |_| None).unwrap_err();
        assert!(err.to_string().contains("by another process"), "{err}");
    }
}

//! The host's IPv4 routes, which automatic subnets must avoid.

use std::path::{Path, PathBuf};

use thiserror::Error;

use super::cidr::Ipv4Cidr;

/// Where the kernel lists the main routing table (see proc(5)).
pub const PROC_NET_ROUTE: &str = "/proc/net/route";

/// `RTF_UP` from `<linux/route.h>`: the route is usable.
const RTF_UP: u32 = 0x0001;

#[derive(Debug, Error)]
pub enum RouteError {
    #[error("reading the host's routes from {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}, line {line}: {reason}")]
    Malformed { path: PathBuf, line: usize, reason: String },
}

/// The destinations of the host's usable routes, read from
/// `/proc/net/route`.
pub fn host_routes() -> Result<Vec<Ipv4Cidr>, RouteError> {
    let path = Path::new(PROC_NET_ROUTE);
    let text = std::fs::read_to_string(path).map_err(|source| RouteError::Read {
        path: path.into(),
        source,
    })?;
    parse_proc_net_route(path, &text)
}

/// Parses the text of `/proc/net/route`: a header line, then one route per
/// line with tab-separated `Iface Destination Gateway Flags RefCnt Use Metric
/// Mask MTU Window IRTT`. The default route (mask 0) and routes that are not
/// up are left out: neither says which addresses are in use locally.
///
/// The kernel prints `Destination` and `Mask`, which are in network byte
/// order, with `%08X` as native integers (`fib_route_seq_show()` in
/// net/ipv4/fib_trie.c), so the bytes are recovered in native order.
pub fn parse_proc_net_route(path: &Path, text: &str) -> Result<Vec<Ipv4Cidr>, RouteError> {
    let mut routes = Vec::new();
    for (index, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let malformed = |reason: String| RouteError::Malformed {
            path: path.into(),
            line: index + 1,
            reason,
        };
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_iface, destination, _gateway, flags, _refcnt, _use, _metric, mask, ..] = fields.as_slice() else {
            return Err(malformed(format!("expected at least 8 fields, found {}", fields.len())));
        };
        let hex = |name: &str, value: &str| {
            u32::from_str_radix(value, 16).map_err(|_| malformed(format!("{name} {value:?} is not hexadecimal")))
        };
        let destination = std::net::Ipv4Addr::from(hex("destination", destination)?.to_ne_bytes());
        let mask = u32::from_be_bytes(hex("mask", mask)?.to_ne_bytes());
        let flags = hex("flags", flags)?;
        if mask.leading_ones() + mask.trailing_zeros() != 32 {
            return Err(malformed(format!("mask {mask:#010x} is not contiguous")));
        }
        if flags & RTF_UP == 0 || mask == 0 {
            continue;
        }
        // leading_ones() of a u32 is at most 32, so it fits a u8.
        let prefix = mask.leading_ones() as u8;
        if let Some(route) = Ipv4Cidr::new(destination, prefix) {
            routes.push(route);
        }
    }
    Ok(routes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// From a little-endian host: a default route via 192.168.1.1, the LAN,
    /// docker0, a VPN route that is down, and a host route.
    const FIXTURE: &str = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
tun0\t0000000A\t00000000\t0000\t0\t0\t0\t000000FF\t0\t0\t0
eth0\t0A0A0A0A\t0101A8C0\t0007\t0\t0\t0\tFFFFFFFF\t0\t0\t0
";

    #[test]
    #[cfg(target_endian = "little")]
    fn parses_the_fixture() {
        let routes = parse_proc_net_route(Path::new("fixture"), FIXTURE).unwrap();
        let want: Vec<Ipv4Cidr> = ["192.168.1.0/24", "172.17.0.0/16", "10.10.10.10/32"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(routes, want);
    }

    #[test]
    fn malformed_lines_are_reported_with_their_number() {
        let text = "header\neth0\tZZ\t0\t0001\t0\t0\t0\t00FFFFFF\n";
        let err = parse_proc_net_route(Path::new("f"), text).unwrap_err();
        assert!(matches!(err, RouteError::Malformed { line: 2, .. }), "{err}");
        let err = parse_proc_net_route(Path::new("f"), "header\neth0\t0\n").unwrap_err();
        assert!(err.to_string().contains("expected at least 8 fields"), "{err}");
        let err = parse_proc_net_route(Path::new("f"), "header\neth0\t0\t0\t1\t0\t0\t0\t00FF00FF\n").unwrap_err();
        assert!(err.to_string().contains("not contiguous"), "{err}");
        assert_eq!(parse_proc_net_route(Path::new("f"), "header\n\n").unwrap(), []);
    }

    #[test]
    fn reads_this_hosts_routes() {
        // Whatever the host has, it parses (containers may have no routes).
        if Path::new(PROC_NET_ROUTE).exists() {
            host_routes().unwrap();
        }
    }
}

//! Where the engine's DNS server sends the queries it does not answer:
//! the host's resolvers from /etc/resolv.conf, or the list in
//! `BERTH_DNS_UPSTREAM` (comma-separated `IP` or `IP:PORT`, `[IPv6]:PORT`)
//! when set, which replaces them (tests point it at a resolver of their
//! own; a host whose resolv.conf is not what the engine should use can
//! too). Pure parsing; the caller reads the file and the variable.
//!
//! Loopback resolvers (systemd-resolved's 127.0.0.53) are kept: the
//! forwarding happens from the engine in the host's namespace, where they
//! answer, unlike from inside a container.

use std::net::{IpAddr, SocketAddr};

use thiserror::Error;

/// The variable that replaces the host's resolvers.
pub const UPSTREAM_ENV: &str = "BERTH_DNS_UPSTREAM";
const DNS_PORT: u16 = 53;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UpstreamError {
    #[error("DNS server {value:?} is neither an IP address nor IP:PORT")]
    Invalid { value: String },
}

/// `IP`, `IP:PORT` or `[IPv6]:PORT`; port 53 when none is given.
pub fn parse_server(value: &str) -> Result<SocketAddr, UpstreamError> {
    let value = value.trim();
    if let Ok(ip) = value.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, DNS_PORT));
    }
    value.parse::<SocketAddr>().map_err(|_| UpstreamError::Invalid {
        value: value.to_string(),
    })
}

/// `BERTH_DNS_UPSTREAM`'s value: servers separated by commas (blanks
/// around them ignored).
pub fn parse_list(value: &str) -> Result<Vec<SocketAddr>, UpstreamError> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(parse_server)
        .collect()
}

/// The `nameserver` lines of a resolv.conf, in order; an IPv6 scope
/// (`fe80::1%eth0`) is dropped, since the address alone cannot carry it.
pub fn nameservers(resolv_conf: &str) -> Vec<SocketAddr> {
    directive(resolv_conf, "nameserver")
        .filter_map(|v| v.split('%').next()?.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, DNS_PORT))
        .collect()
}

/// The domains of the last `search` (or `domain`) line, as the libc
/// resolvers read it: a later line replaces an earlier one.
pub fn search_domains(resolv_conf: &str) -> Vec<String> {
    resolv_conf
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            matches!(words.next(), Some("search" | "domain")).then(|| words.map(str::to_string).collect())
        })
        .next_back()
        .unwrap_or_default()
}

fn directive<'a>(text: &'a str, keyword: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    text.lines().filter_map(move |l| {
        let mut words = l.split_whitespace();
        (words.next() == Some(keyword)).then(|| words.next()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_with_and_without_ports() {
        assert_eq!(parse_server("10.0.0.2").unwrap(), "10.0.0.2:53".parse().unwrap());
        assert_eq!(
            parse_server(" 127.0.0.1:5353 ").unwrap(),
            "127.0.0.1:5353".parse().unwrap()
        );
        assert_eq!(parse_server("::1").unwrap(), "[::1]:53".parse().unwrap());
        assert_eq!(parse_server("[::1]:54").unwrap(), "[::1]:54".parse().unwrap());
        assert_eq!(
            parse_server("dns.example"),
            Err(UpstreamError::Invalid {
                value: "dns.example".into()
            })
        );
    }

    #[test]
    fn the_variable_is_a_comma_list() {
        let list = parse_list("127.0.0.1:5300, 9.9.9.9,,").unwrap();
        assert_eq!(
            list,
            vec!["127.0.0.1:5300".parse().unwrap(), "9.9.9.9:53".parse().unwrap()]
        );
        assert!(parse_list("1.1.1.1,nope").is_err());
        assert!(parse_list("").unwrap().is_empty());
    }

    #[test]
    fn resolv_conf_nameservers_and_search() {
        let text = "# generated\nnameserver 127.0.0.53\nnameserver fe80::1%eth0\nnameserver bogus\n\
                    domain old.example\nsearch corp.example lab.example\noptions edns0\n";
        assert_eq!(
            nameservers(text),
            vec!["127.0.0.53:53".parse().unwrap(), "[fe80::1]:53".parse().unwrap()]
        );
        assert_eq!(search_domains(text), vec!["corp.example", "lab.example"]);
        assert!(search_domains("nameserver 1.1.1.1\n").is_empty());
        assert_eq!(search_domains("search a.test\ndomain b.test\n"), vec!["b.test"]);
    }
}

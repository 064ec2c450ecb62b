//! The resolution policy of the engine's DNS server, as a plain value
//! (after aardvark-dns's backend): a [`Snapshot`] of the networks and the
//! live containers on them, asked "what is the answer to this name, for
//! this client, on this network?". No I/O: the server builds snapshots and
//! speaks the wire format around it.
//!
//! The rules:
//! - A client sees the names of containers on the networks it is on
//!   itself: container name, hostname and network aliases (a compose
//!   service's name is an alias of each of its replicas). The network the
//!   query arrived on is searched first, then the client's other networks.
//! - Names match without regard to case, with or without a trailing dot,
//!   and with a search domain (the client's `dns_search`, else the host's)
//!   stripped, since a stub resolver tries `web.<search>` before `web`.
//! - A name with several addresses (replicas) answers all of them, rotated
//!   by the caller's counter, so successive queries start with each in
//!   turn (round robin).
//! - A known name answers A queries; AAAA and other types get an empty
//!   NOERROR answer (no IPv6 here), never a forward that would leak it.
//! - A client's own `links` are names only it resolves (docker's link
//!   aliases on user-defined networks): `alias` answers what `target`
//!   answers for it — on the networks it shares with the target, from the
//!   live containers, so a recreated target is followed at once. A link
//!   wins over a peer's name, as in docker's resolver; a link whose
//!   target is down or on no shared network falls through to the peers'
//!   names (and then to NXDOMAIN).
//! - A client's own `extra_hosts` answer as its hosts file does: glibc
//!   without an nsswitch.conf (busybox, distroless) asks DNS before
//!   /etc/hosts and takes an upstream's NXDOMAIN as final.
//! - `localhost` and names under it are 127.0.0.1 (RFC 6761 §6.3), for
//!   the same resolvers: an NXDOMAIN would hide the hosts file's line.
//! - Reverse (PTR) lookups of a peer's address answer its container name.
//! - An unknown name of one label is NXDOMAIN: no upstream knows container
//!   names, and sending them out would leak them. Other unknown names are
//!   forwarded, unless every network of the client is internal (no egress:
//!   NXDOMAIN). The upstreams are the client's own `dns` servers, else the
//!   engine's (the host's resolvers).
//! - A query from an address that is no container of the root is answered
//!   as from a client on the listener's network when it comes from inside
//!   that network's subnet (a container too new for this snapshot, or the
//!   host itself), and REFUSED otherwise.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};

use super::upstream;
use super::wire::{TYPE_A, TYPE_ANY, TYPE_PTR};
use crate::network::cidr::Ipv4Cidr;
use crate::network::store::NetworkRecord;
use crate::runtime::config::ContainerConfig;

/// What the server should reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A records, in the order to send them.
    Addresses(Vec<Ipv4Addr>),
    /// A reverse lookup's name.
    Pointer(String),
    /// The name is known but has no record of the asked type.
    NoData,
    NxDomain,
    Refused,
    /// Not ours: relay to these servers, in order.
    Forward(Vec<SocketAddr>),
}

/// A network as the resolver needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkInfo {
    pub name: String,
    pub subnet: Ipv4Cidr,
    pub internal: bool,
}

impl From<&NetworkRecord> for NetworkInfo {
    fn from(record: &NetworkRecord) -> Self {
        NetworkInfo {
            name: record.name.clone(),
            subnet: record.addressing.subnet,
            internal: record.internal,
        }
    }
}

/// The host's resolver settings: where forwarded queries go, and the
/// search domains stripped from names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostResolvers {
    pub upstreams: Vec<SocketAddr>,
    pub search: Vec<String>,
}

/// A container's address on one network and the names it has there.
#[derive(Debug, Clone)]
struct Endpoint {
    container: String,
    /// Lower case.
    names: Vec<String>,
    address: Ipv4Addr,
}

/// A container as a client: its networks in attachment order, its own
/// upstreams (`dns`) and search domains (`dns_search`).
#[derive(Debug, Clone)]
struct Client {
    networks: Vec<String>,
    /// `extra_hosts`, names in lower case.
    extra_hosts: Vec<(String, Ipv4Addr)>,
    /// `links`: alias → target, in lower case.
    links: Vec<(String, String)>,
    upstreams: Vec<SocketAddr>,
    search: Vec<String>,
}

/// The networks and live containers at one instant.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    networks: BTreeMap<String, NetworkInfo>,
    /// Per network, sorted by address.
    endpoints: BTreeMap<String, Vec<Endpoint>>,
    clients: HashMap<Ipv4Addr, Client>,
    host: HostResolvers,
}

fn normalize(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

impl Snapshot {
    /// From the root's networks and its live (running or paused)
    /// containers.
    pub fn build(networks: &[NetworkInfo], live: &[&ContainerConfig], host: HostResolvers) -> Snapshot {
        let mut endpoints: BTreeMap<String, Vec<Endpoint>> = BTreeMap::new();
        let mut clients = HashMap::new();
        for config in live {
            for attachment in &config.networks {
                let mut names: Vec<String> = Vec::new();
                for name in [&config.name, &config.hostname].into_iter().chain(&attachment.aliases) {
                    let name = normalize(name);
                    if !name.is_empty() && !names.contains(&name) {
                        names.push(name);
                    }
                }
                endpoints.entry(attachment.network.clone()).or_default().push(Endpoint {
                    container: config.name.clone(),
                    names,
                    address: attachment.address,
                });
                clients.insert(
                    attachment.address,
                    Client {
                        networks: config.networks.iter().map(|a| a.network.clone()).collect(),
                        extra_hosts: config
                            .extra_hosts
                            .iter()
                            .map(|(name, address)| (normalize(name), *address))
                            .collect(),
                        links: config
                            .links
                            .iter()
                            .map(|l| (normalize(&l.alias), normalize(&l.target)))
                            .collect(),
                        upstreams: config
                            .dns
                            .iter()
                            .filter_map(|s| upstream::parse_server(s).ok())
                            .collect(),
                        search: config.dns_search.iter().map(|s| normalize(s)).collect(),
                    },
                );
            }
        }
        for list in endpoints.values_mut() {
            list.sort_by_key(|e| e.address);
        }
        let host = HostResolvers {
            upstreams: host.upstreams,
            search: host.search.iter().map(|s| normalize(s)).collect(),
        };
        Snapshot {
            networks: networks.iter().map(|n| (n.name.clone(), n.clone())).collect(),
            endpoints,
            clients,
            host,
        }
    }

    /// Whether `address` is a container of this snapshot.
    pub fn knows_client(&self, address: Ipv4Addr) -> bool {
        self.clients.contains_key(&address)
    }

    /// The networks with their subnets, for the listeners.
    pub fn networks(&self) -> impl Iterator<Item = &NetworkInfo> {
        self.networks.values()
    }

    /// The answer to `qname`/`qtype` from `client`, received on `network`'s
    /// listener. `rotation` picks which of several addresses comes first.
    pub fn resolve(&self, network: &str, client: Ipv4Addr, qname: &str, qtype: u16, rotation: usize) -> Answer {
        let (networks, upstreams, client_search, extra_hosts, links) = match self.clients.get(&client) {
            Some(c) => {
                // The listener's network first, then the client's others.
                let mut order: Vec<&str> = c
                    .networks
                    .iter()
                    .map(String::as_str)
                    .filter(|n| *n == network)
                    .collect();
                order.extend(c.networks.iter().map(String::as_str).filter(|n| *n != network));
                (
                    order,
                    &c.upstreams,
                    c.search.as_slice(),
                    c.extra_hosts.as_slice(),
                    c.links.as_slice(),
                )
            }
            None => match self.networks.get(network) {
                Some(info) if info.subnet.contains(client) => (
                    vec![network],
                    &self.host.upstreams,
                    [].as_slice(),
                    [].as_slice(),
                    [].as_slice(),
                ),
                _ => return Answer::Refused,
            },
        };
        let name = normalize(qname);
        let mut extra: Vec<Ipv4Addr> = extra_hosts
            .iter()
            .filter(|(host, _)| *host == name)
            .map(|(_, address)| *address)
            .collect();
        if name == "localhost" || name.ends_with(".localhost") {
            extra.push(Ipv4Addr::LOCALHOST);
        }
        if !extra.is_empty() && qtype != TYPE_PTR {
            if qtype != TYPE_A && qtype != TYPE_ANY {
                return Answer::NoData;
            }
            return Answer::Addresses(extra);
        }
        if qtype == TYPE_PTR {
            if let Some(answer) = self.reverse(&networks, &name) {
                return answer;
            }
        } else {
            let search = if client_search.is_empty() {
                self.host.search.as_slice()
            } else {
                client_search
            };
            let found = self
                .linked(links, &networks, &name, search)
                .or_else(|| self.lookup(&networks, &name, search));
            if let Some(mut addresses) = found {
                if qtype != TYPE_A && qtype != TYPE_ANY {
                    return Answer::NoData;
                }
                let len = addresses.len();
                addresses.rotate_left(rotation % len);
                return Answer::Addresses(addresses);
            }
        }
        let egress = networks
            .iter()
            .any(|n| self.networks.get(*n).is_some_and(|info| !info.internal));
        if !name.contains('.') || !egress {
            return Answer::NxDomain;
        }
        let upstreams = if upstreams.is_empty() {
            &self.host.upstreams
        } else {
            upstreams
        };
        // An empty list (no resolver anywhere) becomes the server's SERVFAIL.
        Answer::Forward(upstreams.clone())
    }

    /// The addresses of the target of the client's link `name` (or `name`
    /// less a search domain) on its networks; `None` when no link has that
    /// alias or its target is not found.
    fn linked(
        &self,
        links: &[(String, String)],
        networks: &[&str],
        name: &str,
        search: &[String],
    ) -> Option<Vec<Ipv4Addr>> {
        if links.is_empty() {
            return None;
        }
        candidates(name, search).into_iter().find_map(|candidate| {
            links
                .iter()
                .filter(|(alias, _)| alias == candidate)
                .find_map(|(_, target)| self.lookup(networks, target, &[]))
        })
    }

    /// The addresses of `name` (or `name` less a search domain) on the
    /// first of `networks` that has it; `None` when no network does.
    fn lookup(&self, networks: &[&str], name: &str, search: &[String]) -> Option<Vec<Ipv4Addr>> {
        for candidate in candidates(name, search) {
            for network in networks {
                let found: Vec<Ipv4Addr> = self
                    .endpoints
                    .get(*network)
                    .into_iter()
                    .flatten()
                    .filter(|e| e.names.iter().any(|n| n == candidate))
                    .map(|e| e.address)
                    .collect();
                if !found.is_empty() {
                    return Some(found);
                }
            }
        }
        None
    }

    /// A PTR query for an address on one of `networks`: the container's
    /// name, or NXDOMAIN for a free address of such a subnet (no upstream
    /// knows these). `None` for anything else, which is forwarded.
    fn reverse(&self, networks: &[&str], name: &str) -> Option<Answer> {
        let address = reverse_address(name)?;
        for network in networks {
            if let Some(e) = self
                .endpoints
                .get(*network)
                .into_iter()
                .flatten()
                .find(|e| e.address == address)
            {
                return Some(Answer::Pointer(e.container.clone()));
            }
        }
        networks
            .iter()
            .any(|n| self.networks.get(*n).is_some_and(|info| info.subnet.contains(address)))
            .then_some(Answer::NxDomain)
    }
}

/// `name`, then `name` less each search domain it ends with.
fn candidates<'a>(name: &'a str, search: &[String]) -> Vec<&'a str> {
    let mut candidates = vec![name];
    candidates.extend(
        search
            .iter()
            .filter_map(|domain| name.strip_suffix(domain.as_str())?.strip_suffix('.'))
            .filter(|short| !short.is_empty()),
    );
    candidates
}

/// `4.3.2.1.in-addr.arpa` → 1.2.3.4.
fn reverse_address(name: &str) -> Option<Ipv4Addr> {
    let octets: Vec<u8> = name
        .strip_suffix(".in-addr.arpa")?
        .split('.')
        .map(|o| o.parse().ok())
        .collect::<Option<_>>()?;
    match octets[..] {
        [d, c, b, a] => Some(Ipv4Addr::new(a, b, c, d)),
        _ => None,
    }
}

#[cfg(test)]
#[path = "backend_tests.rs"]
mod tests;

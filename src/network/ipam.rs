//! IP address management for bridge networks: which subnet a new network
//! gets, and which address a container gets on it.
//!
//! Pure decisions over data: the host's routes, the other networks and the
//! current allocations are inputs, so every rule is unit-tested without root.
//! The store (`super::store`) persists the results under a lock.
//!
//! Like podman's libnetwork (runtime-reference B.4), subnets come from pools
//! walked in steps of the subnet size, skipping any that intersect something
//! in use; unlike it, addresses are handed out lowest-free-first (docker's
//! behaviour), so a restarted project tends to get the same addresses back.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::cidr::{CidrError, Ipv4Cidr};
use crate::spec::model::resources::{IpamPool, Network};

mod pool;
#[cfg(test)]
mod tests;

pub use pool::{SubnetPolicy, SubnetPool};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IpamError {
    #[error("network {network:?}: ipam {field}: {source}")]
    Cidr {
        network: String,
        field: &'static str,
        #[source]
        source: CidrError,
    },
    #[error("network {network:?}: {field} {value:?} is not an IPv4 address")]
    BadAddress {
        network: String,
        field: String,
        value: String,
        #[source]
        source: std::net::AddrParseError,
    },
    #[error("network {network:?}: IPv6 is not supported yet ({setting}); remove it to get an IPv4-only network")]
    Ipv6Unsupported { network: String, setting: String },
    #[error("network {network:?} sets enable_ipv4: false, but berth networks are IPv4 only")]
    Ipv4Disabled { network: String },
    #[error("network {network:?}: ipam driver {driver:?} is not supported; only \"default\" is")]
    UnsupportedDriver { network: String, driver: String },
    #[error("network {network:?} lists {count} IPv4 subnets in ipam.config; berth supports one per network")]
    MultipleSubnets { network: String, count: usize },
    #[error("network {network:?}: ipam.config sets {field} without a subnet; add `subnet:`")]
    MissingSubnet { network: String, field: &'static str },
    #[error("network {network:?}: subnet {subnet} is too small; use a /30 or larger")]
    SubnetTooSmall { network: String, subnet: Ipv4Cidr },
    #[error("subnet {subnet} of network {network:?} overlaps subnet {other_subnet} of network {other:?}")]
    SubnetOverlap {
        network: String,
        subnet: Ipv4Cidr,
        other: String,
        other_subnet: Ipv4Cidr,
    },
    #[error("subnet {subnet} of network {network:?} overlaps the host's route to {route}; choose another subnet")]
    HostRouteOverlap {
        network: String,
        subnet: Ipv4Cidr,
        route: Ipv4Cidr,
    },
    #[error("network {network:?}: gateway {gateway} is not a host address of subnet {subnet}")]
    GatewayOutsideSubnet {
        network: String,
        gateway: Ipv4Addr,
        subnet: Ipv4Cidr,
    },
    #[error("network {network:?}: ip_range {ip_range} is not inside subnet {subnet}")]
    RangeOutsideSubnet {
        network: String,
        ip_range: Ipv4Cidr,
        subnet: Ipv4Cidr,
    },
    #[error("network {network:?}: aux address {name:?} ({address}) is not inside subnet {subnet}")]
    AuxOutsideSubnet {
        network: String,
        name: String,
        address: Ipv4Addr,
        subnet: Ipv4Cidr,
    },
    #[error("no free subnet left in the address pools for network {network:?}; remove unused networks or set ipam.config[].subnet")]
    PoolsExhausted { network: String },
    #[error("invalid subnet pool {base} split into /{prefix}: the size must be from /{} to /30", base.prefix())]
    InvalidPool { base: Ipv4Cidr, prefix: u8 },
    #[error("address {address} is outside subnet {subnet} of network {network:?}")]
    AddressOutsideSubnet {
        network: String,
        address: Ipv4Addr,
        subnet: Ipv4Cidr,
    },
    #[error("address {address} is {role} of network {network:?}")]
    AddressReserved {
        network: String,
        address: Ipv4Addr,
        role: String,
    },
    #[error("address {address} is already used by container {container:?} on network {network:?}")]
    AddressInUse {
        network: String,
        address: Ipv4Addr,
        container: String,
    },
    #[error("no free address left in {range} on network {network:?}")]
    AddressesExhausted { network: String, range: Ipv4Cidr },
}

/// A subnet already taken by a berth network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsedSubnet {
    pub network: String,
    pub subnet: Ipv4Cidr,
}

/// The addressing of one network, settled at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetConfig {
    pub subnet: Ipv4Cidr,
    pub gateway: Ipv4Addr,
    /// Dynamic addresses come from here only; static ones may be anywhere
    /// in the subnet (as with docker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<Ipv4Cidr>,
    /// Addresses used by hosts outside berth's control, never handed out.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aux_addresses: BTreeMap<String, Ipv4Addr>,
}

/// Who holds an address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub container_id: String,
    pub container_name: String,
}

/// The addresses handed out on one network.
pub type Allocations = BTreeMap<Ipv4Addr, Owner>;

/// Settles the addressing of network `network` from its compose definition:
/// the requested subnet, validated, or the first free one from the pools.
///
/// `host_routes` are the host's routes (without the default route);
/// `used` the subnets of every other berth network.
pub fn plan_subnet(
    network: &str,
    spec: &Network,
    policy: &SubnetPolicy,
    host_routes: &[Ipv4Cidr],
    used: &[UsedSubnet],
) -> Result<SubnetConfig, IpamError> {
    reject_ipv6(network, spec)?;
    if spec.enable_ipv4 == Some(false) {
        return Err(IpamError::Ipv4Disabled {
            network: network.into(),
        });
    }
    let pools = match &spec.ipam {
        Some(ipam) => {
            if let Some(driver) = ipam.driver.as_deref().filter(|d| *d != "default") {
                return Err(IpamError::UnsupportedDriver {
                    network: network.into(),
                    driver: driver.into(),
                });
            }
            ipam.config.as_slice()
        }
        None => &[],
    };
    match pools {
        [] => auto_subnet(network, policy, host_routes, used),
        [pool] if pool.subnet.is_none() => {
            let field = if pool.gateway.is_some() {
                Some("gateway")
            } else if pool.ip_range.is_some() {
                Some("ip_range")
            } else if !pool.aux_addresses.is_empty() {
                Some("aux_addresses")
            } else {
                None
            };
            match field {
                Some(field) => Err(IpamError::MissingSubnet {
                    network: network.into(),
                    field,
                }),
                None => auto_subnet(network, policy, host_routes, used),
            }
        }
        [pool] => requested_subnet(network, pool, host_routes, used),
        _ => Err(IpamError::MultipleSubnets {
            network: network.into(),
            count: pools.len(),
        }),
    }
}

/// IPv6 is parsed so that it is refused clearly, not half-configured.
fn reject_ipv6(network: &str, spec: &Network) -> Result<(), IpamError> {
    let refuse = |setting: String| {
        Err(IpamError::Ipv6Unsupported {
            network: network.into(),
            setting,
        })
    };
    if spec.enable_ipv6 == Some(true) {
        return refuse("enable_ipv6: true".into());
    }
    for pool in spec.ipam.iter().flat_map(|ipam| &ipam.config) {
        let fields = [
            ("subnet", &pool.subnet),
            ("ip_range", &pool.ip_range),
            ("gateway", &pool.gateway),
        ];
        for (field, value) in fields {
            if let Some(value) = value.as_deref().filter(|v| v.contains(':')) {
                return refuse(format!("{field} {value}"));
            }
        }
        if let Some((name, value)) = pool.aux_addresses.0.iter().find(|(_, v)| v.contains(':')) {
            return refuse(format!("aux address {name} {value}"));
        }
    }
    Ok(())
}

/// The first pool subnet that overlaps no host route, no other network and
/// no reserved range.
fn auto_subnet(
    network: &str,
    policy: &SubnetPolicy,
    host_routes: &[Ipv4Cidr],
    used: &[UsedSubnet],
) -> Result<SubnetConfig, IpamError> {
    // A default route (0.0.0.0/0) overlaps everything; it says nothing about
    // which addresses are in use locally.
    let taken: Vec<Ipv4Cidr> = host_routes
        .iter()
        .filter(|r| r.prefix() > 0)
        .chain(used.iter().map(|u| &u.subnet))
        .chain(&policy.reserved)
        .copied()
        .collect();
    let subnet = policy
        .pools
        .iter()
        .flat_map(SubnetPool::candidates)
        .find(|candidate| !taken.iter().any(|t| t.overlaps(candidate)))
        .ok_or_else(|| IpamError::PoolsExhausted {
            network: network.into(),
        })?;
    Ok(SubnetConfig {
        subnet,
        gateway: subnet.first(),
        ip_range: None,
        aux_addresses: BTreeMap::new(),
    })
}

fn requested_subnet(
    network: &str,
    pool: &IpamPool,
    host_routes: &[Ipv4Cidr],
    used: &[UsedSubnet],
) -> Result<SubnetConfig, IpamError> {
    let cidr = |field: &'static str, text: &str| {
        text.parse::<Ipv4Cidr>().map_err(|source| IpamError::Cidr {
            network: network.into(),
            field,
            source,
        })
    };
    let subnet = cidr("subnet", pool.subnet.as_deref().unwrap_or_default())?;
    if subnet.prefix() > 30 {
        return Err(IpamError::SubnetTooSmall {
            network: network.into(),
            subnet,
        });
    }
    if let Some(other) = used.iter().find(|u| u.subnet.overlaps(&subnet)) {
        return Err(IpamError::SubnetOverlap {
            network: network.into(),
            subnet,
            other: other.network.clone(),
            other_subnet: other.subnet,
        });
    }
    // A host route inside the subnet (or equal to it) means part of it is
    // already reachable elsewhere, and containers given those addresses
    // would be cut off. A wider route (a VPN's 10.0.0.0/8) is harmless: the
    // bridge's own route is more specific and wins.
    if let Some(route) = host_routes.iter().find(|r| r.prefix() > 0 && subnet.contains_cidr(r)) {
        return Err(IpamError::HostRouteOverlap {
            network: network.into(),
            subnet,
            route: *route,
        });
    }
    let gateway = match pool.gateway.as_deref() {
        Some(text) => {
            let gateway = parse_address(network, "gateway", text)?;
            if !subnet.is_host(gateway) {
                return Err(IpamError::GatewayOutsideSubnet {
                    network: network.into(),
                    gateway,
                    subnet,
                });
            }
            gateway
        }
        None => subnet.first(),
    };
    let ip_range = match pool.ip_range.as_deref() {
        Some(text) => {
            let ip_range = cidr("ip_range", text)?;
            if !subnet.contains_cidr(&ip_range) {
                return Err(IpamError::RangeOutsideSubnet {
                    network: network.into(),
                    ip_range,
                    subnet,
                });
            }
            Some(ip_range)
        }
        None => None,
    };
    let mut aux_addresses = BTreeMap::new();
    for (name, text) in &pool.aux_addresses.0 {
        let address = parse_address(network, &format!("aux address {name:?}"), text)?;
        if !subnet.contains(address) {
            return Err(IpamError::AuxOutsideSubnet {
                network: network.into(),
                name: name.clone(),
                address,
                subnet,
            });
        }
        aux_addresses.insert(name.clone(), address);
    }
    Ok(SubnetConfig {
        subnet,
        gateway,
        ip_range,
        aux_addresses,
    })
}

/// Parses an address given for `field` (`ipv4_address`, `gateway`, …) on
/// `network`; an IPv6 address is reported as such.
pub fn parse_address(network: &str, field: &str, text: &str) -> Result<Ipv4Addr, IpamError> {
    if text.contains(':') {
        return Err(IpamError::Ipv6Unsupported {
            network: network.into(),
            setting: format!("{field} {text}"),
        });
    }
    text.parse().map_err(|source| IpamError::BadAddress {
        network: network.into(),
        field: field.into(),
        value: text.into(),
        source,
    })
}

impl SubnetConfig {
    /// Why no container may have `address`, if none may.
    fn reservation(&self, address: Ipv4Addr) -> Option<String> {
        if self.subnet.prefix() <= 30 && address == self.subnet.addr() {
            return Some("the network address".into());
        }
        if self.subnet.prefix() <= 30 && address == self.subnet.broadcast() {
            return Some("the broadcast address".into());
        }
        if address == self.gateway {
            return Some("the gateway".into());
        }
        self.aux_addresses
            .iter()
            .find(|(_, a)| **a == address)
            .map(|(name, _)| format!("the aux address {name:?}"))
    }

    /// The address `owner` gets on `network`: `requested` (compose
    /// `ipv4_address`) if given and free, else the one it already holds, else
    /// the lowest free host address of the ip_range (or subnet). A container
    /// holds one address per network; the caller replaces the old one.
    pub fn allocate(
        &self,
        network: &str,
        allocations: &Allocations,
        owner: &Owner,
        requested: Option<Ipv4Addr>,
    ) -> Result<Ipv4Addr, IpamError> {
        if let Some(address) = requested {
            if !self.subnet.contains(address) {
                return Err(IpamError::AddressOutsideSubnet {
                    network: network.into(),
                    address,
                    subnet: self.subnet,
                });
            }
            if let Some(role) = self.reservation(address) {
                return Err(IpamError::AddressReserved {
                    network: network.into(),
                    address,
                    role,
                });
            }
            return match allocations.get(&address) {
                Some(holder) if holder.container_id != owner.container_id => Err(IpamError::AddressInUse {
                    network: network.into(),
                    address,
                    container: holder.container_name.clone(),
                }),
                _ => Ok(address),
            };
        }
        if let Some((address, _)) = allocations.iter().find(|(_, o)| o.container_id == owner.container_id) {
            return Ok(*address);
        }
        let range = self.ip_range.unwrap_or(self.subnet);
        let lowest = u32::from(range.addr()).max(u32::from(self.subnet.first()));
        let highest = u32::from(range.broadcast()).min(u32::from(self.subnet.last()));
        (lowest..=highest)
            .map(Ipv4Addr::from)
            .find(|a| !allocations.contains_key(a) && self.reservation(*a).is_none())
            .ok_or_else(|| IpamError::AddressesExhausted {
                network: network.into(),
                range,
            })
    }
}

/// Frees every address `container_id` holds in `allocations`; returns them.
pub fn release(allocations: &mut Allocations, container_id: &str) -> Vec<Ipv4Addr> {
    let freed: Vec<Ipv4Addr> = allocations
        .iter()
        .filter(|(_, o)| o.container_id == container_id)
        .map(|(a, _)| *a)
        .collect();
    for address in &freed {
        allocations.remove(address);
    }
    freed
}

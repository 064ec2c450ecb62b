//! A small IPv4 CIDR type: enough for subnet pools, containment and overlap
//! checks and walking host addresses, without a new dependency.

use std::fmt;
use std::net::{AddrParseError, Ipv4Addr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// An IPv4 network: a network address and a prefix length. The address
/// never has host bits set (constructors mask them or refuse them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Cidr {
    addr: Ipv4Addr,
    prefix: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CidrError {
    #[error("{input:?} is not an IPv4 CIDR: expected an address, '/' and a prefix length, such as 10.1.0.0/24")]
    MissingPrefix { input: String },
    #[error("{input:?} is not an IPv4 CIDR: {address:?} is not an IPv4 address")]
    BadAddress {
        input: String,
        address: String,
        #[source]
        source: AddrParseError,
    },
    #[error("{input:?} is not an IPv4 CIDR: prefix length {prefix:?} is not a number from 0 to 32")]
    BadPrefix { input: String, prefix: String },
    #[error("{input:?} has host bits set: write its network address, {network}")]
    HostBitsSet { input: String, network: Ipv4Cidr },
    #[error("{input:?} is an IPv6 network; berth networks are IPv4 only")]
    Ipv6 { input: String },
}

impl Ipv4Cidr {
    /// The network of `addr` with `prefix` bits (host bits are masked off);
    /// `None` if `prefix > 32`.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Option<Self> {
        (prefix <= 32).then(|| Ipv4Cidr {
            addr: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        })
    }

    /// The network address.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The netmask as an address (`255.255.255.0` for a /24).
    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(mask(self.prefix))
    }

    /// How many addresses the block spans, network and broadcast included.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & mask(self.prefix) == u32::from(self.addr)
    }

    /// Whether `other` lies entirely inside `self`.
    pub fn contains_cidr(&self, other: &Ipv4Cidr) -> bool {
        other.prefix >= self.prefix && self.contains(other.addr)
    }

    /// CIDR blocks either nest or are disjoint, so two overlap exactly when
    /// the shorter prefix contains the other's network address.
    pub fn overlaps(&self, other: &Ipv4Cidr) -> bool {
        self.contains_cidr(other) || other.contains_cidr(self)
    }

    /// The last address of the block (the broadcast address for prefixes up
    /// to /30).
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !mask(self.prefix))
    }

    /// The first usable host address. A /31 (RFC 3021) and a /32 have no
    /// network or broadcast address, so every address is a host.
    pub fn first(&self) -> Ipv4Addr {
        if self.prefix >= 31 {
            self.addr
        } else {
            Ipv4Addr::from(u32::from(self.addr) + 1)
        }
    }

    /// The last usable host address (see [`Ipv4Cidr::first`]).
    pub fn last(&self) -> Ipv4Addr {
        if self.prefix >= 31 {
            self.broadcast()
        } else {
            Ipv4Addr::from(u32::from(self.broadcast()) - 1)
        }
    }

    /// Whether `addr` is a usable host address of this block.
    pub fn is_host(&self, addr: Ipv4Addr) -> bool {
        (u32::from(self.first())..=u32::from(self.last())).contains(&u32::from(addr))
    }

    /// The usable host addresses, lowest first.
    pub fn hosts(&self) -> impl Iterator<Item = Ipv4Addr> {
        (u32::from(self.first())..=u32::from(self.last())).map(Ipv4Addr::from)
    }

    /// The consecutive sub-blocks of length `prefix` that tile this block,
    /// lowest first; empty if `prefix` is shorter than this block's or over 32.
    pub fn subnets(&self, prefix: u8) -> impl Iterator<Item = Ipv4Cidr> {
        let valid = prefix >= self.prefix && prefix <= 32;
        let count = if valid { 1u64 << (prefix - self.prefix) } else { 0 };
        let step = if valid { 1u64 << (32 - u32::from(prefix)) } else { 0 };
        let base = u64::from(u32::from(self.addr));
        (0..count).map(move |i| Ipv4Cidr {
            // The block ends at or below 2^32, so this never truncates.
            addr: Ipv4Addr::from((base + i * step) as u32),
            prefix,
        })
    }
}

fn mask(prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p => u32::MAX << (32 - u32::from(p.min(32))),
    }
}

impl FromStr for Ipv4Cidr {
    type Err = CidrError;

    /// Parses `a.b.c.d/n` strictly: an address with host bits set is refused
    /// (like docker's "invalid subnet"), since it usually means a typo.
    fn from_str(input: &str) -> Result<Self, CidrError> {
        if input.contains(':') {
            return Err(CidrError::Ipv6 { input: input.into() });
        }
        let (address, prefix) = input
            .split_once('/')
            .ok_or_else(|| CidrError::MissingPrefix { input: input.into() })?;
        let addr = address.parse::<Ipv4Addr>().map_err(|source| CidrError::BadAddress {
            input: input.into(),
            address: address.into(),
            source,
        })?;
        let bad_prefix = || CidrError::BadPrefix {
            input: input.into(),
            prefix: prefix.into(),
        };
        // `u8::from_str` accepts a leading '+'; a prefix is digits only.
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad_prefix());
        }
        let prefix = prefix.parse::<u8>().map_err(|_| bad_prefix())?;
        let network = Ipv4Cidr::new(addr, prefix).ok_or_else(bad_prefix)?;
        if network.addr != addr {
            return Err(CidrError::HostBitsSet {
                input: input.into(),
                network,
            });
        }
        Ok(network)
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for Ipv4Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv4Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Ipv4Cidr {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_prints() {
        let c = cidr("10.1.0.0/24");
        assert_eq!(c.addr(), ip("10.1.0.0"));
        assert_eq!(c.prefix(), 24);
        assert_eq!(c.to_string(), "10.1.0.0/24");
        assert_eq!(c.netmask(), ip("255.255.255.0"));
        assert_eq!(cidr("0.0.0.0/0").size(), 1 << 32);
        assert_eq!(cidr("1.2.3.4/32").size(), 1);
    }

    #[test]
    fn parse_errors_say_what_is_wrong() {
        assert!(matches!(
            "10.1.0.0".parse::<Ipv4Cidr>(),
            Err(CidrError::MissingPrefix { .. })
        ));
        assert!(matches!(
            "10.1.0/24".parse::<Ipv4Cidr>(),
            Err(CidrError::BadAddress { .. })
        ));
        for bad in ["10.1.0.0/33", "10.1.0.0/", "10.1.0.0/+8", "10.1.0.0/x", "10.1.0.0/-1"] {
            assert!(
                matches!(bad.parse::<Ipv4Cidr>(), Err(CidrError::BadPrefix { .. })),
                "{bad}"
            );
        }
        let err = "10.1.0.5/24".parse::<Ipv4Cidr>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"10.1.0.5/24\" has host bits set: write its network address, 10.1.0.0/24"
        );
        assert!(matches!("fd00::/64".parse::<Ipv4Cidr>(), Err(CidrError::Ipv6 { .. })));
    }

    #[test]
    fn new_masks_host_bits() {
        assert_eq!(Ipv4Cidr::new(ip("10.1.2.3"), 16), Some(cidr("10.1.0.0/16")));
        assert_eq!(Ipv4Cidr::new(ip("10.1.2.3"), 33), None);
    }

    #[test]
    fn containment_and_overlap() {
        let a = cidr("10.0.0.0/8");
        let b = cidr("10.5.0.0/16");
        let c = cidr("11.0.0.0/8");
        assert!(a.contains(ip("10.255.255.255")));
        assert!(!a.contains(ip("11.0.0.0")));
        assert!(a.contains_cidr(&b) && !b.contains_cidr(&a));
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c));
        assert!(cidr("0.0.0.0/0").overlaps(&c));
        assert!(!cidr("10.0.0.0/25").overlaps(&cidr("10.0.0.128/25")));
    }

    #[test]
    fn hosts_first_last_broadcast() {
        let c = cidr("10.0.0.0/30");
        assert_eq!(c.first(), ip("10.0.0.1"));
        assert_eq!(c.last(), ip("10.0.0.2"));
        assert_eq!(c.broadcast(), ip("10.0.0.3"));
        assert_eq!(c.hosts().collect::<Vec<_>>(), [ip("10.0.0.1"), ip("10.0.0.2")]);
        assert!(c.is_host(ip("10.0.0.2")) && !c.is_host(ip("10.0.0.3")) && !c.is_host(ip("10.0.0.0")));
        assert_eq!(cidr("10.0.0.0/31").hosts().count(), 2);
        assert_eq!(cidr("10.0.0.7/32").hosts().collect::<Vec<_>>(), [ip("10.0.0.7")]);
        assert_eq!(cidr("0.0.0.0/0").last(), ip("255.255.255.254"));
    }

    #[test]
    fn subnets_tile_the_block() {
        let subs: Vec<_> = cidr("192.168.0.0/16").subnets(20).collect();
        assert_eq!(subs.len(), 16);
        assert_eq!(subs[0], cidr("192.168.0.0/20"));
        assert_eq!(subs[1], cidr("192.168.16.0/20"));
        assert_eq!(subs[15], cidr("192.168.240.0/20"));
        assert_eq!(
            cidr("255.255.255.0/24").subnets(25).last(),
            Some(cidr("255.255.255.128/25"))
        );
        assert_eq!(cidr("10.0.0.0/16").subnets(8).count(), 0);
    }

    #[test]
    fn serde_is_the_text_form() {
        let json = serde_json::to_string(&cidr("10.5.0.0/16")).unwrap();
        assert_eq!(json, "\"10.5.0.0/16\"");
        assert_eq!(serde_json::from_str::<Ipv4Cidr>(&json).unwrap(), cidr("10.5.0.0/16"));
        assert!(serde_json::from_str::<Ipv4Cidr>("\"10.5.0.1/16\"").is_err());
    }
}

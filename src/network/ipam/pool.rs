//! Where automatic subnets come from: address pools, and ranges to avoid.

use std::net::Ipv4Addr;

use super::IpamError;
use crate::network::cidr::Ipv4Cidr;

/// A block that subnets are carved from: `base` split into `/prefix`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubnetPool {
    base: Ipv4Cidr,
    prefix: u8,
}

impl SubnetPool {
    /// `prefix` must be at least as long as `base`'s and at most /30 (the
    /// smallest subnet with a gateway and one container).
    pub fn new(base: Ipv4Cidr, prefix: u8) -> Result<Self, IpamError> {
        if prefix < base.prefix() || prefix > 30 {
            return Err(IpamError::InvalidPool { base, prefix });
        }
        Ok(SubnetPool { base, prefix })
    }

    pub fn base(&self) -> Ipv4Cidr {
        self.base
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The subnets of this pool, lowest first.
    pub fn candidates(&self) -> impl Iterator<Item = Ipv4Cidr> {
        self.base.subnets(self.prefix)
    }

    /// Docker's default local address pools, in order: the fifteen /16s
    /// `172.17.0.0/16` … `172.31.0.0/16` (172.16/16 is left alone, as docker
    /// does), then the sixteen /20s `192.168.0.0/20` … `192.168.240.0/20`.
    pub fn defaults() -> Vec<SubnetPool> {
        const POOLS: [([u8; 4], u8, u8); 5] = [
            ([172, 17, 0, 0], 16, 16),
            ([172, 18, 0, 0], 15, 16),
            ([172, 20, 0, 0], 14, 16),
            ([172, 24, 0, 0], 13, 16),
            ([192, 168, 0, 0], 16, 20),
        ];
        POOLS
            .iter()
            .filter_map(|&(addr, len, prefix)| {
                Ipv4Cidr::new(Ipv4Addr::from(addr), len).map(|base| SubnetPool { base, prefix })
            })
            .collect()
    }
}

/// Where automatic subnets come from and what they must avoid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetPolicy {
    pub pools: Vec<SubnetPool>,
    /// Ranges never handed out automatically (a VPN, a site network). A
    /// subnet requested explicitly may still use them: the user asked.
    pub reserved: Vec<Ipv4Cidr>,
}

impl Default for SubnetPolicy {
    fn default() -> Self {
        SubnetPolicy {
            pools: SubnetPool::defaults(),
            reserved: Vec::new(),
        }
    }
}

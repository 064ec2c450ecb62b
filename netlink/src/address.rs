//! IP addresses on links (IPv4 and IPv6).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures_util::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::AddressMessageBuilder;

use crate::connection::Netlink;
use crate::error::{Error, Operation, Result};

/// An address assigned to a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address {
    pub link_index: u32,
    pub address: IpAddr,
    pub prefix_len: u8,
}

impl Address {
    /// `None` for a message without an address attribute. IPv4 reports the
    /// interface's own address in `IFA_LOCAL` (`IFA_ADDRESS` is the peer's
    /// on point-to-point links), IPv6 only in `IFA_ADDRESS`.
    pub(crate) fn from_message(message: &AddressMessage) -> Option<Self> {
        let mut local = None;
        let mut address = None;
        for attribute in &message.attributes {
            match attribute {
                AddressAttribute::Local(ip) => local = Some(*ip),
                AddressAttribute::Address(ip) => address = Some(*ip),
                _ => {}
            }
        }
        Some(Self {
            link_index: message.header.index,
            address: local.or(address)?,
            prefix_len: message.header.prefix_len,
        })
    }
}

fn address_message(index: u32, address: IpAddr, prefix_len: u8) -> AddressMessage {
    match address {
        IpAddr::V4(v4) => AddressMessageBuilder::<Ipv4Addr>::new()
            .index(index)
            .address(v4, prefix_len)
            .build(),
        IpAddr::V6(v6) => AddressMessageBuilder::<Ipv6Addr>::new()
            .index(index)
            .address(v6, prefix_len)
            .build(),
    }
}

impl Netlink {
    /// Adds `address/prefix_len` to `link`; the kernel adds the connected
    /// route with it. An IPv6 address is tentative until duplicate address
    /// detection ends unless the link's `accept_dad` is 0
    /// ([`crate::sysctl::set_accept_dad`]).
    pub async fn add_address(&self, link: &str, address: IpAddr, prefix_len: u8) -> Result<()> {
        let op = || Operation::AddAddress {
            link: link.to_string(),
            address,
            prefix_len,
        };
        let index = self.index_for(link, op).await?;
        self.handle
            .address()
            .add(index, address, prefix_len)
            .execute()
            .await
            .map_err(|err| Error::from_rtnetlink(op(), err))
    }

    /// Removes `address/prefix_len` from `link`; [`Error::is_not_found`]
    /// holds if it was not there.
    pub async fn delete_address(&self, link: &str, address: IpAddr, prefix_len: u8) -> Result<()> {
        let op = || Operation::DeleteAddress {
            link: link.to_string(),
            address,
            prefix_len,
        };
        let index = self.index_for(link, op).await?;
        self.handle
            .address()
            .del(address_message(index, address, prefix_len))
            .execute()
            .await
            .map_err(|err| Error::from_rtnetlink(op(), err))
    }

    /// The addresses of `link`, both families, IPv6 link-local included.
    pub async fn addresses(&self, link: &str) -> Result<Vec<Address>> {
        let op = || Operation::ListAddresses { link: link.to_string() };
        let index = self.index_for(link, op).await?;
        let messages: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|err| Error::from_rtnetlink(op(), err))?;
        Ok(messages
            .iter()
            .filter(|message| message.header.index == index)
            .filter_map(Address::from_message)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_the_message_it_builds() {
        let v4 = address_message(4, "10.0.0.2".parse().unwrap(), 24);
        assert_eq!(
            Address::from_message(&v4),
            Some(Address {
                link_index: 4,
                address: "10.0.0.2".parse().unwrap(),
                prefix_len: 24
            })
        );
        let v6 = address_message(4, "fd00::2".parse().unwrap(), 64);
        assert_eq!(
            Address::from_message(&v6),
            Some(Address {
                link_index: 4,
                address: "fd00::2".parse().unwrap(),
                prefix_len: 64
            })
        );
    }

    #[test]
    fn prefers_the_local_address_over_the_peer() {
        let mut message = AddressMessage::default();
        message.header.prefix_len = 32;
        message.attributes = vec![
            AddressAttribute::Address("10.9.9.9".parse().unwrap()),
            AddressAttribute::Local("10.0.0.1".parse().unwrap()),
        ];
        assert_eq!(
            Address::from_message(&message).map(|a| a.address),
            Some("10.0.0.1".parse().unwrap())
        );
        assert_eq!(Address::from_message(&AddressMessage::default()), None);
    }
}

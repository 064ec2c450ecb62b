//! Routes in the main table: a default route via a gateway (inside a
//! container's namespace) and routes to a subnet through a link.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures_util::TryStreamExt;
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteScope, RouteType};
use rtnetlink::RouteMessageBuilder;

use crate::connection::Netlink;
use crate::error::{Error, Operation, Result};

/// A unicast route of the main table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// `0.0.0.0`/`::` with prefix 0 for a default route.
    pub destination: IpAddr,
    pub prefix_len: u8,
    pub gateway: Option<IpAddr>,
    /// The output link's index.
    pub link_index: Option<u32>,
}

impl Route {
    pub fn is_default(&self) -> bool {
        self.prefix_len == 0
    }

    /// `None` for routes outside the main table or not unicast (local,
    /// broadcast, multicast), which berth neither makes nor removes.
    pub(crate) fn from_message(message: &RouteMessage) -> Option<Self> {
        let mut table = u32::from(message.header.table);
        let mut destination = None;
        let mut gateway = None;
        let mut link_index = None;
        for attribute in &message.attributes {
            match attribute {
                // Tables past 255 only fit the attribute.
                RouteAttribute::Table(id) => table = *id,
                RouteAttribute::Destination(address) => destination = ip_of(address),
                RouteAttribute::Gateway(address) => gateway = ip_of(address),
                RouteAttribute::Oif(index) => link_index = Some(*index),
                _ => {}
            }
        }
        if table != u32::from(RouteHeader::RT_TABLE_MAIN) || message.header.kind != RouteType::Unicast {
            return None;
        }
        let unspecified = match message.header.address_family {
            rtnetlink::packet_route::AddressFamily::Inet6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        };
        Some(Self {
            destination: destination.unwrap_or(unspecified),
            prefix_len: message.header.destination_prefix_length,
            gateway,
            link_index,
        })
    }
}

fn ip_of(address: &RouteAddress) -> Option<IpAddr> {
    match address {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

/// A route to `destination/prefix_len` out of link `index` with no gateway:
/// on-link, so for IPv4 its scope is `link` (as `ip route add … dev` makes
/// it). IPv6 has no route scopes.
fn link_route(destination: IpAddr, prefix_len: u8, index: u32) -> RouteMessage {
    match destination {
        IpAddr::V4(v4) => RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(v4, prefix_len)
            .output_interface(index)
            .scope(RouteScope::Link)
            .build(),
        IpAddr::V6(v6) => RouteMessageBuilder::<Ipv6Addr>::new()
            .destination_prefix(v6, prefix_len)
            .output_interface(index)
            .build(),
    }
}

fn default_route(gateway: IpAddr) -> RouteMessage {
    match gateway {
        IpAddr::V4(v4) => RouteMessageBuilder::<Ipv4Addr>::new().gateway(v4).build(),
        IpAddr::V6(v6) => RouteMessageBuilder::<Ipv6Addr>::new().gateway(v6).build(),
    }
}

impl Netlink {
    /// Adds the default route via `gateway` (IPv4 or IPv6), which must be
    /// reachable through an address already on a link (`ENETUNREACH`
    /// otherwise).
    pub async fn add_default_route(&self, gateway: IpAddr) -> Result<()> {
        let op = || Operation::AddRoute {
            route: format!("default via {gateway}"),
        };
        self.handle
            .route()
            .add(default_route(gateway))
            .execute()
            .await
            .map_err(|err| Error::from_rtnetlink(op(), err))
    }

    /// Adds a route to `destination/prefix_len` through `link`.
    pub async fn add_route(&self, destination: IpAddr, prefix_len: u8, link: &str) -> Result<()> {
        let op = || Operation::AddRoute {
            route: format!("{destination}/{prefix_len} dev {link:?}"),
        };
        let index = self.index_for(link, op).await?;
        self.handle
            .route()
            .add(link_route(destination, prefix_len, index))
            .execute()
            .await
            .map_err(|err| Error::from_rtnetlink(op(), err))
    }

    /// Deletes the route to `destination/prefix_len` through `link`;
    /// [`Error::is_not_found`] holds if there was none.
    pub async fn delete_route(&self, destination: IpAddr, prefix_len: u8, link: &str) -> Result<()> {
        let op = || Operation::DeleteRoute {
            route: format!("{destination}/{prefix_len} dev {link:?}"),
        };
        let index = self.index_for(link, op).await?;
        self.handle
            .route()
            .del(link_route(destination, prefix_len, index))
            .execute()
            .await
            .map_err(|err| Error::from_rtnetlink(op(), err))
    }

    /// The unicast routes of the main table, IPv4 then IPv6.
    pub async fn routes(&self) -> Result<Vec<Route>> {
        let mut routes = Vec::new();
        for query in [
            RouteMessageBuilder::<Ipv4Addr>::new().build(),
            RouteMessageBuilder::<Ipv6Addr>::new().build(),
        ] {
            let messages: Vec<RouteMessage> = self
                .handle
                .route()
                .get(query)
                .execute()
                .try_collect()
                .await
                .map_err(|err| Error::from_rtnetlink(Operation::ListRoutes, err))?;
            routes.extend(messages.iter().filter_map(Route::from_message));
        }
        Ok(routes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_the_routes_it_builds() {
        let gateway: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(
            Route::from_message(&default_route(gateway)),
            Some(Route {
                destination: "0.0.0.0".parse().unwrap(),
                prefix_len: 0,
                gateway: Some(gateway),
                link_index: None
            })
        );
        let route = Route::from_message(&link_route("fd00:1::".parse().unwrap(), 64, 3)).unwrap();
        assert_eq!(route.destination, "fd00:1::".parse::<IpAddr>().unwrap());
        assert_eq!((route.prefix_len, route.gateway, route.link_index), (64, None, Some(3)));
        assert!(!route.is_default());
    }

    #[test]
    fn ignores_other_tables_and_kinds() {
        let mut local = link_route("10.0.0.1".parse().unwrap(), 32, 3);
        local.header.table = 255;
        assert_eq!(Route::from_message(&local), None);
        let mut broadcast = link_route("10.0.0.255".parse().unwrap(), 32, 3);
        broadcast.header.kind = RouteType::Broadcast;
        assert_eq!(Route::from_message(&broadcast), None);
    }
}

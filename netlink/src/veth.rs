//! veth pairs: the cable between a bridge in one namespace and a container
//! in another.

use std::os::fd::{AsFd, AsRawFd};

use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth};
use rtnetlink::{LinkMessageBuilder, LinkUnspec, LinkVeth};

use crate::connection::Netlink;
use crate::error::{Error, Operation, Result};
use crate::ifname;
use crate::links::Link;
use crate::netns::Netns;

/// A veth pair to create: `name` in the connection's namespace, `peer` in
/// `peer_netns` (or next to `name` when `None`).
#[derive(Debug, Clone, Copy)]
pub struct VethSpec<'a> {
    pub name: &'a str,
    pub peer: &'a str,
    pub peer_netns: Option<&'a Netns>,
    /// Applied to both ends; `None` keeps the kernel default.
    pub mtu: Option<u32>,
}

impl Netlink {
    /// Creates a veth pair in one request, with the peer created *directly*
    /// inside `peer_netns` (`IFLA_NET_NS_FD` in the peer's own message), as
    /// netavark does: the peer never exists in this namespace, so its name
    /// (typically `eth0`) cannot clash here and no half-moved pair is left
    /// behind if something fails. Both ends start down. Returns this
    /// namespace's end.
    pub async fn create_veth(&self, spec: &VethSpec<'_>) -> Result<Link> {
        ifname::validate(spec.name)?;
        ifname::validate(spec.peer)?;
        let op = || Operation::CreateVeth {
            name: spec.name.to_string(),
            peer: spec.peer.to_string(),
            peer_netns: spec.peer_netns.map(|netns| netns.label().to_string()),
        };

        let mut peer = LinkUnspec::new_with_name(spec.peer);
        if let Some(netns) = spec.peer_netns {
            // The descriptor is only read while the request is processed;
            // `spec` borrows the handle, so it is open until then.
            peer = peer.setns_by_fd(netns.as_fd().as_raw_fd());
        }
        let mut this_end = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth).name(spec.name);
        if let Some(mtu) = spec.mtu {
            peer = peer.mtu(mtu);
            this_end = this_end.mtu(mtu);
        }
        let message = this_end
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())))
            .build();

        self.handle
            .link()
            .add(message)
            .execute()
            .await
            .map_err(|err| Error::from_rtnetlink(op(), err))?;
        self.link(spec.name).await
    }
}

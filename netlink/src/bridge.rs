//! Linux bridges: the switch a network's containers plug their veths into.

use rtnetlink::LinkBridge;

use crate::connection::Netlink;
use crate::error::{Error, Operation, Result};
use crate::ifname;
use crate::links::Link;

/// What a new bridge looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeSpec {
    pub name: String,
    /// `None` keeps the kernel default (1500). A bridge's MTU is lowered to
    /// its smallest port's when ports join, so set the veths' too.
    pub mtu: Option<u32>,
    pub up: bool,
    /// A fixed MAC address. Without one, a bridge takes the lowest MAC of
    /// its ports, which changes as ports come and go — and every neighbour
    /// that cached the old one loses the gateway (netavark pins it too).
    pub mac: Option<[u8; 6]>,
}

impl BridgeSpec {
    /// A bridge that is up, with the default MTU.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            mtu: None,
            up: true,
            mac: None,
        }
    }
}

impl Netlink {
    /// Creates a bridge and returns it as the kernel now reports it. Fails
    /// with [`Error::is_already_exists`] if the name is taken. Delete it
    /// with [`Netlink::delete_link`].
    pub async fn create_bridge(&self, spec: &BridgeSpec) -> Result<Link> {
        ifname::validate(&spec.name)?;
        let op = || Operation::CreateBridge {
            name: spec.name.clone(),
        };
        // `LinkBridge::new` asks for "up"; build on the bare builder so
        // that `spec.up == false` really creates it down.
        let mut builder = rtnetlink::LinkMessageBuilder::<LinkBridge>::new(&spec.name);
        if spec.up {
            builder = builder.up();
        }
        if let Some(mtu) = spec.mtu {
            builder = builder.mtu(mtu);
        }
        if let Some(mac) = spec.mac {
            builder = builder.address(mac.to_vec());
        }
        self.handle
            .link()
            .add(builder.build())
            .execute()
            .await
            .map_err(|err| Error::from_rtnetlink(op(), err))?;
        self.link(&spec.name).await
    }
}

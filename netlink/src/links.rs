//! Links of any kind: looking them up, listing them (by name or by alias
//! prefix, for cleanup), and the per-link settings: state, MTU, name,
//! master, alias and namespace.
//!
//! Operations name links, as their callers do, and resolve the name to an
//! index first; the extra round trip buys error messages that name the
//! link, and a rename that can address the link by index.

use std::os::fd::{AsFd, AsRawFd};

use futures_util::TryStreamExt;
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use rtnetlink::LinkUnspec;

use crate::connection::Netlink;
use crate::error::{Error, Operation, Result};
use crate::ifname;
use crate::netns::Netns;

/// A link as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// `IFLA_INFO_KIND`: "bridge", "veth", …; `None` for `lo` and physical
    /// devices.
    pub kind: Option<String>,
    pub mtu: Option<u32>,
    /// Administratively up (`IFF_UP`), which is what `set_link_up` sets;
    /// carrier is another matter.
    pub up: bool,
    /// The index of the bridge (or other controller) it is attached to.
    pub master: Option<u32>,
    /// `IFLA_IFALIAS`, a free-form string that berth uses to mark links it
    /// owns so that cleanup can find them by prefix.
    pub alias: Option<String>,
}

impl Link {
    pub(crate) fn from_message(message: &LinkMessage) -> Self {
        let mut link = Link {
            index: message.header.index,
            name: String::new(),
            kind: None,
            mtu: None,
            up: message.header.flags.contains(LinkFlags::Up),
            master: None,
            alias: None,
        };
        for attribute in &message.attributes {
            match attribute {
                LinkAttribute::IfName(name) => link.name = name.clone(),
                LinkAttribute::Mtu(mtu) => link.mtu = Some(*mtu),
                LinkAttribute::Controller(index) if *index != 0 => link.master = Some(*index),
                LinkAttribute::IfAlias(alias) if !alias.is_empty() => link.alias = Some(alias.clone()),
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        if let LinkInfo::Kind(kind) = info {
                            link.kind = Some(kind.to_string());
                        }
                    }
                }
                _ => {}
            }
        }
        link
    }
}

/// The links whose alias starts with `prefix` (pure, so it is unit-tested).
pub(crate) fn with_alias_prefix(links: Vec<Link>, prefix: &str) -> Vec<Link> {
    links
        .into_iter()
        .filter(|link| link.alias.as_deref().is_some_and(|alias| alias.starts_with(prefix)))
        .collect()
}

/// The links whose name starts with `prefix`.
pub(crate) fn with_name_prefix(links: Vec<Link>, prefix: &str) -> Vec<Link> {
    links.into_iter().filter(|link| link.name.starts_with(prefix)).collect()
}

impl Netlink {
    /// The link called `name`; an error for which
    /// [`Error::is_not_found`] holds if there is none.
    pub async fn link(&self, name: &str) -> Result<Link> {
        ifname::validate(name)?;
        let op = || Operation::GetLink { name: name.to_string() };
        let mut replies = self.handle.link().get().match_name(name).execute();
        match replies.try_next().await {
            Ok(Some(message)) => Ok(Link::from_message(&message)),
            Ok(None) => Err(Error::Protocol {
                op: op(),
                detail: "the kernel sent no link".into(),
            }),
            Err(err) => Err(Error::from_rtnetlink(op(), err)),
        }
    }

    /// The link called `name`, or `None` if there is none.
    pub async fn find_link(&self, name: &str) -> Result<Option<Link>> {
        match self.link(name).await {
            Ok(link) => Ok(Some(link)),
            Err(err) if err.is_not_found() => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// The link with interface index `index`.
    pub async fn link_by_index(&self, index: u32) -> Result<Link> {
        let op = || Operation::GetLinkByIndex { index };
        let mut replies = self.handle.link().get().match_index(index).execute();
        match replies.try_next().await {
            Ok(Some(message)) => Ok(Link::from_message(&message)),
            Ok(None) => Err(Error::Protocol {
                op: op(),
                detail: "the kernel sent no link".into(),
            }),
            Err(err) => Err(Error::from_rtnetlink(op(), err)),
        }
    }

    /// Every link in the namespace.
    pub async fn links(&self) -> Result<Vec<Link>> {
        let messages: Vec<LinkMessage> = self
            .handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|err| Error::from_rtnetlink(Operation::ListLinks, err))?;
        Ok(messages.iter().map(Link::from_message).collect())
    }

    /// The links whose name starts with `prefix`.
    pub async fn links_with_name_prefix(&self, prefix: &str) -> Result<Vec<Link>> {
        Ok(with_name_prefix(self.links().await?, prefix))
    }

    /// The links whose alias starts with `prefix`: how berth finds what it
    /// created, whatever the links ended up being called.
    pub async fn links_with_alias_prefix(&self, prefix: &str) -> Result<Vec<Link>> {
        Ok(with_alias_prefix(self.links().await?, prefix))
    }

    /// Deletes a link of any kind. Deleting one end of a veth pair deletes
    /// the other, in whichever namespace it is; deleting a bridge detaches
    /// its ports.
    pub async fn delete_link(&self, name: &str) -> Result<()> {
        let op = || Operation::DeleteLink { name: name.to_string() };
        let index = self.index_for(name, op).await?;
        self.handle
            .link()
            .del(index)
            .execute()
            .await
            .map_err(|err| Error::from_rtnetlink(op(), err))
    }

    /// Renames a link. The kernel refuses (`EBUSY`) while it is up.
    pub async fn rename_link(&self, name: &str, new_name: &str) -> Result<()> {
        ifname::validate(new_name)?;
        let op = || Operation::RenameLink {
            name: name.to_string(),
            new_name: new_name.to_string(),
        };
        let index = self.index_for(name, op).await?;
        let message = LinkUnspec::new_with_index(index).name(new_name).build();
        self.set(message, op).await
    }

    /// Sets a link administratively up.
    pub async fn set_link_up(&self, name: &str) -> Result<()> {
        let op = || Operation::SetLinkUp {
            name: name.to_string(),
            up: true,
        };
        let index = self.index_for(name, op).await?;
        self.set(LinkUnspec::new_with_index(index).up().build(), op).await
    }

    /// Sets a link administratively down.
    pub async fn set_link_down(&self, name: &str) -> Result<()> {
        let op = || Operation::SetLinkUp {
            name: name.to_string(),
            up: false,
        };
        let index = self.index_for(name, op).await?;
        self.set(LinkUnspec::new_with_index(index).down().build(), op).await
    }

    pub async fn set_mtu(&self, name: &str, mtu: u32) -> Result<()> {
        let op = || Operation::SetMtu {
            name: name.to_string(),
            mtu,
        };
        let index = self.index_for(name, op).await?;
        self.set(LinkUnspec::new_with_index(index).mtu(mtu).build(), op).await
    }

    /// Attaches a link (typically the host end of a veth) to a bridge.
    pub async fn set_master(&self, name: &str, master: &str) -> Result<()> {
        let op = || Operation::SetMaster {
            name: name.to_string(),
            master: master.to_string(),
        };
        let index = self.index_for(name, op).await?;
        let master_index = self.index_for(master, op).await?;
        self.set(LinkUnspec::new_with_index(index).controller(master_index).build(), op)
            .await
    }

    /// Sets `IFLA_IFALIAS`, berth's ownership marker (see
    /// [`Netlink::links_with_alias_prefix`]). An empty alias removes it.
    /// The kernel ignores the alias in a create request, so marking a new
    /// link is always a second step.
    pub async fn set_alias(&self, name: &str, alias: &str) -> Result<()> {
        let op = || Operation::SetAlias {
            name: name.to_string(),
            alias: alias.to_string(),
        };
        let index = self.index_for(name, op).await?;
        self.set(LinkUnspec::new_with_index(index).alias(alias).build(), op)
            .await
    }

    /// Moves a link into `netns`, identified by file descriptor
    /// (`IFLA_NET_NS_FD`), so no process has to live in it. The link goes
    /// down and loses its addresses on the way, as the kernel always does.
    pub async fn move_link(&self, name: &str, netns: &Netns) -> Result<()> {
        let op = || Operation::MoveLink {
            name: name.to_string(),
            netns: netns.label().to_string(),
        };
        let index = self.index_for(name, op).await?;
        let message = LinkUnspec::new_with_index(index)
            .setns_by_fd(netns.as_fd().as_raw_fd())
            .build();
        self.set(message, op).await
    }

    /// Resolves `name`, reporting a failure as part of `op`.
    pub(crate) async fn index_for(&self, name: &str, op: impl Fn() -> Operation) -> Result<u32> {
        ifname::validate(name)?;
        let mut replies = self.handle.link().get().match_name(name).execute();
        match replies.try_next().await {
            Ok(Some(message)) => Ok(message.header.index),
            Ok(None) => Err(Error::Protocol {
                op: op(),
                detail: format!("the kernel sent no link for {name:?}"),
            }),
            Err(err) => Err(Error::from_rtnetlink(op(), err)),
        }
    }

    async fn set(&self, message: LinkMessage, op: impl Fn() -> Operation) -> Result<()> {
        self.handle
            .link()
            .set(message)
            .execute()
            .await
            .map_err(|err| Error::from_rtnetlink(op(), err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtnetlink::packet_route::link::InfoKind;

    fn link(name: &str, alias: Option<&str>) -> Link {
        Link {
            index: 1,
            name: name.into(),
            kind: None,
            mtu: None,
            up: false,
            master: None,
            alias: alias.map(str::to_string),
        }
    }

    #[test]
    fn parses_what_berth_reads_from_a_link_message() {
        let mut message = LinkMessage::default();
        message.header.index = 7;
        message.header.flags = LinkFlags::Up | LinkFlags::Broadcast;
        message.attributes = vec![
            LinkAttribute::IfName("br-1a2b".into()),
            LinkAttribute::Mtu(1400),
            LinkAttribute::Controller(3),
            LinkAttribute::IfAlias("berth:net1".into()),
            LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)]),
        ];
        assert_eq!(
            Link::from_message(&message),
            Link {
                index: 7,
                name: "br-1a2b".into(),
                kind: Some("bridge".into()),
                mtu: Some(1400),
                up: true,
                master: Some(3),
                alias: Some("berth:net1".into()),
            }
        );
    }

    #[test]
    fn empty_alias_and_zero_master_mean_none() {
        let mut message = LinkMessage::default();
        message.attributes = vec![LinkAttribute::IfAlias(String::new()), LinkAttribute::Controller(0)];
        let parsed = Link::from_message(&message);
        assert_eq!(parsed.alias, None);
        assert_eq!(parsed.master, None);
        assert!(!parsed.up);
    }

    #[test]
    fn filters_by_alias_and_name_prefix() {
        let links = vec![
            link("lo", None),
            link("br-a", Some("berth:net:a")),
            link("vb-1", Some("berth:ctr:1")),
            link("eth0", Some("other")),
        ];
        let owned: Vec<String> = with_alias_prefix(links.clone(), "berth:")
            .into_iter()
            .map(|l| l.name)
            .collect();
        assert_eq!(owned, ["br-a", "vb-1"]);
        let bridges: Vec<String> = with_name_prefix(links, "br-").into_iter().map(|l| l.name).collect();
        assert_eq!(bridges, ["br-a"]);
    }
}

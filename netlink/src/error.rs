//! Errors: every failure names the operation and the link, address or route
//! it was about, then the kernel's own words, e.g.
//! `creating bridge "br-1a2b": File exists (os error 17)`.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::PathBuf;

use thiserror::Error;

use crate::ifname::IfNameError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What was being asked of the kernel. Its `Display` is the first half of
/// an error message ("creating bridge \"br-1a2b\"").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    CreateBridge {
        name: String,
    },
    CreateVeth {
        name: String,
        peer: String,
        peer_netns: Option<String>,
    },
    GetLink {
        name: String,
    },
    GetLinkByIndex {
        index: u32,
    },
    ListLinks,
    DeleteLink {
        name: String,
    },
    RenameLink {
        name: String,
        new_name: String,
    },
    SetLinkUp {
        name: String,
        up: bool,
    },
    SetMtu {
        name: String,
        mtu: u32,
    },
    SetMaster {
        name: String,
        master: String,
    },
    SetAlias {
        name: String,
        alias: String,
    },
    MoveLink {
        name: String,
        netns: String,
    },
    AddAddress {
        link: String,
        address: IpAddr,
        prefix_len: u8,
    },
    DeleteAddress {
        link: String,
        address: IpAddr,
        prefix_len: u8,
    },
    ListAddresses {
        link: String,
    },
    AddRoute {
        route: String,
    },
    DeleteRoute {
        route: String,
    },
    ListRoutes,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CreateBridge { name } => write!(f, "creating bridge {name:?}"),
            Self::CreateVeth { name, peer, peer_netns } => {
                write!(f, "creating veth pair {name:?} <-> {peer:?}")?;
                match peer_netns {
                    Some(netns) => write!(f, " (peer in network namespace {netns})"),
                    None => Ok(()),
                }
            }
            Self::GetLink { name } => write!(f, "looking up link {name:?}"),
            Self::GetLinkByIndex { index } => write!(f, "looking up link with index {index}"),
            Self::ListLinks => write!(f, "listing links"),
            Self::DeleteLink { name } => write!(f, "deleting link {name:?}"),
            Self::RenameLink { name, new_name } => write!(f, "renaming link {name:?} to {new_name:?}"),
            Self::SetLinkUp { name, up } => {
                write!(f, "setting link {name:?} {}", if *up { "up" } else { "down" })
            }
            Self::SetMtu { name, mtu } => write!(f, "setting the MTU of link {name:?} to {mtu}"),
            Self::SetMaster { name, master } => write!(f, "attaching link {name:?} to {master:?}"),
            Self::SetAlias { name, alias } => write!(f, "setting the alias of link {name:?} to {alias:?}"),
            Self::MoveLink { name, netns } => write!(f, "moving link {name:?} into network namespace {netns}"),
            Self::AddAddress {
                link,
                address,
                prefix_len,
            } => {
                write!(f, "adding address {address}/{prefix_len} to link {link:?}")
            }
            Self::DeleteAddress {
                link,
                address,
                prefix_len,
            } => {
                write!(f, "removing address {address}/{prefix_len} from link {link:?}")
            }
            Self::ListAddresses { link } => write!(f, "listing the addresses of link {link:?}"),
            Self::AddRoute { route } => write!(f, "adding route {route}"),
            Self::DeleteRoute { route } => write!(f, "deleting route {route}"),
            Self::ListRoutes => write!(f, "listing routes"),
        }
    }
}

/// What was being done to a network namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetnsAction {
    Open,
    Create,
    Enter,
    Mount,
    Unmount,
    Remove,
    Inspect,
}

impl fmt::Display for NetnsAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Open => "opening",
            Self::Create => "creating",
            Self::Enter => "entering",
            Self::Mount => "bind-mounting",
            Self::Unmount => "unmounting",
            Self::Remove => "removing",
            Self::Inspect => "inspecting",
        })
    }
}

#[derive(Debug, Error)]
pub enum Error {
    /// The kernel answered a request with an errno.
    #[error("{op}: {source}")]
    Kernel {
        op: Operation,
        #[source]
        source: io::Error,
    },
    /// The netlink conversation itself failed (socket closed, a reply that
    /// could not be decoded), or the request could not be built.
    #[error("{op}: {detail}")]
    Protocol { op: Operation, detail: String },
    #[error(transparent)]
    InvalidName(#[from] IfNameError),
    #[error("opening a netlink socket in network namespace {netns}: {source}")]
    OpenSocket {
        netns: String,
        #[source]
        source: io::Error,
    },
    /// The async API was called outside a tokio runtime with I/O enabled.
    #[error("the async netlink API needs a tokio runtime with I/O enabled: {0}")]
    NoRuntime(#[source] tokio::runtime::TryCurrentError),
    #[error("starting the runtime of the blocking netlink API: {0}")]
    Runtime(#[source] io::Error),
    #[error("{action} network namespace {netns}: {source}")]
    Netns {
        action: NetnsAction,
        netns: String,
        #[source]
        source: io::Error,
    },
    #[error("writing {value:?} to {}: {source}", path.display())]
    Sysctl {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// The errno the kernel answered with, if that is what happened.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Self::Kernel { source, .. } | Self::OpenSocket { source, .. } | Self::Netns { source, .. } => {
                source.raw_os_error()
            }
            Self::Sysctl { source, .. } | Self::Runtime(source) => source.raw_os_error(),
            _ => None,
        }
    }

    /// `EEXIST`: the link, address or route is already there.
    pub fn is_already_exists(&self) -> bool {
        self.raw_os_error() == Some(nix::libc::EEXIST)
    }

    /// `ENODEV` (no such link), `EADDRNOTAVAIL` (no such address), `ESRCH`
    /// (no such route) or `ENOENT`: the thing asked about is not there.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.raw_os_error(),
            Some(nix::libc::ENODEV | nix::libc::EADDRNOTAVAIL | nix::libc::ESRCH | nix::libc::ENOENT)
        )
    }

    /// Maps rtnetlink's error onto ours: a NACK becomes its errno, anything
    /// else a protocol failure.
    pub(crate) fn from_rtnetlink(op: Operation, err: rtnetlink::Error) -> Self {
        match err {
            rtnetlink::Error::NetlinkError(msg) => Self::Kernel {
                op,
                source: msg.to_io(),
            },
            other => Self::Protocol {
                op,
                detail: other.to_string(),
            },
        }
    }

    pub(crate) fn netns(action: NetnsAction, netns: impl Into<String>, source: impl Into<io::Error>) -> Self {
        Self::Netns {
            action,
            netns: netns.into(),
            source: source.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_operation_and_the_link() {
        let err = Error::Kernel {
            op: Operation::CreateBridge { name: "br-1a2b".into() },
            source: io::Error::from_raw_os_error(17),
        };
        assert_eq!(
            err.to_string(),
            r#"creating bridge "br-1a2b": File exists (os error 17)"#
        );
        assert!(err.is_already_exists());
        assert!(!err.is_not_found());

        let err = Error::Kernel {
            op: Operation::AddAddress {
                link: "eth0".into(),
                address: "10.0.0.2".parse().unwrap(),
                prefix_len: 24,
            },
            source: io::Error::from_raw_os_error(nix::libc::ENODEV),
        };
        assert_eq!(
            err.to_string(),
            r#"adding address 10.0.0.2/24 to link "eth0": No such device (os error 19)"#
        );
        assert!(err.is_not_found());
    }

    #[test]
    fn veth_message_names_the_peer_namespace() {
        let op = Operation::CreateVeth {
            name: "vb-1".into(),
            peer: "eth0".into(),
            peer_netns: Some("\"/run/berth/netns/c1\"".into()),
        };
        assert_eq!(
            op.to_string(),
            r#"creating veth pair "vb-1" <-> "eth0" (peer in network namespace "/run/berth/netns/c1")"#
        );
    }

    #[test]
    fn protocol_failures_are_not_errnos() {
        let err = Error::from_rtnetlink(Operation::ListLinks, rtnetlink::Error::RequestFailed);
        assert_eq!(err.raw_os_error(), None);
        assert_eq!(err.to_string(), "listing links: A netlink request failed");
    }
}

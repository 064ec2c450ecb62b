//! Kernel networking primitives for berth: links, bridges, veths, addresses,
//! routes, sysctls and network namespaces. Nothing in this crate knows about
//! compose.
//!
//! It starts with interface naming, the one rule every other piece relies on:
//! the kernel limits interface names to `IFNAMSIZ - 1` = 15 bytes, so berth's
//! long network names are mapped to short, stable kernel names.
//!
//! # Two APIs, one implementation
//!
//! [`Netlink`] is async (built on `rtnetlink`, which is async-only) for the
//! tokio engine; [`blocking::Netlink`] runs the same methods on a private
//! current-thread runtime for synchronous callers. Both are one connection
//! to one network namespace.
//!
//! # Namespaces
//!
//! A netlink socket acts in the namespace it was created in. To act inside
//! a container's namespace, open a connection there with
//! [`Netlink::open_in`]: the socket is created by a dedicated thread that
//! has `setns`-ed into it ([`Netns::run`]); no caller thread ever changes
//! namespace. A veth's peer is created directly inside the target
//! namespace by file descriptor ([`VethSpec::peer_netns`]), as netavark does.
//!
//! ```no_run
//! use berth_netlink::{blocking::Netlink, BridgeSpec, Netns, VethSpec};
//! # fn main() -> Result<(), berth_netlink::Error> {
//! let container = Netns::open("/proc/4242/ns/net")?;
//! let host = Netlink::open()?;
//! host.create_bridge(&BridgeSpec { mtu: Some(1500), ..BridgeSpec::new("br-1a2b") })?;
//! host.create_veth(&VethSpec { name: "vb-c1", peer: "eth0", peer_netns: Some(&container), mtu: Some(1500) })?;
//! host.set_master("vb-c1", "br-1a2b")?;
//! host.set_link_up("vb-c1")?;
//! let inside = Netlink::open_in(&container)?;
//! inside.add_address("eth0", "10.89.0.2".parse().unwrap(), 24)?;
//! inside.set_link_up("eth0")?;
//! inside.add_default_route("10.89.0.1".parse().unwrap())?;
//! # Ok(()) }
//! ```

pub mod address;
pub mod blocking;
pub mod bridge;
mod connection;
pub mod error;
pub mod ifname;
pub mod links;
pub mod netns;
pub mod route;
pub mod sysctl;
pub mod veth;

pub use address::Address;
pub use bridge::BridgeSpec;
pub use connection::Netlink;
pub use error::{Error, NetnsAction, Operation, Result};
pub use links::Link;
pub use netns::Netns;
pub use route::Route;
pub use veth::VethSpec;

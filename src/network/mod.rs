//! Bridge networks: address management, interface names and the records
//! that keep both across restarts.
//!
//! - `bridge`: a network's bridge, forwarding and NAT on the host.
//! - `cidr`: the IPv4 CIDR type.
//! - `dns`: service discovery by DNS (policy, wire format, upstreams).
//! - `endpoint`: a container's addresses and veth pairs.
//! - `hosts`: name resolution through each container's hosts file.
//! - `ipam`: pure decisions — which subnet a network gets, which address a
//!   container gets.
//! - `names`: kernel-sized bridge and veth names.
//! - `nat`: the root's nftables table (masquerade per network).
//! - `provision`: making, removing and joining networks (record + bridge).
//! - `routes`: the host's routes, which automatic subnets avoid.
//! - `store`: `<root>/networks/<name>.json`, written under a lock.

pub mod bridge;
pub mod cidr;
pub mod dns;
pub mod endpoint;
pub mod hosts;
pub mod ipam;
pub mod names;
pub mod nat;
pub mod provision;
pub mod resolv;
pub mod routes;
pub mod store;

pub use cidr::{CidrError, Ipv4Cidr};
pub use ipam::{Allocations, IpamError, Owner, SubnetConfig, SubnetPolicy, SubnetPool, UsedSubnet};
pub use names::{bridge_name, veth_name};
pub use routes::{host_routes, RouteError};
pub use store::{NetworkRecord, NetworkRequest, NetworkStore, NetworkStoreError};

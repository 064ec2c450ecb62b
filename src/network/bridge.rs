//! The host side of a bridge network: its bridge with the gateway address,
//! IPv4 forwarding and, unless the network is internal, outbound NAT.
//!
//! As in netavark (reference B.3, B.6): setup undoes what it did when a step
//! fails; teardown is best effort, carries on past failures and reports
//! every one, and removes the firewall rule before the bridge.

use std::net::IpAddr;

use berth_netlink::blocking::Netlink;
use berth_netlink::{sysctl, BridgeSpec};
use thiserror::Error;

use super::nat::{self, NatError};
use super::store::NetworkRecord;
use crate::store::Root;

#[derive(Debug, Error)]
pub enum BridgeError {
    #[error("network {network:?}: {step} (bridge {bridge})")]
    Netlink {
        network: String,
        bridge: String,
        step: &'static str,
        #[source]
        source: Box<berth_netlink::Error>,
    },
    #[error("network {network:?}: bridge {bridge} already exists on the host; remove it or set com.docker.network.bridge.name")]
    BridgeExists { network: String, bridge: String },
    #[error("network {network:?}: enabling IPv4 forwarding")]
    Forwarding {
        network: String,
        #[source]
        source: Box<berth_netlink::Error>,
    },
    #[error(transparent)]
    Nat(#[from] NatError),
    #[error("network {network:?}: {message}")]
    Injected { network: String, message: String },
}

/// The alias that marks `network`'s bridge as berth's, for cleanup:
/// `berth:<root tag>:<network>`. Network names cannot contain `/`, so
/// this never collides with [`super::endpoint::veth_alias`].
pub fn bridge_alias(root_tag: &str, network: &str) -> String {
    format!("berth:{root_tag}:{network}")
}

/// The fixed MAC address of a bridge, derived from its name: locally
/// administered (bit 1 of the first byte set), unicast (bit 0 clear), and
/// the same whenever the bridge is made again (recovery, host reboot).
pub fn bridge_mac(bridge: &str) -> [u8; 6] {
    let hash = bridge.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let b = hash.to_be_bytes();
    [(b[0] & 0xfc) | 0x02, b[1], b[2], b[3], b[4], b[5]]
}

/// Creates the bridge of `record` (gateway address, up), enables
/// forwarding and adds NAT; on failure removes whatever it had made.
pub fn setup(root: &Root, record: &NetworkRecord) -> Result<(), BridgeError> {
    let host = Netlink::open().map_err(step(record, "opening netlink"))?;
    let spec = BridgeSpec {
        mtu: Some(record.mtu),
        up: false,
        mac: Some(bridge_mac(&record.bridge)),
        ..BridgeSpec::new(record.bridge.clone())
    };
    if let Err(e) = host.create_bridge(&spec) {
        if e.is_already_exists() {
            return Err(BridgeError::BridgeExists {
                network: record.name.clone(),
                bridge: record.bridge.clone(),
            });
        }
        return Err(step(record, "creating the bridge")(e));
    }
    let configured = configure(root, &host, record);
    if configured.is_err() {
        let _ = host.delete_link(&record.bridge);
    }
    configured
}

fn configure(root: &Root, host: &Netlink, record: &NetworkRecord) -> Result<(), BridgeError> {
    let bridge = &record.bridge;
    host.set_alias(bridge, &bridge_alias(&root.tag(), &record.name))
        .map_err(step(record, "marking the bridge"))?;
    let addressing = &record.addressing;
    host.add_address(bridge, IpAddr::V4(addressing.gateway), addressing.subnet.prefix())
        .map_err(step(record, "adding the gateway address"))?;
    host.set_link_up(bridge)
        .map_err(step(record, "setting the bridge up"))?;
    if record.internal {
        // No forwarding and no NAT: an internal network's containers only
        // reach each other (and get no default route, see `endpoint`).
        return Ok(());
    }
    // Host-wide and left on at teardown: other software relies on it too.
    sysctl::set_ipv4_forwarding(true).map_err(|source| BridgeError::Forwarding {
        network: record.name.clone(),
        source: Box::new(source),
    })?;
    nat::add_masquerade(root, &record.name, &addressing.subnet, bridge)?;
    if let Err(message) = crate::runtime::faults::fail_point("bridge") {
        let _ = nat::remove_masquerade(root, &record.name);
        return Err(BridgeError::Injected {
            network: record.name.clone(),
            message,
        });
    }
    Ok(())
}

/// Removes NAT, then the bridge (deleting a bridge detaches any veth still
/// plugged in). Missing pieces are fine; every failure is returned.
pub fn teardown(root: &Root, record: &NetworkRecord) -> Vec<BridgeError> {
    let mut errors = Vec::new();
    if !record.internal {
        if let Err(e) = nat::remove_masquerade(root, &record.name) {
            errors.push(e.into());
        }
    }
    match Netlink::open() {
        Ok(host) => match host.delete_link(&record.bridge) {
            Err(e) if !e.is_not_found() => errors.push(step(record, "deleting the bridge")(e)),
            _ => {}
        },
        Err(e) => errors.push(step(record, "opening netlink")(e)),
    }
    errors
}

fn step(record: &NetworkRecord, step: &'static str) -> impl FnOnce(berth_netlink::Error) -> BridgeError {
    let network = record.name.clone();
    let bridge = record.bridge.clone();
    move |source| BridgeError::Netlink {
        network,
        bridge,
        step,
        source: Box::new(source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_macs_are_stable_local_unicast_and_distinct() {
        let mac = bridge_mac("berth1a2b3c4d5e");
        assert_eq!(mac, bridge_mac("berth1a2b3c4d5e"));
        assert_eq!(mac[0] & 0x03, 0x02, "locally administered, unicast");
        assert_ne!(mac, bridge_mac("berth1a2b3c4d5f"));
    }
}

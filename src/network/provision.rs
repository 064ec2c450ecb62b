//! Networks as the verbs and the engine make and unmake them: the record
//! first, then the bridge (undone when it fails); removal forgets the record
//! first, then tears the bridge down collecting every failure.

use std::net::Ipv4Addr;

use super::ipam::Owner;
use super::{bridge, host_routes, veth_name, NetworkRecord, NetworkRequest, NetworkStore, NetworkStoreError};
use super::{RouteError, SubnetPolicy};
use crate::runtime::config::NetworkAttachment;
use crate::spec::model::resources::Network;
use crate::store::Root;

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(transparent)]
    Store(#[from] NetworkStoreError),
    #[error("reading the host's routes")]
    Routes(#[from] RouteError),
    #[error(transparent)]
    Bridge(#[from] bridge::BridgeError),
    #[error("network {network:?} removed, but its cleanup failed: {errors}")]
    Teardown { network: String, errors: String },
}

/// Records the network, then makes its bridge; a failed bridge removes the
/// record again (the bridge setup undoes its own steps). `external` marks a
/// network made outside a project (`network create`).
pub fn create_network(
    root: &Root,
    name: &str,
    spec: &Network,
    external: bool,
) -> Result<NetworkRecord, ProvisionError> {
    let routes = host_routes()?;
    let request = NetworkRequest { name, spec, external };
    let store = NetworkStore::new(root);
    let record = store.create(&request, &SubnetPolicy::default(), &routes)?;
    if let Err(e) = bridge::setup(root, &record) {
        let _ = store.remove(name);
        return Err(e.into());
    }
    Ok(record)
}

/// Forgets the network (refused while containers hold addresses on it),
/// then tears its bridge and NAT down, reporting every failure.
pub fn remove_network(root: &Root, name: &str) -> Result<(), ProvisionError> {
    let record = NetworkStore::new(root).remove(name)?;
    let errors = bridge::teardown(root, &record);
    if !errors.is_empty() {
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        return Err(ProvisionError::Teardown {
            network: name.to_string(),
            errors: text.join("; "),
        });
    }
    Ok(())
}

/// Allocates the address of a new container on `network` (`requested` if
/// given) and describes its `index`th attachment (`eth<index>` inside); the
/// caller releases the address if the container is not created after all.
pub fn attach_new_container(
    root: &Root,
    network: &str,
    requested: Option<Ipv4Addr>,
    aliases: &[String],
    owner: &Owner,
    index: usize,
) -> Result<NetworkAttachment, ProvisionError> {
    let started = std::time::Instant::now();
    let store = NetworkStore::new(root);
    let record = store.get(network)?;
    let address = store.allocate_address(network, owner, requested)?;
    super::endpoint::record_timing("address", &owner.container_id, started);
    Ok(NetworkAttachment {
        network: network.to_string(),
        bridge: record.bridge,
        address,
        prefix: record.addressing.subnet.prefix(),
        gateway: record.addressing.gateway,
        aliases: aliases.to_vec(),
        veth_host: veth_name(&owner.container_id, index),
        mtu: record.mtu,
        internal: record.internal,
    })
}

//! `berth network connect` and `disconnect`: a container joins or leaves a
//! bridge network, at once when it runs (a veth plugged into or pulled out
//! of its namespace), at its next start otherwise.

use std::net::Ipv4Addr;

use anyhow::{bail, Context};

use crate::network::ipam::Owner;
use crate::network::{endpoint, hosts, provision, NetworkStore};
use crate::runtime::config::{NetworkMode, Status};
use crate::runtime::container;
use crate::store::Root;

pub fn connect(
    root: &Root,
    network: &str,
    reference: &str,
    ip: Option<&str>,
    aliases: &[String],
) -> anyhow::Result<()> {
    let _lock = root.lock("network-connect")?;
    let mut c = container::find(root, reference)?;
    if c.config.network != NetworkMode::Bridge {
        bail!(
            "container {} is not on a bridge network (its mode is {:?}): only bridge containers can join more networks",
            c.config.name,
            c.config.network
        );
    }
    if c.config.networks.iter().any(|a| a.network == network) {
        bail!("container {} is already connected to network {network}", c.config.name);
    }
    let requested = ip
        .map(|ip| ip.parse::<Ipv4Addr>().with_context(|| format!("invalid --ip {ip:?}")))
        .transpose()?;
    let owner = Owner {
        container_id: c.config.id.clone(),
        container_name: c.config.name.clone(),
    };
    let index = c.config.networks.len();
    let attachment = provision::attach_new_container(root, network, requested, aliases, &owner, index)?;
    let release = || {
        let _ = NetworkStore::new(root).release_address(network, &owner.container_id);
    };
    c.config.networks.push(attachment);
    if let Err(e) = c.save_config() {
        release();
        return Err(e.into());
    }
    let state = c.state()?;
    if let (Status::Running | Status::Paused, Some(pid)) = (state.status, state.pid) {
        if let Err(e) = endpoint::attach_last(root, &c.config, pid) {
            c.config.networks.pop();
            let _ = c.save_config();
            release();
            return Err(e.into());
        }
    }
    refresh_names(root, &c, network);
    Ok(())
}

pub fn disconnect(root: &Root, network: &str, reference: &str) -> anyhow::Result<()> {
    let _lock = root.lock("network-connect")?;
    let mut c = container::find(root, reference)?;
    let Some(position) = c.config.networks.iter().position(|a| a.network == network) else {
        bail!("container {} is not connected to network {network}", c.config.name);
    };
    if position + 1 != c.config.networks.len() {
        // eth<i> names follow the attachment order: only the last one can
        // leave without renumbering the others inside a running container.
        bail!(
            "container {} can leave only its last network ({}) while berth numbers interfaces by position",
            c.config.name,
            c.config.networks.last().map(|a| a.network.as_str()).unwrap_or_default()
        );
    }
    let attachment = c.config.networks.remove(position);
    if c.config.networks.is_empty() {
        bail!("container {} cannot leave its only network", c.config.name);
    }
    let state = c.state()?;
    if matches!(state.status, Status::Running | Status::Paused) {
        endpoint::detach_one(&attachment).map_err(anyhow::Error::msg)?;
    }
    c.save_config()?;
    NetworkStore::new(root).release_address(network, &c.config.id)?;
    refresh_names(root, &c, network);
    Ok(())
}

/// The container's own hosts file and its peers' on `network` name the
/// new membership at once.
fn refresh_names(root: &Root, c: &container::Container, network: &str) {
    let _ = hosts::write_own(root, c);
    let _ = hosts::refresh_network(root, network);
}

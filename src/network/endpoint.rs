//! A container's end of its bridge networks: the address it holds in each
//! network's record and the veth pairs that plug its network namespace
//! into the bridges.
//!
//! The monitor calls these: [`claim`] before it forks the init (an address
//! released when the container last exited is taken again, or the start
//! fails), [`attach`] once the init exists in its own network namespace
//! and before it is released, and [`detach`] when the container is gone
//! (or failed to start). `container rm` calls [`detach`] again; it is
//! idempotent.

use std::io::Write;
use std::net::IpAddr;
use std::time::Instant;

use berth_netlink::blocking::Netlink;
use berth_netlink::{Netns, VethSpec};
use nix::sched::{setns, CloneFlags};
use thiserror::Error;

use super::ipam::Owner;
use super::store::{NetworkStore, NetworkStoreError};
use crate::runtime::config::{ContainerConfig, NetworkAttachment};
use crate::store::Root;

#[derive(Debug, Error)]
pub enum EndpointError {
    #[error("joining container {container:?} to network {network:?}: {step}")]
    Netlink {
        container: String,
        network: String,
        step: &'static str,
        #[source]
        source: Box<berth_netlink::Error>,
    },
    #[error("joining container {container:?} to network {network:?}: {message}")]
    Injected {
        container: String,
        network: String,
        message: String,
    },
    #[error("container {container:?}: {step}")]
    Namespace {
        container: String,
        step: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error("container {container:?}: reclaiming its address on network {network:?}")]
    Claim {
        container: String,
        network: String,
        #[source]
        source: Box<NetworkStoreError>,
    },
}

/// The alias marking the host end of container `container_id`'s `index`th
/// veth: `berth:<root tag>/<id>/<index>` (see `bridge::bridge_alias`).
pub fn veth_alias(root_tag: &str, container_id: &str, index: usize) -> String {
    format!("berth:{root_tag}/{container_id}/{index}")
}

/// The environment variable naming a file that network setup steps append
/// their durations to (`scripts/bench-net.sh` reads it).
pub const TIMINGS_ENV: &str = "BERTH_TIMINGS";

/// With `BERTH_TIMINGS=FILE` set, appends `<step> <container id>
/// <microseconds since started>` to FILE; otherwise only an environment
/// lookup. One `O_APPEND` write per line, so concurrent monitors do not
/// interleave. Best effort: a benchmark aid must not fail a start.
pub fn record_timing(step: &str, container_id: &str, started: Instant) {
    let Some(path) = std::env::var_os(TIMINGS_ENV) else {
        return;
    };
    let line = format!("{step} {container_id} {}\n", started.elapsed().as_micros());
    if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = file.write_all(line.as_bytes());
    }
}

/// The kernel name of the veth end inside the container.
pub fn container_ifname(index: usize) -> String {
    format!("eth{index}")
}

fn owner(config: &ContainerConfig) -> Owner {
    Owner {
        container_id: config.id.clone(),
        container_name: config.name.clone(),
    }
}

/// Takes (again) the address each attachment records; a no-op for the
/// addresses the container still holds.
pub fn claim(root: &Root, config: &ContainerConfig) -> Result<(), EndpointError> {
    if config.networks.is_empty() {
        return Ok(());
    }
    let started = Instant::now();
    let result = claim_all(root, config);
    record_timing("claim", &config.id, started);
    result
}

fn claim_all(root: &Root, config: &ContainerConfig) -> Result<(), EndpointError> {
    let store = NetworkStore::new(root);
    for a in &config.networks {
        store
            .allocate_address(&a.network, &owner(config), Some(a.address))
            .map_err(|source| EndpointError::Claim {
                container: config.name.clone(),
                network: a.network.clone(),
                source: Box::new(source),
            })?;
    }
    Ok(())
}

/// Plugs the network namespace of process `pid` into every network of
/// `config`: per attachment a veth pair whose peer is created directly in
/// the namespace as `eth<i>`, the host end marked, on the bridge and up,
/// the address on the peer; then `lo` up and the default route via the
/// first non-internal network's gateway. On failure the veths made so far
/// are deleted (the caller kills the process, which takes the rest).
pub fn attach(root: &Root, config: &ContainerConfig, pid: i32) -> Result<(), EndpointError> {
    let started = Instant::now();
    let mut made = Vec::new();
    let result = attach_all(root, config, pid, &mut made);
    if !config.networks.is_empty() {
        record_timing("attach", &config.id, started);
    }
    if result.is_err() {
        if let Ok(host) = Netlink::open() {
            for veth in made {
                let _ = host.delete_link(veth);
            }
        }
    }
    result
}

fn attach_all<'c>(
    root: &Root,
    config: &'c ContainerConfig,
    pid: i32,
    made: &mut Vec<&'c str>,
) -> Result<(), EndpointError> {
    let Some(first) = config.networks.first() else {
        return Ok(());
    };
    let fail = |a: &NetworkAttachment, step| netlink_error(config, a, step);
    let netns = Netns::open(format!("/proc/{pid}/ns/net")).map_err(fail(first, "opening the network namespace"))?;
    let host = Netlink::open().map_err(fail(first, "opening netlink"))?;
    let inside = open_inside(config, &netns)?;
    for index in 0..config.networks.len() {
        plug(root, config, index, &Plugs::new(&host, &inside, &netns), made)?;
    }
    inside.set_link_up("lo").map_err(fail(first, "setting lo up"))?;
    // Internal networks give no way out; docker's rule is the same.
    if let Some(outbound) = config.networks.iter().find(|a| !a.internal) {
        inside
            .add_default_route(IpAddr::V4(outbound.gateway))
            .map_err(fail(outbound, "adding the default route"))?;
    }
    Ok(())
}

/// The error of a netlink `step` for attachment `a` of `config`.
fn netlink_error(
    config: &ContainerConfig,
    a: &NetworkAttachment,
    step: &'static str,
) -> impl FnOnce(berth_netlink::Error) -> EndpointError {
    let container = config.name.clone();
    let network = a.network.clone();
    move |source| EndpointError::Netlink {
        container,
        network,
        step,
        source: Box::new(source),
    }
}

/// The two ends a veth joins: the host (bridge side) and the container.
struct Plugs<'a> {
    host: &'a Netlink,
    inside: &'a Netlink,
    netns: &'a Netns,
}

impl<'a> Plugs<'a> {
    fn new(host: &'a Netlink, inside: &'a Netlink, netns: &'a Netns) -> Self {
        Plugs { host, inside, netns }
    }
}

/// Plugs attachment `index` of `config`: a veth pair whose peer is born in
/// the container's namespace as `eth<index>`, the host end marked, on the
/// bridge and up, the address on the peer. The host end goes into `made`
/// as soon as it exists, so the caller can undo a failure.
fn plug<'c>(
    root: &Root,
    config: &'c ContainerConfig,
    index: usize,
    plugs: &Plugs<'_>,
    made: &mut Vec<&'c str>,
) -> Result<(), EndpointError> {
    let a = &config.networks[index];
    let fail = |step| netlink_error(config, a, step);
    let peer = container_ifname(index);
    plugs
        .host
        .create_veth(&VethSpec {
            name: &a.veth_host,
            peer: &peer,
            peer_netns: Some(plugs.netns),
            mtu: Some(a.mtu),
        })
        .map_err(fail("creating the veth pair"))?;
    made.push(&a.veth_host);
    plugs
        .host
        .set_alias(&a.veth_host, &veth_alias(&root.tag(), &config.id, index))
        .map_err(fail("marking the veth"))?;
    crate::runtime::faults::fail_point("network").map_err(|message| EndpointError::Injected {
        container: config.name.clone(),
        network: a.network.clone(),
        message,
    })?;
    plugs
        .host
        .set_master(&a.veth_host, &a.bridge)
        .map_err(fail("plugging the veth into the bridge"))?;
    plugs
        .host
        .set_link_up(&a.veth_host)
        .map_err(fail("setting the veth up"))?;
    plugs
        .inside
        .add_address(&peer, IpAddr::V4(a.address), a.prefix)
        .map_err(fail("adding the container's address"))?;
    plugs.inside.set_link_up(&peer).map_err(fail("setting eth up"))?;
    Ok(())
}

/// `network connect` of a running container: plugs its last attachment
/// (just added to `config`) into the namespace of process `pid`; a failure
/// deletes the veth it made.
pub fn attach_last(root: &Root, config: &ContainerConfig, pid: i32) -> Result<(), EndpointError> {
    let Some(index) = config.networks.len().checked_sub(1) else {
        return Ok(());
    };
    let a = &config.networks[index];
    let fail = |step| netlink_error(config, a, step);
    let netns = Netns::open(format!("/proc/{pid}/ns/net")).map_err(fail("opening the network namespace"))?;
    let host = Netlink::open().map_err(fail("opening netlink"))?;
    let inside = open_inside(config, &netns)?;
    let mut made = Vec::new();
    let result = plug(root, config, index, &Plugs::new(&host, &inside, &netns), &mut made);
    if result.is_err() {
        for veth in made {
            let _ = host.delete_link(veth);
        }
    }
    result
}

/// `network disconnect` of a running container: deletes the veth of its
/// attachment to `network` (the container's end goes with it).
pub fn detach_one(attachment: &NetworkAttachment) -> Result<(), String> {
    let host = Netlink::open().map_err(|e| format!("opening netlink: {e}"))?;
    match host.delete_link(&attachment.veth_host) {
        Err(e) if !e.is_not_found() => Err(format!("deleting veth {}: {e}", attachment.veth_host)),
        _ => Ok(()),
    }
}

/// A netlink connection inside `netns`, for a caller that may not start
/// threads: after `unshare(CLONE_NEWPID)` the monitor cannot (`clone` with
/// `CLONE_THREAD` fails with EINVAL), so `Netlink::open_in`, which creates
/// its socket on a helper thread, is not an option. Instead the whole
/// (single-threaded) process enters the namespace, creates the socket,
/// which stays bound to that namespace, and goes back.
fn open_inside(config: &ContainerConfig, netns: &Netns) -> Result<Netlink, EndpointError> {
    let setns_error = |step| {
        move |source| EndpointError::Namespace {
            container: config.name.clone(),
            step,
            source,
        }
    };
    let host = std::fs::File::open("/proc/thread-self/ns/net").map_err(|e| {
        let errno = nix::Error::from_raw(e.raw_os_error().unwrap_or(nix::libc::EIO));
        setns_error("opening the host network namespace")(errno)
    })?;
    setns(netns, CloneFlags::CLONE_NEWNET).map_err(setns_error("entering the container network namespace"))?;
    let inside = Netlink::open();
    // Back before anything else can happen in the wrong namespace.
    setns(&host, CloneFlags::CLONE_NEWNET).map_err(setns_error("returning to the host network namespace"))?;
    inside.map_err(|source| EndpointError::Netlink {
        container: config.name.clone(),
        network: config.networks.first().map(|a| a.network.clone()).unwrap_or_default(),
        step: "opening netlink in the container",
        source: Box::new(source),
    })
}

/// Deletes the host ends of the container's veths (gone already when its
/// namespace died: not found is fine). The addresses stay the container's
/// until it is removed, so that it gets them back when it starts again
/// while others may have joined since. Best effort; returns what failed.
pub fn detach_links(config: &ContainerConfig) -> Vec<String> {
    let mut errors = Vec::new();
    if config.networks.is_empty() {
        return errors;
    }
    match Netlink::open() {
        Ok(host) => {
            for a in &config.networks {
                match host.delete_link(&a.veth_host) {
                    Err(e) if !e.is_not_found() => errors.push(format!("deleting veth {}: {e}", a.veth_host)),
                    _ => {}
                }
            }
        }
        Err(e) => errors.push(format!("opening netlink: {e}")),
    }
    errors
}

/// [`detach_links`], then releases the container's addresses (removal).
/// Best effort; returns what failed, as text for the caller's log.
pub fn detach(root: &Root, config: &ContainerConfig) -> Vec<String> {
    let mut errors = detach_links(config);
    let store = NetworkStore::new(root);
    for a in &config.networks {
        match store.release_address(&a.network, &config.id) {
            Ok(_) | Err(NetworkStoreError::NotFound { .. }) => {}
            Err(e) => errors.push(format!("releasing the address on {}: {e}", a.network)),
        }
    }
    errors
}

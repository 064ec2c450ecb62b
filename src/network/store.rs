//! Networks on disk: one record per network at `<root>/networks/<name>.json`,
//! holding its addressing and every address handed out, so allocations
//! survive restarts of the engine.
//!
//! Every change is read-modify-write under `Root::lock("networks")` and
//! lands with `write_atomic` (an address handed out: without the fsync,
//! see [`NetworkStore::allocate_address`]); readers take no lock, since a
//! record is always either the old file or the new one. The decisions
//! themselves are `super::ipam`'s; this module only feeds them the current
//! state.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use nix::fcntl::Flock;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::cidr::Ipv4Cidr;
use super::ipam::{self, Allocations, IpamError, Owner, SubnetConfig, SubnetPolicy, UsedSubnet};
use super::names::bridge_name;
use crate::runtime::container::{new_id, now_rfc3339};
use crate::spec::model::resources::Network;
use crate::store::{create_private_dir, write_atomic, write_atomic_volatile, Root};

/// The only driver berth implements.
pub const DRIVER_BRIDGE: &str = "bridge";
/// The MTU of a bridge unless `com.docker.network.driver.mtu` says otherwise.
pub const DEFAULT_MTU: u32 = 1500;
const MTU_OPTION: &str = "com.docker.network.driver.mtu";
const BRIDGE_NAME_OPTION: &str = "com.docker.network.bridge.name";

#[derive(Debug, Error)]
pub enum NetworkStoreError {
    #[error("{action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("network record {path} is corrupt")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("network {name:?} not found")]
    NotFound { name: String },
    #[error("network {name:?} already exists")]
    AlreadyExists { name: String },
    #[error("invalid network name {name:?}: use letters, digits, '_', '.' and '-', starting with a letter or digit")]
    InvalidName { name: String },
    #[error("network {network:?}: driver {driver:?} is not supported; only \"bridge\" is")]
    UnsupportedDriver { network: String, driver: String },
    #[error("network {network:?}: driver option {option}={value:?}: {reason}")]
    InvalidOption {
        network: String,
        option: &'static str,
        value: String,
        reason: String,
    },
    #[error(
        "network {network:?} is still used by {}; stop or remove them first",
        quoted(containers)
    )]
    InUse { network: String, containers: Vec<String> },
    #[error(transparent)]
    Ipam(#[from] IpamError),
}

fn quoted(names: &[String]) -> String {
    names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
}

/// One network as berth keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub name: String,
    /// 64 hex digits, like docker's network ids.
    pub id: String,
    pub driver: String,
    /// `subnet`, `gateway`, `ip_range`, `aux_addresses`.
    #[serde(flatten)]
    pub addressing: SubnetConfig,
    pub internal: bool,
    pub attachable: bool,
    pub labels: BTreeMap<String, String>,
    /// The kernel name of the bridge (`names::bridge_name`).
    pub bridge: String,
    pub mtu: u32,
    /// Not owned by a compose project (made by `berth network create`), so a
    /// project's `down` never removes it.
    pub external: bool,
    /// RFC 3339.
    pub created: String,
    pub allocations: Allocations,
}

/// What to create: a network's final name and its compose definition.
#[derive(Debug, Clone, Copy)]
pub struct NetworkRequest<'a> {
    pub name: &'a str,
    pub spec: &'a Network,
    /// See [`NetworkRecord::external`].
    pub external: bool,
}

/// The networks of one engine root.
#[derive(Debug, Clone)]
pub struct NetworkStore {
    root: Root,
}

impl NetworkStore {
    pub fn new(root: &Root) -> Self {
        NetworkStore { root: root.clone() }
    }

    pub fn dir(&self) -> PathBuf {
        self.root.path().join("networks")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir().join(format!("{name}.json"))
    }

    /// Creates `networks/` if needed and serialises writers.
    fn lock(&self) -> Result<Flock<File>, NetworkStoreError> {
        let dir = self.dir();
        create_private_dir(&dir).map_err(io_error("creating", &dir))?;
        let lock = self.root.path().join("networks.lock");
        self.root.lock("networks").map_err(io_error("locking", &lock))
    }

    /// Creates a network: validates the request, settles its subnet against
    /// every existing network and `host_routes` (see `routes::host_routes`),
    /// and records it.
    pub fn create(
        &self,
        request: &NetworkRequest<'_>,
        policy: &SubnetPolicy,
        host_routes: &[Ipv4Cidr],
    ) -> Result<NetworkRecord, NetworkStoreError> {
        let name = request.name;
        validate_name(name)?;
        let spec = request.spec;
        let driver = spec.driver.as_deref().unwrap_or(DRIVER_BRIDGE);
        if driver != DRIVER_BRIDGE {
            return Err(NetworkStoreError::UnsupportedDriver {
                network: name.into(),
                driver: driver.into(),
            });
        }
        let mtu = mtu(name, spec)?;
        let bridge = match spec.driver_opts.0.get(BRIDGE_NAME_OPTION) {
            Some(bridge) => {
                berth_netlink::ifname::validate(bridge).map_err(|e| NetworkStoreError::InvalidOption {
                    network: name.into(),
                    option: BRIDGE_NAME_OPTION,
                    value: bridge.clone(),
                    reason: e.to_string(),
                })?;
                bridge.clone()
            }
            None => bridge_name(&self.root.tag(), name),
        };

        let _lock = self.lock()?;
        if self.path(name).exists() {
            return Err(NetworkStoreError::AlreadyExists { name: name.into() });
        }
        let used: Vec<UsedSubnet> = self
            .list()?
            .into_iter()
            .map(|r| UsedSubnet {
                network: r.name,
                subnet: r.addressing.subnet,
            })
            .collect();
        let addressing = ipam::plan_subnet(name, spec, policy, host_routes, &used)?;
        let record = NetworkRecord {
            name: name.into(),
            id: new_id(),
            driver: DRIVER_BRIDGE.into(),
            addressing,
            internal: spec.internal,
            attachable: spec.attachable,
            labels: spec.labels.0.clone(),
            bridge,
            mtu,
            external: request.external,
            created: now_rfc3339(),
            allocations: Allocations::new(),
        };
        self.write(&record)?;
        Ok(record)
    }

    pub fn get(&self, name: &str) -> Result<NetworkRecord, NetworkStoreError> {
        validate_name(name)?;
        let path = self.path(name);
        let bytes = fs::read(&path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => NetworkStoreError::NotFound { name: name.into() },
            _ => NetworkStoreError::Io {
                action: "reading",
                path: path.clone(),
                source,
            },
        })?;
        serde_json::from_slice(&bytes).map_err(|source| NetworkStoreError::Corrupt { path, source })
    }

    /// Every network, by name.
    pub fn list(&self) -> Result<Vec<NetworkRecord>, NetworkStoreError> {
        let dir = self.dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error("listing", &dir)(e)),
        };
        let mut records = Vec::new();
        for entry in entries {
            let file_name = entry.map_err(io_error("listing", &dir))?.file_name();
            // Skips `write_atomic`'s `.name.json.tmp-PID` files and strays.
            let Some(name) = file_name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if validate_name(name).is_ok() {
                records.push(self.get(name)?);
            }
        }
        records.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(records)
    }

    /// Removes a network no container holds an address on; returns its
    /// record so the caller can tear its bridge down.
    pub fn remove(&self, name: &str) -> Result<NetworkRecord, NetworkStoreError> {
        let _lock = self.lock()?;
        let record = self.get(name)?;
        if !record.allocations.is_empty() {
            let mut containers: Vec<String> = record.allocations.values().map(|o| o.container_name.clone()).collect();
            containers.sort();
            containers.dedup();
            return Err(NetworkStoreError::InUse {
                network: name.into(),
                containers,
            });
        }
        let path = self.path(name);
        fs::remove_file(&path).map_err(io_error("removing", &path))?;
        Ok(record)
    }

    /// Gives `owner` an address on `network` (see `SubnetConfig::allocate`)
    /// and records it; a different address it held there is released.
    pub fn allocate_address(
        &self,
        network: &str,
        owner: &Owner,
        requested: Option<Ipv4Addr>,
    ) -> Result<Ipv4Addr, NetworkStoreError> {
        let _lock = self.lock()?;
        let mut record = self.get(network)?;
        let address = record
            .addressing
            .allocate(network, &record.allocations, owner, requested)?;
        if record.allocations.get(&address) != Some(owner) {
            ipam::release(&mut record.allocations, &owner.container_id);
            record.allocations.insert(address, owner.clone());
            // No fsync: it took 3-9 ms of every container's create on a busy
            // disk (docs/bench-net.md). An allocation is not the only copy:
            // the container's config records its address, and
            // `endpoint::claim` takes it again at every start, so one lost
            // in a host crash comes back (or, if another container took it
            // meanwhile, the start fails naming the holder). ext4
            // (`auto_da_alloc`) and btrfs flush a file renamed over another,
            // so a crash leaves the old record or the new one; a filesystem
            // without that (XFS) can leave it empty, which the engine's
            // recovery drops (docs/bench-net.md).
            self.write_with(&record, write_atomic_volatile)?;
        }
        Ok(address)
    }

    /// Frees the address `container_id` holds on `network`, if any.
    pub fn release_address(&self, network: &str, container_id: &str) -> Result<Option<Ipv4Addr>, NetworkStoreError> {
        let _lock = self.lock()?;
        let mut record = self.get(network)?;
        let freed = ipam::release(&mut record.allocations, container_id);
        if !freed.is_empty() {
            self.write(&record)?;
        }
        Ok(freed.first().copied())
    }

    /// Frees every address `container_id` holds, on every network; returns
    /// `(network, address)` pairs.
    pub fn release_all_for(&self, container_id: &str) -> Result<Vec<(String, Ipv4Addr)>, NetworkStoreError> {
        let _lock = self.lock()?;
        let mut freed = Vec::new();
        for mut record in self.list()? {
            let addresses = ipam::release(&mut record.allocations, container_id);
            if !addresses.is_empty() {
                self.write(&record)?;
                freed.extend(addresses.into_iter().map(|a| (record.name.clone(), a)));
            }
        }
        Ok(freed)
    }

    fn write(&self, record: &NetworkRecord) -> Result<(), NetworkStoreError> {
        self.write_with(record, write_atomic)
    }

    fn write_with(
        &self,
        record: &NetworkRecord,
        write: fn(&Path, &[u8]) -> io::Result<()>,
    ) -> Result<(), NetworkStoreError> {
        let path = self.path(&record.name);
        let json = serde_json::to_vec_pretty(record).map_err(|source| NetworkStoreError::Corrupt {
            path: path.clone(),
            source,
        })?;
        write(&path, &json).map_err(io_error("writing", &path))
    }
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> NetworkStoreError {
    let path = path.to_path_buf();
    move |source| NetworkStoreError::Io { action, path, source }
}

/// Docker's rule (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`); it also keeps the name a
/// plain file name under `networks/`.
fn validate_name(name: &str) -> Result<(), NetworkStoreError> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if valid {
        Ok(())
    } else {
        Err(NetworkStoreError::InvalidName { name: name.into() })
    }
}

/// `com.docker.network.driver.mtu`, from 68 (the IPv4 minimum, RFC 791) to
/// 65535.
fn mtu(network: &str, spec: &Network) -> Result<u32, NetworkStoreError> {
    let Some(value) = spec.driver_opts.0.get(MTU_OPTION) else {
        return Ok(DEFAULT_MTU);
    };
    match value.trim().parse::<u32>() {
        Ok(mtu) if (68..=65535).contains(&mtu) => Ok(mtu),
        _ => Err(NetworkStoreError::InvalidOption {
            network: network.into(),
            option: MTU_OPTION,
            value: value.clone(),
            reason: "expected a number from 68 to 65535".into(),
        }),
    }
}

#[cfg(test)]
mod tests;

//! `berth network …`: create, ls, inspect, rm, prune (driver `bridge`),
//! and the lookup that joins a new container to a network.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Subcommand, ValueEnum};
use serde_json::json;

use crate::network::ipam::Owner;
use crate::network::{NetworkRecord, NetworkStore};
use crate::runtime::config::NetworkAttachment;
use crate::spec::model::forms::StringMap;
use crate::spec::model::resources::{Ipam, IpamPool, Network};
use crate::store::Root;

#[derive(Debug, clap::Args)]
pub struct NetworkArgs {
    #[command(subcommand)]
    pub command: NetworkCommand,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
// Each subcommand's arguments are built only when it is the one invoked:
// building the whole tree cost ~0.8 ms of every berth start.
#[command(defer = true)]
pub enum NetworkCommand {
    /// Create a bridge network.
    Create {
        #[arg(short, long, default_value = crate::network::store::DRIVER_BRIDGE)]
        driver: String,
        /// IPv4 subnet in CIDR form (default: the first free pool subnet).
        #[arg(long)]
        subnet: Option<String>,
        /// Gateway address (default: the subnet's first host address).
        #[arg(long)]
        gateway: Option<String>,
        /// Where dynamic addresses come from, inside the subnet.
        #[arg(long = "ip-range")]
        ip_range: Option<String>,
        /// No NAT and no default route: containers only reach each other.
        #[arg(long)]
        internal: bool,
        #[arg(long)]
        attachable: bool,
        #[arg(long = "label", value_name = "KEY=VALUE")]
        labels: Vec<String>,
        /// A driver option, e.g. com.docker.network.driver.mtu=1400.
        #[arg(short = 'o', long = "opt", value_name = "KEY=VALUE")]
        opts: Vec<String>,
        name: String,
    },
    /// List networks.
    #[command(visible_alias = "list")]
    Ls {
        /// Only network names.
        #[arg(short, long)]
        quiet: bool,
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// Show networks as a JSON array.
    Inspect {
        #[arg(required = true, value_name = "NETWORK")]
        networks: Vec<String>,
    },
    /// Remove networks; one with containers attached is refused.
    #[command(visible_alias = "remove")]
    Rm {
        #[arg(required = true, value_name = "NETWORK")]
        networks: Vec<String>,
    },
    /// Join a container to a network (at once when it runs).
    Connect {
        /// A static IPv4 address on the network.
        #[arg(long)]
        ip: Option<String>,
        /// Another name for the container on this network (repeatable).
        #[arg(long = "alias")]
        aliases: Vec<String>,
        network: String,
        container: String,
    },
    /// Take a container off a network.
    Disconnect { network: String, container: String },
    /// Remove every network no container is attached to.
    Prune {
        /// Do not prompt for confirmation (berth never asks).
        #[arg(short, long)]
        force: bool,
    },
}

pub fn run(root: &Root, args: &NetworkArgs) -> anyhow::Result<ExitCode> {
    let store = NetworkStore::new(root);
    let mut out = io::stdout().lock();
    match &args.command {
        NetworkCommand::Create {
            driver,
            subnet,
            gateway,
            ip_range,
            internal,
            attachable,
            labels,
            opts,
            name,
        } => {
            if subnet.is_none() && (gateway.is_some() || ip_range.is_some()) {
                bail!("--gateway and --ip-range need --subnet");
            }
            let ipam = subnet.as_ref().map(|subnet| Ipam {
                config: vec![IpamPool {
                    subnet: Some(subnet.clone()),
                    ip_range: ip_range.clone(),
                    gateway: gateway.clone(),
                    ..Default::default()
                }],
                ..Default::default()
            });
            let spec = Network {
                driver: Some(driver.clone()),
                driver_opts: StringMap(super::key_values(opts, "option")?),
                ipam,
                internal: *internal,
                attachable: *attachable,
                labels: StringMap(super::key_values(labels, "label")?),
                ..Default::default()
            };
            let record = create(root, &store, name, &spec)?;
            writeln!(out, "{}", record.id)?;
        }
        NetworkCommand::Ls { quiet, format } => {
            let records = store.list()?;
            if *quiet {
                for r in &records {
                    writeln!(out, "{}", r.name)?;
                }
            } else if *format == ListFormat::Json {
                for r in &records {
                    let row = json!({
                        "ID": &r.id[..12], "Name": r.name, "Driver": r.driver, "Scope": "local",
                        "Internal": r.internal, "Labels": r.labels, "CreatedAt": r.created,
                    });
                    writeln!(out, "{row}")?;
                }
            } else {
                writeln!(out, "{:<14}{:<24}{:<10}SCOPE", "NETWORK ID", "NAME", "DRIVER")?;
                for r in &records {
                    writeln!(out, "{:<14}{:<24}{:<10}local", &r.id[..12], r.name, r.driver)?;
                }
            }
        }
        NetworkCommand::Inspect { networks } => {
            let mut shown = Vec::new();
            let mut failed = false;
            for name in networks {
                match store.get(name) {
                    Ok(r) => shown.push(inspect(&r)),
                    Err(e) => {
                        eprintln!("Error response from daemon: {e}");
                        failed = true;
                    }
                }
            }
            writeln!(out, "{}", serde_json::to_string_pretty(&shown)?)?;
            if failed {
                return Ok(ExitCode::FAILURE);
            }
        }
        NetworkCommand::Rm { networks } => {
            let mut failed = false;
            for name in networks {
                match remove(root, &store, name) {
                    Ok(()) => writeln!(out, "{name}")?,
                    Err(e) => {
                        eprintln!("Error response from daemon: {e:#}");
                        failed = true;
                    }
                }
            }
            if failed {
                return Ok(ExitCode::FAILURE);
            }
        }
        NetworkCommand::Connect {
            ip,
            aliases,
            network,
            container,
        } => {
            super::network_connect::connect(root, network, container, ip.as_deref(), aliases)?;
        }
        NetworkCommand::Disconnect { network, container } => {
            super::network_connect::disconnect(root, network, container)?;
        }
        NetworkCommand::Prune { force: _ } => {
            let mut removed = Vec::new();
            for r in store.list()?.into_iter().filter(|r| r.allocations.is_empty()) {
                // A container may have attached since the listing: the
                // store refuses then, and prune moves on.
                if remove(root, &store, &r.name).is_ok() {
                    removed.push(r.name);
                }
            }
            if !removed.is_empty() {
                writeln!(out, "Deleted Networks:")?;
                for name in &removed {
                    writeln!(out, "{name}")?;
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn create(root: &Root, _store: &NetworkStore, name: &str, spec: &Network) -> anyhow::Result<NetworkRecord> {
    Ok(crate::network::provision::create_network(root, name, spec, true)?)
}

fn remove(root: &Root, _store: &NetworkStore, name: &str) -> anyhow::Result<()> {
    Ok(crate::network::provision::remove_network(root, name)?)
}

/// docker's shape, trimmed to what berth has.
fn inspect(r: &NetworkRecord) -> serde_json::Value {
    let containers: BTreeMap<String, serde_json::Value> = r
        .allocations
        .iter()
        .map(|(address, owner)| {
            (
                owner.container_id.clone(),
                json!({ "Name": owner.container_name, "IPv4Address": format!("{address}/{}", r.addressing.subnet.prefix()) }),
            )
        })
        .collect();
    let mut ipam = json!({ "Subnet": r.addressing.subnet.to_string(), "Gateway": r.addressing.gateway.to_string() });
    if let Some(range) = r.addressing.ip_range {
        ipam["IPRange"] = json!(range.to_string());
    }
    json!({
        "Name": r.name,
        "Id": r.id,
        "Created": r.created,
        "Scope": "local",
        "Driver": r.driver,
        "EnableIPv6": false,
        "IPAM": { "Driver": "default", "Options": {}, "Config": [ipam] },
        "Internal": r.internal,
        "Attachable": r.attachable,
        "Containers": containers,
        "Options": {
            "com.docker.network.bridge.name": r.bridge,
            "com.docker.network.driver.mtu": r.mtu.to_string(),
        },
        "Labels": r.labels,
    })
}

/// Allocates the address of a new container on `network` (`ip` if given)
/// and describes the attachment; the caller releases it if the container
/// is not created after all.
pub(crate) fn attach_new_container(
    root: &Root,
    network: &str,
    ip: Option<&str>,
    aliases: &[String],
    owner: &Owner,
) -> anyhow::Result<NetworkAttachment> {
    let requested = ip
        .map(|ip| ip.parse::<Ipv4Addr>().with_context(|| format!("invalid --ip {ip:?}")))
        .transpose()?;
    Ok(crate::network::provision::attach_new_container(
        root, network, requested, aliases, owner, 0,
    )?)
}

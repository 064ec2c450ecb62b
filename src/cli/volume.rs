//! `berth volume …`: create, ls, inspect, rm, prune (driver `local`).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use serde_json::json;

use crate::runtime::create::{VolumeRequest, VolumeSource};
use crate::store::Root;
use crate::volume::{LockedVolumes, Volume, VolumeStore, LOCAL_DRIVER};

#[derive(Debug, clap::Args)]
pub struct VolumeArgs {
    #[command(subcommand)]
    pub command: VolumeCommand,
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
pub enum VolumeCommand {
    /// Create a volume (a random name when none is given).
    Create {
        #[arg(short, long, default_value = LOCAL_DRIVER)]
        driver: String,
        /// A driver option: type=tmpfs|none|FSTYPE, o=OPTIONS, device=PATH.
        #[arg(short = 'o', long = "opt", value_name = "KEY=VALUE")]
        opts: Vec<String>,
        #[arg(long = "label", value_name = "KEY=VALUE")]
        labels: Vec<String>,
        name: Option<String>,
    },
    /// List volumes.
    #[command(visible_alias = "list")]
    Ls {
        /// Only volume names.
        #[arg(short, long)]
        quiet: bool,
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// Show volumes as a JSON array.
    Inspect {
        #[arg(required = true, value_name = "VOLUME")]
        volumes: Vec<String>,
    },
    /// Remove volumes; one a container uses is refused unless forced.
    #[command(visible_alias = "remove")]
    Rm {
        /// Remove even while containers use it; ignore missing volumes.
        #[arg(short, long)]
        force: bool,
        #[arg(required = true, value_name = "VOLUME")]
        volumes: Vec<String>,
    },
    /// Remove unused anonymous volumes (all unused ones with -a).
    Prune {
        /// Do not prompt for confirmation (berth never asks).
        #[arg(short, long)]
        force: bool,
        #[arg(short, long)]
        all: bool,
    },
}

pub fn run(root: &Root, args: &VolumeArgs) -> anyhow::Result<ExitCode> {
    let store = VolumeStore::open(root)?;
    let mut out = io::stdout().lock();
    match &args.command {
        VolumeCommand::Create {
            driver,
            opts,
            labels,
            name,
        } => {
            let volume = store.lock()?.create(
                name.as_deref(),
                driver,
                super::key_values(opts, "option")?,
                super::key_values(labels, "label")?,
            )?;
            writeln!(out, "{}", volume.name)?;
        }
        VolumeCommand::Ls { quiet, format } => {
            let volumes = store.list()?;
            if *quiet {
                for v in &volumes {
                    writeln!(out, "{}", v.name)?;
                }
            } else if *format == ListFormat::Json {
                for v in &volumes {
                    let row = json!({
                        "Driver": v.driver, "Labels": v.labels, "Mountpoint": store.mountpoint(&v.name),
                        "Name": v.name, "Scope": "local",
                    });
                    writeln!(out, "{row}")?;
                }
            } else {
                writeln!(out, "{:<16}VOLUME NAME", "DRIVER")?;
                for v in &volumes {
                    writeln!(out, "{:<16}{}", v.driver, v.name)?;
                }
            }
        }
        VolumeCommand::Inspect { volumes } => {
            let mut shown = Vec::new();
            let mut failed = false;
            for name in volumes {
                match store.get(name) {
                    Ok(v) => shown.push(inspect(&store, &v)),
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
        VolumeCommand::Rm { force, volumes } => {
            let locked = store.lock()?;
            let mut failed = false;
            for name in volumes {
                match locked.remove(name, *force) {
                    Ok(()) => writeln!(out, "{name}")?,
                    Err(crate::volume::VolumeError::NotFound(_)) if *force => {}
                    Err(e) => {
                        eprintln!("Error response from daemon: {e}");
                        failed = true;
                    }
                }
            }
            if failed {
                return Ok(ExitCode::FAILURE);
            }
        }
        VolumeCommand::Prune { force: _, all } => {
            let removed = store.lock()?.prune(*all)?;
            if !removed.is_empty() {
                writeln!(out, "Deleted Volumes:")?;
                for name in &removed {
                    writeln!(out, "{name}")?;
                }
                writeln!(out)?;
            }
            writeln!(out, "Total reclaimed volumes: {}", removed.len())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// docker's shape: Name, Driver, Mountpoint, Labels, Options, Scope,
/// CreatedAt (`null` for empty labels and options, as docker prints them).
fn inspect(store: &VolumeStore, v: &Volume) -> serde_json::Value {
    let or_null = |m: &BTreeMap<String, String>| if m.is_empty() { json!(null) } else { json!(m) };
    json!({
        "CreatedAt": v.created,
        "Driver": v.driver,
        "Labels": or_null(&v.labels),
        "Mountpoint": store.mountpoint(&v.name),
        "Name": v.name,
        "Options": or_null(&v.driver_opts),
        "Scope": "local",
    })
}

/// See [`LockedVolumes::resolve_for_container`].
pub(super) fn resolve_for_container(
    volumes: &LockedVolumes<'_>,
    requests: &[VolumeRequest],
) -> anyhow::Result<(BTreeMap<VolumeRequest, VolumeSource>, Vec<String>)> {
    Ok(volumes.resolve_for_container(requests)?)
}

//! `berth system info|df|prune`: the whole engine root, not a project.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::ops::print_table;
use super::Format;
use crate::engine::stats::binary_size;
use crate::engine::system::{df, info, prune};
use crate::store::Root;

#[derive(Debug, Args)]
pub struct SystemArgs {
    #[command(subcommand)]
    pub command: SystemCommand,
}

#[derive(Debug, Subcommand)]
// Each subcommand's arguments are built only when it is the one invoked:
// building the whole tree cost ~0.8 ms of every berth start.
#[command(defer = true)]
pub enum SystemCommand {
    /// Engine version, root, cgroups, kernel facts and object counts.
    Info {
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Disk usage of images, containers and volumes.
    Df {
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Remove stopped containers, unused networks and dangling images.
    Prune {
        /// Remove every unused image, not only dangling ones (and named
        /// volumes too with --volumes).
        #[arg(short, long)]
        all: bool,
        /// Remove unused volumes too.
        #[arg(long)]
        volumes: bool,
        /// Don't ask for confirmation.
        #[arg(short, long)]
        force: bool,
    },
}

pub fn run(root: &Root, args: &SystemArgs) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match &args.command {
        SystemCommand::Info { format } => print_info(root, &mut out, *format)?,
        SystemCommand::Df { format } => print_df(root, &mut out, *format)?,
        SystemCommand::Prune { all, volumes, force } => {
            let options = prune::PruneOptions {
                all: *all,
                volumes: *volumes,
            };
            if !force && !confirm(options)? {
                return Ok(ExitCode::SUCCESS);
            }
            return print_prune(root, &mut out, options);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_info(root: &Root, out: &mut impl Write, format: Format) -> anyhow::Result<()> {
    let info = info::info(root)?;
    // Asked, never started: `info` describes the engine as it is.
    let engine = crate::engine::api::Client::new(crate::engine::api::socket_path(root))
        .request("GET", "/v1/version", None)
        .ok();
    if format == Format::Json {
        let mut value = serde_json::to_value(&info)?;
        value["EngineRunning"] = serde_json::json!(engine.is_some());
        writeln!(out, "{value}")?;
        return Ok(());
    }
    let engine = match &engine {
        Some(v) => format!("running (pid {})", v["pid"]),
        None => "not running".to_string(),
    };
    let seccomp = if info.seccomp {
        "seccomp (profile=default)"
    } else {
        "none"
    };
    writeln!(out, "Server:")?;
    writeln!(out, " Containers: {}", info.containers)?;
    writeln!(out, "  Running: {}", info.containers_running)?;
    writeln!(out, "  Paused: {}", info.containers_paused)?;
    writeln!(out, "  Stopped: {}", info.containers_stopped)?;
    writeln!(out, " Images: {}", info.images)?;
    writeln!(out, " Volumes: {}", info.volumes)?;
    writeln!(out, " Networks: {}", info.networks)?;
    writeln!(out, " Server Version: {}", info.server_version)?;
    writeln!(out, " API Version: {}", info.api_version)?;
    writeln!(out, " Engine: {engine}")?;
    writeln!(out, " Berth Root Dir: {}", info.root_dir.display())?;
    writeln!(out, " Storage Driver: overlay (overlayfs available: {})", info.overlay)?;
    writeln!(out, " Cgroup Driver: {}", info.cgroup_driver)?;
    writeln!(
        out,
        " Cgroup Version: {} ({})",
        info.cgroup_version, info.cgroup_hierarchy
    )?;
    writeln!(out, " Security Options: {seccomp}")?;
    writeln!(out, " Kernel Version: {}", info.kernel_version)?;
    writeln!(out, " Operating System: {}", info.operating_system)?;
    writeln!(out, " Architecture: {}", info.architecture)?;
    writeln!(out, " CPUs: {}", info.ncpu)?;
    writeln!(out, " Total Memory: {}", binary_size(info.mem_total))?;
    Ok(())
}

fn print_df(root: &Root, out: &mut impl Write, format: Format) -> anyhow::Result<()> {
    let lines = df::df(root)?;
    if format == Format::Json {
        for line in &lines {
            writeln!(out, "{}", serde_json::to_string(line)?)?;
        }
        return Ok(());
    }
    let rows: Vec<[String; 5]> = lines
        .iter()
        .map(|l| {
            let percent = l.reclaimable.saturating_mul(100).checked_div(l.size).unwrap_or(0);
            [
                l.kind.clone(),
                l.total.to_string(),
                l.active.to_string(),
                binary_size(l.size),
                format!("{} ({percent}%)", binary_size(l.reclaimable)),
            ]
        })
        .collect();
    print_table(out, &["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], &rows)?;
    Ok(())
}

/// docker's question; anything but `y`/`yes` (or no terminal answer at
/// all) keeps everything.
fn confirm(options: prune::PruneOptions) -> anyhow::Result<bool> {
    let mut err = std::io::stderr().lock();
    writeln!(err, "WARNING! This will remove:")?;
    writeln!(err, "  - all stopped containers")?;
    writeln!(err, "  - all networks not used by at least one container")?;
    match (options.volumes, options.all) {
        (true, true) => writeln!(err, "  - all volumes not used by at least one container")?,
        (true, false) => writeln!(err, "  - all anonymous volumes not used by at least one container")?,
        _ => {}
    }
    if options.all {
        writeln!(err, "  - all images without at least one container associated to them")?;
    } else {
        writeln!(err, "  - all dangling images")?;
    }
    write!(err, "\nAre you sure you want to continue? [y/N] ")?;
    err.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}

fn print_prune(root: &Root, out: &mut impl Write, options: prune::PruneOptions) -> anyhow::Result<ExitCode> {
    let report = prune::prune(root, options)?;
    for (title, items) in [
        ("Deleted Containers:", &report.containers),
        ("Deleted Networks:", &report.networks),
        ("Deleted Images:", &report.images),
        ("Deleted Volumes:", &report.volumes),
    ] {
        if items.is_empty() {
            continue;
        }
        writeln!(out, "{title}")?;
        for item in items {
            writeln!(out, "{item}")?;
        }
        writeln!(out)?;
    }
    writeln!(out, "Total reclaimed space: {}", binary_size(report.reclaimed))?;
    for error in &report.errors {
        eprintln!("Error: {error}");
    }
    Ok(if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

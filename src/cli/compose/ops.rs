//! The compose verbs on existing containers: `ps`, `ls`, `start`, `stop`,
//! `restart`, `kill`, `rm`, `pause`, `unpause`, `exec`, `port`, `top`,
//! `images`.

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail};
use clap::Args;

use super::{containers, print_event, project_name, Format};
use crate::cli::Cli;
use crate::engine::apply::Event;
use crate::engine::labels;
use crate::engine::project;
use crate::runtime::config::Status;
use crate::runtime::container::Container;
use crate::runtime::exec::{self, ExecOptions};
use crate::runtime::lifecycle;
use crate::store::Root;

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show stopped containers too (and one-offs).
    #[arg(short, long)]
    pub all: bool,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Only the service names.
    #[arg(long)]
    pub services: bool,
    /// Only the container ids.
    #[arg(short, long)]
    pub quiet: bool,
    /// Only containers in this state (repeatable).
    #[arg(long)]
    pub status: Vec<String>,
    #[arg(value_name = "SERVICE")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Show stopped projects too.
    #[arg(short, long)]
    pub all: bool,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ServicesArgs {
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds before SIGKILL.
    #[arg(short, long)]
    pub timeout: Option<u64>,
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    #[arg(short, long, default_value = "SIGKILL")]
    pub signal: String,
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Stop running containers first.
    #[arg(short, long)]
    pub stop: bool,
    /// Don't ask (berth never asks).
    #[arg(short, long)]
    pub force: bool,
    /// Remove anonymous volumes too.
    #[arg(short, long)]
    pub volumes: bool,
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// No pseudo-terminal (berth's exec uses this terminal's stdio).
    #[arg(short = 'T')]
    pub no_tty: bool,
    #[arg(short, long)]
    pub detach: bool,
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    #[arg(short, long)]
    pub user: Option<String>,
    #[arg(short, long)]
    pub workdir: Option<String>,
    #[arg(long)]
    pub privileged: bool,
    /// Which replica (1-based).
    #[arg(long, default_value_t = 1)]
    pub index: u32,
    pub service: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PortArgs {
    #[arg(long, default_value = "tcp")]
    pub protocol: String,
    #[arg(long, default_value_t = 1)]
    pub index: u32,
    pub service: String,
    pub port: u16,
}

fn selected(cli: &Cli, services: &[String]) -> anyhow::Result<(Root, Vec<Container>)> {
    let root = Root::new(&cli.root);
    let project = project_name(cli)?;
    let list = containers(&root, &project, services)?;
    Ok((root, list))
}

/// Runs `action` on every container in parallel, reporting each failure.
fn each(list: &[Container], action: impl Fn(&Container) -> anyhow::Result<()> + Sync) -> anyhow::Result<ExitCode> {
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = list.iter().map(|c| scope.spawn(|| action(c))).collect();
        handles
            .into_iter()
            .zip(list)
            .filter_map(|(h, c)| match h.join() {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(format!("{}: {e:#}", c.config.name)),
                Err(_) => Some(format!("{}: panicked", c.config.name)),
            })
            .collect()
    });
    if failures.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    bail!("{}", failures.join("\n"))
}

fn event(c: &Container, status: &str) {
    print_event(Event::new("Container", &c.config.name, status));
}

pub fn ps(cli: &Cli, args: &PsArgs) -> anyhow::Result<ExitCode> {
    let root = Root::new(&cli.root);
    let name = project_name(cli)?;
    let value = super::engine(&root)?.request("GET", &format!("/v1/projects/{name}/containers?all=true"), None)?;
    let mut list: Vec<project::ContainerSummary> = serde_json::from_value(value)?;
    list.retain(|c| args.names.is_empty() || args.names.contains(&c.service));
    if !args.all {
        list.retain(|c| c.state == "running" || c.state == "paused" || c.state == "restarting");
    }
    if !args.status.is_empty() {
        list.retain(|c| args.status.contains(&c.state));
    }
    let mut out = std::io::stdout().lock();
    if args.services {
        let services: BTreeSet<&str> = list.iter().map(|c| c.service.as_str()).collect();
        for s in services {
            writeln!(out, "{s}")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.quiet {
        for c in &list {
            writeln!(out, "{}", c.id)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.format == Format::Json {
        writeln!(out, "{}", serde_json::to_string(&list)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<[String; 6]> = list
        .iter()
        .map(|c| {
            let ports: Vec<String> = c
                .publishers
                .iter()
                .map(|p| format!("{}:{}->{}/{}", p.url, p.published_port, p.target_port, p.protocol))
                .collect();
            [
                c.name.clone(),
                c.image.clone(),
                format!("\"{}\"", c.command),
                c.service.clone(),
                c.status.clone(),
                ports.join(", "),
            ]
        })
        .collect();
    print_table(
        &mut out,
        &["NAME", "IMAGE", "COMMAND", "SERVICE", "STATUS", "PORTS"],
        &rows,
    )?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn print_table<const N: usize>(
    out: &mut impl Write,
    header: &[&str; N],
    rows: &[[String; N]],
) -> std::io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<w$}   ", w = widths[i]));
            }
        }
        text.trim_end().to_string()
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

pub fn ls(cli: &Cli, args: &LsArgs) -> anyhow::Result<ExitCode> {
    let root = Root::new(&cli.root);
    let value = super::engine(&root)?.request("GET", "/v1/projects", None)?;
    let projects: std::collections::BTreeMap<String, (usize, usize)> = value
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|p| {
                    let name = p["name"].as_str()?.to_string();
                    let running = usize::try_from(p["running"].as_u64()?).ok()?;
                    let total = usize::try_from(p["total"].as_u64()?).ok()?;
                    Some((name, (running, total)))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut out = std::io::stdout().lock();
    let shown: Vec<(&String, &(usize, usize))> = projects
        .iter()
        .filter(|(_, (running, _))| args.all || *running > 0)
        .collect();
    if args.quiet {
        for (name, _) in shown {
            writeln!(out, "{name}")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let status = |running: usize, total: usize| {
        if running == total {
            format!("running({running})")
        } else if running == 0 {
            format!("exited({total})")
        } else {
            format!("running({running}), exited({})", total - running)
        }
    };
    if args.format == Format::Json {
        let list: Vec<serde_json::Value> = shown
            .iter()
            .map(|(name, (r, t))| serde_json::json!({ "Name": name, "Status": status(*r, *t) }))
            .collect();
        writeln!(out, "{}", serde_json::to_string(&list)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<[String; 2]> = shown.iter().map(|(n, (r, t))| [(*n).clone(), status(*r, *t)]).collect();
    print_table(&mut out, &["NAME", "STATUS"], &rows)?;
    Ok(ExitCode::SUCCESS)
}

pub fn start(cli: &Cli, args: &ServicesArgs) -> anyhow::Result<ExitCode> {
    let (root, list) = selected(cli, &args.services)?;
    each(&list, |c| {
        event(c, "Starting");
        lifecycle::start(&root, c)?;
        event(c, "Started");
        Ok(())
    })
}

pub fn stop(cli: &Cli, args: &StopArgs) -> anyhow::Result<ExitCode> {
    let (root, list) = selected(cli, &args.services)?;
    each(&list, |c| {
        event(c, "Stopping");
        let timeout = Duration::from_secs(args.timeout.unwrap_or(c.config.stop_timeout));
        lifecycle::stop(&root, c, timeout)?;
        event(c, "Stopped");
        Ok(())
    })
}

pub fn restart(cli: &Cli, args: &StopArgs) -> anyhow::Result<ExitCode> {
    let (root, list) = selected(cli, &args.services)?;
    each(&list, |c| {
        event(c, "Restarting");
        let timeout = Duration::from_secs(args.timeout.unwrap_or(c.config.stop_timeout));
        lifecycle::stop(&root, c, timeout)?;
        lifecycle::start(&root, c)?;
        event(c, "Started");
        Ok(())
    })
}

pub fn kill(cli: &Cli, args: &KillArgs) -> anyhow::Result<ExitCode> {
    let (_, list) = selected(cli, &args.services)?;
    let signal = lifecycle::parse_signal(&args.signal)?;
    let running: Vec<Container> = list
        .into_iter()
        .filter(|c| c.state().is_ok_and(|s| s.status == Status::Running))
        .collect();
    each(&running, |c| {
        lifecycle::kill_container(c, signal)?;
        event(c, "Killed");
        Ok(())
    })
}

pub fn rm(cli: &Cli, args: &RmArgs) -> anyhow::Result<ExitCode> {
    let (root, list) = selected(cli, &args.services)?;
    let mut removable = Vec::new();
    for c in list {
        let running = c
            .state()
            .is_ok_and(|s| matches!(s.status, Status::Running | Status::Paused));
        if running && !args.stop {
            continue;
        }
        removable.push(c);
    }
    if removable.is_empty() {
        eprintln!("No stopped containers");
        return Ok(ExitCode::SUCCESS);
    }
    each(&removable, |c| {
        lifecycle::stop(&root, c, Duration::from_secs(c.config.stop_timeout))?;
        event(c, "Removing");
        if args.volumes {
            lifecycle::remove_with_volumes(&root, c, true)?;
        } else {
            lifecycle::remove(&root, c, true)?;
        }
        event(c, "Removed");
        Ok(())
    })
}

pub fn pause(cli: &Cli, args: &ServicesArgs) -> anyhow::Result<ExitCode> {
    let (root, list) = selected(cli, &args.services)?;
    each(&list, |c| {
        lifecycle::pause(&root, c)?;
        event(c, "Paused");
        Ok(())
    })
}

pub fn unpause(cli: &Cli, args: &ServicesArgs) -> anyhow::Result<ExitCode> {
    let (root, list) = selected(cli, &args.services)?;
    each(&list, |c| {
        lifecycle::unpause(&root, c)?;
        event(c, "Unpaused");
        Ok(())
    })
}

fn replica(list: Vec<Container>, service: &str, index: u32) -> anyhow::Result<Container> {
    list.into_iter()
        .find(|c| c.config.labels.get(labels::NUMBER).and_then(|n| n.parse().ok()) == Some(index))
        .ok_or_else(|| anyhow!("service {service:?} has no container with index {index}"))
}

pub fn exec(cli: &Cli, args: &ExecArgs) -> anyhow::Result<ExitCode> {
    let (root, list) = selected(cli, std::slice::from_ref(&args.service))?;
    let c = replica(list, &args.service, args.index)?;
    if !c.state().is_ok_and(|s| s.status == Status::Running) {
        bail!("service {:?} is not running", args.service);
    }
    let code = exec::exec(
        &root,
        &c,
        &ExecOptions {
            args: args.command.clone(),
            env: args.env.clone(),
            user: args.user.clone(),
            workdir: args.workdir.clone(),
            privileged: args.privileged,
            // compose allocates a terminal unless -T (or stdin is none).
            tty: !args.no_tty && std::io::stdin().is_terminal(),
            interactive: !args.no_tty && std::io::stdin().is_terminal(),
        },
    )?;
    Ok(ExitCode::from(u8::try_from(code.clamp(0, 255)).unwrap_or(1)))
}

pub fn port(cli: &Cli, args: &PortArgs) -> anyhow::Result<ExitCode> {
    let (_, list) = selected(cli, std::slice::from_ref(&args.service))?;
    let c = replica(list, &args.service, args.index)?;
    let port = c
        .config
        .ports
        .iter()
        .find(|p| p.container_port == args.port && p.protocol.to_string() == args.protocol)
        .ok_or_else(|| {
            anyhow!(
                "no port {}/{} for container {}",
                args.port,
                args.protocol,
                c.config.name
            )
        })?;
    println!("{}", crate::runtime::ports::host_address(port));
    Ok(ExitCode::SUCCESS)
}

pub fn top(cli: &Cli, args: &ServicesArgs) -> anyhow::Result<ExitCode> {
    let (root, list) = selected(cli, &args.services)?;
    for c in list
        .iter()
        .filter(|c| c.state().is_ok_and(|s| s.status == Status::Running))
    {
        println!("{}", c.config.name);
        crate::cli::container::top_of(&root, &c.config.id)?;
        println!();
    }
    Ok(ExitCode::SUCCESS)
}

pub fn images(cli: &Cli, args: &ServicesArgs) -> anyhow::Result<ExitCode> {
    let (_, list) = selected(cli, &args.services)?;
    let rows: Vec<[String; 3]> = list
        .iter()
        .map(|c| {
            [
                c.config.name.clone(),
                c.config.image.clone(),
                c.config.image_id.chars().take(19).collect(),
            ]
        })
        .collect();
    print_table(
        &mut std::io::stdout().lock(),
        &["CONTAINER", "IMAGE", "IMAGE ID"],
        &rows,
    )?;
    Ok(ExitCode::SUCCESS)
}

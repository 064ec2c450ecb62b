//! `berth container …`: docker-like low-level verbs over the runtime.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clap::{Args, Subcommand};

use crate::cli::attach;
use crate::runtime::config::Status;
use crate::runtime::container::{self, Container};
use crate::runtime::exec::{self, ExecOptions};
use crate::runtime::lifecycle;
use crate::store::Root;

mod create_cmd;
pub mod early_monitor;
mod files;
mod logs_cmd;
mod show;

use create_cmd::{create_container, run_container};
use logs_cmd::print_logs;
use show::{inspect, list, top};

pub(crate) use files::{cp, CpArgs};

pub use create_cmd::{CreateArgs, RunArgs};
pub use logs_cmd::LogsArgs;
pub use show::ListFormat;

#[derive(Debug, Args)]
pub struct ContainerArgs {
    #[command(subcommand)]
    pub command: ContainerCommand,
}

#[derive(Debug, Subcommand)]
// Each subcommand's arguments are built only when it is the one invoked:
// building the whole tree cost ~0.8 ms of every berth start.
#[command(defer = true)]
pub enum ContainerCommand {
    /// Create and start a container.
    Run(RunArgs),
    /// Create a container without starting it.
    Create(CreateArgs),
    /// Start stopped or created containers.
    Start {
        /// Attach to the container's output (and stdin with -i).
        #[arg(short, long)]
        attach: bool,
        #[arg(short, long)]
        interactive: bool,
        containers: Vec<String>,
    },
    /// Attach to a running container's stdio.
    Attach {
        /// Do not forward stdin.
        #[arg(long)]
        no_stdin: bool,
        container: String,
    },
    /// List containers.
    #[command(alias = "ps")]
    Ls {
        /// Show all containers (default: only running).
        #[arg(short, long)]
        all: bool,
        /// Only ids.
        #[arg(short, long)]
        quiet: bool,
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// Print a container's logs.
    Logs(LogsArgs),
    /// Stop running containers (stop signal, then SIGKILL after the timeout).
    Stop {
        #[arg(short = 't', long = "time", default_value_t = 10)]
        time: u64,
        containers: Vec<String>,
    },
    /// Stop then start containers.
    Restart {
        #[arg(short = 't', long = "time", default_value_t = 10)]
        time: u64,
        containers: Vec<String>,
    },
    /// Send a signal to running containers.
    Kill {
        #[arg(short, long, default_value = "KILL")]
        signal: String,
        containers: Vec<String>,
    },
    /// Remove containers.
    Rm {
        /// Kill and remove running containers.
        #[arg(short, long)]
        force: bool,
        /// Remove the containers' anonymous volumes too.
        #[arg(short, long)]
        volumes: bool,
        containers: Vec<String>,
    },
    /// Run a command in a running container.
    Exec(ExecArgs),
    /// Freeze all processes of containers.
    Pause { containers: Vec<String> },
    /// Thaw paused containers.
    Unpause { containers: Vec<String> },
    /// Show low-level information as JSON.
    Inspect { containers: Vec<String> },
    /// Wait until containers stop, printing their exit codes.
    Wait { containers: Vec<String> },
    /// Show the processes of a container.
    Top { container: String },
    /// List a container's published ports, or where one port is published.
    Port {
        container: String,
        /// `PORT[/tcp|udp]` (tcp when no protocol is given).
        port: Option<String>,
    },
    /// Copy files between a container and the host.
    Cp(files::CpArgs),
    /// Write a container's filesystem as a tar archive.
    Export(files::ExportArgs),
    /// Create an image from a container's changes.
    Commit(files::CommitArgs),
    /// Remove all stopped containers.
    Prune {
        /// Do not ask (berth never asks; accepted for docker compatibility).
        #[arg(short, long)]
        force: bool,
    },
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    #[arg(long)]
    pub privileged: bool,
    /// Keep stdin attached (without -t exec inherits this terminal's stdio).
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pty in the container's devpts, relayed to this terminal.
    #[arg(short = 't', long)]
    pub tty: bool,
    pub container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

pub fn run(root: &Root, args: &ContainerArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        ContainerCommand::Run(run) => run_container(root, run),
        ContainerCommand::Create(create) => {
            let c = create_container(root, create, false, false)?;
            println!("{}", c.config.id);
            Ok(ExitCode::SUCCESS)
        }
        ContainerCommand::Start {
            attach: true,
            interactive,
            containers,
        } => {
            let [name] = containers.as_slice() else {
                bail!("you cannot start and attach multiple containers at once");
            };
            let c = container::find(root, name)?;
            let (_, client) = lifecycle::start_attached(root, &c)?;
            attach::install_signal_handlers()?;
            let code = attach::session(client, &c, *interactive && c.config.interactive, c.config.tty)?;
            Ok(exit_code(code))
        }
        ContainerCommand::Attach { no_stdin, container } => {
            let c = container::find(root, container)?;
            if !matches!(c.state()?.status, Status::Running | Status::Paused) {
                bail!("you cannot attach to a stopped container, start it first");
            }
            let client = crate::runtime::attach::AttachClient::connect(&c.dir, 1)?;
            attach::install_signal_handlers()?;
            let code = attach::session(client, &c, !no_stdin && c.config.interactive, c.config.tty)?;
            Ok(exit_code(code))
        }
        ContainerCommand::Start { containers, .. } => each(root, containers, |c| {
            lifecycle::start(root, c)?;
            println!("{}", c.config.name);
            Ok(())
        }),
        ContainerCommand::Ls { all, quiet, format } => list(root, *all, *quiet, *format),
        ContainerCommand::Logs(logs) => print_logs(root, logs),
        ContainerCommand::Stop { time, containers } => each(root, containers, |c| {
            lifecycle::stop(root, c, Duration::from_secs(*time))?;
            println!("{}", c.config.name);
            Ok(())
        }),
        ContainerCommand::Restart { time, containers } => each(root, containers, |c| {
            lifecycle::restart(root, c, Duration::from_secs(*time))?;
            println!("{}", c.config.name);
            Ok(())
        }),
        ContainerCommand::Kill { signal, containers } => {
            let signal = lifecycle::parse_signal(signal)?;
            each(root, containers, |c| {
                lifecycle::kill_container(c, signal)?;
                println!("{}", c.config.name);
                Ok(())
            })
        }
        ContainerCommand::Rm {
            force,
            volumes,
            containers,
        } => each(root, containers, |c| {
            if *volumes {
                lifecycle::remove_with_volumes(root, c, *force)?;
            } else {
                lifecycle::remove(root, c, *force)?;
            }
            println!("{}", c.config.name);
            Ok(())
        }),
        ContainerCommand::Exec(args) => {
            let c = container::find(root, &args.container)?;
            let code = exec::exec(
                root,
                &c,
                &ExecOptions {
                    args: args.command.clone(),
                    env: args.env.clone(),
                    user: args.user.clone(),
                    workdir: args.workdir.clone(),
                    privileged: args.privileged,
                    tty: args.tty,
                    interactive: args.interactive,
                },
            )?;
            Ok(exit_code(code))
        }
        ContainerCommand::Pause { containers } => each(root, containers, |c| {
            lifecycle::pause(root, c)?;
            println!("{}", c.config.name);
            Ok(())
        }),
        ContainerCommand::Unpause { containers } => each(root, containers, |c| {
            lifecycle::unpause(root, c)?;
            println!("{}", c.config.name);
            Ok(())
        }),
        ContainerCommand::Inspect { containers } => {
            let mut out = Vec::new();
            for name in containers {
                out.push(inspect(&container::find(root, name)?)?);
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(ExitCode::SUCCESS)
        }
        ContainerCommand::Wait { containers } => each(root, containers, |c| {
            let code = lifecycle::wait_exit(c, None)?.unwrap_or_default();
            println!("{code}");
            Ok(())
        }),
        ContainerCommand::Top { container } => top(root, container),
        ContainerCommand::Port { container, port } => show::port(root, container, port.as_deref()),
        ContainerCommand::Cp(args) => files::cp(root, args),
        ContainerCommand::Export(args) => files::export(root, args),
        ContainerCommand::Commit(args) => files::commit(root, args),
        ContainerCommand::Prune { .. } => {
            for c in container::list(root)? {
                if matches!(c.state()?.status, Status::Exited | Status::Created | Status::Dead) {
                    lifecycle::remove(root, &c, false)?;
                    println!("Deleted: {}", c.config.id);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `top` of one container, for the compose verb.
pub(crate) fn top_of(root: &Root, reference: &str) -> anyhow::Result<ExitCode> {
    show::top(root, reference)
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code.clamp(0, 255)).unwrap_or(255))
}

/// Applies `action` to each named container; reports every failure, and
/// fails if any did (as docker does).
fn each(
    root: &Root,
    names: &[String],
    mut action: impl FnMut(&Container) -> anyhow::Result<()>,
) -> anyhow::Result<ExitCode> {
    if names.is_empty() {
        bail!("at least one container is required");
    }
    let mut failed = false;
    for name in names {
        let result = container::find(root, name)
            .map_err(anyhow::Error::from)
            .and_then(|c| action(&c));
        if let Err(e) = result {
            eprintln!("Error response from daemon: {e:#}");
            failed = true;
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

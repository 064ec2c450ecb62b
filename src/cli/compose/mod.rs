//! The compose verbs: `up`, `down`, `ps`, `logs`, `ls`, `start`, `stop`,
//! `restart`, `kill`, `rm`, `pause`, `unpause`, `exec`, `port`, `top`,
//! `images`, `run`, `create`, `scale`, `wait`, `cp`, `events`, `stats`,
//! and `system info|df|prune`. The project is loaded here, as docker
//! compose loads it on the client; the engine operations in
//! `crate::engine::project` converge it.

mod converge;
mod copy;
mod events;
mod logs;
mod ops;
mod push;
mod run;
mod stats;
mod system;
mod up;
mod wait;
mod watch;

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use super::{load_project, Cli};
use crate::engine::apply::Event;
use crate::engine::{labels, observe};
use crate::runtime::container::Container;
use crate::store::Root;

pub use converge::{create, scale, CreateArgs, ScaleArgs};
pub use copy::{cp, CpArgs};
pub use events::{events, EventsArgs};
pub use ops::{ExecArgs, KillArgs, LsArgs, PortArgs, PsArgs, RmArgs, ServicesArgs, StopArgs};
pub use push::{push, PushArgs};
pub use run::{run, RunArgs};
pub use stats::{stats, StatsArgs};
pub use system::{run as system, SystemArgs};
pub use up::{BuildArgs, DownArgs, LogsArgs, PullArgs, UpArgs};
pub use wait::{wait, WaitArgs};
pub use watch::WatchArgs;

pub fn up(cli: &Cli, args: &UpArgs) -> anyhow::Result<ExitCode> {
    up::up(cli, args)
}

pub fn down(cli: &Cli, args: &DownArgs) -> anyhow::Result<ExitCode> {
    up::down(cli, args)
}

pub fn build(cli: &Cli, args: &BuildArgs) -> anyhow::Result<ExitCode> {
    up::fetch(cli, "build", &args.services, args.no_cache)
}

pub fn pull(cli: &Cli, args: &PullArgs) -> anyhow::Result<ExitCode> {
    up::fetch(cli, "pull", &args.services, false)
}

pub fn watch(cli: &Cli, args: &WatchArgs) -> anyhow::Result<ExitCode> {
    watch::watch(cli, args)
}

pub fn logs(cli: &Cli, args: &LogsArgs) -> anyhow::Result<ExitCode> {
    up::logs(cli, args)
}

pub use ops::{exec, images, kill, ls, pause, port, ps, restart, rm, start, stop, top, unpause};

/// `--format` of `ps` and `ls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// Verbs that take services.
#[derive(Debug, Args)]
pub struct Services {
    pub services: Vec<String>,
}

/// The project's name: `-p`, else the loaded file's.
fn project_name(cli: &Cli) -> anyhow::Result<String> {
    if let Some(name) = &cli.project_name {
        if cli.files.is_empty() {
            return Ok(crate::spec::environment::normalize_project_name(name));
        }
    }
    Ok(load_project(cli, false)?.project.name)
}

/// The project's service containers (no one-offs), by service and number,
/// only of `services` when given.
fn containers(root: &Root, project: &str, services: &[String]) -> anyhow::Result<Vec<Container>> {
    let mut list: Vec<Container> = observe::project_containers(root, project)?
        .into_iter()
        .filter(|c| c.config.labels.get(labels::ONEOFF).map(String::as_str) != Some("True"))
        .filter(|c| {
            services.is_empty()
                || c.config
                    .labels
                    .get(labels::SERVICE)
                    .is_some_and(|s| services.contains(s))
        })
        .collect();
    list.sort_by_key(|c| {
        let l = &c.config.labels;
        (
            l.get(labels::SERVICE).cloned().unwrap_or_default(),
            l.get(labels::NUMBER).and_then(|n| n.parse::<u32>().ok()).unwrap_or(0),
        )
    });
    Ok(list)
}

/// The root's engine, started when none runs.
fn engine(root: &Root) -> anyhow::Result<crate::engine::api::Client> {
    Ok(crate::engine::api::connect_or_start(root)?)
}

/// Sends a streamed operation to the engine, printing its progress;
/// returns its result.
fn operation(root: &Root, path: &str, body: &serde_json::Value) -> anyhow::Result<serde_json::Value> {
    use crate::engine::routes::StreamItem;
    let client = engine(root)?;
    for item in client.stream("POST", path, Some(body))? {
        match serde_json::from_value::<StreamItem>(item?)? {
            StreamItem::Event(event) => print_event(event),
            StreamItem::Result(value) => return Ok(value),
            StreamItem::Error(message) => anyhow::bail!("{message}"),
        }
    }
    anyhow::bail!(
        "the engine ended the operation without a result (see {})",
        crate::engine::api::autostart::log_path(root).display()
    )
}

/// `--ansi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Ansi {
    Never,
    Always,
    Auto,
}

/// `--progress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    Auto,
    Tty,
    Plain,
    Json,
    Quiet,
}

static OUTPUT: std::sync::OnceLock<(Ansi, ProgressMode)> = std::sync::OnceLock::new();

/// Records the global `--ansi` and `--progress` flags (once, at start).
pub fn set_output(ansi: Ansi, progress: ProgressMode) {
    let _ = OUTPUT.set((ansi, progress));
}

/// Whether colors are wanted, given whether the output is a terminal.
fn colors(terminal: bool) -> bool {
    match OUTPUT.get().map_or(Ansi::Auto, |o| o.0) {
        Ansi::Never => false,
        Ansi::Always => true,
        Ansi::Auto => terminal && std::env::var_os("NO_COLOR").is_none(),
    }
}

/// Prints progress as compose does, on stderr (`--progress json`: one JSON
/// object a line; `quiet`: nothing).
fn print_event(event: Event) {
    let mut err = std::io::stderr().lock();
    let _ = match OUTPUT.get().map_or(ProgressMode::Auto, |o| o.1) {
        ProgressMode::Quiet => Ok(()),
        ProgressMode::Json => writeln!(err, "{}", serde_json::json!(event)),
        _ => writeln!(err, " {} {}  {}", event.kind, event.name, event.status),
    };
}

//! The command line: compose-style global flags and verbs.
//!
//! Verbs appear here only once they work; later pieces (runtime, engine)
//! add `up`, `down`, `container …` and the rest.

mod attach;
mod build;
mod compose;
mod config;
mod container;
mod engine;

mod image;
mod network;
mod network_connect;
mod push;
mod registry;
mod volume;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

use crate::spec::{self, LoadOptions, LoadedProject};

#[derive(Debug, Parser)]
#[command(
    name = "berth",
    version,
    about = "A compose-style container orchestrator that brings its own container runtime",
    propagate_version = true
)]
pub struct Cli {
    /// Compose configuration files (repeatable; default: compose.yaml in the
    /// current directory or a parent, plus compose.override.yaml).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Project name (default: `name:` in the file, else the directory name).
    #[arg(short = 'p', long = "project-name", value_name = "NAME")]
    pub project_name: Option<String>,
    /// Directory that relative paths resolve against (default: the first
    /// file's directory).
    #[arg(long, value_name = "DIR")]
    pub project_directory: Option<PathBuf>,
    /// Enable services of this profile (repeatable).
    #[arg(long = "profile", value_name = "PROFILE")]
    pub profiles: Vec<String>,
    /// Environment files for interpolation, replacing `.env` (repeatable).
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_files: Vec<PathBuf>,
    /// Engine root: state, images, containers and the engine socket.
    #[arg(
        long,
        global = true,
        env = "BERTH_ROOT",
        default_value = "/var/lib/berth",
        value_name = "DIR"
    )]
    pub root: PathBuf,
    /// How much to report on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogLevel::Warn)]
    pub log_level: LogLevel,
    /// Colored output: never, always, or auto (on a terminal).
    #[arg(long, global = true, value_enum, default_value_t = compose::Ansi::Auto)]
    pub ansi: compose::Ansi,
    /// Progress output of the compose verbs: auto, tty, plain, json or quiet.
    #[arg(long, global = true, value_enum, default_value_t = compose::ProgressMode::Auto)]
    pub progress: compose::ProgressMode,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

#[derive(Debug, Subcommand)]
// Each subcommand's arguments are built only when it is the one invoked:
// building the whole tree cost ~0.8 ms of every berth start.
#[command(defer = true)]
pub enum Command {
    /// Create and start the project's containers (converge on the file).
    Up(compose::UpArgs),
    /// Stop and remove the project's containers and networks.
    Down(compose::DownArgs),
    /// List the project's containers.
    Ps(compose::PsArgs),
    /// Show the project's logs.
    Logs(compose::LogsArgs),
    /// List projects.
    Ls(compose::LsArgs),
    /// Start the services' existing containers.
    Start(compose::ServicesArgs),
    /// Stop the services' containers.
    Stop(compose::StopArgs),
    /// Restart the services' containers.
    Restart(compose::StopArgs),
    /// Send a signal to the services' containers.
    Kill(compose::KillArgs),
    /// Remove the services' stopped containers.
    Rm(compose::RmArgs),
    /// Pause the services' containers.
    Pause(compose::ServicesArgs),
    /// Unpause the services' containers.
    Unpause(compose::ServicesArgs),
    /// Run a command in a service's running container.
    Exec(compose::ExecArgs),
    /// Print where a service's port is published.
    Port(compose::PortArgs),
    /// Show the processes of the services' containers.
    Top(compose::ServicesArgs),
    /// List the images the project's containers use.
    Images(compose::ServicesArgs),
    /// Run a one-off command in a new container of a service.
    Run(Box<compose::RunArgs>),
    /// Create the services' containers without starting them.
    Create(compose::CreateArgs),
    /// Wait until the services' containers exit, printing their exit codes.
    Wait(compose::WaitArgs),
    /// Copy files between a service container and the host.
    Cp(compose::CpArgs),
    /// Set the number of containers of services (`SERVICE=N`).
    Scale(compose::ScaleArgs),
    /// Follow the lifecycle events of the project's containers.
    Events(compose::EventsArgs),
    /// Show the resource usage of the project's containers.
    Stats(compose::StatsArgs),
    /// The engine root as a whole: info, disk usage, prune.
    System(compose::SystemArgs),
    /// Build the images of services with a `build:` section.
    Build(compose::BuildArgs),
    /// Pull the services' images.
    Pull(compose::PullArgs),
    /// Push the images of services with a `build:` section.
    Push(compose::PushArgs),
    /// Sync, restart or rebuild services as their files change (develop.watch).
    Watch(compose::WatchArgs),
    /// Parse, resolve and render the compose file in canonical form.
    Config(config::ConfigArgs),
    /// Manage images.
    Image(image::ImageArgs),
    /// Print a shell completion script.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Manage containers (docker-like low-level verbs).
    Container(Box<container::ContainerArgs>),
    /// Manage volumes.
    Volume(volume::VolumeArgs),
    /// Manage bridge networks.
    Network(network::NetworkArgs),
    /// Log in to a registry (credentials for pulls).
    Login(registry::LoginArgs),
    /// Log out from a registry.
    Logout(registry::LogoutArgs),
    /// Run the engine daemon (the CLI starts one when needed), or stop it.
    Engine(engine::EngineArgs),
    /// Show the berth version.
    Version,
}

/// Runs the CLI and maps failures to compose's exit status (1).
pub fn main() -> ExitCode {
    // The monitor starts with every container: skip building the whole
    // command-line parser for it (berth starts it with exactly this form).
    if let Some(code) = crate::runtime::monitor::main_from_args() {
        return code;
    }
    // `container run` needs a monitor first thing: start it while clap
    // parses (see `container::early_monitor`).
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    container::early_monitor::start_if_container_run(&args);
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // `--help`, a bad flag: the monitor is not needed after all.
            container::early_monitor::discard();
            error.exit()
        }
    };
    let result = run(&cli);
    container::early_monitor::discard();
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    compose::set_output(cli.ansi, cli.progress);
    match &cli.command {
        Command::Up(args) => compose::up(cli, args),
        Command::Down(args) => compose::down(cli, args),
        Command::Ps(args) => compose::ps(cli, args),
        Command::Logs(args) => compose::logs(cli, args),
        Command::Ls(args) => compose::ls(cli, args),
        Command::Start(args) => compose::start(cli, args),
        Command::Stop(args) => compose::stop(cli, args),
        Command::Restart(args) => compose::restart(cli, args),
        Command::Kill(args) => compose::kill(cli, args),
        Command::Rm(args) => compose::rm(cli, args),
        Command::Pause(args) => compose::pause(cli, args),
        Command::Unpause(args) => compose::unpause(cli, args),
        Command::Exec(args) => compose::exec(cli, args),
        Command::Port(args) => compose::port(cli, args),
        Command::Top(args) => compose::top(cli, args),
        Command::Images(args) => compose::images(cli, args),
        Command::Run(args) => compose::run(cli, args),
        Command::Create(args) => compose::create(cli, args),
        Command::Wait(args) => compose::wait(cli, args),
        Command::Cp(args) => compose::cp(cli, args),
        Command::Scale(args) => compose::scale(cli, args),
        Command::Events(args) => compose::events(cli, args),
        Command::Stats(args) => compose::stats(cli, args),
        Command::System(args) => compose::system(&crate::store::Root::new(&cli.root), args),
        Command::Build(args) => compose::build(cli, args),
        Command::Pull(args) => compose::pull(cli, args),
        Command::Push(args) => compose::push(cli, args),
        Command::Watch(args) => compose::watch(cli, args),
        Command::Config(args) => config::run(cli, args),
        Command::Image(args) => image::run(&crate::store::Root::new(&cli.root), args),
        Command::Completion { shell } => {
            let mut command = Cli::command();
            clap_complete::generate(*shell, &mut command, "berth", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Container(args) => container::run(&crate::store::Root::new(&cli.root), args),
        Command::Volume(args) => volume::run(&crate::store::Root::new(&cli.root), args),
        Command::Network(args) => network::run(&crate::store::Root::new(&cli.root), args),
        Command::Login(args) => registry::login(&crate::store::Root::new(&cli.root), args),
        Command::Logout(args) => registry::logout(args),
        Command::Engine(args) => engine::run(&crate::store::Root::new(&cli.root), args),
        Command::Version => {
            writeln!(std::io::stdout(), "berth version {}", env!("CARGO_PKG_VERSION"))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `--label K=V`-style options into a map; `what` names the option in errors.
pub(crate) fn key_values(pairs: &[String], what: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    for pair in pairs {
        let Some((k, v)) = pair.split_once('=') else {
            anyhow::bail!("invalid {what} {pair:?}: expected KEY=VALUE");
        };
        map.insert(k.to_string(), v.to_string());
    }
    Ok(map)
}

/// Loads the project the global flags describe, printing its warnings.
pub fn load_project(cli: &Cli, no_interpolate: bool) -> anyhow::Result<LoadedProject> {
    let options = LoadOptions {
        files: cli.files.clone(),
        working_dir: std::env::current_dir()?,
        project_directory: cli.project_directory.clone(),
        project_name: cli.project_name.clone(),
        profiles: cli.profiles.clone(),
        env_files: cli.env_files.clone(),
        os_env: std::env::vars().collect::<BTreeMap<_, _>>(),
        no_interpolate,
    };
    let loaded = spec::load(&options)?;
    if cli.log_level <= LogLevel::Warn {
        for warning in &loaded.warnings {
            eprintln!("WARN[0000] {warning}");
        }
    }
    Ok(loaded)
}

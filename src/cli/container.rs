//! `berth container …`: docker-like low-level verbs over the runtime.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};

use super::attach;
use crate::image::ImageStore;
use crate::network::ipam::Owner;
use crate::network::NetworkStore;
use crate::runtime::config::{DeviceNode, Status};
use crate::runtime::container::{self, format_rfc3339, parse_rfc3339, Container};
use crate::runtime::create::{self, CreateOptions, ImageInfo};
use crate::runtime::exec::{self, ExecOptions};
use crate::runtime::lifecycle;
use crate::runtime::logs::{self, LogEntry};
use crate::store::Root;
use crate::volume::VolumeStore;

#[derive(Debug, Args)]
pub struct ContainerArgs {
    #[command(subcommand)]
    pub command: ContainerCommand,
}

#[derive(Debug, Subcommand)]
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
    /// Copy files between a container and the host.
    Cp(super::container_files::CpArgs),
    /// Write a container's filesystem as a tar archive.
    Export(super::container_files::ExportArgs),
    /// Create an image from a container's changes.
    Commit(super::container_files::CommitArgs),
    /// Remove all stopped containers.
    Prune {
        /// Do not ask (berth never asks; accepted for docker compatibility).
        #[arg(short, long)]
        force: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[arg(long)]
    pub name: Option<String>,
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    #[arg(long = "env-file")]
    pub env_file: Vec<PathBuf>,
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    #[arg(long = "group-add")]
    pub group_add: Vec<String>,
    #[arg(long)]
    pub hostname: Option<String>,
    #[arg(short = 'v', long = "volume")]
    pub volumes: Vec<String>,
    #[arg(long)]
    pub tmpfs: Vec<String>,
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    #[arg(long)]
    pub cpus: Option<f64>,
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    #[arg(long)]
    pub privileged: bool,
    #[arg(long = "read-only")]
    pub read_only: bool,
    #[arg(long)]
    pub init: bool,
    #[arg(long)]
    pub entrypoint: Option<String>,
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    #[arg(long = "stop-timeout")]
    pub stop_timeout: Option<u64>,
    #[arg(long)]
    pub ulimit: Vec<String>,
    #[arg(long)]
    pub sysctl: Vec<String>,
    #[arg(long = "shm-size")]
    pub shm_size: Option<String>,
    #[arg(long)]
    pub device: Vec<String>,
    /// `none` (default), `host`, or the name of a bridge network.
    #[arg(long, alias = "net")]
    pub network: Option<String>,
    /// A static IPv4 address on the --network bridge network.
    #[arg(long)]
    pub ip: Option<String>,
    /// Another name for the container on its bridge network (repeatable).
    #[arg(long = "network-alias")]
    pub network_alias: Vec<String>,
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    #[arg(short = 't', long)]
    pub tty: bool,
    #[arg(short = 'i', long)]
    pub interactive: bool,
    #[arg(short = 'l', long = "label")]
    pub labels: Vec<String>,
    #[arg(long = "log-opt")]
    pub log_opt: Vec<String>,
    pub image: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run in the background and print the container id.
    #[arg(short, long)]
    pub detach: bool,
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    #[command(flatten)]
    pub create: CreateArgs,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[arg(short, long)]
    pub follow: bool,
    #[arg(long)]
    pub tail: Option<String>,
    #[arg(short, long)]
    pub timestamps: bool,
    /// RFC 3339 time or a relative duration (10m, 1h).
    #[arg(long)]
    pub since: Option<String>,
    pub container: String,
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
    /// Keep stdin attached (it is: exec inherits this terminal's stdio).
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Use this terminal as the process's tty (exec inherits it; no new
    /// pty is allocated in the container's devpts yet).
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
            let c = create_container(root, create, false)?;
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
            lifecycle::stop(root, c, Duration::from_secs(*time))?;
            lifecycle::start(root, c)?;
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
        ContainerCommand::Cp(args) => super::container_files::cp(root, args),
        ContainerCommand::Export(args) => super::container_files::export(root, args),
        ContainerCommand::Commit(args) => super::container_files::commit(root, args),
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

fn image_info(root: &Root, reference: &str) -> anyhow::Result<ImageInfo> {
    let store = ImageStore::open(root)?;
    let image = store
        .resolve(reference)
        .with_context(|| format!("Unable to find image '{reference}' locally"))?;
    let config = image.config.config().clone().unwrap_or_default();
    Ok(ImageInfo {
        id: image.id.clone(),
        name: image.name.clone().unwrap_or_else(|| reference.to_string()),
        layers: image.layers.clone(),
        entrypoint: config.entrypoint().clone().unwrap_or_default(),
        cmd: config.cmd().clone().unwrap_or_default(),
        env: config.env().clone().unwrap_or_default(),
        working_dir: config.working_dir().clone(),
        user: config.user().clone(),
        stop_signal: config.stop_signal().clone(),
        volumes: config.volumes().clone().unwrap_or_default(),
    })
}

/// `--device /dev/x[:/dev/y[:rwm]]`: the node's type and numbers are read
/// from the host.
fn device_nodes(specs: &[String]) -> anyhow::Result<Vec<DeviceNode>> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut nodes = Vec::new();
    for spec in specs {
        let parts: Vec<&str> = spec.split(':').collect();
        let source = parts[0];
        let target = parts.get(1).filter(|t| t.starts_with('/')).copied().unwrap_or(source);
        let access = parts.last().filter(|p| !p.starts_with('/')).copied().unwrap_or("rwm");
        let meta =
            fs::metadata(source).with_context(|| format!("error gathering device information for {source:?}"))?;
        let kind = if meta.file_type().is_char_device() {
            'c'
        } else if meta.file_type().is_block_device() {
            'b'
        } else {
            bail!("{source} is not a device node");
        };
        let rdev = meta.rdev();
        nodes.push(DeviceNode {
            path: target.to_string(),
            kind,
            major: nix::sys::stat::major(rdev),
            minor: nix::sys::stat::minor(rdev),
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            access: access.to_string(),
        });
    }
    Ok(nodes)
}

fn create_container(root: &Root, args: &CreateArgs, auto_remove: bool) -> anyhow::Result<Container> {
    let image = image_info(root, &args.image)?;
    let mut env = Vec::new();
    for file in &args.env_file {
        let text = fs::read_to_string(file).with_context(|| format!("reading env file {}", file.display()))?;
        let lookup = |n: &str| std::env::var(n).ok();
        for (k, v) in
            crate::spec::dotenv::parse(&text, &lookup).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?
        {
            env.push(format!("{k}={v}"));
        }
    }
    env.extend(args.env.iter().cloned());
    let mut options = CreateOptions {
        image: args.image.clone(),
        name: args.name.clone(),
        command: args.command.clone(),
        entrypoint: args.entrypoint.clone(),
        env,
        workdir: args.workdir.clone(),
        user: args.user.clone(),
        group_add: args.group_add.clone(),
        hostname: args.hostname.clone(),
        volumes: args.volumes.clone(),
        volume_sources: BTreeMap::new(),
        tmpfs: args.tmpfs.clone(),
        memory: args.memory.clone(),
        memory_swap: args.memory_swap.clone(),
        memory_reservation: args.memory_reservation.clone(),
        cpus: args.cpus,
        cpu_shares: args.cpu_shares,
        cpuset_cpus: args.cpuset_cpus.clone(),
        pids_limit: args.pids_limit,
        cap_add: args.cap_add.clone(),
        cap_drop: args.cap_drop.clone(),
        privileged: args.privileged,
        read_only: args.read_only,
        init: args.init,
        stop_signal: args.stop_signal.clone(),
        stop_timeout: args.stop_timeout,
        ulimits: args.ulimit.clone(),
        sysctls: args.sysctl.clone(),
        shm_size: args.shm_size.clone(),
        network: args.network.clone(),
        network_attachments: Vec::new(),
        security_opt: args.security_opt.clone(),
        tty: args.tty,
        interactive: args.interactive,
        auto_remove,
        labels: args.labels.clone(),
        log_opts: args.log_opt.clone(),
    };
    let id = container::new_id();
    let name = args.name.clone().unwrap_or_else(|| container::default_name(&id));
    let devices = device_nodes(&args.device)?;
    let requests = create::volume_requests(&options, &image)?;
    let attachment = match args.network.as_deref() {
        None | Some("none") | Some("host") => {
            if args.ip.is_some() || !args.network_alias.is_empty() {
                bail!("--ip and --network-alias need a bridge --network");
            }
            None
        }
        Some(network) => {
            let owner = Owner {
                container_id: id.clone(),
                container_name: name.clone(),
            };
            let attachment =
                super::network::attach_new_container(root, network, args.ip.as_deref(), &args.network_alias, &owner)?;
            options.network_attachments.push(attachment.clone());
            Some(attachment)
        }
    };
    let release_address = || {
        if let Some(a) = &attachment {
            let _ = NetworkStore::new(root).release_address(&a.network, &id);
        }
    };
    let store = VolumeStore::open(root)?;
    // Held until the container is recorded, so that `volume rm` cannot
    // remove a volume between its lookup here and its use there.
    let volumes = store.lock().inspect_err(|_| release_address())?;
    let (sources, anonymous) =
        super::volume::resolve_for_container(&volumes, &requests).inspect_err(|_| release_address())?;
    options.volume_sources = sources;
    let created = create::build(&options, &image, &id, &name, devices, &container::now_rfc3339())
        .map_err(anyhow::Error::from)
        .and_then(|config| Ok(lifecycle::create(root, config)?));
    if created.is_err() {
        release_address();
        for name in anonymous {
            let _ = volumes.remove(&name, true);
        }
    }
    created
}

fn run_container(root: &Root, args: &RunArgs) -> anyhow::Result<ExitCode> {
    // In the foreground the CLI removes the container after reading its
    // exit code; detached, the monitor does it.
    let container = create_container(root, &args.create, args.rm && args.detach)?;
    // In the foreground the CLI attaches from the first byte: output and
    // the exit code arrive over the monitor's socket, with no polling.
    let started = if args.detach {
        lifecycle::start(root, &container).map(|_| None)
    } else {
        lifecycle::start_attached(root, &container).map(|(_, client)| Some(client))
    };
    let client = match started {
        Ok(client) => client,
        Err(e) => {
            // A container that cannot start is not left behind by `run`.
            let _ = lifecycle::remove_with_volumes(root, &container, true);
            return Err(e.into());
        }
    };
    let Some(client) = client else {
        println!("{}", container.config.id);
        return Ok(ExitCode::SUCCESS);
    };
    attach::install_signal_handlers()?;
    let code = attach::session(client, &container, args.create.interactive, args.create.tty)?;
    if args.rm {
        lifecycle::remove_with_volumes(root, &container, true)?;
    }
    Ok(exit_code(code))
}

/// Streams the log (from `skip` entries) until the container exits;
/// returns its exit code.
fn follow(container: &Container, skip: usize, since: Option<SystemTime>, timestamps: bool) -> anyhow::Result<i32> {
    let path = container.log_path();
    let mut file = loop {
        match fs::File::open(&path) {
            Ok(f) => break f,
            Err(_) if container.dir.exists() => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
        }
    };
    let mut seen = 0usize;
    let mut partial = String::new();
    loop {
        let state = container.state()?;
        let done = matches!(state.status, Status::Exited | Status::Dead | Status::Created);
        let position = file.stream_position()?;
        let mut reader = BufReader::new(&mut file);
        let mut line = String::new();
        let mut consumed = 0u64;
        while reader.read_line(&mut line)? > 0 {
            consumed += line.len() as u64;
            if !line.ends_with('\n') {
                partial.push_str(&line);
                line.clear();
                continue;
            }
            let text = std::mem::take(&mut partial) + &line;
            line.clear();
            if let Ok(entry) = serde_json::from_str::<LogEntry>(&text) {
                seen += 1;
                if seen > skip && since.is_none_or(|s| parse_rfc3339(&entry.time).is_some_and(|t| t >= s)) {
                    print_entry(&entry, timestamps)?;
                }
            }
        }
        file.seek(SeekFrom::Start(position + consumed))?;
        if done {
            return Ok(state.exit_code.unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn print_entry(entry: &LogEntry, timestamps: bool) -> std::io::Result<()> {
    let prefix = if timestamps {
        format!("{} ", entry.time)
    } else {
        String::new()
    };
    if entry.stream == "stderr" {
        let mut err = std::io::stderr().lock();
        write!(err, "{prefix}{}", entry.log)?;
        err.flush()
    } else {
        let mut out = std::io::stdout().lock();
        write!(out, "{prefix}{}", entry.log)?;
        out.flush()
    }
}

fn parse_since(since: &str) -> anyhow::Result<SystemTime> {
    if let Some(t) = parse_rfc3339(since) {
        return Ok(t);
    }
    let d = crate::spec::syntax::units::parse_duration(since)
        .map_err(|e| anyhow::anyhow!("invalid --since {since:?}: {e}"))?;
    Ok(SystemTime::now() - d)
}

fn print_logs(root: &Root, args: &LogsArgs) -> anyhow::Result<ExitCode> {
    let c = container::find(root, &args.container)?;
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let tail = match args.tail.as_deref() {
        None | Some("all") => None,
        Some(n) => Some(n.parse::<usize>().with_context(|| format!("invalid --tail {n:?}"))?),
    };
    if args.follow {
        let total = logs::read_entries(&c.log_path(), None, None)?.len();
        let skip = tail.map(|n| total.saturating_sub(n)).unwrap_or(0);
        follow(&c, skip, since, args.timestamps)?;
    } else {
        for entry in logs::read_entries(&c.log_path(), since, tail)? {
            print_entry(&entry, args.timestamps)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn status_line(c: &Container) -> anyhow::Result<String> {
    let state = c.state()?;
    let ago = |t: &Option<String>| -> String {
        t.as_deref()
            .and_then(parse_rfc3339)
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .map(human_duration)
            .unwrap_or_else(|| "?".into())
    };
    Ok(match state.status {
        Status::Running => format!("Up {}", ago(&state.started_at)),
        Status::Paused => format!("Up {} (Paused)", ago(&state.started_at)),
        Status::Exited => format!(
            "Exited ({}) {} ago{}",
            state.exit_code.unwrap_or_default(),
            ago(&state.finished_at),
            if state.oom_killed { " (OOMKilled)" } else { "" }
        ),
        Status::Created => "Created".into(),
        Status::Dead => "Dead".into(),
    })
}

fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "Less than a second".into(),
        1..=59 => format!("{s} seconds"),
        60..=3599 => format!("{} minutes", s / 60),
        3600..=172_799 => format!("{} hours", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

fn list(root: &Root, all: bool, quiet: bool, format: ListFormat) -> anyhow::Result<ExitCode> {
    let mut rows = Vec::new();
    for c in container::list(root)? {
        let state = c.state()?;
        if !all && !matches!(state.status, Status::Running | Status::Paused) {
            continue;
        }
        rows.push((c.clone(), state));
    }
    let mut out = std::io::stdout().lock();
    if quiet {
        for (c, _) in &rows {
            writeln!(out, "{}", c.short_id())?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if format == ListFormat::Json {
        for (c, s) in &rows {
            let row = serde_json::json!({
                "ID": c.short_id(), "Image": c.config.image, "Command": c.config.args.join(" "),
                "CreatedAt": c.config.created, "State": s.status.to_string(), "Status": status_line(c)?,
                "Names": c.config.name, "ExitCode": s.exit_code, "OOMKilled": s.oom_killed, "Labels": c.config.labels,
            });
            writeln!(out, "{row}")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "{:<14}{:<22}{:<24}{:<28}NAMES",
        "CONTAINER ID", "IMAGE", "COMMAND", "STATUS"
    )?;
    for (c, _) in &rows {
        let mut command = format!("\"{}\"", c.config.args.join(" "));
        if command.len() > 22 {
            command = format!(
                "{}…\"",
                &command[..command.char_indices().nth(20).map_or(command.len(), |(i, _)| i)]
            );
        }
        writeln!(
            out,
            "{:<14}{:<22}{:<24}{:<28}{}",
            c.short_id(),
            c.config.image,
            command,
            status_line(c)?,
            c.config.name
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn inspect(c: &Container) -> anyhow::Result<serde_json::Value> {
    let s = c.state()?;
    Ok(serde_json::json!({
        "Id": c.config.id,
        "Name": format!("/{}", c.config.name),
        "Created": c.config.created,
        "Path": c.config.args.first(),
        "Args": c.config.args.get(1..).unwrap_or_default(),
        "State": {
            "Status": s.status.to_string(),
            "Running": s.status == Status::Running,
            "Paused": s.status == Status::Paused,
            "OOMKilled": s.oom_killed,
            "Dead": s.status == Status::Dead,
            "Pid": s.pid.unwrap_or(0),
            "ExitCode": s.exit_code.unwrap_or(0),
            "Error": s.error.clone().unwrap_or_default(),
            "StartedAt": s.started_at.clone().unwrap_or_else(|| format_rfc3339(SystemTime::UNIX_EPOCH)),
            "FinishedAt": s.finished_at.clone().unwrap_or_else(|| format_rfc3339(SystemTime::UNIX_EPOCH)),
        },
        "Image": c.config.image_id,
        "LogPath": c.log_path(),
        "Config": {
            "Hostname": c.config.hostname,
            "User": c.config.user,
            "Env": c.config.env,
            "Cmd": c.config.args,
            "Image": c.config.image,
            "WorkingDir": c.config.working_dir,
            "Labels": c.config.labels,
            "StopSignal": c.config.stop_signal,
            "StopTimeout": c.config.stop_timeout,
            "Tty": c.config.tty,
            "OpenStdin": c.config.interactive,
        },
        "HostConfig": {
            "Privileged": c.config.privileged,
            "ReadonlyRootfs": c.config.read_only,
            "CapAdd": c.config.capabilities,
            "NetworkMode": c.config.network,
            "AutoRemove": c.config.auto_remove,
            "Init": c.config.init,
            "Resources": c.config.resources,
            "Mounts": c.config.mounts,
            "Devices": c.config.devices,
            "Ulimits": c.config.rlimits,
            "Sysctls": c.config.sysctls,
            "ShmSize": c.config.shm_size,
            "SecurityOpt": {"seccomp": c.config.seccomp, "no-new-privileges": c.config.no_new_privileges},
        },
    }))
}

fn top(root: &Root, name: &str) -> anyhow::Result<ExitCode> {
    let c = container::find(root, name)?;
    if !matches!(c.state()?.status, Status::Running | Status::Paused) {
        bail!("container {} is not running", c.config.name);
    }
    let cgroup = crate::runtime::cgroups::Cgroup::open(&Container::cgroup_name(&root.tag(), &c.config.id))?;
    let mut pids = cgroup.pids()?;
    pids.sort_unstable();
    println!("{:<10}{:<10}CMD", "PID", "PPID");
    for pid in pids {
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmdline).replace('\0', " ").trim().to_string();
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1).map(str::to_string))
            .unwrap_or_default();
        println!("{pid:<10}{ppid:<10}{cmd}");
    }
    Ok(ExitCode::SUCCESS)
}

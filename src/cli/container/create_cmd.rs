//! `container create` and `run`: options, image and volume resolution,
//! and the foreground session.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;

use super::exit_code;
use crate::cli::attach;
use crate::image::ImageStore;
use crate::network::ipam::Owner;
use crate::network::NetworkStore;
use crate::runtime::config::{ContainerConfig, DeviceNode, PublishedPort};
use crate::runtime::container::{self, Container};
use crate::runtime::create::{self, CreateOptions, ImageInfo};
use crate::runtime::lifecycle;
use crate::runtime::ports;
use crate::store::Root;
use crate::volume::VolumeStore;

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
    /// A host device (`/dev/x[:/dev/y[:rwm]]`) or a CDI device
    /// (`vendor.com/class=name`, from /etc/cdi or /var/run/cdi).
    #[arg(long)]
    pub device: Vec<String>,
    /// GPUs to add: `all`, a count, or `device=0,1` (docker syntax), from
    /// the NVIDIA driver or its CDI spec. `BERTH_DEVICE_ROOT` relocates
    /// device discovery (tests).
    #[arg(long)]
    pub gpus: Vec<String>,
    /// `none` (default), `host`, or the name of a bridge network.
    #[arg(long, alias = "net")]
    pub network: Option<String>,
    /// Add a line to /etc/hosts: `NAME:IP` (`host-gateway` = the host).
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// A DNS server for the container's resolv.conf (repeatable).
    #[arg(long)]
    pub dns: Vec<String>,
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    #[arg(long = "dns-option")]
    pub dns_option: Vec<String>,
    /// A static IPv4 address on the --network bridge network.
    #[arg(long)]
    pub ip: Option<String>,
    /// Another name for the container on its bridge network (repeatable).
    #[arg(long = "network-alias")]
    pub network_alias: Vec<String>,
    /// Publish a container port: `[HOST_IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp]`
    /// (bridge networks; no host port picks a free one).
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
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

pub(super) fn image_info(root: &Root, reference: &str) -> anyhow::Result<ImageInfo> {
    let store = ImageStore::open(root)?;
    let image = store
        .resolve(reference)
        .with_context(|| format!("Unable to find image '{reference}' locally"))?;
    Ok(image.runtime_info(reference))
}

/// `--device /dev/x[:/dev/y[:rwm]]`: the node's type and numbers are read
/// from the host.
pub(super) fn device_nodes(specs: &[String]) -> anyhow::Result<Vec<DeviceNode>> {
    Ok(crate::devices::host_nodes::device_nodes(specs)?)
}

/// `--device vendor.com/class=name`: a CDI name, not a path.
fn is_cdi_name(device: &str) -> bool {
    !device.starts_with('/') && device.contains('=')
}

/// `--gpus` and CDI `--device` names through the same device layer compose
/// services use, discovered under `BERTH_DEVICE_ROOT` (default `/`).
fn device_edits(name: &str, gpus: &[String], cdi_names: &[String]) -> anyhow::Result<Option<crate::devices::Applied>> {
    let requests = gpus
        .iter()
        .map(|g| crate::devices::parse_gpus_flag(g))
        .collect::<Result<Vec<_>, _>>()?;
    let root = crate::devices::device_root();
    Ok(crate::devices::edits_for_requests(
        name,
        &requests,
        cdi_names,
        &root,
        &crate::devices::host_stat,
    )?)
}

/// `auto_remove`: its monitor removes it when it ends; `removed_on_exit`:
/// it is removed then, by the monitor or by the `run` waiting for it.
pub(super) fn create_container(
    root: &Root,
    args: &CreateArgs,
    auto_remove: bool,
    removed_on_exit: bool,
) -> anyhow::Result<Container> {
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
        add_hosts: args.add_host.clone(),
        dns: args.dns.clone(),
        dns_search: args.dns_search.clone(),
        dns_options: args.dns_option.clone(),
        links: Vec::new(),
        security_opt: args.security_opt.clone(),
        tty: args.tty,
        interactive: args.interactive,
        auto_remove,
        removed_on_exit,
        labels: args.labels.clone(),
        log_opts: args.log_opt.clone(),
    };
    let id = container::new_id();
    let name = args.name.clone().unwrap_or_else(|| container::default_name(&id));
    let (cdi_names, device_paths): (Vec<String>, Vec<String>) =
        args.device.iter().cloned().partition(|d| is_cdi_name(d));
    let devices = device_nodes(&device_paths)?;
    let device_edits = device_edits(&name, &args.gpus, &cdi_names)?;
    let requests = create::volume_requests(&options, &image)?;
    let ports = published_ports(root, args)?;
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
            let attachment = crate::cli::network::attach_new_container(
                root,
                network,
                args.ip.as_deref(),
                &args.network_alias,
                &owner,
            )?;
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
        crate::cli::volume::resolve_for_container(&volumes, &requests).inspect_err(|_| release_address())?;
    options.volume_sources = sources;
    let created = create::build(&options, &image, &id, &name, devices, &container::now_rfc3339())
        .map(|config| ContainerConfig { ports, ..config })
        .map(|mut config| {
            if let Some(edits) = &device_edits {
                crate::devices::apply_to_config(&mut config, edits);
            }
            config
        })
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

/// `-p`: parsed, checked free on the host (naming the berth container that
/// holds a taken one) and with ephemeral host ports picked, before anything
/// is created. Only bridge networks publish; `host` ignores them as docker
/// does.
fn published_ports(root: &Root, args: &CreateArgs) -> anyhow::Result<Vec<PublishedPort>> {
    if args.publish.is_empty() {
        return Ok(Vec::new());
    }
    match args.network.as_deref() {
        None | Some("none") => bail!("published ports (-p) need a bridge network: add --network NAME"),
        Some("host") => {
            eprintln!("WARNING: Published ports are discarded when using host network mode");
            return Ok(Vec::new());
        }
        Some(_) => {}
    }
    Ok(ports::publish(root, &args.publish)?)
}

pub(super) fn run_container(root: &Root, args: &RunArgs) -> anyhow::Result<ExitCode> {
    // The monitor loads (exec, linking) while the container is created
    // here; without orders (a failed create) it exits having made nothing.
    let monitor = match super::early_monitor::take(root) {
        Some(monitor) => monitor,
        None => lifecycle::PendingMonitor::spawn_child(root)?,
    };
    // In the foreground the CLI removes the container after reading its
    // exit code; detached, the monitor does it.
    let container = create_container(root, &args.create, args.rm && args.detach, args.rm)?;
    // In the foreground the CLI attaches from the first byte: output and
    // the exit code arrive over the monitor's socket, with no polling.
    let attach = !args.detach;
    let started = lifecycle::start_pending(root, &container, attach, monitor).and_then(|(_, client)| match client {
        None if attach => Err(lifecycle::LifecycleError::Start("attaching failed".into())),
        client => Ok(client),
    });
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
        lifecycle::remove_after_exit_with_volumes(root, &container)?;
    }
    Ok(exit_code(code))
}

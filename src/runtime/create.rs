//! From `container create/run` options and the image's config to a
//! [`ContainerConfig`]: docker's rules for entrypoint/cmd, environment,
//! working directory, user, limits and security. Pure, unit-tested.

use std::collections::BTreeMap;
use std::path::PathBuf;

use thiserror::Error;

use super::caps;
use super::cgroups::Resources;
use super::config::{ContainerConfig, DeviceNode, Link, NetworkAttachment, NetworkMode, Rlimit, Seccomp};
use crate::spec::syntax::units::parse_bytes;

mod mounts;

pub use mounts::{volume_requests, VolumeRequest, VolumeSource};

/// The options `berth container create/run` takes.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub image: String,
    pub name: Option<String>,
    pub command: Vec<String>,
    /// `Some("")` clears the image's entrypoint.
    pub entrypoint: Option<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub group_add: Vec<String>,
    pub hostname: Option<String>,
    pub volumes: Vec<String>,
    /// The volumes of [`volume_requests`], looked up or created by the
    /// caller (keeps `build` free of I/O).
    pub volume_sources: BTreeMap<VolumeRequest, VolumeSource>,
    pub tmpfs: Vec<String>,
    pub memory: Option<String>,
    pub memory_swap: Option<String>,
    pub memory_reservation: Option<String>,
    pub cpus: Option<f64>,
    pub cpu_shares: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub pids_limit: Option<i64>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub read_only: bool,
    pub init: bool,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<u64>,
    pub ulimits: Vec<String>,
    pub sysctls: Vec<String>,
    pub shm_size: Option<String>,
    /// `none`, `host`, or a bridge network's name.
    pub network: Option<String>,
    /// The attachment for a bridge `network`, its address already
    /// allocated by the caller (keeps `build` free of I/O).
    pub network_attachments: Vec<NetworkAttachment>,
    /// `--add-host NAME:IP` (`host-gateway` is the first bridge gateway).
    pub add_hosts: Vec<String>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    /// Names only this container resolves (compose `links:`).
    pub links: Vec<Link>,
    pub security_opt: Vec<String>,
    pub tty: bool,
    pub interactive: bool,
    /// Its monitor removes it when it ends (`run --rm -d`).
    pub auto_remove: bool,
    /// Removed when it ends, by the monitor or the waiting caller (`--rm`).
    pub removed_on_exit: bool,
    pub labels: Vec<String>,
    pub log_opts: Vec<String>,
}

/// What the runtime needs of an image.
#[derive(Debug, Clone, Default)]
pub struct ImageInfo {
    pub id: String,
    pub name: String,
    pub layers: Vec<PathBuf>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub stop_signal: Option<String>,
    /// The image's `VOLUME`s: each gets an anonymous volume unless
    /// something else is mounted there.
    pub volumes: Vec<String>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum CreateError {
    #[error("invalid {option} {value:?}: {reason}")]
    Invalid {
        option: &'static str,
        value: String,
        reason: String,
    },
    #[error("no command specified")]
    NoCommand,
}

fn invalid(option: &'static str, value: &str, reason: impl ToString) -> CreateError {
    CreateError::Invalid {
        option,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// Builds the configuration; `devices` are the `--device` nodes already
/// looked up on the host (the only input that needs the kernel).
pub fn build(
    options: &CreateOptions,
    image: &ImageInfo,
    id: &str,
    name: &str,
    devices: Vec<DeviceNode>,
    created: &str,
) -> Result<ContainerConfig, CreateError> {
    let args = command_line(options, image)?;
    let env = merge_env(&image.env, &options.env);
    let capabilities = caps::effective_set(options.privileged, &options.cap_add, &options.cap_drop)
        .map_err(|e| invalid("capability", &e.to_string(), "unknown capability"))?;
    let (seccomp, no_new_privileges) = security_options(&options.security_opt)?;
    let mut labels = BTreeMap::new();
    for label in &options.labels {
        let (k, v) = label.split_once('=').unwrap_or((label, ""));
        labels.insert(k.to_string(), v.to_string());
    }
    let (log_max_size, log_max_files) = log_options(&options.log_opts)?;
    let network = network_mode(options)?;
    Ok(ContainerConfig {
        id: id.to_string(),
        name: name.to_string(),
        image: image.name.clone(),
        image_id: image.id.clone(),
        layers: image.layers.clone(),
        args,
        env,
        working_dir: options
            .workdir
            .clone()
            .or_else(|| image.working_dir.clone())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into()),
        user: options.user.clone().or_else(|| image.user.clone()).unwrap_or_default(),
        group_add: options.group_add.clone(),
        hostname: options
            .hostname
            .clone()
            .unwrap_or_else(|| id[..12.min(id.len())].to_string()),
        domainname: None,
        mounts: mounts::mounts(options, image)?,
        resources: resources(options, &devices)?,
        devices,
        capabilities: capabilities.into_iter().collect(),
        privileged: options.privileged,
        read_only: options.read_only,
        no_new_privileges,
        seccomp,
        rlimits: options
            .ulimits
            .iter()
            .map(|u| parse_ulimit(u))
            .collect::<Result<_, _>>()?,
        sysctls: options
            .sysctls
            .iter()
            .map(|s| {
                s.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .ok_or_else(|| invalid("sysctl", s, "expected KEY=VALUE"))
            })
            .collect::<Result<_, _>>()?,
        shm_size: match &options.shm_size {
            Some(s) => parse_bytes(s).map_err(|e| invalid("shm size", s, e))?,
            None => 0,
        },
        init: options.init,
        tty: options.tty,
        interactive: options.interactive,
        stop_signal: options
            .stop_signal
            .clone()
            .or_else(|| image.stop_signal.clone())
            .unwrap_or_else(|| "SIGTERM".into()),
        stop_timeout: options.stop_timeout.unwrap_or(10),
        network,
        networks: options.network_attachments.clone(),
        ports: Vec::new(),
        extra_hosts: extra_hosts(options)?,
        dns: options.dns.clone(),
        dns_search: options.dns_search.clone(),
        dns_options: options.dns_options.clone(),
        links: options.links.clone(),
        auto_remove: options.auto_remove,
        removed_on_exit: options.removed_on_exit || options.auto_remove,
        labels,
        log_max_size,
        log_max_files,
        created: created.to_string(),
        hooks: Vec::new(),
        healthcheck: None,
        restart: Default::default(),
    })
}

/// `none` (the default) and `host` are namespaces; any other name is a
/// bridge network, which the caller must have resolved.
fn network_mode(options: &CreateOptions) -> Result<NetworkMode, CreateError> {
    let attached = !options.network_attachments.is_empty();
    match options.network.as_deref() {
        None | Some("none") | Some("host") if attached => Err(invalid(
            "network",
            options.network.as_deref().unwrap_or("none"),
            "network attachments need a bridge network",
        )),
        None | Some("none") => Ok(NetworkMode::None),
        Some("host") => Ok(NetworkMode::Host),
        Some(name) if attached => {
            if options.network_attachments.iter().any(|a| a.network == name) {
                Ok(NetworkMode::Bridge)
            } else {
                Err(invalid("network", name, "no attachment to this network was resolved"))
            }
        }
        Some(name) => Err(invalid(
            "network",
            name,
            "the network was not resolved to an attachment",
        )),
    }
}

/// docker's rule: `--entrypoint` replaces the image's entrypoint and drops
/// its CMD; arguments replace CMD.
fn command_line(options: &CreateOptions, image: &ImageInfo) -> Result<Vec<String>, CreateError> {
    let (entrypoint, default_cmd) = match &options.entrypoint {
        Some(e) if e.is_empty() => (Vec::new(), Vec::new()),
        Some(e) => (vec![e.clone()], Vec::new()),
        None => (image.entrypoint.clone(), image.cmd.clone()),
    };
    let cmd = if options.command.is_empty() {
        default_cmd
    } else {
        options.command.clone()
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(CreateError::NoCommand);
    }
    Ok(args)
}

/// Later values win per key; `-e KEY` without `=` takes the caller's
/// value, and is dropped when the caller has none (as docker does).
fn merge_env(image: &[String], overrides: &[String]) -> Vec<String> {
    let mut merged: Vec<(String, String)> = Vec::new();
    let mut set = |key: &str, value: String| match merged.iter_mut().find(|(k, _)| k == key) {
        Some(entry) => entry.1 = value,
        None => merged.push((key.to_string(), value)),
    };
    for e in image {
        let (k, v) = e.split_once('=').unwrap_or((e, ""));
        set(k, v.to_string());
    }
    for e in overrides {
        match e.split_once('=') {
            Some((k, v)) => set(k, v.to_string()),
            None => {
                if let Ok(v) = std::env::var(e) {
                    set(e, v);
                }
            }
        }
    }
    merged.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

fn resources(options: &CreateOptions, devices: &[DeviceNode]) -> Result<Resources, CreateError> {
    let bytes = |option: &'static str, value: &Option<String>| -> Result<Option<i64>, CreateError> {
        match value.as_deref() {
            None => Ok(None),
            Some("-1") => Ok(Some(-1)),
            Some(s) => parse_bytes(s)
                .map_err(|e| invalid(option, s, e))
                .and_then(|b| i64::try_from(b).map_err(|_| invalid(option, s, "too large")))
                .map(Some),
        }
    };
    let memory = bytes("memory", &options.memory)?;
    let memory_swap = bytes("memory-swap", &options.memory_swap)?;
    if let (Some(m), Some(s)) = (memory, memory_swap) {
        if s != -1 && s < m {
            return Err(invalid(
                "memory-swap",
                options.memory_swap.as_deref().unwrap_or_default(),
                "must be at least the memory limit",
            ));
        }
    }
    let (cpu_quota, cpu_period) = match options.cpus {
        Some(c) if c <= 0.0 => return Err(invalid("cpus", &c.to_string(), "must be positive")),
        Some(c) => (Some((c * 100_000.0).round() as i64), Some(100_000)),
        None => (None, None),
    };
    Ok(Resources {
        memory,
        memory_swap,
        memory_reservation: bytes("memory-reservation", &options.memory_reservation)?,
        cpu_quota,
        cpu_period,
        cpu_shares: options.cpu_shares,
        cpuset_cpus: options.cpuset_cpus.clone(),
        pids_limit: options.pids_limit,
        devices: if options.privileged {
            // The cgroup starts from deny-all: privileged means allow-all.
            vec![super::cgroups::DeviceRule::allow('a', None, None, "rwm")]
        } else {
            // Docker's list, then each `--device` with its access.
            let mut rules = super::cgroups::docker_default_device_rules();
            rules.extend(devices.iter().map(|d| {
                super::cgroups::DeviceRule::allow(d.kind, Some(d.major as i64), Some(d.minor as i64), &d.access)
            }));
            rules
        },
        ..Resources::default()
    })
}

/// `--add-host NAME:IP`; docker's `host-gateway` is the host as seen from
/// the container: the gateway of its first bridge network.
fn extra_hosts(options: &CreateOptions) -> Result<Vec<(String, std::net::Ipv4Addr)>, CreateError> {
    options
        .add_hosts
        .iter()
        .map(|entry| {
            let (host, ip) = crate::spec::syntax::hosts::parse_extra_host(entry)
                .map_err(|e| invalid("add-host", entry, e.message))?;
            let address = if ip == "host-gateway" {
                options.network_attachments.first().map(|a| a.gateway).ok_or_else(|| {
                    invalid(
                        "add-host",
                        entry,
                        "host-gateway needs a bridge network (--network NAME)",
                    )
                })?
            } else {
                ip.parse()
                    .map_err(|_| invalid("add-host", entry, "only IPv4 addresses are supported"))?
            };
            Ok((host, address))
        })
        .collect()
}

/// `--ulimit nofile=1024:2048` (one value sets both).
pub fn parse_ulimit(spec: &str) -> Result<Rlimit, CreateError> {
    let (name, values) = spec
        .split_once('=')
        .ok_or_else(|| invalid("ulimit", spec, "expected NAME=SOFT[:HARD]"))?;
    let (soft, hard) = values.split_once(':').unwrap_or((values, values));
    let number = |s: &str| -> Result<u64, CreateError> {
        if s == "-1" || s == "unlimited" {
            return Ok(u64::MAX);
        }
        s.parse()
            .map_err(|_| invalid("ulimit", spec, format!("{s:?} is not a number")))
    };
    let (soft, hard) = (number(soft)?, number(hard)?);
    if soft > hard {
        return Err(invalid("ulimit", spec, "soft limit is above the hard limit"));
    }
    Ok(Rlimit {
        name: name.to_string(),
        soft,
        hard,
    })
}

fn security_options(options: &[String]) -> Result<(Seccomp, bool), CreateError> {
    let mut seccomp = Seccomp::Default;
    let mut no_new_privileges = false;
    for o in options {
        let (key, value) = o.split_once(['=', ':']).unwrap_or((o, "true"));
        match key {
            "seccomp" if value == "unconfined" => seccomp = Seccomp::Unconfined,
            "seccomp" => seccomp = Seccomp::Profile(PathBuf::from(value)),
            "no-new-privileges" => {
                no_new_privileges = value
                    .parse()
                    .map_err(|_| invalid("security-opt", o, "expected true or false"))?
            }
            _ => {
                return Err(invalid(
                    "security-opt",
                    o,
                    "supported: seccomp=unconfined|FILE, no-new-privileges",
                ))
            }
        }
    }
    Ok((seccomp, no_new_privileges))
}

/// `--log-opt max-size=10m --log-opt max-file=3`.
fn log_options(options: &[String]) -> Result<(u64, u32), CreateError> {
    let mut size = 0;
    let mut files = 1;
    for o in options {
        match o.split_once('=') {
            Some(("max-size", v)) => size = parse_bytes(v).map_err(|e| invalid("log-opt", o, e))?,
            Some(("max-file", v)) => files = v.parse().map_err(|_| invalid("log-opt", o, "expected a number"))?,
            _ => return Err(invalid("log-opt", o, "supported: max-size, max-file")),
        }
    }
    Ok((size, files))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> ImageInfo {
        ImageInfo {
            id: "sha256:abc".into(),
            name: "busybox:latest".into(),
            layers: vec![PathBuf::from("/l0")],
            entrypoint: vec!["/entry".into()],
            cmd: vec!["serve".into(), "--port".into(), "80".into()],
            env: vec!["PATH=/bin".into(), "A=image".into()],
            working_dir: Some("/app".into()),
            user: Some("nobody".into()),
            stop_signal: Some("SIGQUIT".into()),
            volumes: Vec::new(),
        }
    }

    fn build_with(options: CreateOptions) -> Result<ContainerConfig, CreateError> {
        build(&options, &image(), "0123456789abcdef", "n", Vec::new(), "now")
    }

    #[test]
    fn a_container_its_monitor_removes_is_removed_on_exit() {
        let kept = build_with(CreateOptions::default()).unwrap();
        assert!(!kept.auto_remove && !kept.removed_on_exit);
        let by_caller = build_with(CreateOptions {
            removed_on_exit: true,
            ..Default::default()
        })
        .unwrap();
        assert!(!by_caller.auto_remove && by_caller.removed_on_exit);
        let by_monitor = build_with(CreateOptions {
            auto_remove: true,
            ..Default::default()
        })
        .unwrap();
        assert!(by_monitor.auto_remove && by_monitor.removed_on_exit);
    }

    #[test]
    fn image_defaults_apply() {
        let c = build_with(CreateOptions::default()).unwrap();
        assert_eq!(c.args, vec!["/entry", "serve", "--port", "80"]);
        assert_eq!(c.working_dir, "/app");
        assert_eq!(c.user, "nobody");
        assert_eq!(c.stop_signal, "SIGQUIT");
        assert_eq!(c.hostname, "0123456789ab");
        assert_eq!(c.capabilities.len(), 14);
        assert_eq!(c.seccomp, Seccomp::Default);
        assert!(!c.no_new_privileges);
    }

    #[test]
    fn entrypoint_and_command_rules() {
        let c = build_with(CreateOptions {
            command: vec!["x".into()],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.args, vec!["/entry", "x"]);
        let c = build_with(CreateOptions {
            entrypoint: Some("/bin/sh".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.args, vec!["/bin/sh"], "--entrypoint drops the image CMD");
        let err = build_with(CreateOptions {
            entrypoint: Some(String::new()),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(err, CreateError::NoCommand);
    }

    #[test]
    fn env_overrides_by_key() {
        let c = build_with(CreateOptions {
            env: vec!["A=cli".into(), "B=2".into()],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.env, vec!["PATH=/bin", "A=cli", "B=2"]);
    }

    #[test]
    fn limits_parse_and_validate() {
        let c = build_with(CreateOptions {
            memory: Some("64m".into()),
            memory_swap: Some("128m".into()),
            cpus: Some(0.5),
            pids_limit: Some(20),
            ulimits: vec!["nofile=1024:2048".into()],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.resources.memory, Some(64 << 20));
        assert_eq!(c.resources.memory_swap, Some(128 << 20));
        assert_eq!(
            (c.resources.cpu_quota, c.resources.cpu_period),
            (Some(50_000), Some(100_000))
        );
        assert_eq!(
            c.rlimits[0],
            Rlimit {
                name: "nofile".into(),
                soft: 1024,
                hard: 2048
            }
        );
        let err = build_with(CreateOptions {
            memory: Some("lots".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().starts_with("invalid memory \"lots\""), "{err}");
        assert!(build_with(CreateOptions {
            memory: Some("64m".into()),
            memory_swap: Some("32m".into()),
            ..Default::default()
        })
        .is_err());
        assert!(parse_ulimit("nofile=9:1").is_err());
    }

    #[test]
    fn mounts_and_security_options() {
        let c = build_with(CreateOptions {
            volumes: vec!["/srv:/data:ro".into()],
            tmpfs: vec!["/scratch:size=1m,mode=1777".into()],
            security_opt: vec!["seccomp=unconfined".into(), "no-new-privileges".into()],
            ..Default::default()
        })
        .unwrap();
        assert!(c.mounts[0].read_only);
        assert_eq!(c.mounts[1].options, vec!["size=1m", "mode=1777"]);
        assert_eq!(c.seccomp, Seccomp::Unconfined);
        assert!(c.no_new_privileges);
        assert!(
            build_with(CreateOptions {
                volumes: vec!["data:/data".into()],
                ..Default::default()
            })
            .is_err(),
            "a named volume the caller did not resolve"
        );
    }

    #[test]
    fn bridge_networks_need_a_resolved_attachment() {
        let attachment = NetworkAttachment {
            network: "front".into(),
            bridge: "berth0123456789".into(),
            address: "10.200.0.2".parse().unwrap(),
            prefix: 24,
            gateway: "10.200.0.1".parse().unwrap(),
            aliases: vec!["web".into()],
            veth_host: "bveth0123456789".into(),
            mtu: 1500,
            internal: false,
        };
        let with = |network: Option<&str>, attachments: Vec<NetworkAttachment>| {
            build_with(CreateOptions {
                network: network.map(str::to_string),
                network_attachments: attachments,
                ..Default::default()
            })
        };
        let c = with(Some("front"), vec![attachment.clone()]).unwrap();
        assert_eq!((c.network, c.networks), (NetworkMode::Bridge, vec![attachment.clone()]));
        assert_eq!(with(None, Vec::new()).unwrap().network, NetworkMode::None);
        assert!(with(Some("front"), Vec::new()).is_err(), "unresolved");
        assert!(with(Some("back"), vec![attachment.clone()]).is_err(), "another network");
        assert!(
            with(Some("host"), vec![attachment]).is_err(),
            "host takes no attachment"
        );
    }
}

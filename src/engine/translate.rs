//! A compose service replica → what the runtime creates: the container
//! options docker compose would send to the engine (`createContainer` in
//! compose's `create.go`), its networks, published ports and ownership
//! labels. Pure: the apply layer resolves images, addresses and volumes.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::labels;
use super::volumes_from::{self, Source, VolumesFrom};
use crate::runtime::config::Link;
use crate::runtime::create::CreateOptions;
use crate::spec::model::{Project, Service};
use crate::spec::syntax::devices::DeviceEntry;
use crate::spec::syntax::volumes::VolumeType;

/// One replica to create.
#[derive(Debug, Clone)]
pub struct Replica<'a> {
    pub project: &'a Project,
    pub service: &'a str,
    pub number: u32,
    /// Container name (`<project>-<service>-<n>` or `container_name`).
    pub name: &'a str,
    /// The image id the container is created from (ownership label).
    pub image_id: &'a str,
    pub config_hash: &'a str,
    /// A one-off container (`berth run`).
    pub oneoff: bool,
}

/// What the apply layer needs to create the container.
#[derive(Debug, Clone, Default)]
pub struct ContainerSpec {
    pub options: CreateOptions,
    /// Bridge networks in attachment order (the first gives the default
    /// route); empty for `network_mode: host|none`.
    pub networks: Vec<NetworkJoin>,
    /// `-p` specs: `[HOST_IP:][HOST_PORT:]CONTAINER_PORT/PROTO`.
    pub ports: Vec<String>,
    /// Host device paths (`/dev/x[:/dev/y[:rwm]]`).
    pub devices: Vec<String>,
    /// `configs`/`secrets` given inline (`content`): files the apply layer
    /// writes under the root and mounts read-only at their targets.
    pub generated_files: Vec<GeneratedFile>,
    /// `volumes_from`: the apply layer looks up each source container and
    /// adds its mounts ([`volumes_from`]).
    pub volumes_from: Vec<VolumesFrom>,
}

/// A config or secret whose content berth writes to a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// `configs` or `secrets`.
    pub kind: &'static str,
    pub name: String,
    pub content: String,
    pub target: String,
    pub mode: u32,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// One network a replica joins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkJoin {
    /// The network's full name.
    pub network: String,
    /// The service name, then the service's `aliases`.
    pub aliases: Vec<String>,
    pub ipv4_address: Option<Ipv4Addr>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    #[error("service {service:?}: {what} is not supported by berth")]
    Unsupported { service: String, what: String },
    #[error("service {service:?}: invalid {field} {value:?}")]
    Invalid {
        service: String,
        field: &'static str,
        value: String,
    },
    #[error("no such service: {0}")]
    UnknownService(String),
    #[error("service {service:?}: volumes_from {entry:?}: {reason}")]
    VolumesFrom {
        service: String,
        entry: String,
        reason: String,
    },
}

/// The full name of the project network `key`.
pub fn network_name(project: &Project, key: &str) -> String {
    project
        .networks
        .get(key)
        .and_then(|n| n.name.clone())
        .unwrap_or_else(|| format!("{}_{key}", project.name))
}

/// The full name of the project volume `key`.
pub fn volume_name(project: &Project, key: &str) -> String {
    project
        .volumes
        .get(key)
        .and_then(|v| v.name.clone())
        .unwrap_or_else(|| format!("{}_{key}", project.name))
}

/// Translates one replica.
///
/// # Errors
///
/// Unsupported modes (`network_mode: service:…`, volume types other than
/// bind/volume/tmpfs) and invalid addresses, naming the service.
pub fn container_spec(replica: &Replica<'_>) -> Result<ContainerSpec, TranslateError> {
    let name = replica.service;
    let service = replica
        .project
        .services
        .get(name)
        .ok_or_else(|| TranslateError::UnknownService(name.to_string()))?;
    let unsupported = |what: String| TranslateError::Unsupported {
        service: name.to_string(),
        what,
    };
    let (network, networks) = networks(replica.project, name, service)?;
    let mut options = CreateOptions {
        image: service
            .image
            .clone()
            .unwrap_or_else(|| format!("{}-{name}", replica.project.name)),
        name: Some(replica.name.to_string()),
        env: environment(service),
        workdir: service.working_dir.clone(),
        user: service.user.clone(),
        group_add: service.group_add.clone(),
        hostname: service.hostname.clone(),
        tmpfs: service.tmpfs.clone(),
        cap_add: service.cap_add.clone(),
        cap_drop: service.cap_drop.clone(),
        privileged: service.privileged,
        read_only: service.read_only,
        init: service.init.unwrap_or(false),
        stop_signal: service.stop_signal.clone(),
        stop_timeout: service.stop_grace_period.map(|d| d.0.as_secs()),
        network,
        dns: service.dns.clone(),
        dns_search: service.dns_search.clone(),
        dns_options: service.dns_opt.clone(),
        links: links(service),
        security_opt: service.security_opt.clone(),
        tty: service.tty,
        interactive: service.stdin_open,
        labels: container_labels(replica, service),
        ..CreateOptions::default()
    };
    command(service, &mut options);
    resources(service, &mut options);
    volumes(replica.project, service, &mut options).map_err(unsupported)?;
    for (host, addresses) in &service.extra_hosts.0 {
        for address in addresses {
            options.add_hosts.push(format!("{host}:{address}"));
        }
    }
    if let Some(logging) = &service.logging {
        for (key, value) in &logging.options.0 {
            if matches!(key.as_str(), "max-size" | "max-file") {
                options.log_opts.push(format!("{key}={value}"));
            }
        }
    }
    let devices = service
        .devices
        .iter()
        .filter_map(|d| match d {
            DeviceEntry::Path(m) => Some(format!("{}:{}:{}", m.source, m.target, m.permissions)),
            DeviceEntry::Cdi(_) => None,
        })
        .collect();
    let ports = if networks.is_empty() {
        Vec::new()
    } else {
        published_ports(service)
    };
    let volumes_from = service
        .volumes_from
        .iter()
        .map(|entry| volumes_from_entry(replica.project, name, entry))
        .collect::<Result<_, _>>()?;
    let mut generated_files = Vec::new();
    for (kind, references, objects) in [
        ("configs", &service.configs, &replica.project.configs),
        ("secrets", &service.secrets, &replica.project.secrets),
    ] {
        for reference in references {
            file_object(name, kind, reference, objects, &mut options, &mut generated_files)?;
        }
    }
    Ok(ContainerSpec {
        options,
        networks,
        ports,
        devices,
        generated_files,
        volumes_from,
    })
}

/// A `volumes_from` entry, its service source checked against the project.
fn volumes_from_entry(project: &Project, service: &str, entry: &str) -> Result<VolumesFrom, TranslateError> {
    let error = |reason: String| TranslateError::VolumesFrom {
        service: service.to_string(),
        entry: entry.to_string(),
        reason,
    };
    let parsed = volumes_from::parse(entry).map_err(error)?;
    if let Source::Service(source) = &parsed.source {
        if !project.services.contains_key(source) {
            return Err(error(format!(
                "no service {source:?} in the project (use container:NAME for a container)"
            )));
        }
    }
    Ok(parsed)
}

/// `links: [SERVICE[:ALIAS]]`: the alias (the service name when none is
/// given) names, for this container, what the service name resolves to.
fn links(service: &Service) -> Vec<Link> {
    service
        .links
        .iter()
        .map(|link| {
            let (target, alias) = link.split_once(':').unwrap_or((link, link));
            Link {
                target: target.to_string(),
                alias: alias.to_string(),
            }
        })
        .collect()
}

/// A `configs`/`secrets` entry: a file is bind-mounted read-only at its
/// target (configs: `/<name>`, secrets: `/run/secrets/<name>`); inline
/// `content` becomes a [`GeneratedFile`]. `environment` sources are turned
/// into content by the CLI, whose environment they name.
fn file_object(
    service: &str,
    kind: &'static str,
    reference: &crate::spec::model::links::FileReference,
    objects: &BTreeMap<String, crate::spec::model::resources::FileObject>,
    options: &mut CreateOptions,
    generated: &mut Vec<GeneratedFile>,
) -> Result<(), TranslateError> {
    let unsupported = |what: String| TranslateError::Unsupported {
        service: service.to_string(),
        what,
    };
    let object = objects
        .get(&reference.source)
        .ok_or_else(|| unsupported(format!("{kind} {:?}, which is not defined", reference.source)))?;
    let target = match (kind, reference.target.as_deref()) {
        (_, Some(t)) if t.starts_with('/') => t.to_string(),
        ("secrets", Some(t)) => format!("/run/secrets/{t}"),
        ("secrets", None) => format!("/run/secrets/{}", reference.source),
        (_, Some(t)) => format!("/{t}"),
        (_, None) => format!("/{}", reference.source),
    };
    if object.external {
        return Err(unsupported(format!(
            "external {kind} {:?} (swarm only)",
            reference.source
        )));
    }
    if let Some(file) = &object.file {
        options.volumes.push(format!("{file}:{target}:ro"));
        return Ok(());
    }
    let Some(content) = &object.content else {
        return Err(unsupported(format!(
            "{kind} {:?} without `file` or `content`",
            reference.source
        )));
    };
    let id = |v: &Option<String>| v.as_deref().and_then(|v| v.parse::<u32>().ok());
    generated.push(GeneratedFile {
        kind,
        name: reference.source.clone(),
        content: content.clone(),
        target,
        mode: reference.mode.unwrap_or(0o444),
        uid: id(&reference.uid),
        gid: id(&reference.gid),
    });
    Ok(())
}

/// compose: an `entrypoint` replaces the image's entrypoint and drops its
/// command; `entrypoint: []` clears it. The runtime takes the entrypoint
/// as one program, so the rest of the list leads the command.
fn command(service: &Service, options: &mut CreateOptions) {
    let command = service.command.as_ref().map(|c| c.0.clone()).unwrap_or_default();
    match &service.entrypoint {
        Some(entrypoint) => match entrypoint.0.split_first() {
            Some((program, rest)) => {
                options.entrypoint = Some(program.clone());
                options.command = rest.iter().cloned().chain(command).collect();
            }
            None => {
                options.entrypoint = Some(String::new());
                options.command = command;
            }
        },
        None => options.command = command,
    }
}

/// Variables without a value (`FOO` alone, unset in the environment) are
/// left out, as compose does.
fn environment(service: &Service) -> Vec<String> {
    service
        .environment
        .0
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
        .collect()
}

/// `deploy.resources.limits` win over the legacy service keys, as in
/// compose-go's normalization.
fn resources(service: &Service, options: &mut CreateOptions) {
    let limits = service
        .deploy
        .as_ref()
        .and_then(|d| d.resources.as_ref())
        .and_then(|r| r.limits.as_ref());
    let reservations = service
        .deploy
        .as_ref()
        .and_then(|d| d.resources.as_ref())
        .and_then(|r| r.reservations.as_ref());
    let memory = limits.and_then(|l| l.memory).or(service.mem_limit);
    options.memory = memory.map(|m| m.0.to_string());
    options.memory_reservation = reservations
        .and_then(|r| r.memory)
        .or(service.mem_reservation)
        .map(|m| m.0.to_string());
    options.memory_swap = service.memswap_limit.map(|s| s.0.to_string());
    options.cpus = limits.and_then(|l| l.cpus).or(service.cpus);
    options.cpu_shares = service.cpu_shares;
    options.cpuset_cpus = service.cpuset.clone();
    options.pids_limit = limits.and_then(|l| l.pids).or(service.pids_limit);
    options.shm_size = service.shm_size.map(|s| s.0.to_string());
    options.ulimits = service
        .ulimits
        .iter()
        .map(|(name, u)| format!("{name}={}:{}", u.soft, u.hard))
        .collect();
    options.sysctls = service.sysctls.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
}

fn volumes(project: &Project, service: &Service, options: &mut CreateOptions) -> Result<(), String> {
    for volume in &service.volumes {
        let mode = if volume.read_only { ":ro" } else { "" };
        match volume.kind {
            VolumeType::Bind => {
                let source = volume.source.as_deref().ok_or("a bind mount without a source")?;
                options.volumes.push(format!("{source}:{}{mode}", volume.target));
            }
            VolumeType::Volume => {
                let nocopy = volume.volume.as_ref().and_then(|v| v.nocopy).unwrap_or(false);
                let flags: Vec<&str> = [volume.read_only.then_some("ro"), nocopy.then_some("nocopy")]
                    .into_iter()
                    .flatten()
                    .collect();
                let flags = if flags.is_empty() {
                    String::new()
                } else {
                    format!(":{}", flags.join(","))
                };
                match &volume.source {
                    Some(key) => {
                        let full = volume_name(project, key);
                        options.volumes.push(format!("{full}:{}{flags}", volume.target));
                    }
                    // docker's anonymous form takes no flags after the target.
                    None => options.volumes.push(volume.target.clone()),
                }
            }
            VolumeType::Tmpfs => {
                let mut tmpfs_options = Vec::new();
                if let Some(t) = &volume.tmpfs {
                    if let Some(size) = t.size {
                        tmpfs_options.push(format!("size={size}"));
                    }
                    if let Some(mode) = t.mode {
                        tmpfs_options.push(format!("mode={mode:o}"));
                    }
                }
                if volume.read_only {
                    tmpfs_options.push("ro".into());
                }
                if tmpfs_options.is_empty() {
                    options.tmpfs.push(volume.target.clone());
                } else {
                    options
                        .tmpfs
                        .push(format!("{}:{}", volume.target, tmpfs_options.join(",")));
                }
            }
            other => return Err(format!("volume type {other:?} (target {})", volume.target)),
        }
    }
    Ok(())
}

/// Network mode and bridge networks: `network_mode: host|none` have no
/// bridge; otherwise the service's networks by descending `priority`, then
/// by name (compose's order).
fn networks(
    project: &Project,
    name: &str,
    service: &Service,
) -> Result<(Option<String>, Vec<NetworkJoin>), TranslateError> {
    match service.network_mode.as_deref() {
        Some(mode @ ("host" | "none")) => return Ok((Some(mode.to_string()), Vec::new())),
        Some("bridge") | None => {}
        Some(other) => {
            return Err(TranslateError::Unsupported {
                service: name.to_string(),
                what: format!("network_mode {other:?}"),
            })
        }
    }
    let mut keys: Vec<(&String, &crate::spec::model::links::ServiceNetwork)> = service.networks.iter().collect();
    if keys.is_empty() && service.network_mode.is_none() {
        return Ok((Some("none".to_string()), Vec::new()));
    }
    keys.sort_by(|(a, x), (b, y)| y.priority.unwrap_or(0).cmp(&x.priority.unwrap_or(0)).then(a.cmp(b)));
    let mut joins = Vec::new();
    for (key, network) in keys {
        let ipv4_address = network
            .ipv4_address
            .as_deref()
            .map(|a| {
                a.parse::<Ipv4Addr>().map_err(|_| TranslateError::Invalid {
                    service: name.to_string(),
                    field: "ipv4_address",
                    value: a.to_string(),
                })
            })
            .transpose()?;
        let mut aliases = vec![name.to_string()];
        aliases.extend(network.aliases.iter().filter(|a| *a != name).cloned());
        joins.push(NetworkJoin {
            network: network_name(project, key),
            aliases,
            ipv4_address,
        });
    }
    let first = joins.first().map(|j| j.network.clone());
    Ok((first, joins))
}

/// The `-p` specs of a service's `ports:`.
pub fn published_ports(service: &Service) -> Vec<String> {
    service
        .ports
        .iter()
        .map(|p| {
            let mut spec = String::new();
            if let Some(ip) = &p.host_ip {
                spec.push_str(ip);
                spec.push(':');
            }
            match &p.published {
                Some(published) => {
                    spec.push_str(published);
                    spec.push(':');
                }
                None if p.host_ip.is_some() => spec.push(':'),
                None => {}
            }
            format!("{spec}{}/{}", p.target, p.protocol)
        })
        .collect()
}

/// compose's ownership labels (`com.docker.compose.*`) over the service's.
fn container_labels(replica: &Replica<'_>, service: &Service) -> Vec<String> {
    let mut all: BTreeMap<String, String> = service.labels.0.clone();
    all.extend(labels::ownership(replica, service));
    all.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::spec::loader::demo_project as project;

    fn spec(project: &Project, service: &str) -> ContainerSpec {
        let name = format!("demo-{service}-1");
        container_spec(&Replica {
            project,
            service,
            number: 1,
            name: &name,
            image_id: "sha256:abc",
            config_hash: "hash",
            oneoff: false,
        })
        .unwrap()
    }

    fn label<'a>(spec: &'a ContainerSpec, key: &str) -> Option<&'a str> {
        spec.options
            .labels
            .iter()
            .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
    }

    #[test]
    fn default_network_aliases_and_labels() {
        let p = project("services:\n  web:\n    image: busybox\n    labels: {team: a}\n");
        let s = spec(&p, "web");
        assert_eq!(s.options.network.as_deref(), Some("demo_default"));
        assert_eq!(
            s.networks,
            vec![NetworkJoin {
                network: "demo_default".into(),
                aliases: vec!["web".into()],
                ipv4_address: None
            }]
        );
        assert_eq!(label(&s, labels::PROJECT), Some("demo"));
        assert_eq!(label(&s, labels::SERVICE), Some("web"));
        assert_eq!(label(&s, labels::NUMBER), Some("1"));
        assert_eq!(label(&s, labels::CONFIG_HASH), Some("hash"));
        assert_eq!(label(&s, labels::ONEOFF), Some("False"));
        assert_eq!(label(&s, "team"), Some("a"));
        assert_eq!(s.options.name.as_deref(), Some("demo-web-1"));
    }

    #[test]
    fn entrypoint_list_leads_the_command() {
        let p = project(
            "services:\n  a:\n    image: x\n    entrypoint: [sh, -c]\n    command: [echo hi]\n  b:\n    image: x\n    entrypoint: []\n  c:\n    image: x\n    command: echo 'a b'\n",
        );
        let a = spec(&p, "a");
        assert_eq!(a.options.entrypoint.as_deref(), Some("sh"));
        assert_eq!(a.options.command, vec!["-c", "echo hi"]);
        assert_eq!(spec(&p, "b").options.entrypoint.as_deref(), Some(""));
        let c = spec(&p, "c");
        assert_eq!(c.options.entrypoint, None);
        assert_eq!(c.options.command, vec!["echo", "a b"]);
    }

    #[test]
    fn volumes_ports_and_resources() {
        let p = project(
            "services:\n  db:\n    image: x\n    volumes: [data:/var/lib/db, ./conf:/etc/conf:ro, /anon]\n    tmpfs: [/run]\n    ports: ['8080:80', '127.0.0.1::53/udp', '9000']\n    mem_limit: 64m\n    deploy: {resources: {limits: {cpus: '0.5', pids: 10}}}\n    ulimits: {nofile: {soft: 100, hard: 200}}\nvolumes:\n  data: {}\n",
        );
        let s = spec(&p, "db");
        assert_eq!(s.options.volumes[0], "demo_data:/var/lib/db");
        assert!(
            s.options.volumes[1].ends_with("/conf:/etc/conf:ro"),
            "{:?}",
            s.options.volumes
        );
        assert!(s.options.volumes[1].starts_with('/'));
        assert_eq!(s.options.volumes[2], "/anon");
        assert_eq!(s.options.tmpfs, vec!["/run"]);
        assert_eq!(s.ports, vec!["8080:80/tcp", "127.0.0.1::53/udp", "9000/tcp"]);
        assert_eq!(s.options.memory.as_deref(), Some("67108864"));
        assert_eq!(s.options.cpus, Some(0.5));
        assert_eq!(s.options.pids_limit, Some(10));
        assert_eq!(s.options.ulimits, vec!["nofile=100:200"]);
    }

    #[test]
    fn networks_by_priority_with_static_address() {
        let p = project(
            "services:\n  app:\n    image: x\n    networks:\n      back: {aliases: [api], ipv4_address: 10.9.0.5}\n      front: {priority: 10}\nnetworks:\n  back: {}\n  front: {name: shared-front}\n",
        );
        let s = spec(&p, "app");
        let names: Vec<&str> = s.networks.iter().map(|n| n.network.as_str()).collect();
        assert_eq!(names, vec!["shared-front", "demo_back"]);
        assert_eq!(s.networks[1].aliases, vec!["app", "api"]);
        assert_eq!(s.networks[1].ipv4_address, Some(Ipv4Addr::new(10, 9, 0, 5)));
        assert_eq!(s.options.network.as_deref(), Some("shared-front"));
    }

    #[test]
    fn host_network_has_no_bridge_and_service_mode_is_refused() {
        let p = project(
            "services:\n  h:\n    image: x\n    network_mode: host\n  s:\n    image: x\n    network_mode: service:h\n",
        );
        let h = spec(&p, "h");
        assert_eq!(h.options.network.as_deref(), Some("host"));
        assert!(h.networks.is_empty() && h.ports.is_empty());
        let err = container_spec(&Replica {
            project: &p,
            service: "s",
            number: 1,
            name: "demo-s-1",
            image_id: "",
            config_hash: "",
            oneoff: false,
        })
        .unwrap_err();
        assert!(err.to_string().contains("service \"s\""), "{err}");
    }

    #[test]
    fn configs_and_secrets_mount_at_their_targets() {
        let p = project(
            "services:\n  a:\n    image: x\n    configs: [site, {source: inline, target: /etc/app.conf, mode: 0400}]\n    secrets: [token]\nconfigs:\n  site: {file: ./site.conf}\n  inline: {content: hello}\nsecrets:\n  token: {file: ./token.txt}\n",
        );
        let s = spec(&p, "a");
        assert!(
            s.options.volumes.iter().any(|v| v.ends_with("/site.conf:/site:ro")),
            "{:?}",
            s.options.volumes
        );
        assert!(s
            .options
            .volumes
            .iter()
            .any(|v| v.ends_with("/token.txt:/run/secrets/token:ro")));
        assert_eq!(s.generated_files.len(), 1);
        let g = &s.generated_files[0];
        assert_eq!(
            (g.kind, g.target.as_str(), g.mode, g.content.as_str()),
            ("configs", "/etc/app.conf", 0o400, "hello")
        );
    }

    #[test]
    fn links_and_volumes_from_are_carried() {
        let p = project(
            "services:\n  db:\n    image: x\n  app:\n    image: x\n    links: [db, 'db:database']\n    volumes_from: ['db:ro', 'container:data']\n",
        );
        let s = spec(&p, "app");
        let links: Vec<(&str, &str)> = s
            .options
            .links
            .iter()
            .map(|l| (l.target.as_str(), l.alias.as_str()))
            .collect();
        assert_eq!(links, vec![("db", "db"), ("db", "database")]);
        let sources: Vec<(&Source, bool)> = s.volumes_from.iter().map(|v| (&v.source, v.read_only)).collect();
        assert_eq!(
            sources,
            vec![
                (&Source::Service("db".into()), true),
                (&Source::Container("data".into()), false)
            ]
        );
        // An entry naming no service of the project, or a bad mode, names
        // the service and the entry.
        let error = |p: &Project| {
            container_spec(&Replica {
                project: p,
                service: "app",
                number: 1,
                name: "demo-app-1",
                image_id: "",
                config_hash: "",
                oneoff: false,
            })
            .unwrap_err()
            .to_string()
        };
        let mut p = p;
        p.services.get_mut("app").unwrap().volumes_from = vec!["nosuch".into()];
        let err = error(&p);
        assert!(err.contains("service \"app\"") && err.contains("\"nosuch\""), "{err}");
        p.services.get_mut("app").unwrap().volumes_from = vec!["db:rx".into()];
        let err = error(&p);
        assert!(err.contains("\"db:rx\"") && err.contains("\"rx\""), "{err}");
    }

    #[test]
    fn unset_variables_are_left_out() {
        let p = project("services:\n  a:\n    image: x\n    environment: [A=1, BERTH_SURELY_UNSET_VAR]\n");
        assert_eq!(spec(&p, "a").options.env, vec!["A=1"]);
    }

    #[test]
    fn project_round_trips_through_json() {
        let p = project(
            "services:\n  a:\n    image: x\n    ports: ['80']\n    volumes: [d:/d]\n    depends_on: {b: {condition: service_healthy}}\n    healthcheck: {test: [CMD, 'true'], interval: 1s}\n  b:\n    image: y\nvolumes:\n  d: {}\n",
        );
        let json = serde_json::to_string(&p).unwrap();
        let back: Project = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
    }
}

//! The compose operations on one project: observe, plan, apply — under the
//! project's lock, so two `up`s of one project run one after the other
//! while different projects proceed in parallel (ARCHITECTURE invariant 4).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::apply::{error_chain, wait_until_healthy, Applier, ApplyError, Event};
use super::observe::{self, observe, ObserveError};
use super::plan::{plan_down, plan_up, Action, Desired, DownOptions, Plan, PlanError, UpOptions};
use super::volumes_from::{self, Source};
use super::{health, labels, supervisor};
use crate::runtime::config::Status;
use crate::runtime::container::Container;
use crate::spec::model::Project;
use crate::store::Root;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Observe(#[from] ObserveError),
    #[error("{}", join(.0))]
    Apply(Vec<ApplyError>),
    #[error("locking project {project}: {source}")]
    Lock { project: String, source: std::io::Error },
    #[error("{0}")]
    Wait(String),
}

fn join(errors: &[ApplyError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// `berth up` flags, as sent to the engine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UpRequest {
    pub services: Vec<String>,
    pub force_recreate: bool,
    pub no_recreate: bool,
    pub no_deps: bool,
    pub always_recreate_deps: bool,
    pub remove_orphans: bool,
    pub no_start: bool,
    /// `-t` in seconds.
    pub timeout: Option<u64>,
    pub scale: BTreeMap<String, u64>,
    /// `--wait`: return when every service is running and healthy.
    pub wait: bool,
    pub wait_timeout: Option<u64>,
    /// `--build`: build the images of services with `build:` first.
    pub build: bool,
    /// `--pull always|missing|never` over each service's `pull_policy`.
    pub pull: Option<String>,
}

/// `berth down` flags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DownRequest {
    pub services: Vec<String>,
    pub remove_volumes: bool,
    pub remove_orphans: bool,
    pub timeout: Option<u64>,
}

/// What `up` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpReport {
    /// Actions run (0: the project was converged already).
    pub actions: usize,
    /// Orphans found and kept (no `--remove-orphans`).
    pub orphans: Vec<String>,
}

fn lock(root: &Root, project: &str) -> Result<nix::fcntl::Flock<std::fs::File>, EngineError> {
    root.lock(&format!("project-{project}"))
        .map_err(|source| EngineError::Lock {
            project: project.to_string(),
            source,
        })
}

/// `up`: converge the project. Pulls come first when the plan has any,
/// then the project is observed and planned again, since image ids decide
/// recreations.
pub fn up(
    root: &Root,
    project: &Project,
    request: &UpRequest,
    events: &(dyn Fn(Event) + Sync),
) -> Result<UpReport, EngineError> {
    let _lock = lock(root, &project.name)?;
    let mut desired = Desired::from_project(project, &request.scale)?;
    if request.pull.as_deref() == Some("never") {
        for service in desired.services.values_mut() {
            service.pull_policy = super::plan::PullPolicy::Never;
        }
    }
    let options = UpOptions {
        force_recreate: request.force_recreate,
        no_recreate: request.no_recreate,
        no_deps: request.no_deps,
        always_recreate_deps: request.always_recreate_deps,
        remove_orphans: request.remove_orphans,
        no_start: request.no_start,
        services: request.services.clone(),
        timeout: request.timeout.map(Duration::from_secs),
    };
    let applier = Applier {
        root,
        project,
        desired: &desired,
        events,
        remove_volumes: false,
    };
    if request.build || request.pull.as_deref() == Some("always") {
        let selected = selected_services(project, &desired, &request.services, request.no_deps)?;
        let fetch = FetchRequest {
            services: selected,
            no_cache: false,
        };
        if request.build {
            build_services(&applier, &desired, &fetch)?;
        }
        if request.pull.as_deref() == Some("always") {
            pull_services(&applier, &desired, &fetch)?;
        }
    }
    let mut plan = plan_up(&desired, &observe(root, &desired)?, &options)?;
    let mut actions = 0;
    let fetches: Vec<Action> = plan
        .actions()
        .filter(|a| matches!(a, Action::PullImage { .. } | Action::BuildImage { .. }))
        .cloned()
        .collect();
    if !fetches.is_empty() {
        actions += fetches.len();
        let fetch_plan = Plan {
            waves: vec![super::plan::Wave { actions: fetches }],
            orphans_kept: Vec::new(),
        };
        applier.run(&fetch_plan).map_err(EngineError::Apply)?;
        plan = plan_up(&desired, &observe(root, &desired)?, &options)?;
    }
    actions += plan.actions().count();
    preflight(root, project, &plan)?;
    applier.run(&plan).map_err(EngineError::Apply)?;
    drop(_lock);
    if request.wait {
        wait_until_healthy(root, &project.name, request.wait_timeout.map(Duration::from_secs))
            .map_err(EngineError::Wait)?;
    }
    Ok(UpReport {
        actions,
        orphans: plan.orphans_kept,
    })
}

/// What would fail a service's create fails `up` before anything of the
/// project is made (networks and volumes included): a service berth cannot
/// translate, a `volumes_from` source that neither exists nor is created by
/// this plan, a device request the host cannot meet (a GPU on a host
/// without one), a host port something else holds (naming the owner when
/// it is a berth container). Ports of services whose containers are
/// recreated are held by those containers and not checked.
fn preflight(root: &Root, project: &Project, plan: &Plan) -> Result<(), EngineError> {
    let mut checked = std::collections::BTreeSet::new();
    let mut errors = Vec::new();
    let planned: std::collections::BTreeSet<&str> = plan
        .actions()
        .filter_map(|a| match a {
            Action::Create { service, .. } | Action::Recreate { service, .. } => Some(service.as_str()),
            _ => None,
        })
        .collect();
    let mut containers: Option<Vec<Container>> = None;
    for action in plan.actions() {
        let (service, created) = match action {
            Action::Create { service, .. } => (service, true),
            Action::Recreate { service, .. } => (service, false),
            _ => continue,
        };
        if !checked.insert(service.clone()) {
            continue;
        }
        let Some(compose_service) = project.services.get(service) else {
            continue;
        };
        let replica = super::translate::Replica {
            project,
            service,
            number: 1,
            name: service,
            image_id: "",
            config_hash: "",
            oneoff: false,
        };
        let spec = match super::translate::container_spec(&replica) {
            Ok(spec) => spec,
            Err(e) => {
                errors.push(ApplyError::Service {
                    service: service.clone(),
                    message: e.to_string(),
                });
                continue;
            }
        };
        if !spec.volumes_from.is_empty() {
            let existing = match &containers {
                Some(list) => list,
                None => containers.insert(crate::runtime::container::list(root).map_err(ObserveError::from)?),
            };
            let configs: Vec<&crate::runtime::config::ContainerConfig> = existing.iter().map(|c| &c.config).collect();
            for entry in &spec.volumes_from {
                let planned_service = matches!(&entry.source, Source::Service(s) if planned.contains(s.as_str()));
                if !planned_service && volumes_from::source_container(&configs, &project.name, entry).is_none() {
                    errors.push(ApplyError::Service {
                        service: service.clone(),
                        message: format!(
                            "volumes_from {:?}: {}",
                            entry.entry,
                            super::apply::missing_source(entry)
                        ),
                    });
                }
            }
        }
        if let Err(e) = crate::devices::edits_for_service(service, compose_service, &crate::devices::device_root()) {
            errors.push(ApplyError::Devices(error_chain(&e)));
            continue;
        }
        if !created {
            continue;
        }
        let specs: Vec<String> = super::translate::published_ports(compose_service)
            .into_iter()
            .filter(|spec| has_fixed_host_port(spec))
            .collect();
        if let Err(e) = crate::runtime::ports::publish(root, &specs) {
            errors.push(ApplyError::Service {
                service: service.clone(),
                message: error_chain(&e),
            });
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(EngineError::Apply(errors))
    }
}

/// `HOST_IP:HOST_PORT:PORT/proto` or `HOST_PORT:PORT/proto`, not `PORT` or
/// `HOST_IP::PORT` (ephemeral ports cannot conflict).
fn has_fixed_host_port(spec: &str) -> bool {
    let parts: Vec<&str> = spec.split(':').collect();
    parts.len() >= 2 && !parts[parts.len() - 2].is_empty()
}

/// `build` and `pull` flags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FetchRequest {
    /// Empty: every service.
    pub services: Vec<String>,
    pub no_cache: bool,
}

/// The selected services and, unless `no_deps`, what they depend on.
fn selected_services(
    project: &Project,
    desired: &Desired,
    services: &[String],
    no_deps: bool,
) -> Result<Vec<String>, EngineError> {
    if let Some(unknown) = services.iter().find(|s| !project.services.contains_key(*s)) {
        return Err(PlanError::UnknownService {
            service: unknown.clone(),
        }
        .into());
    }
    if services.is_empty() {
        return Ok(project.services.keys().cloned().collect());
    }
    if no_deps {
        return Ok(services.to_vec());
    }
    Ok(desired.graph()?.with_dependencies(services))
}

fn build_services(applier: &Applier<'_>, desired: &Desired, request: &FetchRequest) -> Result<usize, EngineError> {
    let mut errors = Vec::new();
    let mut built = 0;
    for name in &request.services {
        let Some(service) = desired.services.get(name).filter(|s| s.buildable) else {
            continue;
        };
        built += 1;
        if let Err(e) = applier.build(name, &service.image, request.no_cache) {
            errors.push(e);
        }
    }
    if errors.is_empty() {
        Ok(built)
    } else {
        Err(EngineError::Apply(errors))
    }
}

fn pull_services(applier: &Applier<'_>, desired: &Desired, request: &FetchRequest) -> Result<usize, EngineError> {
    let mut seen = std::collections::BTreeSet::new();
    let actions: Vec<Action> = request
        .services
        .iter()
        .filter_map(|name| desired.services.get(name))
        .filter(|s| !s.buildable || s.pull_policy != super::plan::PullPolicy::Build)
        .filter(|s| seen.insert(s.image.clone()))
        .map(|s| Action::PullImage {
            service: s.name.clone(),
            image: s.image.clone(),
        })
        .collect();
    let count = actions.len();
    let plan = Plan {
        waves: vec![super::plan::Wave { actions }],
        orphans_kept: Vec::new(),
    };
    applier.run(&plan).map_err(EngineError::Apply)?;
    Ok(count)
}

/// `berth build`: the images of the selected services with `build:`.
pub fn build(
    root: &Root,
    project: &Project,
    request: &FetchRequest,
    events: &(dyn Fn(Event) + Sync),
) -> Result<usize, EngineError> {
    fetch(root, project, request, events, build_services)
}

/// `berth pull`: the images of the selected services (not those built).
pub fn pull(
    root: &Root,
    project: &Project,
    request: &FetchRequest,
    events: &(dyn Fn(Event) + Sync),
) -> Result<usize, EngineError> {
    fetch(root, project, request, events, pull_services)
}

type FetchServices = fn(&Applier<'_>, &Desired, &FetchRequest) -> Result<usize, EngineError>;

fn fetch(
    root: &Root,
    project: &Project,
    request: &FetchRequest,
    events: &(dyn Fn(Event) + Sync),
    services_fetch: FetchServices,
) -> Result<usize, EngineError> {
    let desired = Desired::from_project(project, &BTreeMap::new())?;
    let applier = Applier {
        root,
        project,
        desired: &desired,
        events,
        remove_volumes: false,
    };
    let services = selected_services(project, &desired, &request.services, true)?;
    let request = FetchRequest {
        services,
        ..request.clone()
    };
    services_fetch(&applier, &desired, &request)
}

/// `down`: stop and remove the project's containers, networks and, with
/// `-v`, volumes.
pub fn down(
    root: &Root,
    project: &Project,
    request: &DownRequest,
    events: &(dyn Fn(Event) + Sync),
) -> Result<(), EngineError> {
    let _lock = lock(root, &project.name)?;
    let desired = Desired::from_project(project, &BTreeMap::new())?;
    let options = DownOptions {
        remove_volumes: request.remove_volumes,
        remove_orphans: request.remove_orphans,
        timeout: request.timeout.map(Duration::from_secs),
        services: request.services.clone(),
    };
    let plan = plan_down(&desired, &observe(root, &desired)?, &options)?;
    let applier = Applier {
        root,
        project,
        desired: &desired,
        events,
        remove_volumes: request.remove_volumes,
    };
    applier.run(&plan).map_err(EngineError::Apply)?;
    if request.services.is_empty() {
        let dir = super::apply::project_dir(root, &project.name);
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                events(Event::new(
                    "Project",
                    &project.name,
                    &format!("cannot remove {}: {e}", dir.display()),
                ));
            }
        }
    }
    Ok(())
}

/// The project as its resources' labels describe it, for `down -p NAME`
/// without the stack file (compose does the same): its services with their
/// dependencies, its networks and volumes by their full names.
pub fn project_from_labels(root: &Root, name: &str) -> Result<Project, EngineError> {
    use crate::spec::model::links::DependsOn;
    use crate::spec::model::resources::{Network, Volume};
    use crate::spec::model::{Condition, Service};
    let mut project = Project {
        name: name.to_string(),
        ..Project::default()
    };
    for c in observe::project_containers(root, name)? {
        let l = &c.config.labels;
        let Some(service_name) = l.get(labels::SERVICE) else {
            continue;
        };
        let mut service = Service {
            image: Some(c.config.image.clone()),
            ..Service::default()
        };
        for entry in l.get(labels::DEPENDS_ON).map(String::as_str).unwrap_or("").split(',') {
            let mut parts = entry.split(':');
            let (Some(dependency), condition, restart) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            if dependency.is_empty() {
                continue;
            }
            let condition = match condition {
                Some("service_healthy") => Condition::ServiceHealthy,
                Some("service_completed_successfully") => Condition::ServiceCompletedSuccessfully,
                _ => Condition::ServiceStarted,
            };
            let depends = DependsOn {
                condition,
                restart: Some(restart == Some("true")),
                required: false,
            };
            service.depends_on.insert(dependency.to_string(), depends);
        }
        project.services.entry(service_name.clone()).or_insert(service);
    }
    let networks = crate::network::NetworkStore::new(root)
        .list()
        .map_err(ObserveError::from)?;
    for network in networks {
        if let Some(key) = project_key(&network.labels, name, labels::NETWORK, &network.name) {
            let spec = Network {
                name: Some(network.name),
                ..Network::default()
            };
            project.networks.insert(key, spec);
        }
    }
    let volumes = crate::volume::VolumeStore::open(root).map_err(ObserveError::from)?;
    for volume in volumes.list().map_err(ObserveError::from)? {
        if let Some(key) = project_key(&volume.labels, name, labels::VOLUME, &volume.name) {
            let spec = Volume {
                name: Some(volume.name),
                ..Volume::default()
            };
            project.volumes.insert(key, spec);
        }
    }
    Ok(project)
}

/// The key a network or volume has in `project`'s file, when the project
/// owns it (its labels say so); its full name when the key label is gone.
fn project_key(
    resource_labels: &BTreeMap<String, String>,
    project: &str,
    key_label: &str,
    name: &str,
) -> Option<String> {
    (resource_labels.get(labels::PROJECT).map(String::as_str) == Some(project)).then(|| {
        resource_labels
            .get(key_label)
            .cloned()
            .unwrap_or_else(|| name.to_string())
    })
}

/// One line of `berth ps`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerSummary {
    pub id: String,
    pub name: String,
    pub image: String,
    pub command: String,
    pub project: String,
    pub service: String,
    pub number: u32,
    pub created: String,
    /// `running`, `exited`, …
    pub state: String,
    /// `healthy`, `unhealthy`, `starting` or empty.
    pub health: String,
    pub exit_code: i32,
    /// docker's human status: `Up 3 seconds (healthy)`, `Exited (1) …`.
    pub status: String,
    pub publishers: Vec<Publisher>,
    pub restart_count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Publisher {
    pub target_port: u16,
    pub published_port: u16,
    pub protocol: String,
    #[serde(rename = "URL")]
    pub url: String,
}

/// The project's containers for `ps` (one-offs only with `all`), by
/// service then number.
pub fn ps(root: &Root, project: &str, all: bool) -> Result<Vec<ContainerSummary>, EngineError> {
    let mut list: Vec<ContainerSummary> = observe::project_containers(root, project)?
        .iter()
        .filter(|c| all || c.config.labels.get(labels::ONEOFF).map(String::as_str) != Some("True"))
        .map(summary)
        .collect();
    list.sort_by(|a, b| (&a.service, a.number).cmp(&(&b.service, b.number)));
    Ok(list)
}

pub fn summary(c: &Container) -> ContainerSummary {
    let l = &c.config.labels;
    let state = c.state().ok();
    let status = state.as_ref().map_or(Status::Dead, |s| s.status);
    let health = match (&c.config.healthcheck, status) {
        (Some(_), Status::Running) => match health::read(c) {
            Some(h) if state.as_ref().and_then(|s| s.started_at.as_ref()) == Some(&h.started_at) => {
                serde_json::to_value(h.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            }
            _ => "starting".to_string(),
        },
        _ => String::new(),
    };
    let exit_code = state.as_ref().and_then(|s| s.exit_code).unwrap_or(0);
    let human = match status {
        Status::Running => {
            let up = state
                .as_ref()
                .and_then(|s| s.started_at.as_deref())
                .and_then(crate::rfc3339::parse)
                .and_then(|t| std::time::SystemTime::now().duration_since(t).ok())
                .unwrap_or_default();
            let mut text = format!("Up {}", human_duration(up));
            if !health.is_empty() {
                let shown = if health == "starting" {
                    "health: starting"
                } else {
                    health.as_str()
                };
                text.push_str(&format!(" ({shown})"));
            }
            text
        }
        Status::Exited => format!("Exited ({exit_code})"),
        Status::Created => "Created".to_string(),
        Status::Paused => "Paused".to_string(),
        Status::Dead => "Dead".to_string(),
    };
    ContainerSummary {
        id: c.config.id.clone(),
        name: c.config.name.clone(),
        image: c.config.image.clone(),
        command: shell_words::join(&c.config.args),
        project: l.get(labels::PROJECT).cloned().unwrap_or_default(),
        service: l.get(labels::SERVICE).cloned().unwrap_or_default(),
        number: l.get(labels::NUMBER).and_then(|n| n.parse().ok()).unwrap_or(0),
        created: c.config.created.clone(),
        state: status.to_string(),
        health,
        exit_code,
        status: human,
        publishers: c
            .config
            .ports
            .iter()
            .map(|p| Publisher {
                target_port: p.container_port,
                published_port: p.host_port,
                protocol: p.protocol.to_string(),
                url: p.host_ip.to_string(),
            })
            .collect(),
        restart_count: supervisor::read_restarts(c).history.count,
    }
}

fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "Less than a second".to_string(),
        1 => "1 second".to_string(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".to_string(),
        120..=3599 => format!("{} minutes", s / 60),
        3600..=7199 => "About an hour".to_string(),
        _ => format!("{} hours", s / 3600),
    }
}

/// The projects that own containers: name → (running, total).
pub fn list_projects(root: &Root) -> Result<BTreeMap<String, (usize, usize)>, EngineError> {
    Ok(observe::projects(root)?
        .into_iter()
        .map(|(name, containers)| {
            let running = containers
                .iter()
                .filter(|c| c.state().is_ok_and(|s| s.status == Status::Running))
                .count();
            (name, (running, containers.len()))
        })
        .collect())
}

/// An error message for the user: the apply errors one per line.
pub fn describe(e: &EngineError) -> String {
    match e {
        EngineError::Apply(errors) => errors.iter().map(|e| error_chain(e)).collect::<Vec<_>>().join("\n"),
        other => error_chain(other),
    }
}

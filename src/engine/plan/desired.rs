//! What the project asks for, flattened for the planner: per service the
//! config hash, image, replica count, names and dependencies.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::PlanError;
use crate::graph::{Dependency, DependencyGraph, EdgeKind};
use crate::spec::hash::service_hash;
use crate::spec::model::{Condition, Project, Service};
use crate::spec::syntax::volumes::VolumeType;

/// Stop timeout when neither `-t` nor `stop_grace_period` says otherwise
/// (docker's default, §3.6).
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The desired state of one project.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    /// Project name (normalized).
    pub project: String,
    /// Enabled services by name.
    pub services: BTreeMap<String, DesiredService>,
    /// Services defined but disabled by profiles: their containers are not
    /// orphans (§3.6, compose `isOrphaned`).
    pub inactive_services: BTreeSet<String>,
    /// Top-level networks (full names).
    pub networks: Vec<ProjectResource>,
    /// Top-level volumes (full names).
    pub volumes: Vec<ProjectResource>,
}

/// The desired state of one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredService {
    pub name: String,
    /// [`service_hash`]: a container whose label differs is recreated.
    pub config_hash: String,
    /// Image reference (`image:`, else `<project>-<service>` for builds).
    pub image: String,
    pub pull_policy: PullPolicy,
    /// Whether the service has a `build:` section.
    pub buildable: bool,
    /// `--scale` > `deploy.replicas` > `scale` > 1.
    pub replicas: u64,
    pub container_name: Option<String>,
    /// Dependencies by service name.
    pub depends_on: BTreeMap<String, DesiredDependency>,
    /// Full names of the networks the service joins.
    pub networks: Vec<String>,
    /// Full names of the named volumes the service mounts.
    pub volumes: Vec<String>,
    /// Services whose mounts it takes (`volumes_from: SERVICE`): their
    /// containers are made before its own, and recreating them recreates
    /// it (compose resolves the source to a container id before hashing).
    pub volumes_from: Vec<String>,
    /// `stop_grace_period`, else [`DEFAULT_STOP_TIMEOUT`].
    pub stop_timeout: Duration,
}

/// One `depends_on` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DesiredDependency {
    pub condition: Condition,
    /// Recreate the dependent when this dependency is recreated.
    pub restart: bool,
    pub required: bool,
}

/// When to fetch a service's image. The time-based compose policies
/// (`daily`, `weekly`, `every_<d>`) are treated as `missing`: a pure
/// planner has no clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PullPolicy {
    /// Pull on every `up`.
    Always,
    /// Pull (or build, for a buildable service) when not in the store.
    #[default]
    Missing,
    /// Never pull; a missing image is an error.
    Never,
    /// Build the image when it is not in the store.
    Build,
}

impl PullPolicy {
    /// Reads a normalized `pull_policy` value.
    pub fn from_compose(value: Option<&str>) -> Self {
        match value {
            Some("always") => PullPolicy::Always,
            Some("never") => PullPolicy::Never,
            Some("build") => PullPolicy::Build,
            _ => PullPolicy::Missing,
        }
    }
}

/// A top-level network or volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectResource {
    /// Full name (`<project>_<key>`, `name:`, or the key if external).
    pub name: String,
    /// `external: true`: berth never creates nor removes it.
    pub external: bool,
}

impl DesiredService {
    /// The name of replica `number` (§3.2): `container_name`, else
    /// `<project>-<service>-<n>`.
    pub fn container_name_for(&self, project: &str, number: u32) -> String {
        match &self.container_name {
            Some(name) => name.clone(),
            None => format!("{project}-{}-{number}", self.name),
        }
    }

    /// `container_name` forbids more than one replica (§3.2).
    pub(super) fn check_container_name(&self) -> Result<(), PlanError> {
        match &self.container_name {
            Some(container_name) if self.replicas > 1 => Err(PlanError::ContainerNameWithReplicas {
                service: self.name.clone(),
                container_name: container_name.clone(),
                replicas: self.replicas,
            }),
            _ => Ok(()),
        }
    }
}

impl Desired {
    /// Flattens a resolved project. `scale` holds `--scale svc=N` overrides.
    ///
    /// # Errors
    ///
    /// [`PlanError::UnknownService`] for a `--scale` of an unknown service,
    /// [`PlanError::ContainerNameWithReplicas`] when `container_name` meets
    /// more than one replica.
    pub fn from_project(project: &Project, scale: &BTreeMap<String, u64>) -> Result<Self, PlanError> {
        if let Some(service) = scale.keys().find(|s| !project.services.contains_key(*s)) {
            return Err(PlanError::UnknownService {
                service: service.clone(),
            });
        }
        let network_name = |key: &str| {
            project
                .networks
                .get(key)
                .and_then(|n| n.name.clone())
                .unwrap_or_else(|| format!("{}_{key}", project.name))
        };
        let volume_name = |key: &str| {
            project
                .volumes
                .get(key)
                .and_then(|v| v.name.clone())
                .unwrap_or_else(|| format!("{}_{key}", project.name))
        };
        let mut services = BTreeMap::new();
        for (name, service) in &project.services {
            let replicas = scale.get(name).copied().unwrap_or_else(|| service.replicas());
            let desired = DesiredService {
                name: name.clone(),
                config_hash: service_hash(service),
                image: image_reference(&project.name, name, service),
                pull_policy: PullPolicy::from_compose(service.pull_policy.as_deref()),
                buildable: service.build.is_some(),
                replicas,
                container_name: service.container_name.clone(),
                depends_on: dependencies(service),
                networks: service.networks.keys().map(|key| network_name(key)).collect(),
                volumes: named_volumes(service, project).map(volume_name).collect(),
                volumes_from: service
                    .volumes_from
                    .iter()
                    .filter(|entry| !entry.starts_with("container:"))
                    .map(|entry| entry.split(':').next().unwrap_or(entry).to_string())
                    .collect(),
                stop_timeout: service.stop_grace_period.map_or(DEFAULT_STOP_TIMEOUT, |d| d.0),
            };
            desired.check_container_name()?;
            services.insert(name.clone(), desired);
        }
        Ok(Desired {
            project: project.name.clone(),
            services,
            inactive_services: BTreeSet::new(),
            networks: project
                .networks
                .iter()
                .map(|(key, n)| ProjectResource {
                    name: network_name(key),
                    external: n.external,
                })
                .collect(),
            volumes: project
                .volumes
                .iter()
                .map(|(key, v)| ProjectResource {
                    name: volume_name(key),
                    external: v.external,
                })
                .collect(),
        })
    }

    /// The dependency graph of the enabled services. Optional dependencies
    /// on services that are not enabled are dropped (§3.5.8).
    ///
    /// # Errors
    ///
    /// [`PlanError::UndefinedDependency`] for a required one, and
    /// [`PlanError::Graph`] for a cycle.
    pub fn graph(&self) -> Result<DependencyGraph, PlanError> {
        let names: Vec<&String> = self.services.keys().collect();
        let mut edges = Vec::new();
        for (name, service) in &self.services {
            for (dependency, edge) in &service.depends_on {
                if self.services.contains_key(dependency) {
                    edges.push(Dependency::new(name, dependency, EdgeKind::DependsOn));
                } else if edge.required {
                    return Err(PlanError::UndefinedDependency {
                        service: name.clone(),
                        dependency: dependency.clone(),
                    });
                }
            }
        }
        Ok(DependencyGraph::build(&names, &edges)?)
    }

    /// Whether `external: true` is set for the network `name`.
    pub(super) fn network_is_external(&self, name: &str) -> bool {
        self.networks.iter().any(|n| n.name == name && n.external)
    }

    /// Whether `external: true` is set for the volume `name`.
    pub(super) fn volume_is_external(&self, name: &str) -> bool {
        self.volumes.iter().any(|v| v.name == name && v.external)
    }
}

/// `image:`, else the tag compose gives built images (§3.2).
fn image_reference(project: &str, name: &str, service: &Service) -> String {
    service.image.clone().unwrap_or_else(|| format!("{project}-{name}"))
}

fn dependencies(service: &Service) -> BTreeMap<String, DesiredDependency> {
    service
        .depends_on
        .iter()
        .map(|(name, d)| {
            let dependency = DesiredDependency {
                condition: d.condition,
                restart: d.restart.unwrap_or(false),
                required: d.required,
            };
            (name.clone(), dependency)
        })
        .collect()
}

/// Keys of the top-level volumes a service mounts (anonymous volumes and
/// binds have no top-level entry).
fn named_volumes<'a>(service: &'a Service, project: &'a Project) -> impl Iterator<Item = &'a str> + 'a {
    service
        .volumes
        .iter()
        .filter(|v| v.kind == VolumeType::Volume)
        .filter_map(|v| v.source.as_deref())
        .filter(|source| project.volumes.contains_key(*source))
}

//! Cross-reference validation of a resolved project, and the dependency
//! graph (which reports cycles).

use std::collections::BTreeMap;

use super::error::LoadError;
use super::model::{Project, Service};
use super::path::YamlPath;
use super::resolve::service_reference;
use super::syntax::volumes::VolumeType;
use super::Locator;
use crate::graph::{Dependency, DependencyGraph, EdgeKind, GraphError};

/// Checks every reference and builds the dependency graph.
pub fn validate(project: &Project, locator: &Locator) -> Result<DependencyGraph, LoadError> {
    let mut container_names: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, service) in &project.services {
        let at = YamlPath::root().key("services").key(name);
        check_service(project, name, service, &at, locator)?;
        if let Some(container_name) = &service.container_name {
            if let Some(other) = container_names.insert(container_name, name) {
                return Err(locator.invalid(
                    &at.key("container_name"),
                    &format!("container name {container_name:?} is already used by service {other:?}"),
                ));
            }
        }
    }
    build_graph(project, locator)
}

fn check_service(
    project: &Project,
    name: &str,
    service: &Service,
    at: &YamlPath,
    locator: &Locator,
) -> Result<(), LoadError> {
    let undefined = |path: YamlPath, kind: &str, what: &str| {
        locator.invalid(&path, &format!("service {name:?} refers to undefined {kind} {what:?}"))
    };
    if service.image.is_none() && service.build.is_none() && service.provider.is_none() {
        return Err(locator.invalid(
            at,
            &format!("service {name:?} has neither an image nor a build context specified"),
        ));
    }
    for network in service.networks.keys() {
        if !project.networks.contains_key(network) {
            return Err(undefined(at.key("networks").key(network), "network", network));
        }
    }
    if let Some(mode) = &service.network_mode {
        if !service.networks.is_empty() {
            return Err(locator.invalid(
                &at.key("network_mode"),
                &format!("service {name:?} declares both network_mode and networks; they are mutually exclusive"),
            ));
        }
        if mode == "host" && !service.ports.is_empty() {
            return Err(locator.invalid(
                &at.key("ports"),
                &format!("service {name:?}: ports cannot be published with network_mode: host"),
            ));
        }
    }
    for (index, volume) in service.volumes.iter().enumerate() {
        if volume.kind == VolumeType::Volume {
            if let Some(source) = &volume.source {
                if !project.volumes.contains_key(source) {
                    return Err(undefined(at.key("volumes").index(index), "volume", source));
                }
            }
        }
    }
    for (kind, refs, defined) in [
        ("config", &service.configs, &project.configs),
        ("secret", &service.secrets, &project.secrets),
    ] {
        for (index, reference) in refs.iter().enumerate() {
            if !defined.contains_key(&reference.source) {
                return Err(undefined(
                    at.key(format!("{kind}s")).index(index),
                    kind,
                    &reference.source,
                ));
            }
        }
    }
    for dependency in service.depends_on.keys() {
        if !project.services.contains_key(dependency) {
            return Err(undefined(
                dependency_path(service, dependency, at),
                "service",
                dependency,
            ));
        }
    }
    if service.container_name.is_some() && service.replicas() > 1 {
        return Err(locator.invalid(
            &at.key("container_name"),
            &format!("service {name:?} sets container_name, so it cannot have more than one replica"),
        ));
    }
    Ok(())
}

/// Where a dependency is written: the `links` or `volumes_from` entry or
/// the `service:` mode that implies it, else its `depends_on` key.
fn dependency_path(service: &Service, dependency: &str, at: &YamlPath) -> YamlPath {
    let names = |entry: &str| entry.split(':').next() == Some(dependency);
    if let Some(index) = service.links.iter().position(|l| names(l)) {
        return at.key("links").index(index);
    }
    if let Some(index) = service
        .volumes_from
        .iter()
        .position(|v| !v.starts_with("container:") && names(v))
    {
        return at.key("volumes_from").index(index);
    }
    for (key, mode) in [
        ("network_mode", &service.network_mode),
        ("ipc", &service.ipc),
        ("pid", &service.pid),
    ] {
        if service_reference(mode) == Some(dependency) {
            return at.key(key);
        }
    }
    at.key("depends_on").key(dependency)
}

/// Edges from depends_on (which resolution already extended with links,
/// `service:` modes and volumes_from), labelled by their origin.
fn build_graph(project: &Project, locator: &Locator) -> Result<DependencyGraph, LoadError> {
    let names: Vec<&String> = project.services.keys().collect();
    let mut edges = Vec::new();
    for (name, service) in &project.services {
        for dependency in service.depends_on.keys() {
            edges.push(Dependency {
                service: name.clone(),
                dependency: dependency.clone(),
                kind: edge_kind(service, dependency),
            });
        }
    }
    DependencyGraph::build(&names, &edges).map_err(|e| match &e {
        GraphError::Cycle(cycle) => {
            let first = cycle.first().cloned().unwrap_or_default();
            let second = cycle.get(1).cloned().unwrap_or_default();
            locator.invalid(
                &YamlPath::root()
                    .key("services")
                    .key(first)
                    .key("depends_on")
                    .key(second),
                &e.to_string(),
            )
        }
        GraphError::UndefinedService { service, dependency } => locator.invalid(
            &YamlPath::root()
                .key("services")
                .key(service)
                .key("depends_on")
                .key(dependency),
            &e.to_string(),
        ),
    })
}

fn edge_kind(service: &Service, dependency: &str) -> EdgeKind {
    let is = |mode: &Option<String>| service_reference(mode) == Some(dependency);
    if is(&service.network_mode) {
        EdgeKind::NetworkMode
    } else if is(&service.ipc) {
        EdgeKind::IpcMode
    } else if is(&service.pid) {
        EdgeKind::PidMode
    } else if service.links.iter().any(|l| l.split(':').next() == Some(dependency)) {
        EdgeKind::Link
    } else if service
        .volumes_from
        .iter()
        .any(|v| v.split(':').next() == Some(dependency))
    {
        EdgeKind::VolumesFrom
    } else {
        EdgeKind::DependsOn
    }
}

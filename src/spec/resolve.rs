//! Resolution of the typed project: what compose derives from the files
//! before anything runs — profiles, `env_file`/`label_file` contents,
//! pass-through environment, the default network, resource names and the
//! implicit dependencies of links, `volumes_from` and `service:` modes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::environment::{read_env_file, Variables};
use super::error::LoadError;
use super::model::{Condition, DependsOn, Project, Service};
use super::path::YamlPath;
use super::Locator;

pub struct ResolveContext<'a> {
    pub variables: &'a Variables,
    pub active_profiles: &'a [String],
    pub locator: &'a Locator,
}

#[derive(Debug, Default)]
pub struct Resolved {
    pub warnings: Vec<String>,
    pub all_profiles: BTreeSet<String>,
}

pub fn resolve(project: &mut Project, context: &ResolveContext) -> Result<Resolved, LoadError> {
    let mut resolved = Resolved::default();
    apply_profiles(project, context, &mut resolved)?;
    for (name, service) in project.services.iter_mut() {
        let at = YamlPath::root().key("services").key(name);
        resolve_env_files(service, &at, context)?;
        resolve_label_files(service, &at, context)?;
        // A bare `KEY` takes the caller's value; without one it stays
        // unset in the container (docker compose e2e TestUnsetEnv).
        let passthrough: Vec<String> = service
            .environment
            .0
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k.clone())
            .collect();
        for key in passthrough {
            if let Some(value) = context.variables.get(&key) {
                service.environment.0.insert(key, Some(value));
            }
        }
        if service.pull_policy.as_deref() == Some("if_not_present") {
            service.pull_policy = Some("missing".into());
        }
        add_implicit_dependencies(service);
    }
    add_default_network(project);
    name_resources(project);
    Ok(resolved)
}

/// Removes services whose profiles are all inactive; `*` activates all.
fn apply_profiles(project: &mut Project, context: &ResolveContext, resolved: &mut Resolved) -> Result<(), LoadError> {
    let all = context.active_profiles.iter().any(|p| p == "*");
    let active: BTreeSet<&str> = context.active_profiles.iter().map(String::as_str).collect();
    let mut disabled = BTreeSet::new();
    for (name, service) in &project.services {
        resolved.all_profiles.extend(service.profiles.iter().cloned());
        let enabled =
            service.profiles.is_empty() || all || service.profiles.iter().any(|p| active.contains(p.as_str()));
        if !enabled {
            disabled.insert(name.clone());
        }
    }
    for (name, service) in &project.services {
        if disabled.contains(name) {
            continue;
        }
        for (dependency, spec) in &service.depends_on {
            if disabled.contains(dependency) && spec.required {
                return Err(context.locator.invalid(
                    &YamlPath::root().key("services").key(name).key("depends_on").key(dependency),
                    &format!(
                        "service {dependency:?} was pulled in as a dependency of service {name:?} but is not enabled by the active profiles"
                    ),
                ));
            }
        }
    }
    project.services.retain(|name, _| !disabled.contains(name));
    for (name, service) in project.services.iter_mut() {
        let dropped: Vec<String> = service
            .depends_on
            .keys()
            .filter(|d| disabled.contains(*d))
            .cloned()
            .collect();
        for dependency in dropped {
            service.depends_on.remove(&dependency);
            resolved.warnings.push(format!(
                "service {name:?}: optional dependency {dependency:?} is disabled by profiles; ignored"
            ));
        }
    }
    Ok(())
}

/// Reads `env_file`s into `environment`: the files give defaults, later
/// files override earlier ones, and `environment` overrides them all.
fn resolve_env_files(service: &mut Service, at: &YamlPath, context: &ResolveContext) -> Result<(), LoadError> {
    let mut from_files: BTreeMap<String, Option<String>> = BTreeMap::new();
    for (index, env_file) in service.env_file.iter().enumerate() {
        let path = Path::new(&env_file.path);
        if !path.is_file() {
            if env_file.required {
                return Err(context.locator.invalid(
                    &at.key("env_file").index(index),
                    &format!("env file {} not found", env_file.path),
                ));
            }
            continue;
        }
        let raw = env_file.format.as_deref() == Some("raw");
        for (k, v) in read_env_file(path, context.variables, raw)? {
            from_files.insert(k, Some(v));
        }
    }
    for (k, v) in from_files {
        service.environment.0.entry(k).or_insert(v);
    }
    service.env_file.clear();
    Ok(())
}

fn resolve_label_files(service: &mut Service, at: &YamlPath, context: &ResolveContext) -> Result<(), LoadError> {
    for (index, file) in service.label_file.iter().enumerate() {
        let path = Path::new(file);
        if !path.is_file() {
            return Err(context.locator.invalid(
                &at.key("label_file").index(index),
                &format!("label file {file} not found"),
            ));
        }
        for (k, v) in read_env_file(path, context.variables, false)? {
            service.labels.0.entry(k).or_insert(v);
        }
    }
    service.label_file.clear();
    Ok(())
}

/// The service named by `service:NAME` in a namespace mode.
pub fn service_reference(mode: &Option<String>) -> Option<&str> {
    mode.as_deref().and_then(|m| m.strip_prefix("service:"))
}

/// compose-go loader/normalize.go: links, `service:` namespace modes and
/// `volumes_from` imply `depends_on` (the first two with `restart: true`).
fn add_implicit_dependencies(service: &mut Service) {
    let mut implied: Vec<(String, bool)> = Vec::new();
    for link in &service.links {
        let target = link.split(':').next().unwrap_or(link);
        implied.push((target.to_string(), true));
    }
    for mode in [&service.network_mode, &service.ipc, &service.pid] {
        if let Some(target) = service_reference(mode) {
            implied.push((target.to_string(), true));
        }
    }
    for source in &service.volumes_from {
        if source.starts_with("container:") {
            continue;
        }
        let target = source.split(':').next().unwrap_or(source);
        implied.push((target.to_string(), false));
    }
    for (target, restart) in implied {
        service.depends_on.entry(target).or_insert(DependsOn {
            condition: Condition::ServiceStarted,
            restart: Some(restart),
            required: true,
        });
    }
}

/// A service with neither `networks` nor `network_mode` joins `default`,
/// which exists only if some service uses it.
fn add_default_network(project: &mut Project) {
    let mut uses_default = false;
    for service in project.services.values_mut() {
        if service.networks.is_empty() && service.network_mode.is_none() && service.provider.is_none() {
            service.networks.insert("default".into(), Default::default());
        }
        uses_default |= service.networks.contains_key("default");
    }
    if uses_default {
        project.networks.entry("default".into()).or_default();
    }
}

/// `<project>_<key>` unless `name:` is set; external resources keep their key.
fn name_resources(project: &mut Project) {
    let project_name = project.name.clone();
    let name = |key: &str, explicit: &Option<String>, external: bool| -> String {
        match explicit {
            Some(n) => n.clone(),
            None if external => key.to_string(),
            None => format!("{project_name}_{key}"),
        }
    };
    for (key, network) in project.networks.iter_mut() {
        network.name = Some(name(key, &network.name, network.external));
    }
    for (key, volume) in project.volumes.iter_mut() {
        volume.name = Some(name(key, &volume.name, volume.external));
    }
    for (key, object) in project.configs.iter_mut().chain(project.secrets.iter_mut()) {
        object.name = Some(name(key, &object.name, object.external));
    }
}

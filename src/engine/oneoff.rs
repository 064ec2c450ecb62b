//! `berth run`: a one-off container of a service (compose `run.go`).
//!
//! The service definition is rewritten with the command-line overrides
//! ([`oneoff_service`], pure), then created by the same [`Applier`] path as
//! replicas, so the container gets the service's networks, volumes, devices
//! and limits. It is labelled `com.docker.compose.oneoff=True`: `up` never
//! counts it as a replica, `ps -a` shows it, `down --remove-orphans`
//! removes it.

use std::collections::BTreeMap;

use super::apply::{Applier, ApplyError, Event, OneOffRemoval};
use super::observe::{observe, ObserveError};
use super::plan::{Action, Desired, Plan, PlanError, PullPolicy, Wave};
use crate::runtime::container::{self, Container, ContainerError};
use crate::spec::model::{Command, Project, Service};
use crate::store::Root;

/// compose's `com.docker.compose.slug`: the random part of a one-off's name.
pub const SLUG: &str = "com.docker.compose.slug";

/// The `berth run` flags that shape the container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunRequest {
    pub service: String,
    /// Replaces the service's command when not empty.
    pub command: Vec<String>,
    /// `--entrypoint`, split as a shell would.
    pub entrypoint: Option<String>,
    /// `-e`: set (`Some`) or unset (`None`) over the service's environment.
    pub env: BTreeMap<String, Option<String>>,
    /// `--name`; default `<project>-<service>-run-<slug>`.
    pub name: Option<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    /// `--service-ports`: publish the service's ports (never otherwise).
    pub service_ports: bool,
    pub tty: bool,
    /// Keep stdin open for an attached client.
    pub interactive: bool,
    /// Detached `--rm`: the monitor removes the container when it exits.
    pub auto_remove: bool,
    /// `--rm`: removed when it exits (by its monitor or the waiting `run`).
    pub removed_on_exit: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum OneOffError {
    #[error("no such service: {0}")]
    UnknownService(String),
    #[error("invalid --entrypoint {entrypoint:?}: {source}")]
    Entrypoint {
        entrypoint: String,
        source: shell_words::ParseError,
    },
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Observe(#[from] ObserveError),
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Apply(Vec<ApplyError>),
    #[error("locking project {project}: {source}")]
    Lock { project: String, source: std::io::Error },
    #[error("reading the new container {name}")]
    Created { name: String, source: ContainerError },
}

/// A one-off's name, as compose makes it.
pub fn container_name(project: &str, service: &str, slug: &str) -> String {
    format!("{project}-{service}-run-{slug}")
}

/// The service as the one-off runs it: compose's `prepareRun` overrides.
/// The restart policy is dropped (a one-off command is never restarted),
/// ports are published only with `--service-ports`, and an `--entrypoint`
/// without a command drops the service's command, as docker does.
///
/// # Errors
///
/// An `--entrypoint` a shell could not split.
pub fn oneoff_service(service: &Service, request: &RunRequest, slug: &str) -> Result<Service, OneOffError> {
    let mut service = service.clone();
    if let Some(entrypoint) = &request.entrypoint {
        let words = shell_words::split(entrypoint).map_err(|source| OneOffError::Entrypoint {
            entrypoint: entrypoint.clone(),
            source,
        })?;
        service.entrypoint = Some(Command(words));
        if request.command.is_empty() {
            service.command = Some(Command(Vec::new()));
        }
    }
    if !request.command.is_empty() {
        service.command = Some(Command(request.command.clone()));
    }
    for (key, value) in &request.env {
        service.environment.0.insert(key.clone(), value.clone());
    }
    if request.user.is_some() {
        service.user.clone_from(&request.user);
    }
    if request.workdir.is_some() {
        service.working_dir.clone_from(&request.workdir);
    }
    if !request.service_ports {
        service.ports.clear();
    }
    service.restart = None;
    if let Some(deploy) = &mut service.deploy {
        deploy.restart_policy = None;
    }
    service.tty = request.tty;
    service.stdin_open = request.interactive;
    // The name is given to the applier; a `container_name` here would
    // only trip the one-container-per-name check for scaled services.
    service.container_name = None;
    service.labels.0.insert(SLUG.to_string(), slug.to_string());
    Ok(service)
}

/// Creates the one-off container, first making what it needs that is
/// missing: the service's networks and volumes, and its image (built or
/// pulled). Dependencies are not started here (the caller runs `up` of
/// them); see [`wait_for_dependencies`].
///
/// # Errors
///
/// An unknown service, a project that does not plan, and any failure to
/// make its resources or the container, naming what failed.
pub fn create(
    root: &Root,
    project: &Project,
    request: &RunRequest,
    events: &(dyn Fn(Event) + Sync),
) -> Result<Container, OneOffError> {
    let service = project
        .services
        .get(&request.service)
        .ok_or_else(|| OneOffError::UnknownService(request.service.clone()))?;
    let slug: String = container::new_id().chars().take(12).collect();
    let mut project = project.clone();
    project
        .services
        .insert(request.service.clone(), oneoff_service(service, request, &slug)?);
    let name = request
        .name
        .clone()
        .unwrap_or_else(|| container_name(&project.name, &request.service, &slug));
    // The project's lock: an `up` or `down` running now must not remove a
    // network between its check here and the container joining it.
    let _lock = root
        .lock(&format!("project-{}", project.name))
        .map_err(|source| OneOffError::Lock {
            project: project.name.clone(),
            source,
        })?;
    let desired = Desired::from_project(&project, &BTreeMap::new())?;
    let applier = Applier {
        root,
        project: &project,
        desired: &desired,
        events,
        remove_volumes: false,
    };
    let prerequisites = prerequisites(&desired, &observe(root, &desired)?, &request.service);
    applier.run(&prerequisites).map_err(OneOffError::Apply)?;
    applier
        .create_oneoff(
            &request.service,
            &name,
            OneOffRemoval {
                by_monitor: request.auto_remove,
                on_exit: request.removed_on_exit,
            },
        )
        .map_err(|e| OneOffError::Apply(vec![e]))?;
    container::find(root, &name).map_err(|source| OneOffError::Created { name, source })
}

/// Waits until the service's `depends_on` conditions hold (healthy,
/// completed successfully), as compose's `run` does before starting.
///
/// # Errors
///
/// A dependency that is unhealthy, exited, or failed to complete.
pub fn wait_for_dependencies(root: &Root, project: &Project, service: &str) -> Result<(), OneOffError> {
    let desired = Desired::from_project(project, &BTreeMap::new())?;
    let applier = Applier {
        root,
        project,
        desired: &desired,
        events: &|_| {},
        remove_volumes: false,
    };
    applier
        .wait_for_dependencies(service)
        .map_err(|e| OneOffError::Apply(vec![e]))
}

/// What must exist before the one-off is created: its service's missing
/// networks and volumes, then its image when missing (built when the
/// service can build it, else pulled unless `pull_policy: never`).
fn prerequisites(desired: &Desired, observed: &super::plan::Observed, service: &str) -> Plan {
    let Some(wanted) = desired.services.get(service) else {
        return Plan::default();
    };
    let mut resources: Vec<Action> = wanted
        .networks
        .iter()
        .filter(|n| !observed.networks.contains_key(*n))
        .map(|n| Action::EnsureNetwork { name: n.clone() })
        .collect();
    resources.extend(
        wanted
            .volumes
            .iter()
            .filter(|v| !observed.volumes.contains_key(*v))
            .map(|v| Action::EnsureVolume { name: v.clone() }),
    );
    let mut waves = vec![Wave { actions: resources }];
    if !observed.images.contains_key(&wanted.image) {
        let fetch = if wanted.buildable {
            Some(Action::BuildImage {
                service: service.to_string(),
                image: wanted.image.clone(),
            })
        } else if wanted.pull_policy == PullPolicy::Never {
            None
        } else {
            Some(Action::PullImage {
                service: service.to_string(),
                image: wanted.image.clone(),
            })
        };
        waves.extend(fetch.map(|a| Wave { actions: vec![a] }));
    }
    Plan {
        waves,
        orphans_kept: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::plan::{Observed, ObservedResource};

    use crate::spec::loader::demo_project as project;

    const YAML: &str = "services:\n  web:\n    image: busybox\n    command: [httpd, -f]\n    restart: always\n    ports: ['8080:80']\n    environment: {A: '1', B: '2'}\n    container_name: fixed\n";

    #[test]
    fn overrides_follow_compose_run() {
        let p = project(YAML);
        let request = RunRequest {
            service: "web".into(),
            command: vec!["echo".into(), "hi".into()],
            env: BTreeMap::from([("B".into(), Some("3".into())), ("C".into(), None)]),
            user: Some("nobody".into()),
            interactive: true,
            ..RunRequest::default()
        };
        let s = oneoff_service(&p.services["web"], &request, "abc").unwrap();
        assert_eq!(s.command, Some(Command(vec!["echo".into(), "hi".into()])));
        assert_eq!(s.environment.0["A"].as_deref(), Some("1"));
        assert_eq!(s.environment.0["B"].as_deref(), Some("3"));
        assert_eq!(s.environment.0["C"], None);
        assert_eq!(s.user.as_deref(), Some("nobody"));
        assert!(s.ports.is_empty(), "ports only with --service-ports");
        assert_eq!(s.restart, None);
        assert_eq!(s.container_name, None);
        assert!(s.stdin_open && !s.tty);
        assert_eq!(s.labels.0[SLUG], "abc");
    }

    #[test]
    fn entrypoint_without_command_drops_the_command_and_ports_stay_with_service_ports() {
        let p = project(YAML);
        let request = RunRequest {
            service: "web".into(),
            entrypoint: Some("sh -c 'exit 3'".into()),
            service_ports: true,
            ..RunRequest::default()
        };
        let s = oneoff_service(&p.services["web"], &request, "abc").unwrap();
        assert_eq!(
            s.entrypoint,
            Some(Command(vec!["sh".into(), "-c".into(), "exit 3".into()]))
        );
        assert_eq!(s.command, Some(Command(Vec::new())));
        assert_eq!(s.ports.len(), 1);
        let bad = RunRequest {
            entrypoint: Some("sh '".into()),
            ..request
        };
        assert!(oneoff_service(&p.services["web"], &bad, "x").is_err());
    }

    #[test]
    fn names_follow_compose() {
        assert_eq!(
            container_name("demo", "web", "0123456789ab"),
            "demo-web-run-0123456789ab"
        );
    }

    #[test]
    fn prerequisites_are_the_missing_resources_and_image() {
        let p = project("services:\n  web:\n    image: busybox\n    volumes: [data:/data]\nvolumes:\n  data: {}\n");
        let desired = Desired::from_project(&p, &BTreeMap::new()).unwrap();
        let plan = prerequisites(&desired, &Observed::default(), "web");
        let actions: Vec<&Action> = plan.actions().collect();
        assert!(actions.contains(&&Action::EnsureNetwork {
            name: "demo_default".into()
        }));
        assert!(actions.contains(&&Action::EnsureVolume {
            name: "demo_data".into()
        }));
        assert!(matches!(actions.last(), Some(Action::PullImage { .. })));
        let observed = Observed {
            networks: BTreeMap::from([("demo_default".into(), ObservedResource::default())]),
            volumes: BTreeMap::from([("demo_data".into(), ObservedResource::default())]),
            images: BTreeMap::from([("busybox".into(), "sha256:x".into())]),
            ..Observed::default()
        };
        assert_eq!(prerequisites(&desired, &observed, "web").actions().count(), 0);
    }
}

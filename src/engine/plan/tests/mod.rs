//! Planner tests on small hand-built states. Every service `x` uses image
//! `img/x` (id `sha-img/x`), config hash `hash-x` and the network
//! `p_default` of project `p`, unless a test says otherwise.

mod desired;
mod down;
mod replicas;
mod resources;
mod up;

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::spec::model::Condition;

pub(super) const PROJECT: &str = "p";
pub(super) const NETWORK: &str = "p_default";

/// A one-replica service with no dependencies.
pub(super) fn service(name: &str) -> DesiredService {
    DesiredService {
        name: name.into(),
        config_hash: format!("hash-{name}"),
        image: format!("img/{name}"),
        pull_policy: PullPolicy::Missing,
        buildable: false,
        replicas: 1,
        container_name: None,
        depends_on: BTreeMap::new(),
        networks: vec![NETWORK.into()],
        volumes: Vec::new(),
        volumes_from: Vec::new(),
        stop_timeout: DEFAULT_STOP_TIMEOUT,
    }
}

/// Adds `depends_on: {dependency: {restart}}` to a service.
pub(super) fn depends(mut service: DesiredService, dependency: &str, restart: bool) -> DesiredService {
    service.depends_on.insert(
        dependency.into(),
        DesiredDependency {
            condition: Condition::ServiceStarted,
            restart,
            required: true,
        },
    );
    service
}

pub(super) fn replicas(mut service: DesiredService, replicas: u64) -> DesiredService {
    service.replicas = replicas;
    service
}

/// A project holding `services` and the default network.
pub(super) fn project(services: impl IntoIterator<Item = DesiredService>) -> Desired {
    Desired {
        project: PROJECT.into(),
        services: services.into_iter().map(|s| (s.name.clone(), s)).collect(),
        networks: vec![ProjectResource {
            name: NETWORK.into(),
            external: false,
        }],
        ..Desired::default()
    }
}

/// An up-to-date replica of `service` in `state`.
pub(super) fn replica(service: &str, number: u32, state: ContainerState) -> ObservedContainer {
    ObservedContainer {
        id: format!("id-{service}-{number}"),
        name: format!("{PROJECT}-{service}-{number}"),
        service: service.into(),
        number,
        oneoff: false,
        config_hash: Some(format!("hash-{service}")),
        image_id: Some(format!("sha-img/{service}")),
        state,
        exit_code: (state == ContainerState::Exited).then_some(0),
    }
}

pub(super) fn running(service: &str, number: u32) -> ObservedContainer {
    replica(service, number, ContainerState::Running)
}

/// A `run` container of `service`.
pub(super) fn oneoff(service: &str, slug: &str, state: ContainerState) -> ObservedContainer {
    ObservedContainer {
        name: format!("{PROJECT}-{service}-run-{slug}"),
        oneoff: true,
        number: 0,
        ..replica(service, 1, state)
    }
}

/// What a successful `up` of `desired` leaves: every replica running,
/// every network, volume and image present.
pub(super) fn converged(desired: &Desired) -> Observed {
    let owned = || ObservedResource {
        project: Some(PROJECT.into()),
    };
    let mut observed = Observed::default();
    for service in desired.services.values() {
        let count = u32::try_from(service.replicas).unwrap_or(0);
        observed
            .containers
            .extend((1..=count).map(|n| running(&service.name, n)));
        observed
            .images
            .insert(service.image.clone(), format!("sha-{}", service.image));
        for network in &service.networks {
            observed.networks.insert(network.clone(), owned());
        }
        for volume in &service.volumes {
            observed.volumes.insert(volume.clone(), owned());
        }
    }
    observed
}

/// The waves of an `up` plan, which must succeed.
pub(super) fn up_waves(desired: &Desired, observed: &Observed, options: &UpOptions) -> Vec<Vec<Action>> {
    match plan_up(desired, observed, options) {
        Ok(plan) => plan.waves.into_iter().map(|w| w.actions).collect(),
        Err(e) => panic!("plan_up failed: {e}"),
    }
}

/// The actions of an `up` plan, flattened.
pub(super) fn up_actions(desired: &Desired, observed: &Observed, options: &UpOptions) -> Vec<Action> {
    up_waves(desired, observed, options).into_iter().flatten().collect()
}

pub(super) fn name(service: &str, number: u32) -> String {
    format!("{PROJECT}-{service}-{number}")
}

pub(super) fn create(service: &str, number: u32) -> Action {
    Action::Create {
        service: service.into(),
        number,
        name: name(service, number),
    }
}

pub(super) fn start(service: &str, number: u32) -> Action {
    Action::Start {
        service: service.into(),
        container: name(service, number),
    }
}

pub(super) fn recreate(service: &str, number: u32) -> Action {
    Action::Recreate {
        service: service.into(),
        container: name(service, number),
        number,
        name: name(service, number),
        timeout: DEFAULT_STOP_TIMEOUT,
    }
}

pub(super) fn scale_down(service: &str, number: u32) -> Action {
    Action::ScaleDown {
        service: service.into(),
        container: name(service, number),
        number,
        timeout: DEFAULT_STOP_TIMEOUT,
    }
}

pub(super) fn secs(seconds: u64) -> Duration {
    Duration::from_secs(seconds)
}

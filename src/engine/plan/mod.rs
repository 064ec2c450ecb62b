//! The reconcile planner: `plan(desired, observed) → ordered actions`.
//!
//! Pure by design (ARCHITECTURE.md, invariant 1): no I/O, no clock, no
//! kernel. The caller observes the world ([`Observed`]), flattens the project
//! ([`Desired`]) and hands both in; [`plan_up`] and [`plan_down`] return a
//! [`Plan`] whose waves the apply layer runs in order, parallel inside a wave.
//!
//! The rules follow docker compose (design notes, compose-reference.md §3.2–3.6);
//! each decision cites its section next to the code.

mod desired;
mod down;
mod observed;
mod up;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use desired::{Desired, DesiredDependency, DesiredService, ProjectResource, PullPolicy, DEFAULT_STOP_TIMEOUT};
pub use down::{plan_down, DownOptions};
pub use observed::{ContainerState, Observed, ObservedContainer, ObservedResource};
pub use up::{plan_up, UpOptions};

use crate::graph::GraphError;

/// One step of a plan. Containers are named by their container name, which
/// is unique per engine; the apply layer maps names to ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create the project network `name` (it does not exist yet).
    EnsureNetwork { name: String },
    /// Create the project volume `name` (it does not exist yet).
    EnsureVolume { name: String },
    /// Pull `image` for `service` (the first service, by name, using it).
    PullImage { service: String, image: String },
    /// Build `image` for `service` (`build:` section, or `pull_policy: build`).
    BuildImage { service: String, image: String },
    /// Create replica `number` of `service` as container `name` (not started).
    Create { service: String, number: u32, name: String },
    /// Start an existing or just created container.
    Start { service: String, container: String },
    /// Stop a container, killing it after `timeout`.
    Stop { container: String, timeout: Duration },
    /// Remove a stopped container.
    Remove { container: String },
    /// Replace `container` by a new container `name` with the same replica
    /// `number`: create the new one, stop and remove the old one, rename
    /// (§3.5.5). It is left created; a following `Start` starts it.
    Recreate {
        service: String,
        container: String,
        number: u32,
        name: String,
        timeout: Duration,
    },
    /// Stop and remove a container whose service left the project (§3.6).
    RemoveOrphan { container: String, timeout: Duration },
    /// Stop and remove a surplus replica of `service` (§3.5.2).
    ScaleDown {
        service: String,
        container: String,
        number: u32,
        timeout: Duration,
    },
    /// Remove a project network (`down`).
    RemoveNetwork { name: String },
    /// Remove a project volume (`down -v`).
    RemoveVolume { name: String },
}

/// Actions that may run in parallel; a wave starts when the previous one
/// has finished.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wave {
    pub actions: Vec<Action>,
}

/// The ordered result of planning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Non-empty waves, in execution order.
    pub waves: Vec<Wave>,
    /// Orphan containers found but kept (no `--remove-orphans`), so the CLI
    /// can warn about them as compose does.
    pub orphans_kept: Vec<String>,
}

impl Plan {
    /// Every action, wave after wave.
    pub fn actions(&self) -> impl Iterator<Item = &Action> {
        self.waves.iter().flat_map(|wave| wave.actions.iter())
    }

    /// Whether there is nothing to do (a converged project).
    pub fn is_empty(&self) -> bool {
        self.waves.is_empty()
    }

    /// Appends a wave unless it is empty, so waves never hold nothing.
    fn push_wave(&mut self, actions: Vec<Action>) {
        if !actions.is_empty() {
            self.waves.push(Wave { actions });
        }
    }
}

/// Why a plan could not be made. Nothing has been done when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// Two command-line options that contradict each other.
    #[error("--{first} and --{second} are incompatible")]
    IncompatibleOptions { first: &'static str, second: &'static str },
    /// A service named on the command line (`up svc`, `--scale svc=N`) is
    /// not in the project.
    #[error("no such service: {service}")]
    UnknownService { service: String },
    /// A required `depends_on` entry names a service that is not enabled.
    #[error("service {service:?} depends on undefined service {dependency:?}; define it, enable its profile, or set `required: false`")]
    UndefinedDependency { service: String, dependency: String },
    /// `container_name` with more than one replica would clash (§3.2).
    #[error("service {service:?}: container_name {container_name:?} cannot be used with {replicas} replicas, as container names must be unique; remove container_name or scale to 1")]
    ContainerNameWithReplicas {
        service: String,
        container_name: String,
        replicas: u64,
    },
    /// An `external: true` network does not exist.
    #[error("network {name} declared as external, but could not be found; create it first")]
    ExternalNetworkMissing { name: String },
    /// An `external: true` volume does not exist.
    #[error("volume {name} declared as external, but could not be found; create it first")]
    ExternalVolumeMissing { name: String },
    /// `pull_policy: never` and the image is not in the store.
    #[error("service {service:?}: image {image} is not present and pull_policy is never; pull it first or change pull_policy")]
    ImageNotPresent { service: String, image: String },
    /// The dependency graph is invalid (cycle).
    #[error(transparent)]
    Graph(#[from] GraphError),
}

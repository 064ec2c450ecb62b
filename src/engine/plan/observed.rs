//! What exists: the project's containers (from their labels, §3.3),
//! networks, volumes and images.

use std::collections::BTreeMap;

use super::Desired;

/// The observed state of one project.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Containers labelled with this project, one-offs included.
    pub containers: Vec<ObservedContainer>,
    /// Existing networks by full name.
    pub networks: BTreeMap<String, ObservedResource>,
    /// Existing volumes by full name.
    pub volumes: BTreeMap<String, ObservedResource>,
    /// Images in the store: reference → image id. Presence decides pulls;
    /// the id is compared with the containers' image label (§3.5.3).
    pub images: BTreeMap<String, String>,
}

/// A network or volume that exists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedResource {
    /// Its project label, `None` when berth did not create it.
    pub project: Option<String>,
}

/// A container, as its labels and state describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedContainer {
    pub id: String,
    pub name: String,
    /// Service label.
    pub service: String,
    /// Container-number label: the 1-based replica index.
    pub number: u32,
    /// One-off (`run`) container.
    pub oneoff: bool,
    /// Config-hash label; `None` if missing.
    pub config_hash: Option<String>,
    /// Image id label; `None` if missing.
    pub image_id: Option<String>,
    pub state: ContainerState,
    pub exit_code: Option<i32>,
}

/// Container lifecycle states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ContainerState {
    Created,
    Running,
    Paused,
    Restarting,
    Exited,
    /// Removal or teardown failed half way; it cannot be started again.
    Dead,
}

impl ContainerState {
    /// Whether the container has processes that `stop` must end.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            ContainerState::Running | ContainerState::Paused | ContainerState::Restarting
        )
    }

    /// Whether `start` applies: created or exited (§3.5.6).
    pub fn is_startable(self) -> bool {
        matches!(self, ContainerState::Created | ContainerState::Exited)
    }
}

impl ObservedContainer {
    /// compose `isOrphaned` (§3.6): a one-off container is an orphan once it
    /// has exited or died, whatever its service; any other container when
    /// its service is neither enabled nor disabled by a profile.
    pub fn is_orphan(&self, desired: &Desired) -> bool {
        if self.oneoff {
            return matches!(self.state, ContainerState::Exited | ContainerState::Dead);
        }
        !desired.services.contains_key(&self.service) && !desired.inactive_services.contains(&self.service)
    }
}

impl Observed {
    /// The replicas of a service: its containers that are not one-offs.
    pub(super) fn replicas<'a>(&'a self, service: &'a str) -> impl Iterator<Item = &'a ObservedContainer> + 'a {
        self.containers
            .iter()
            .filter(move |c| !c.oneoff && c.service == service)
    }
}

//! What exists for a project, read from the stores: containers by their
//! ownership labels, networks, volumes and the images the project names.

use std::collections::BTreeMap;

use super::labels;
use super::plan::{ContainerState, Desired, Observed, ObservedContainer, ObservedResource};
use crate::image::ImageStore;
use crate::network::NetworkStore;
use crate::runtime::config::Status;
use crate::runtime::container::{self, Container};
use crate::store::Root;
use crate::volume::VolumeStore;

#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error("listing containers")]
    Containers(#[from] crate::runtime::container::ContainerError),
    #[error("listing networks")]
    Networks(#[from] crate::network::NetworkStoreError),
    #[error("listing volumes")]
    Volumes(#[from] crate::volume::VolumeError),
    #[error("opening the image store")]
    Images(#[from] crate::image::ImageError),
}

/// The containers labelled with `project`, one-offs included.
pub fn project_containers(root: &Root, project: &str) -> Result<Vec<Container>, ObserveError> {
    Ok(container::list(root)?
        .into_iter()
        .filter(|c| c.config.labels.get(labels::PROJECT).map(String::as_str) == Some(project))
        .collect())
}

/// Every project that owns a container, with its containers.
pub fn projects(root: &Root) -> Result<BTreeMap<String, Vec<Container>>, ObserveError> {
    let mut projects: BTreeMap<String, Vec<Container>> = BTreeMap::new();
    for c in container::list(root)? {
        if let Some(project) = c.config.labels.get(labels::PROJECT) {
            projects.entry(project.clone()).or_default().push(c);
        }
    }
    Ok(projects)
}

/// The planner's view of one container; `None` when it lacks the labels
/// (not made by a project).
pub fn observed_container(c: &Container) -> Option<ObservedContainer> {
    let l = &c.config.labels;
    let state = c.state().ok();
    Some(ObservedContainer {
        id: c.config.id.clone(),
        name: c.config.name.clone(),
        service: l.get(labels::SERVICE)?.clone(),
        number: l.get(labels::NUMBER).and_then(|n| n.parse().ok()).unwrap_or(1),
        oneoff: l.get(labels::ONEOFF).is_some_and(|v| v == "True"),
        config_hash: l.get(labels::CONFIG_HASH).cloned(),
        image_id: l.get(labels::IMAGE).cloned(),
        state: state.as_ref().map_or(ContainerState::Dead, |s| plan_state(s.status)),
        exit_code: state.and_then(|s| s.exit_code),
    })
}

fn plan_state(status: Status) -> ContainerState {
    match status {
        Status::Created => ContainerState::Created,
        Status::Running => ContainerState::Running,
        Status::Paused => ContainerState::Paused,
        Status::Exited => ContainerState::Exited,
        Status::Dead => ContainerState::Dead,
    }
}

/// Observes what `desired` plans against.
pub fn observe(root: &Root, desired: &Desired) -> Result<Observed, ObserveError> {
    let containers = project_containers(root, &desired.project)?
        .iter()
        .filter_map(observed_container)
        .collect();
    let networks = NetworkStore::new(root)
        .list()?
        .into_iter()
        .map(|n| {
            let project = n.labels.get(labels::PROJECT).cloned();
            (n.name, ObservedResource { project })
        })
        .collect();
    let volumes = VolumeStore::open(root)?
        .list()?
        .into_iter()
        .map(|v| {
            let project = v.labels.get(labels::PROJECT).cloned();
            (v.name, ObservedResource { project })
        })
        .collect();
    let store = ImageStore::open(root)?;
    let images = desired
        .services
        .values()
        .filter_map(|s| store.resolve(&s.image).ok().map(|i| (s.image.clone(), i.id)))
        .collect();
    Ok(Observed {
        containers,
        networks,
        volumes,
        images,
    })
}

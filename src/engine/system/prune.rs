//! `berth system prune`: stopped containers, networks no container is on,
//! dangling images (every unused one with `all`), and with `volumes`
//! unused anonymous volumes (every unused one with `all`, as docker ≥ 23
//! keeps named volumes unless asked).
//!
//! In that order, since each frees the next: a removed container releases
//! its network addresses, its image and its volumes. Removal is best
//! effort: one failure is reported and the rest still goes.

use super::{disk_size, SystemError};
use crate::image::ImageStore;
use crate::network::{provision, NetworkStore};
use crate::runtime::config::{ContainerState, RestartPolicy, Status};
use crate::runtime::container::{self, Container};
use crate::runtime::lifecycle;
use crate::store::Root;
use crate::volume::VolumeStore;

/// `-a` and `--volumes`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneOptions {
    pub all: bool,
    pub volumes: bool,
}

/// What was removed, and what could not be.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Container ids.
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    /// The image store's `untagged: …`/`deleted: …` lines.
    pub images: Vec<String>,
    pub volumes: Vec<String>,
    /// Bytes freed.
    pub reclaimed: u64,
    /// One line per failed removal, naming the object.
    pub errors: Vec<String>,
}

/// Whether prune takes the container: stopped and not waiting for its
/// restart policy (an exited `always` container in its backoff is
/// docker's "restarting", which prune keeps).
pub fn is_prunable(state: &ContainerState, restart: RestartPolicy) -> bool {
    match state.status {
        Status::Created | Status::Dead => true,
        Status::Exited => restart == RestartPolicy::No || state.stopped_by_user,
        Status::Running | Status::Paused => false,
    }
}

/// Prunes the root.
///
/// # Errors
///
/// A store that cannot be read at all; failures to remove one object are
/// in [`PruneReport::errors`].
pub fn prune(root: &Root, options: PruneOptions) -> Result<PruneReport, SystemError> {
    let mut report = PruneReport::default();
    for c in container::list(root)? {
        let Ok(state) = c.state() else { continue };
        if !is_prunable(&state, c.config.restart) {
            continue;
        }
        remove_container(root, &c, &mut report);
    }

    let networks = NetworkStore::new(root);
    for record in networks.list()?.into_iter().filter(|r| r.allocations.is_empty()) {
        // A container may have joined since the listing: the store
        // refuses then, and that is not a failure of prune.
        if provision::remove_network(root, &record.name).is_ok() {
            report.networks.push(record.name);
        }
    }

    let images_before = disk_size(&root.blobs_dir()) + disk_size(&root.snapshots_dir());
    let in_use = container::images_in_use(root)?;
    let mut lines = ImageStore::open(root)?.prune_with(options.all, &|id| in_use.contains(id))?;
    // The last line is the image store's own total; berth prints one total.
    lines.pop();
    report.images = lines;
    let images_after = disk_size(&root.blobs_dir()) + disk_size(&root.snapshots_dir());
    report.reclaimed = report
        .reclaimed
        .saturating_add(images_before.saturating_sub(images_after));

    if options.volumes {
        let store = VolumeStore::open(root)?;
        let sizes: Vec<(String, u64)> = store
            .list()?
            .into_iter()
            .map(|v| {
                let size = disk_size(&store.mountpoint(&v.name));
                (v.name, size)
            })
            .collect();
        let removed = store.lock()?.prune(options.all)?;
        for (name, size) in sizes {
            if removed.contains(&name) {
                report.reclaimed = report.reclaimed.saturating_add(size);
            }
        }
        report.volumes = removed;
    }
    Ok(report)
}

fn remove_container(root: &Root, c: &Container, report: &mut PruneReport) {
    let size = disk_size(&c.upper());
    match lifecycle::remove(root, c, false) {
        Ok(()) => {
            report.containers.push(c.config.id.clone());
            report.reclaimed = report.reclaimed.saturating_add(size);
        }
        Err(e) => report.errors.push(format!("container {}: {e}", c.config.name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(status: Status, stopped_by_user: bool) -> ContainerState {
        ContainerState {
            status,
            stopped_by_user,
            ..ContainerState::created()
        }
    }

    #[test]
    fn stopped_containers_are_pruned_unless_restarting() {
        assert!(is_prunable(&state(Status::Created, false), RestartPolicy::Always));
        assert!(is_prunable(&state(Status::Exited, false), RestartPolicy::No));
        assert!(!is_prunable(&state(Status::Exited, false), RestartPolicy::Always));
        assert!(is_prunable(&state(Status::Exited, true), RestartPolicy::Always));
        assert!(!is_prunable(&state(Status::Running, false), RestartPolicy::No));
        assert!(!is_prunable(&state(Status::Paused, false), RestartPolicy::No));
    }
}
